"""A training loop in a process of its own that reports through trainops' callbacks to the server named by
``TRAINOPS_URL``: the reporting side of ``tests/api/test_several_processes.py``.

It says what it did as JSON lines on stdout: ``{"operation_id": ...}`` once the run is registered,
``{"epoch": n}`` once epoch ``n`` is stored (each epoch is stored before its hook returns: no background
flush), and last ``{"epochs": ..., "stopped_by": ..., "requested_by": ...}``. Two paces:

- ``--stepped``: it logs epochs only when told, so that a test knows nothing is written while it looks: each line
  on stdin is a number of epochs to log; the end of stdin ends the training (completed).
- otherwise it trains ``--epochs`` epochs of ``--pause`` seconds each, asks ``should_stop()`` after every one and
  stops when told (the run then ends cancelled)::

    TRAINOPS_URL=http://127.0.0.1:8000 python tests/api/several_processes_run.py --epochs 300 --pause 0.05
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterator
from typing import Any

from trainops.callbacks import TrainingCallbacks


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def stepped() -> Iterator[int]:
    """Epoch numbers, as many at a time as each line of stdin asks for, until stdin ends."""
    epoch = 0
    for line in sys.stdin:
        for _ in range(int(line)):
            yield epoch
            epoch += 1


def timed(epochs: int, pause: float) -> Iterator[int]:
    for epoch in range(epochs):
        time.sleep(pause)  # the epoch "trains"
        yield epoch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stepped", action="store_true", help="log epochs only when stdin asks for them")
    parser.add_argument("--epochs", type=int, default=300, help="the planned epochs")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds each epoch trains (not with --stepped)")
    args = parser.parse_args(argv)

    logged, stop = 0, None
    with TrainingCallbacks(total_epochs=args.epochs, flush_interval=None, name="several processes") as tracker:
        say(operation_id=tracker.operation_id)
        for epoch in stepped() if args.stepped else timed(args.epochs, args.pause):
            tracker.on_epoch_begin(epoch)
            loss = 1.0 / math.sqrt(epoch + 1)
            tracker.on_epoch_end(epoch, {"train_loss": loss, "val_loss": loss * 1.1})
            logged += 1
            say(epoch=epoch)
            stop = tracker.should_stop()
            if stop is not None:
                break
    say(
        epochs=logged,
        stopped_by=stop.reason if stop is not None else None,
        requested_by=stop.requested_by if stop is not None else None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
