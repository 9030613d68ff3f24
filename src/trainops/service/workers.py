"""Which process runs an operation, and whether that process is still alive.

Operations that trainops runs itself (``executor=local``) record their worker as ``host:pid``. When a process
starts it fails the local operations whose worker process is gone, on this host: a server restart must not
leave them "running" forever, and must not touch runs that another live process (``trainops train`` in a
terminal, a second server) is still reporting.
"""

from __future__ import annotations

import os
import socket


def this_worker() -> str:
    """``host:pid`` of the current process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_is_gone(worker: str | None) -> bool:
    """Whether ``worker`` (``host:pid``) is a process of this host that no longer runs.

    A worker on another host cannot be checked from here and counts as alive; an operation with no worker at
    all (recorded before workers were) counts as gone.
    """
    if not worker:
        return True
    host, _, pid_text = worker.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    except OverflowError:
        return True
    return False
