"""``trainops serve`` as a process of its own that a test can kill with SIGKILL and start again on the same port
and database: the server side of the outage tests (the client side is ``tests/resilience_loop.py``).

One implementation serves the tests and the outage benchmarks: ``bench/_server_process.py`` (pytest-free, so
``bench/reporting.py`` runs without it); here it is bound to the test's database.
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from _server_process import ServerProcess as _ServerProcess  # noqa: E402


class ServerProcess(_ServerProcess):
    """``python -m trainops.cli serve`` on one loopback port, on ``database_url``, in its own process group.

    Use it as a context manager: it is stopped (the whole group) at the end whatever happened. A server that
    exits or does not answer its health check raises ``RuntimeError`` ending with its log.
    """

    def __init__(self, database_url: str, home: Path, **env: str) -> None:
        super().__init__(home, {"TRAINOPS_DATABASE_URL": database_url, **env})
