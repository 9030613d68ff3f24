"""A training loop that reports to a trainops server and must outlive it: the client side of the kill -9 tests.

It logs ``epochs`` epochs through a :class:`~trainops.client.run.Run` over HTTP, asking ``run.should_stop()``
every epoch, and answers what happened as JSON: the operation, the epochs it logged, whether it was stopped, the
exception the loop met (``null`` is the point), what its end could not deliver. Importable
(:func:`report_epochs`), or a script, for instance as the entrypoint of a Ray job::

    python tests/resilience_loop.py --url http://127.0.0.1:8000 --epochs 300 --pause 0.1

It needs only the light client (``import trainops``): no pipeline, no store.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from typing import Any

from trainops.client.http import HttpTrainOps


@dataclass
class LoopOutcome:
    operation_id: str | None = None
    epochs_logged: int = 0
    stopped_by: str | None = None
    exception: str | None = None
    status: str | None = None
    unsent: str | None = None
    seconds: float = 0.0
    slowest_check: float = 0.0
    """The longest ``run.should_stop()`` took, in seconds: it must never wait on an unreachable server."""


def report_epochs(
    url: str,
    epochs: int = 300,
    *,
    pause: float = 0.1,
    token: str | None = None,
    flush_timeout: float = 60.0,
    on_epoch: Any = None,
) -> LoopOutcome:
    """Run the loop against the server at ``url``; never raises (a failure is in the outcome's ``exception``).

    Args:
        pause: Seconds each epoch "trains".
        flush_timeout: Seconds the run's end waits for the server.
        on_epoch: Called with each epoch number after it was logged (tests use it to know where the loop is).
    """
    outcome = LoopOutcome()
    started = time.monotonic()
    try:
        with HttpTrainOps(url, token=token) as ops:
            run = ops.run(total_epochs=epochs, metadata={"strategy": "resilience-loop"})
            run.flush_timeout = flush_timeout
            outcome.operation_id = run.operation_id
            with run:
                for epoch in range(epochs):
                    time.sleep(pause)
                    loss = 1.0 / math.sqrt(epoch + 1)
                    run.log(epoch, train_loss=loss, val_loss=loss * 1.1, learning_rate=1e-3)
                    outcome.epochs_logged += 1
                    if on_epoch is not None:
                        on_epoch(epoch)
                    asked = time.monotonic()
                    request = run.should_stop()
                    outcome.slowest_check = max(outcome.slowest_check, time.monotonic() - asked)
                    if request is not None:
                        outcome.stopped_by = request.reason
                        break
            outcome.status = run.operation.status.value
            outcome.unsent = run.unsent.message if run.unsent is not None else None
    except BaseException as error:  # the point of the loop: nothing should ever land here
        outcome.exception = "".join(traceback.format_exception(error))
    outcome.seconds = time.monotonic() - started
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the trainops server")
    parser.add_argument("--token", default=None, help="its bearer token, if it needs one")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--pause", type=float, default=0.1, help="seconds each epoch trains")
    parser.add_argument("--flush-timeout", type=float, default=60.0, help="seconds the end waits for the server")
    args = parser.parse_args(argv)
    outcome = report_epochs(args.url, args.epochs, pause=args.pause, token=args.token, flush_timeout=args.flush_timeout)
    print(json.dumps(asdict(outcome)))
    return 0 if outcome.exception is None else 1


if __name__ == "__main__":
    sys.exit(main())
