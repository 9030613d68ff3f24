"""The optional parts of trainops, and a clear error when one is missing.

``pip install trainops`` gives the client, the CLI, the in-process store and the server. The strategy pipeline and
the model registry need ``trainops[train]`` (torch, TA-Lib, pandas, ...). Code that needs an extra calls
:func:`require` before importing it, so a user without it reads which extra to install instead of an ImportError.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Literal

from trainops.errors import MissingExtraError

Extra = Literal["train", "ray"]

EXTRA_MODULES: dict[Extra, tuple[str, ...]] = {
    # the import names of the `train` extra in pyproject.toml (ta-lib imports as talib)
    "train": ("torch", "talib", "numpy", "pandas", "yaml", "pyarrow", "safetensors"),
    # the Ray executor: the job-submission client (ray[default] brings the aiohttp and requests it uses)
    "ray": ("ray",),
}


@functools.cache
def missing_modules(extra: Extra) -> tuple[str, ...]:
    """The modules of ``extra`` that cannot be imported here (found without importing them)."""
    return tuple(name for name in EXTRA_MODULES[extra] if importlib.util.find_spec(name) is None)


def is_installed(extra: Extra) -> bool:
    """Whether every module of ``extra`` is importable."""
    return not missing_modules(extra)


def require(extra: Extra, feature: str) -> None:
    """Raise unless ``extra`` is installed.

    Args:
        extra: The extra ``feature`` needs.
        feature: What the caller tried to use, as a person would say it ("strategy training").

    Raises:
        MissingExtraError: naming the feature, the missing modules and the install command.

    Example:
        >>> require("train", "strategy training")  # doctest: +SKIP
        Traceback (most recent call last):
        trainops.errors.MissingExtraError: strategy training needs the trainops[train] extra, which is not installed
        here (missing: torch, talib); install it with: pip install 'trainops[train]' (in a clone of trainops: pip
        install -c constraints.txt '.[train]')
    """
    missing = missing_modules(extra)
    if missing:
        raise MissingExtraError(
            f"{feature} needs the trainops[{extra}] extra, which is not installed here (missing: "
            f"{', '.join(missing)}); install it with: pip install 'trainops[{extra}]' (in a clone of trainops: pip "
            f"install -c constraints.txt '.[{extra}]')",
            details={"extra": extra, "missing": list(missing), "install": f"pip install 'trainops[{extra}]'"},
        )
