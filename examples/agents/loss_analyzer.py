"""An agent that reads a run's loss history over MCP and writes a short report on whether it is learning.

It launches ``trainops mcp`` and uses the MCP SDK's own client over stdio, as an AI agent's host would, then asks
``get_training_metrics`` for the whole history and its diagnosis. The report gives the recent trend and its
percent change, the best epoch and value, the epochs since improvement, the overfitting / plateau / divergence
verdicts with the evidence behind each, and a recommendation: continue training, stop now, or stop and use
epoch N.

    python examples/agents/loss_analyzer.py op_training_20250610_123456_ab12cd34
    python examples/agents/loss_analyzer.py OPERATION_ID --monitor val_accuracy --patience 5

A run with no epochs yet, or too few to judge a trend, gets a report that says so; an unknown id gets the tool's
message (how to list operations) and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from mcp import ClientSession, StdioServerParameters, stdio_client

DIVERGENCE_RULES = frozenset({"non_finite", "divergence_threshold", "loss_blowup", "train_loss_rising"})
VERDICTS: tuple[tuple[str, str, frozenset[str]], ...] = (
    # (label, the diagnosis flag, the rules whose signals are its evidence)
    ("Overfitting", "is_overfitting", frozenset({"overfitting"})),
    ("Plateau", "is_plateaued", frozenset({"plateau", "no_improvement"})),
    ("Divergence", "is_diverging", DIVERGENCE_RULES),
)


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


def number(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if isinstance(value, int | float) else str(value)


def evidence_text(values: dict[str, Any]) -> str:
    return ", ".join(f"{name}={number(value)}" for name, value in values.items() if value is not None)


def header(operation: dict[str, Any]) -> str:
    meta = operation["metadata"]
    subject = " on ".join(
        part
        for part in (meta.get("strategy"), " ".join(filter(None, (meta.get("symbol"), meta.get("timeframe")))))
        if part
    )
    about = f"; {subject}" if subject else ""
    return f"Loss analysis of {operation['operation_id']} ({operation['operation_type']}, {operation['status']}{about})"


def trend_line(metrics: dict[str, Any]) -> str:
    trend = metrics["trend"]
    if trend["direction"] == "unknown":
        finite = sum(1 for record in metrics["epochs"] if isinstance(record.get(metrics["monitor"]), int | float))
        return (
            f"Trend: too few epochs to judge ({finite} with {metrics['monitor']}; the trend needs at least 3): "
            "check again after a few more epochs"
        )
    change = trend["percent_change"]
    change_text = f"{change:+.1f}%" if change is not None else "no measurable change"
    slope = f", {number(trend['slope'])} per epoch" if trend.get("slope") is not None else ""
    return (
        f"Trend: {trend['metric']} {trend['direction']}, {change_text} over epochs "
        f"{trend['from_epoch']}-{trend['to_epoch']}{slope}"
    )


def best_line(metrics: dict[str, Any]) -> str:
    if metrics["best_epoch"] is None:
        return f"Best: no finite {metrics['monitor']} yet"
    return (
        f"Best: {metrics['monitor']} {number(metrics['best_value'])} at epoch {metrics['best_epoch']}; "
        f"{metrics['epochs_since_improvement']} epoch(s) since improvement"
    )


def verdict_lines(metrics: dict[str, Any]) -> list[str]:
    lines = []
    explained: set[str] = set()
    for label, flag, rules in VERDICTS:
        signals = [signal for signal in metrics["signals"] if signal["rule"] in rules]
        verdict = "yes" if metrics[flag] or signals else "no"
        if flag == "is_overfitting" and metrics.get("overfitting_since_epoch") is not None:
            verdict += f", since epoch {metrics['overfitting_since_epoch']}"
        lines.append(f"{label}: {verdict}")
        for signal in signals:
            explained.add(signal["rule"])
            lines.extend(signal_lines(signal))
    others = [signal for signal in metrics["signals"] if signal["rule"] not in explained]
    if others:
        lines.append("Other signals:")
        for signal in others:
            lines.extend(signal_lines(signal))
    return lines


def signal_lines(signal: dict[str, Any]) -> list[str]:
    lines = [f"  [{signal['severity']}] {signal['rule']}: {signal['message']}"]
    if signal["evidence"]:
        lines.append(f"    evidence: {evidence_text(signal['evidence'])}")
    if signal["parameters"]:
        lines.append(f"    parameters: {evidence_text(signal['parameters'])}")
    return lines


def projection_line(projection: dict[str, Any]) -> str:
    """What continuing is projected to gain: the number the recommendation weighs against what is needed."""
    evidence, parameters = projection["evidence"], projection["parameters"]
    worth = "worth continuing" if evidence["worth_continuing"] else "not worth continuing"
    return (
        f"Projection: {evidence['projected_improvement_pct']:+.1f}% on the best over {evidence['epochs_left']} more "
        f"epoch(s) ({worth}: needs more than {parameters['min_improvement_pct']}%)"
    )


def recommendation_line(recommendation: dict[str, Any]) -> str:
    action = recommendation["action"]
    advice = {
        "continue": "continue training",
        "stop": "stop now",
        "stop_and_restore_best": f"stop and use epoch {recommendation.get('restore_epoch')}",
    }.get(action, action)
    reason = recommendation["reason"]
    if reason.startswith(("Stop", "Continue:")):  # "Stop and use epoch 5: why" -> why (the advice says the rest)
        reason = reason.split(": ", 1)[-1]
    return f"Recommendation: {advice}\n  why: {reason}"


def report(operation: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
    """The report's lines, from the operation and its metrics block."""
    lines = [header(operation)]
    epochs = metrics["epochs"]
    if not epochs:
        progress = operation["progress"]
        where = f"{progress['percentage']:.0f}%" + (f", {progress['message']}" if progress.get("message") else "")
        lines.append(
            f"No metrics yet: no epoch recorded ({operation['status']}, {where}). "
            "Check again once the first epochs are in."
        )
        return lines
    planned = metrics["total_epochs_planned"]
    mode = "lower" if metrics["mode"] == "min" else "higher"
    lines.append(
        f"Epochs: {metrics['total_epochs_completed']} recorded"
        + (f" of {planned} planned" if planned else "")
        + f"; judged on {metrics['monitor']} ({mode} is better)"
    )
    lines += [trend_line(metrics), best_line(metrics), *verdict_lines(metrics)]
    if metrics.get("projection"):
        lines.append(projection_line(metrics["projection"]))
    lines.append(recommendation_line(metrics["recommendation"]))
    if operation["status"] in ("completed", "failed", "cancelled"):
        lines.append(f"  note: the run has ended ({operation['status']}); the advice is a verdict on how it trained")
    return lines


async def main_async(args: argparse.Namespace) -> int:
    given = (("monitor", args.monitor), ("patience", args.patience), ("stop_rule", args.stop_rule))
    policy = {name: value for name, value in given if value}
    async with stdio_client(server_parameters(args.url)) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        try:
            operation = (await call(session, "get_operation_status", operation_id=args.operation_id))["operation"]
            answer = await call(session, "get_training_metrics", operation_id=args.operation_id, **policy)
        except ToolFailed as problem:
            print(f"Error: {problem}", file=sys.stderr)
            return 2
    print("\n".join(report(operation, answer["metrics"])))
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("operation_id", help="the run to analyze (list_operations / `trainops ops list` shows ids)")
    parser.add_argument("--monitor", help="metric to judge by (default val_loss)")
    parser.add_argument("--patience", type=int, help="epochs without improvement before a run counts as stalled")
    parser.add_argument(
        "--stop-rule",
        choices=("projection", "patience"),
        help="projection (default): weigh what continuing would gain; patience: Keras-style early stopping",
    )
    parser.add_argument("--url", help="a trainops server; by default the local database (or TRAINOPS_URL)")
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
