"""Latency statistics and the plain-text tables the benchmarks print."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass


def machine() -> str:
    """Cores and the 1-minute load average: figures taken while other work loads the machine are not comparable."""
    load = os.getloadavg()[0]
    return f"{os.cpu_count()} cores, load average {load:.2f} before the run"


def percentile(values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile (no interpolation: p99 of 100 samples is the 99th smallest)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class LatencySummary:
    """Request latencies in milliseconds."""

    count: int
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> LatencySummary:
        ms = [s * 1000.0 for s in seconds]
        return cls(
            count=len(ms),
            p50=percentile(ms, 50),
            p90=percentile(ms, 90),
            p99=percentile(ms, 99),
            max=max(ms) if ms else math.nan,
        )


def verdict(measured: float, goal: float, *, higher_is_better: bool) -> str:
    """``met``/``MISSED`` and how far from the goal, e.g. ``met (1.84x goal)``; ratio > 1 is always better."""
    if math.isnan(measured) or measured <= 0:
        return "MISSED (no measurement)"
    ratio = measured / goal if higher_is_better else goal / measured
    return f"{'met' if ratio >= 1.0 else 'MISSED'} ({ratio:.2f}x goal)"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A left-aligned first column and right-aligned others, columns as wide as their widest cell."""
    cells = [[str(h) for h in headers], *[[_cell(value) for value in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [row[0].ljust(widths[0])] + [
            value.rjust(width) for value, width in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
