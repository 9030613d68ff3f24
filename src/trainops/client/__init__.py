"""The facade: one TrainOps interface, in-process or over HTTP."""

from trainops.client.base import TrainOps
from trainops.client.connect import connect
from trainops.client.http import HttpTrainOps
from trainops.client.local import LocalTrainOps
from trainops.client.run import Run

__all__ = ["HttpTrainOps", "LocalTrainOps", "Run", "TrainOps", "connect"]
