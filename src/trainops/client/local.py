"""TrainOps in-process: straight calls on the service over the local database."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from trainops.client.base import TrainOps
from trainops.core.diagnosis import OperationMetrics
from trainops.core.epoch import EpochRecord
from trainops.core.operation import Operation, OperationMetadata, OperationPage, OperationStatus, WriteAck
from trainops.core.policy import MonitorPolicy
from trainops.core.progress import ProgressState
from trainops.errors import InvalidInputError
from trainops.service.bootstrap import Health, check_health
from trainops.service.operations import OperationResults, OperationsService


class LocalTrainOps(TrainOps):
    """The :class:`TrainOps` interface on an :class:`OperationsService` in this process."""

    def __init__(self, service: OperationsService) -> None:
        self.service = service

    def health(self) -> Health:
        return check_health(self.service)

    def create_operation(
        self,
        operation_type: str = "training",
        *,
        metadata: OperationMetadata | dict[str, Any] | None = None,
        total_epochs: int | None = None,
    ) -> Operation:
        return self.service.create(operation_type, metadata=metadata, total_epochs=total_epochs)

    def get_operation(self, operation_id: str) -> Operation:
        return self.service.get(operation_id)

    def list_operations(
        self,
        *,
        status: OperationStatus | Iterable[OperationStatus] | None = None,
        operation_type: str | None = None,
        active_only: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> OperationPage:
        return self.service.list_operations(
            status=status, operation_type=operation_type, active_only=active_only, limit=limit, offset=offset
        )

    def start_operation(self, operation_id: str, *, worker: str | None = None) -> Operation:
        return self.service.start(operation_id, worker=worker)

    def report_progress(self, operation_id: str, state: ProgressState) -> WriteAck:
        return self.service.report_progress(operation_id, state)

    def add_epochs(self, operation_id: str, records: Sequence[EpochRecord]) -> WriteAck:
        return self.service.add_epochs(operation_id, records)

    def heartbeat(self, operation_id: str) -> WriteAck:
        return self.service.heartbeat(operation_id)

    def finish_operation(
        self,
        operation_id: str,
        status: OperationStatus | str = OperationStatus.COMPLETED,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> Operation:
        return self.service.finish(operation_id, _status(status), result=result, error=error)

    def cancel_operation(self, operation_id: str, reason: str, *, requested_by: str = "user") -> Operation:
        return self.service.cancel(operation_id, reason, requested_by=requested_by)

    def get_metrics(
        self,
        operation_id: str,
        *,
        since_epoch: int | None = None,
        policy: MonitorPolicy | None = None,
    ) -> OperationMetrics:
        return self.service.metrics(operation_id, since_epoch=since_epoch, policy=policy)

    def get_results(self, operation_id: str) -> OperationResults:
        return self.service.results(operation_id)

    def close(self) -> None:
        self.service.store.engine.dispose()


def _status(status: OperationStatus | str) -> OperationStatus:
    try:
        return OperationStatus(status)
    except ValueError:
        raise InvalidInputError(
            f"unknown status {status!r}: use one of {', '.join(s.value for s in OperationStatus)}"
        ) from None
