"""An agent that watches a training run over MCP and stops it when trainops' diagnosis says so.

It launches ``trainops mcp`` and talks to it with the MCP SDK's own client over stdio, exactly as an AI agent's
host would, then polls ``get_training_metrics`` with ``since_epoch`` so each poll carries only the new epochs:

    Epoch 12: train_loss=0.5234, val_loss=0.5891
    Signal [warning] overfitting: val_loss rose 12.0% over epochs 8-12 while train_loss fell 9.1%

With ``--auto-stop`` it cancels the run with the diagnosis' own reason as soon as the recommendation is to stop
(the run keeps its history and its best weights), and it exits when the run ends: code 0 when it completed or
was cancelled, 1 when it failed, 2 when it could not follow it (an unknown id, trainops unreachable).

    python examples/agents/training_monitor.py op_training_20250610_123456_ab12cd34 --auto-stop
    python examples/agents/training_monitor.py OPERATION_ID --interval 5 --url http://localhost:8000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from mcp import ClientSession, StdioServerParameters, stdio_client

TERMINAL = {"completed", "failed", "cancelled"}
SHOWN_METRICS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")


class ToolFailed(Exception):
    """A tool answered with an error; its message says what went wrong and what to do."""


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a trainops tool and return its JSON answer, or raise :class:`ToolFailed` with the tool's message."""
    result = await session.call_tool(tool, arguments)
    if result.is_error:
        text = " ".join(block.text for block in result.content if block.type == "text")
        raise ToolFailed(text.removeprefix(f"Error executing tool {tool}: "))
    return result.structured_content or {}


def server_parameters(url: str | None) -> StdioServerParameters:
    """``trainops mcp`` in this Python, with this environment (TRAINOPS_HOME, TRAINOPS_URL, ...)."""
    args = ["-m", "trainops.cli", "mcp", *(["--url", url] if url else [])]
    return StdioServerParameters(command=sys.executable, args=args, env=dict(os.environ))


def epoch_line(record: dict[str, Any]) -> str:
    """``Epoch 12: train_loss=0.5234, val_loss=0.5891`` (non-finite values print as NaN / Infinity)."""
    values = [f"{name}={format_value(record[name])}" for name in SHOWN_METRICS if record.get(name) is not None]
    values += [f"{name}={format_value(value)}" for name, value in sorted((record.get("metrics") or {}).items())]
    return f"Epoch {record['epoch']}: {', '.join(values) or 'no metrics'}"


def format_value(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else str(value)


async def monitor(session: ClientSession, operation_id: str, *, auto_stop: bool, interval: float) -> str:
    """Follow the run until it ends; returns its final status."""
    last_epoch = -1  # polls with since_epoch come in order, never thinned: every epoch is printed
    seen_signals: set[str] = set()
    stop_requested = False
    while True:
        # Read the status before the metrics: epochs written before a run ended are then all in the answer.
        status = (await call(session, "get_operation_status", operation_id=operation_id))["operation"]
        while True:
            answer = await call(session, "get_training_metrics", operation_id=operation_id, since_epoch=last_epoch)
            metrics = answer["metrics"]
            for record in metrics["epochs"]:
                print(epoch_line(record), flush=True)
                last_epoch = record["epoch"]
            if not answer["more"]:  # more epochs than one answer holds wait: read on at once
                break
        for signal in metrics["signals"]:
            if signal["rule"] not in seen_signals:
                seen_signals.add(signal["rule"])
                print(f"Signal [{signal['severity']}] {signal['rule']}: {signal['message']}", flush=True)
        if status["status"] in TERMINAL:
            return str(status["status"])
        recommendation = metrics["recommendation"]
        already_asked = stop_requested or status["cancel_request"] is not None
        if auto_stop and recommendation["action"] != "continue" and not already_asked:
            print(f"Stopping {operation_id}: {recommendation['reason']}", flush=True)
            try:
                await call(session, "cancel_operation", operation_id=operation_id, reason=recommendation["reason"])
            except ToolFailed as problem:  # it ended meanwhile: the next poll says how
                print(f"Could not stop it: {problem}", flush=True)
            stop_requested = True
        await asyncio.sleep(interval)


async def main_async(args: argparse.Namespace) -> int:
    async with stdio_client(server_parameters(args.url)) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        try:
            final = await monitor(session, args.operation_id, auto_stop=args.auto_stop, interval=args.interval)
        except ToolFailed as problem:
            print(f"Error: {problem}", file=sys.stderr)
            return 2
        operation = (await call(session, "get_operation_status", operation_id=args.operation_id))["operation"]
    request = operation.get("cancel_request") or {}
    why = f" ({request['reason']}, requested by {request['requested_by']})" if request else ""
    error = f": {operation['error']}" if operation.get("error") else ""
    print(f"Run {args.operation_id} ended {final}{why}{error}", flush=True)
    return 1 if final == "failed" else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("operation_id", help="the run to watch (list_operations / `trainops ops list` shows ids)")
    parser.add_argument("--auto-stop", action="store_true", help="cancel the run when the diagnosis says stop")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between polls (default 2)")
    parser.add_argument("--url", help="a trainops server; by default the local database (or TRAINOPS_URL)")
    args = parser.parse_args()
    if args.interval <= 0:
        parser.error("--interval must be positive")
    try:
        sys.exit(asyncio.run(main_async(args)))
    except KeyboardInterrupt:
        sys.exit(130)  # the run goes on: watching it stopped, not the run


if __name__ == "__main__":
    main()
