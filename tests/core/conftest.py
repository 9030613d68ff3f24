"""Fixtures shared by the diagnosis tests."""

from __future__ import annotations

import pytest

from trainops.core import projection


@pytest.fixture
def quarter_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """The projection's first geometry: a trend over the last quarter of the run, ten epochs at least.

    Some curves were drawn for it, to test a mechanism (how confirmation counts, how a slowing fall or a step in the
    learning rate is read) with windows of ten epochs that can be counted by hand. The calibrated constants
    (``PROJECTION_WINDOW_FRACTION``, ``PROJECTION_MIN_WINDOW``) have tests of their own.
    """
    monkeypatch.setattr(projection, "PROJECTION_WINDOW_FRACTION", 0.25)
    monkeypatch.setattr(projection, "PROJECTION_MIN_WINDOW", 10)
