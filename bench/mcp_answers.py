"""What an agent's MCP calls cost on the wire: the characters of ``get_training_metrics`` answers as polled.

An MCP tool's answer travels twice in one message: as structured content and as a text copy beside it. The SDK's
own text copy is indented JSON; trainops sends it compact (``trainops.mcp.server._answered``). Polls with
``since_epoch`` leave ``metrics.definitions`` out (they came with the first call) and are never thinned. Each
case is measured through the tools in-process, on a fresh SQLite database:

* ``structured``: the answer's compact JSON;
* ``SDK layout``: that plus the SDK's indented text copy, JSON-escaped (what went on the wire before);
* ``trainops``: that plus the compact copy, escaped (:func:`trainops.mcp.server.wire_chars`, what goes now);
* the poll rows are measured with the answer as a poll gave it before (definitions in) and as it does now.

Run: ``.venv/bin/python bench/mcp_answers.py`` (~10 s).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pydantic_core
from _report import table

import trainops
from trainops.core import EpochRecord
from trainops.mcp.server import TrainOpsTools, _Facade, wire_chars
from trainops.settings import Settings


def sdk_wire(answer: dict[str, Any]) -> int:
    """The characters the SDK's own layout took: the compact answer, and its indented text copy as a JSON string."""
    indented = pydantic_core.to_json(answer, indent=2).decode()
    return len(json.dumps(answer, separators=(",", ":"))) + len(json.dumps(indented))


def seeded(ops: trainops.TrainOps, epochs: int, custom: int) -> str:
    operation = ops.create_operation(total_epochs=epochs * 2, name=f"{epochs} epochs, {custom} custom metrics")
    metrics = {f"custom_metric_{index:02d}": 0.5 for index in range(custom)}
    records = [
        EpochRecord(epoch=e, train_loss=1 / (e + 1), val_loss=1 / (e + 1) + 0.1, metrics=metrics) for e in range(epochs)
    ]
    for start in range(0, epochs, 500):
        ops.add_epochs(operation.operation_id, records[start : start + 500])
    return operation.operation_id


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home))
        with trainops.connect(settings=settings) as ops:
            tools = TrainOpsTools(_Facade(lambda: ops), read_only=True)
            rows = []
            for epochs, custom in ((3000, 2), (400, 60)):
                operation_id = seeded(ops, epochs, custom)
                first = tools.get_training_metrics(operation_id)
                poll = tools.get_training_metrics(operation_id, since_epoch=epochs - 1)  # nothing new
                before = json.loads(json.dumps(poll))
                before["metrics"]["definitions"] = first["metrics"]["definitions"]
                before.pop("more")
                label = f"{epochs:,} epochs, {custom} custom"
                for case, answer, old in (
                    ("first call (200 points)", first, first),
                    ("poll, nothing new", poll, before),
                ):
                    structured = len(json.dumps(answer, separators=(",", ":")))
                    rows.append([f"{label}: {case}", structured, sdk_wire(old), wire_chars(answer)])
    print(table(["case", "structured", "SDK layout", "trainops"], rows))


if __name__ == "__main__":
    main()
