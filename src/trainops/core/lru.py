"""A small thread-safe LRU cache: the one the registry, the history cache and the HTTP client's ETags share."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["LRUCache"]

K = TypeVar("K")
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """At most ``maxsize`` entries; storing one more evicts the least recently used.

    Reading an entry with :meth:`get` or storing it with :meth:`put` makes it the most recently used; ``in``,
    ``len`` and :meth:`keys` look without changing the order. Every method takes the cache's own lock, so one
    instance may be shared between threads; a read-then-write sequence (load on a miss) is not atomic, which is
    what callers want: a slow load must not block readers of other keys. ``None`` is what :meth:`get` returns
    for a miss, so it cannot be a stored value.

    Args:
        maxsize: How many entries to keep. ``0`` keeps none (every :meth:`put` is evicted at once), which
            turns caching off without changing the caller.

    Raises:
        ValueError: ``maxsize`` is negative or not a whole number.

    Example:
        >>> cache: LRUCache[str, int] = LRUCache(maxsize=2)
        >>> cache.put("a", 1), cache.put("b", 2)
        ([], [])
        >>> cache.get("a")  # "a" is now the most recently used, so "b" goes first
        1
        >>> cache.put("c", 3)
        [('b', 2)]
        >>> cache.keys()
        ['a', 'c']
    """

    def __init__(self, maxsize: int) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
            raise ValueError(f"maxsize must be a whole number >= 0 (0 turns the cache off), got {maxsize!r}")
        self._maxsize = maxsize
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def maxsize(self) -> int:
        return self._maxsize

    def get(self, key: K) -> V | None:
        """The value stored under ``key`` (now the most recently used), or ``None`` if there is none."""
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> list[tuple[K, V]]:
        """Store ``value`` under ``key`` as the most recently used entry, replacing any value it had.

        Returns:
            The entries evicted to make room, least recently used first (``[]`` almost always), so a caller can
            release what belonged to them.
        """
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            evicted: list[tuple[K, V]] = []
            while len(self._entries) > self._maxsize:
                evicted.append(self._entries.popitem(last=False))
            return evicted

    def pop(self, key: K) -> V | None:
        """Forget ``key``; its value, or ``None`` if it was not stored."""
        with self._lock:
            return self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def items(self) -> list[tuple[K, V]]:
        """The stored entries, least recently used first (without changing the order)."""
        with self._lock:
            return list(self._entries.items())

    def keys(self) -> list[K]:
        """The stored keys, least recently used first."""
        with self._lock:
            return list(self._entries)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __repr__(self) -> str:
        return f"LRUCache(maxsize={self._maxsize}, size={len(self)})"
