"""The facade: one TrainOps interface, in-process or over HTTP.

``LocalTrainOps`` is imported on first use (PEP 562): it brings the store and the services, which a training
script reporting to a server never needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trainops.client.base import TrainOps
from trainops.client.connect import connect
from trainops.client.http import HttpTrainOps
from trainops.client.run import Run

if TYPE_CHECKING:
    from trainops.client.local import LocalTrainOps

__all__ = ["HttpTrainOps", "LocalTrainOps", "Run", "TrainOps", "connect"]


def __getattr__(name: str) -> Any:
    if name == "LocalTrainOps":
        from trainops.client.local import LocalTrainOps

        return LocalTrainOps
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
