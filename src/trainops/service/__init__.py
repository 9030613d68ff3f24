"""Services: the operations lifecycle (and, later, the model registry and executors)."""

from trainops.service.operations import OperationResults, OperationsService
from trainops.service.throttle import ProgressThrottle

__all__ = ["OperationResults", "OperationsService", "ProgressThrottle"]
