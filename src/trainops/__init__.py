"""trainops: run, watch and steer model training.

>>> import trainops
>>> ops = trainops.connect()              # in-process on the local database (or connect("http://host:8000"))
>>> with ops.run(total_epochs=10) as run:  # doctest: +SKIP
...     run.log(0, train_loss=0.9, val_loss=1.0)
"""

from trainops.client import HttpTrainOps, LocalTrainOps, Run, TrainOps, connect
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
from trainops.service.bootstrap import trainops_version

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
    "TrainOps",
    "TrainOpsError",
    "TrainingMetrics",
    "__version__",
    "analyze",
    "connect",
    "replay",
]
