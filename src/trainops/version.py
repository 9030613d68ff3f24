"""The installed trainops version, read from the package metadata."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def trainops_version() -> str:
    try:
        return version("trainops")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"
