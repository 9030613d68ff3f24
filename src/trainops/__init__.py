"""trainops: run, watch and steer model training.

>>> import trainops
>>> ops = trainops.connect()              # in-process on the local database (or connect("http://host:8000"))
>>> with ops.run(total_epochs=10) as run:  # doctest: +SKIP
...     run.log(0, train_loss=0.9, val_loss=1.0)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trainops.client import HttpTrainOps, Run, TrainOps, connect
from trainops.core import (
    Action,
    CancellationToken,
    CancelRequest,
    Diagnosis,
    EpochRecord,
    MonitorPolicy,
    Operation,
    OperationMetrics,
    OperationStatus,
    ProgressState,
    Replay,
    ReplayStep,
    Reporter,
    StepRecord,
    StepSeries,
    TrainingMetrics,
    analyze,
    replay,
)
from trainops.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    OperationCancelledError,
    TrainOpsError,
)
from trainops.version import trainops_version

if TYPE_CHECKING:
    from trainops.client.local import LocalTrainOps

__version__ = trainops_version()

__all__ = [
    "Action",
    "CancelRequest",
    "CancellationToken",
    "ConflictError",
    "Diagnosis",
    "EpochRecord",
    "HttpTrainOps",
    "InvalidInputError",
    "LocalTrainOps",
    "MonitorPolicy",
    "NotFoundError",
    "Operation",
    "OperationCancelledError",
    "OperationMetrics",
    "OperationStatus",
    "ProgressState",
    "Replay",
    "ReplayStep",
    "Reporter",
    "Run",
    "StepRecord",
    "StepSeries",
    "TrainOps",
    "TrainOpsError",
    "TrainingMetrics",
    "__version__",
    "analyze",
    "connect",
    "replay",
]


def __getattr__(name: str) -> Any:
    # LocalTrainOps brings the store and the services: loaded when first named, not by `import trainops`
    if name == "LocalTrainOps":
        from trainops.client.local import LocalTrainOps

        return LocalTrainOps
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
