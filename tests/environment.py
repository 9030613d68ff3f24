"""What both suites' conftests share about the process environment."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from trainops.settings import get_settings


@pytest.fixture(scope="session", autouse=True)
def no_trainops_environment() -> Iterator[None]:
    """The tests start from none of the developer's ``TRAINOPS_*`` variables: with ``TRAINOPS_URL`` or
    ``TRAINOPS_API_TOKEN`` set in a shell, tests would talk to (and write into) that server. Session-wide, so that
    module fixtures are covered too; fixtures set what they need after this. A conftest imports it to use it."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("TRAINOPS_")]:
            patch.delenv(name)
        get_settings.cache_clear()
        yield
    get_settings.cache_clear()
