"""The lock over which names point at which model version folders.

A save checks a version's files and then names them; a delete drops a name and then removes the files no name uses;
a purge of a run removes its version folder when no name uses it. Each of the three holds this lock from its check
to its change, so none can act on what another is changing: without it a save could name a folder that a purge,
having found no name on it, was removing (both answered success, and the name pointed at nothing).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; the lock is then a no-op (see locked)
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".names.lock"


def names_locked(models_dir: Path) -> contextlib.AbstractContextManager[None]:
    """The lock of ``models_dir``'s names, for a block; none while there is no models directory, hence no files to
    race over (nothing is written for a refused save)."""
    if not models_dir.is_dir():
        return contextlib.nullcontext()
    return locked(models_dir / LOCK_FILE)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created if missing) for the block, between threads and processes alike, where
    the platform has ``fcntl``; elsewhere the block runs unlocked (a rare twin version is the worst case)."""
    with path.open("a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
