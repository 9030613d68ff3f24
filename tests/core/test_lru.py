"""The LRU cache: what it evicts and when, what counts as a use, and sharing it between threads."""

from __future__ import annotations

import doctest
import sys
import threading
from collections.abc import Iterator

import pytest

from trainops.core import lru
from trainops.core.lru import LRUCache


def filled(maxsize: int, *keys: str) -> LRUCache[str, int]:
    cache: LRUCache[str, int] = LRUCache(maxsize)
    for number, key in enumerate(keys):
        cache.put(key, number)
    return cache


def test_the_least_recently_stored_goes_first() -> None:
    cache = filled(3, "a", "b", "c")

    assert cache.put("d", 3) == [("a", 0)]
    assert cache.put("e", 4) == [("b", 1)]
    assert cache.keys() == ["c", "d", "e"]
    assert "a" not in cache and cache.get("a") is None


def test_a_read_makes_an_entry_the_most_recent() -> None:
    cache = filled(3, "a", "b", "c")

    assert cache.get("a") == 0
    assert cache.put("d", 3) == [("b", 1)]
    assert cache.keys() == ["c", "a", "d"]


def test_storing_again_replaces_the_value_and_makes_it_the_most_recent() -> None:
    cache = filled(3, "a", "b", "c")

    assert cache.put("a", 10) == []
    assert len(cache) == 3
    assert cache.put("d", 3) == [("b", 1)]
    assert cache.get("a") == 10


def test_looking_does_not_count_as_a_use() -> None:
    cache = filled(2, "a", "b")

    assert "a" in cache and len(cache) == 2 and cache.keys() == ["a", "b"]
    assert cache.put("c", 2) == [("a", 0)]


def test_a_miss_changes_nothing() -> None:
    cache = filled(2, "a", "b")

    assert cache.get("z") is None
    assert cache.pop("z") is None
    assert cache.keys() == ["a", "b"]


def test_pop_and_clear_forget() -> None:
    cache = filled(3, "a", "b", "c")

    assert cache.pop("b") == 1
    assert cache.keys() == ["a", "c"] and "b" not in cache
    assert cache.put("d", 3) == []  # the freed place is used before anything is evicted
    cache.clear()
    assert len(cache) == 0 and cache.keys() == [] and cache.get("a") is None


@pytest.mark.parametrize(
    ("maxsize", "kept"),
    [(0, []), (1, ["c"]), (2, ["b", "c"]), (5, ["a", "b", "c"])],
)
def test_sizes(maxsize: int, kept: list[str]) -> None:
    cache = filled(maxsize, "a", "b", "c")

    assert cache.keys() == kept
    assert cache.maxsize == maxsize


def test_size_zero_evicts_every_entry_at_once() -> None:
    cache: LRUCache[str, int] = LRUCache(0)

    assert cache.put("a", 1) == [("a", 1)]
    assert cache.get("a") is None and len(cache) == 0


@pytest.mark.parametrize("maxsize", [-1, 1.5, "8", True, None])
def test_a_bad_size_is_refused(maxsize: object) -> None:
    with pytest.raises(ValueError, match=r"maxsize must be a whole number >= 0 \(0 turns the cache off\), got"):
        LRUCache(maxsize)  # type: ignore[arg-type]


@pytest.fixture
def frequent_switches() -> Iterator[None]:
    """Threads switch every microsecond instead of every 5 ms, so an unlocked read-modify-write shows up."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


@pytest.mark.usefixtures("frequent_switches")
def test_threads_share_one_cache_without_losing_its_bounds() -> None:
    cache: LRUCache[int, int] = LRUCache(64)
    evicted: list[int] = []
    popped: list[int] = []
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            start.wait()
            for number in range(2_000):
                key = worker * 10_000 + number
                evicted.extend(old for old, _ in cache.put(key, key))
                found = cache.get(key - 1)
                assert found is None or found == key - 1
                if number % 7 == 0 and cache.pop(key) is not None:
                    popped.append(key)
        except BaseException as error:  # an assertion in a thread would otherwise vanish
            errors.append(error)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(cache) == 64
    gone = [*evicted, *popped, *cache.keys()]
    assert sorted(gone) == sorted(worker * 10_000 + number for worker in range(8) for number in range(2_000))


def test_the_docstring_example_runs() -> None:
    result = doctest.testmod(lru, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
