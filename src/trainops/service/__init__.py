"""Services: the operations lifecycle (and, later, the model registry and executors)."""

from trainops.schemas.operations import OperationResults
from trainops.service.operations import OperationsService
from trainops.service.throttle import ProgressThrottle

__all__ = ["OperationResults", "OperationsService", "ProgressThrottle"]
