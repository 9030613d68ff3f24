"""The incremental history cache: merging, replacing re-sent epochs, single flight."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from trainops.core import EpochRecord
from trainops.service.bootstrap import open_service
from trainops.service.history_cache import HistoryCache, merge
from trainops.service.operations import OperationsService
from trainops.settings import Settings
from trainops.store import OperationStore


def records(*pairs: tuple[int, float]) -> list[EpochRecord]:
    return [EpochRecord(epoch=epoch, val_loss=value) for epoch, value in pairs]


@pytest.mark.parametrize(
    ("cached", "changed", "expected"),
    [
        pytest.param([], [(0, 1.0)], [(0, 1.0)], id="first"),
        pytest.param([(0, 1.0)], [], [(0, 1.0)], id="nothing-new"),
        pytest.param([(0, 1.0), (1, 0.9)], [(2, 0.8), (3, 0.7)], [(0, 1.0), (1, 0.9), (2, 0.8), (3, 0.7)], id="append"),
        pytest.param([(0, 1.0), (1, 0.9)], [(1, 0.5)], [(0, 1.0), (1, 0.5)], id="replace"),
        pytest.param(
            [(0, 1.0), (2, 0.8)], [(1, 0.9), (3, 0.7)], [(0, 1.0), (1, 0.9), (2, 0.8), (3, 0.7)], id="fill-gap"
        ),
    ],
)
def test_merge(
    cached: list[tuple[int, float]], changed: list[tuple[int, float]], expected: list[tuple[int, float]]
) -> None:
    merged = merge(records(*cached), records(*changed))
    assert [(record.epoch, record.val_loss) for record in merged] == expected


def test_cached_history_follows_appends_and_rewrites(service: OperationsService) -> None:
    operation = service.create()
    service.add_epochs(operation.operation_id, records((0, 1.0), (1, 0.8), (2, 0.9)))
    assert service.metrics(operation.operation_id).metrics.best_epoch == 1

    service.add_epochs(operation.operation_id, records((2, 0.1), (3, 0.95)))  # rewrite an old epoch, add one
    block = service.metrics(operation.operation_id).metrics

    assert [(record.epoch, record.val_loss) for record in block.epochs] == [(0, 1.0), (1, 0.8), (2, 0.1), (3, 0.95)]
    assert block.best_epoch == 2
    assert block.total_epochs_completed == 4


def test_a_change_from_another_process_is_seen(service: OperationsService) -> None:
    operation = service.create()
    service.add_epoch(operation.operation_id, EpochRecord(epoch=0, val_loss=1.0))
    assert service.metrics(operation.operation_id).metrics.total_epochs_completed == 1

    other = OperationsService(OperationStore(service.store.engine))  # its own cache, as another process has
    other.add_epoch(operation.operation_id, EpochRecord(epoch=1, val_loss=0.5))

    block = service.metrics(operation.operation_id).metrics
    assert [record.epoch for record in block.epochs] == [0, 1]
    assert block.best_epoch == 1


def test_concurrent_readers_share_one_load(service: OperationsService) -> None:
    operation = service.create()
    service.add_epochs(operation.operation_id, records(*[(e, 1.0 / (e + 1)) for e in range(200)]))
    loads: list[int] = []
    store = service.store
    original = store.history

    def counting_history(*args: object, **kwargs: object) -> object:
        loads.append(1)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    store.history = counting_history  # type: ignore[method-assign]
    cache = HistoryCache(store)
    version = store.version(operation.operation_id).version
    barrier = threading.Barrier(16)
    results = []

    def read() -> None:
        barrier.wait()
        results.append(cache.current(operation.operation_id, version))

    threads = [threading.Thread(target=read) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(loads) == 1
    assert len({id(result) for result in results}) == 1
    assert len(results[0].epochs) == 200


def test_the_least_recently_read_history_is_dropped_first(service: OperationsService) -> None:
    store = service.store
    ids = [service.create().operation_id for _ in range(3)]
    for operation_id in ids:
        service.add_epochs(operation_id, records((0, 1.0)))
    loads: list[str] = []
    original = store.history

    def counting_history(operation_id: str, **kwargs: object) -> object:
        loads.append(operation_id)
        return original(operation_id, **kwargs)  # type: ignore[arg-type]

    store.history = counting_history  # type: ignore[method-assign]
    cache = HistoryCache(store, size=2)
    a, b, c = ids

    def read(operation_id: str) -> None:
        cache.current(operation_id, store.version(operation_id).version)

    for operation_id in (a, b, a, c):  # reading a again makes b the least recently used
        read(operation_id)
    assert loads == [a, b, c]
    read(a)
    assert loads == [a, b, c]  # still cached
    read(b)
    assert loads == [a, b, c, b]  # evicted when c came in


def test_the_cache_keeps_within_its_epoch_budget_dropping_the_least_recently_read(service: OperationsService) -> None:
    store = service.store
    lengths = {"short": 3, "long": 6, "live": 4}
    ids = {}
    for name, length in lengths.items():
        ids[name] = service.create().operation_id
        service.add_epochs(ids[name], records(*((epoch, 1.0 / (epoch + 1)) for epoch in range(length))))
    cache = HistoryCache(store, size=10, max_epochs=10)

    def read(name: str) -> list[EpochRecord]:
        return cache.current(ids[name], store.version(ids[name]).version).epochs

    read("short")
    read("long")
    assert cache.epochs_cached == 9
    assert len(read("live")) == 4  # 13 epochs: the least recently read ("short") goes
    assert cache.epochs_cached == 10
    read("long")
    service.add_epochs(ids["live"], records((4, 0.1), (5, 0.05)))
    assert len(read("live")) == 6  # 12 epochs: "long", now the least recently read, goes
    assert cache.epochs_cached == 6
    # one history longer than the whole budget still stays: the one just read is never dropped
    assert len(read("long")) == 6 and cache.epochs_cached == 6
    # and what was dropped is read again, whole and current
    assert [record.epoch for record in read("short")] == [0, 1, 2]


def test_the_servers_setting_bounds_the_cache(tmp_path: Path) -> None:
    service = open_service(Settings(home=tmp_path, history_cache_epochs=5))
    for _ in range(2):
        operation_id = service.create().operation_id
        service.add_epochs(operation_id, records(*((epoch, 1.0) for epoch in range(4))))
        assert len(service.history(operation_id).epochs) == 4
    assert service._histories.epochs_cached == 4  # only the last read fits
