"""The API served by uvicorn on a loopback port, in a thread of the test process.

Apart from ``tests/conftest.py`` so that the vision tests (``tests_vision/``, another environment, without the
strategy pipeline the main conftest imports) use the same server.
"""

from __future__ import annotations

import threading
import time

import uvicorn

from trainops.api import create_app
from trainops.service.operations import OperationsService
from trainops.settings import Settings


class LiveServer:
    """The API on ``settings`` (and on an already open ``service``, when given), until the block ends."""

    def __init__(self, settings: Settings, service: OperationsService | None = None) -> None:
        app = create_app(settings, service=service)
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
