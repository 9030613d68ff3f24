"""What a training loop pays when its server takes connections and stops answering (stuck, or a proxy holding them).

A loop reports 30 epochs through ``TrainingCallbacks`` (``stop_on_recommendation=True``, so it asks the diagnosis
after every epoch, the costliest way to report) to a real server process (SQLite), with a fixed pace of "training"
per epoch (``--pace``). The client's transport passes requests through until the hang starts (at epoch 5); from then
on every request is taken and never answered within the client's read timeout (``--timeout``), as a stuck server
does. Two ways, each in a fresh client:

* ``server up``: it answers throughout. The baseline.
* ``hung from epoch 5``: it stops answering for good.

Figures: the training thread's time in trainops per epoch (the hooks: ``on_epoch_end`` and ``should_stop``),
median and max, before and during the hang; the total the hang cost the loop; the end's wait (leaving the block);
and what was kept on disk for ``trainops sync``.

Run: ``.venv/bin/python bench/hung_server.py`` (about a minute).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
from _report import machine, table
from _server_process import ServerProcess

from trainops.callbacks import TrainingCallbacks
from trainops.callbacks.training import CONSULT_WAIT
from trainops.client.http import HttpTrainOps

EPOCHS = 30
HANG_AT = 5


class Hanging(httpx.BaseTransport):
    """Passes requests to the server until :attr:`hung` is set; then takes each and answers none in time."""

    def __init__(self, timeout: float) -> None:
        self.inner = httpx.HTTPTransport()
        self.timeout = timeout
        self.hung = threading.Event()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.hung.is_set():
            time.sleep(self.timeout)
            raise httpx.ReadTimeout("timed out", request=request)
        return self.inner.handle_request(request)


def loop(url: str, *, hang: bool, pace: float, timeout: float, end_wait: float) -> dict[str, object]:
    transport = Hanging(timeout)
    ops = HttpTrainOps(url, transport=transport, timeout=timeout)
    tracker = TrainingCallbacks(ops, total_epochs=200, stop_on_recommendation=True, flush_timeout=end_wait)
    costs = []
    with tracker:
        for epoch in range(EPOCHS):
            if hang and epoch == HANG_AT:
                transport.hung.set()
            time.sleep(pace)  # the epoch's own work
            started = time.perf_counter()
            tracker.on_epoch_end(epoch, {"train_loss": 1.0 / (epoch + 1), "val_loss": 1.1 / (epoch + 1)})
            tracker.should_stop()
            costs.append(time.perf_counter() - started)
        leaving = time.perf_counter()
    end = time.perf_counter() - leaving
    ops.close()
    before, during = costs[:HANG_AT], costs[HANG_AT:]
    unsent = tracker.run.unsent if tracker.run is not None else None
    return {
        "before": before,
        "during": during,
        "end": end,
        "kept": f"{unsent.epochs} epochs + end" if unsent is not None else "nothing (all stored)",
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pace", type=float, default=0.2, help="seconds of 'training' per epoch")
    parser.add_argument("--timeout", type=float, default=30.0, help="the client's read timeout (its default: 30)")
    parser.add_argument("--end-wait", type=float, default=30.0, help="flush_timeout: what the end waits (30)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print(machine())
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["TRAINOPS_HOME"] = str(Path(scratch) / "client")  # the spill files
        with ServerProcess(Path(scratch) / "server") as server:
            rows = []
            for name, hang in (("server up", False), (f"hung from epoch {HANG_AT}", True)):
                result = loop(server.url, hang=hang, pace=args.pace, timeout=args.timeout, end_wait=args.end_wait)
                before, during = result["before"], result["during"]
                assert isinstance(before, list) and isinstance(during, list) and isinstance(result["end"], float)
                rows.append(
                    [
                        name,
                        ms(statistics.median(before)),
                        ms(statistics.median(during)),
                        ms(max(during)),
                        f"{sum(during):.2f}",
                        f"{result['end']:.2f}",
                        str(result["kept"]),
                    ]
                )
    print(
        f"\n{EPOCHS} epochs, {args.pace:g} s of training each; stop_on_recommendation=True (the diagnosis read after "
        f"every epoch, waiting at most CONSULT_WAIT = {CONSULT_WAIT:g} s); read timeout {args.timeout:g} s; "
        f"flush_timeout {args.end_wait:g} s\n"
    )
    print(
        table(
            [
                "server",
                "ms/epoch before",
                f"ms/epoch epochs {HANG_AT}-{EPOCHS - 1}",
                "max ms",
                "s in trainops",
                "end wait s",
                "kept for sync",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
