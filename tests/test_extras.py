"""The optional extras: found without importing them, and a missing one named with its install command."""

from __future__ import annotations

import subprocess
import sys

import pytest

from trainops import extras
from trainops.errors import HTTP_STATUS, MissingExtraError, error_from_dict


@pytest.fixture
def fresh_cache() -> object:
    extras.missing_modules.cache_clear()
    yield
    extras.missing_modules.cache_clear()


def test_the_train_extra_is_installed_for_the_suite(fresh_cache: object) -> None:
    assert extras.missing_modules("train") == ()
    assert extras.is_installed("train")
    extras.require("train", "strategy training")  # no error


def test_a_missing_module_names_the_extra_and_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, fresh_cache: object
) -> None:
    monkeypatch.setitem(extras.EXTRA_MODULES, "train", ("torch", "no_such_module_for_trainops"))
    assert extras.missing_modules("train") == ("no_such_module_for_trainops",)
    assert not extras.is_installed("train")
    with pytest.raises(MissingExtraError) as raised:
        extras.require("train", "strategy training")
    error = raised.value
    assert error.message == (
        "strategy training needs the trainops[train] extra, which is not installed here (missing: "
        "no_such_module_for_trainops); install it with: pip install 'trainops[train]' (in a clone of trainops: pip "
        "install -c constraints.txt '.[train]')"
    )
    assert error.details["install"] == "pip install 'trainops[train]'"
    # served as 501 and rebuilt as the same exception by the HTTP client
    assert HTTP_STATUS[error.code] == 501
    assert isinstance(error_from_dict(error.to_dict()), MissingExtraError)


def test_finding_the_modules_imports_none_of_them() -> None:
    code = (
        "import sys; from trainops import extras; extras.missing_modules('train'); "
        "print(sorted({'torch', 'talib', 'pandas', 'numpy'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
