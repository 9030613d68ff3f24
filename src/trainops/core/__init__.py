"""The pure domain of trainops: operations, progress, epoch records, policies and the diagnosis.

Nothing here does I/O or imports FastAPI, SQLAlchemy or torch.
"""

from trainops.core.analysis import analyze
from trainops.core.cancellation import CancellationToken, CancelRequest
from trainops.core.diagnosis import (
    Action,
    Diagnosis,
    OperationMetrics,
    Recommendation,
    Signal,
    SignalRule,
    TrainingMetrics,
    Trend,
    TrendDirection,
)
from trainops.core.epoch import STANDARD_METRICS, EpochRecord
from trainops.core.metric_definitions import (
    TASK_PRIMARY_METRICS,
    TASK_STANDARD_METRICS,
    MetricDefinition,
    MetricTier,
    TaskType,
    TieredDefinition,
    definition_of,
)
from trainops.core.operation import (
    Operation,
    OperationMetadata,
    OperationPage,
    OperationStatus,
    WriteAck,
    new_operation_id,
)
from trainops.core.policy import MonitorPolicy
from trainops.core.progress import Phase, ProgressState, band_percentage
from trainops.core.replay import Replay, ReplayStep, replay
from trainops.core.reporter import NullReporter, Reporter
from trainops.core.steps import StepRecord, StepSeries

__all__ = [
    "STANDARD_METRICS",
    "TASK_PRIMARY_METRICS",
    "TASK_STANDARD_METRICS",
    "Action",
    "CancelRequest",
    "CancellationToken",
    "Diagnosis",
    "EpochRecord",
    "MetricDefinition",
    "MetricTier",
    "MonitorPolicy",
    "NullReporter",
    "Operation",
    "OperationMetadata",
    "OperationMetrics",
    "OperationPage",
    "OperationStatus",
    "Phase",
    "ProgressState",
    "Recommendation",
    "Replay",
    "ReplayStep",
    "Reporter",
    "Signal",
    "SignalRule",
    "StepRecord",
    "StepSeries",
    "TaskType",
    "TieredDefinition",
    "TrainingMetrics",
    "Trend",
    "TrendDirection",
    "WriteAck",
    "analyze",
    "band_percentage",
    "definition_of",
    "new_operation_id",
    "replay",
]
