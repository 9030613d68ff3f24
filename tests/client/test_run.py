"""Run ends its operation whatever happens to the network at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from trainops import OperationStatus
from trainops.client.local import LocalTrainOps
from trainops.client.run import Run
from trainops.core import EpochRecord, WriteAck
from trainops.errors import ServiceUnavailableError
from trainops.service.bootstrap import open_service
from trainops.settings import Settings


@pytest.fixture
def local_ops(settings: Settings) -> Iterator[LocalTrainOps]:
    client = LocalTrainOps(open_service(settings))
    yield client
    client.close()


def test_the_operation_ends_even_when_queued_epochs_cannot_be_sent(
    local_ops: LocalTrainOps, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(operation_id: str, records: list[EpochRecord]) -> WriteAck:
        raise ServiceUnavailableError("connection refused")

    operation = local_ops.create_operation(total_epochs=2)
    monkeypatch.setattr(local_ops, "add_epochs", unreachable)
    run = Run(local_ops, operation, flush_interval=0.01, flush_timeout=0.2)
    with pytest.raises(ServiceUnavailableError, match=r"1 epoch\(s\) could not be sent"), run:
        run.log(0, val_loss=1.0)

    ended = local_ops.get_operation(run.operation_id)
    assert ended.status is OperationStatus.COMPLETED
    assert ended.result is not None and "could not be sent" in ended.result["unsent_epochs_error"]
