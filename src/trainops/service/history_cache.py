"""Metric histories kept current in memory, so polling a live run costs what changed, not the whole history."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from trainops.core.diagnosis import Diagnosis
from trainops.core.epoch import EpochRecord
from trainops.core.lru import LRUCache
from trainops.core.operation import Operation
from trainops.store.operations import OperationStore


@dataclass
class History:
    """An operation's full history at one version, and the diagnoses computed over it (by policy)."""

    operation: Operation
    version: int
    epochs: list[EpochRecord]
    diagnoses: dict[str, Diagnosis] = field(default_factory=dict)


def merge(epochs: list[EpochRecord], changed: list[EpochRecord]) -> list[EpochRecord]:
    """``epochs`` with ``changed`` records added or replaced, still ordered by epoch."""
    if not changed:
        return epochs
    if not epochs or changed[0].epoch > epochs[-1].epoch:
        return [*epochs, *changed]  # the common case: a live run appending epochs
    by_epoch = {record.epoch: record for record in epochs}
    by_epoch.update((record.epoch, record) for record in changed)
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


DEFAULT_MAX_EPOCHS = 100_000
"""The most epochs the cache holds over all its histories by default: about 250-400 MiB of records (``bench/soak.py``
measures 2.3-3.7 KiB per cached epoch, diagnoses included)."""


class HistoryCache:
    """Histories by operation, brought up to date incrementally, within a memory budget.

    The store's per-operation ``version`` says whether a cached history is current; when it is not, only the
    rows written since (``revision > cached version``) are read and merged. Loads and analyses of one operation
    happen once at a time (single flight): thirty pollers arriving right after an epoch share one read and one
    analysis. Correct across processes, because versions live in the database.

    Memory is bounded twice: at most ``size`` histories, and at most ``max_epochs`` epochs over all of them (the
    least recently read histories go first; the one just read always stays, however long). A server's memory
    then levels off however many runs it has seen and however long they are; an evicted history is read whole
    from the database the next time it is asked for.
    """

    def __init__(self, store: OperationStore, size: int = 128, max_epochs: int = DEFAULT_MAX_EPOCHS) -> None:
        if max_epochs < 0:
            raise ValueError(f"max_epochs must be >= 0, got {max_epochs}")
        self._store = store
        self._max_epochs = max_epochs
        self._entries: LRUCache[str, History] = LRUCache(size)
        self._lock = threading.Lock()  # guards _flights
        self._flights: dict[str, threading.Lock] = {}

    def _cached(self, operation_id: str, version: int) -> History | None:
        entry = self._entries.get(operation_id)
        return entry if entry is not None and entry.version >= version else None

    def ready(self, operation_id: str, version: int, key: str) -> bool:
        """Whether the history at ``version`` and its diagnosis under ``key`` are in memory (no I/O needed)."""
        entry = self._cached(operation_id, version)
        return entry is not None and key in entry.diagnoses

    def _flight(self, operation_id: str) -> threading.Lock:
        with self._lock:
            return self._flights.setdefault(operation_id, threading.Lock())

    def current(self, operation_id: str, version: int) -> History:
        """The history at ``version`` or newer."""
        entry = self._cached(operation_id, version)
        if entry is not None:
            return entry
        with self._flight(operation_id):
            entry = self._cached(operation_id, version)  # another thread may have loaded it meanwhile
            if entry is not None:
                return entry
            stale = self._entries.get(operation_id)
            if stale is None:
                operation, loaded, epochs = self._store.history(operation_id)
            else:
                operation, loaded, changed = self._store.history(operation_id, after_version=stale.version)
                epochs = merge(stale.epochs, changed)
            entry = History(operation, loaded, epochs)
            evicted = [gone for gone, _ in self._entries.put(operation_id, entry)]
            evicted += self._over_budget(operation_id)
            with self._lock:
                for gone in evicted:
                    self._flights.pop(gone, None)
            return entry

    def _over_budget(self, keep: str) -> list[str]:
        """Evict the least recently used histories, never ``keep``, until the epochs cached fit ``max_epochs``."""
        sizes = {operation_id: len(entry.epochs) for operation_id, entry in self._entries.items()}
        total = sum(sizes.values())
        evicted = []
        for operation_id in sizes:  # least recently used first
            if total <= self._max_epochs:
                break
            if operation_id != keep and self._entries.pop(operation_id) is not None:
                total -= sizes[operation_id]
                evicted.append(operation_id)
        return evicted

    @property
    def epochs_cached(self) -> int:
        """The epochs held over all cached histories."""
        return sum(len(entry.epochs) for _, entry in self._entries.items())

    def forget(self, operation_id: str) -> None:
        """Drop the operation's history (it was deleted)."""
        self._entries.pop(operation_id)
        with self._lock:
            self._flights.pop(operation_id, None)

    def diagnosis(self, operation_id: str, entry: History, key: str, compute: Callable[[], Diagnosis]) -> Diagnosis:
        """``entry``'s diagnosis under the policy ``key``, computed once however many callers ask at once."""
        found = entry.diagnoses.get(key)
        if found is not None:
            return found
        with self._flight(operation_id):
            found = entry.diagnoses.get(key)
            if found is None:
                found = entry.diagnoses[key] = compute()
            return found
