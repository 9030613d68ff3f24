"""``compare_runs``: which run is better and why, from histories alone (no server)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from trainops.core.analysis import analyze
from trainops.core.diagnosis import Action, TrainingMetrics
from trainops.core.epoch import EpochRecord
from trainops.core.operation import Operation, OperationMetadata, OperationStatus
from trainops.core.policy import MonitorPolicy
from trainops.errors import InvalidInputError
from trainops.mcp.compare import compare_runs, summarize_run

NOW = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
OVERFITTING_VAL = [1.0, 0.8, 0.6, 0.5, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75]


def run(
    operation_id: str,
    val_loss: list[float] | None = None,
    *,
    status: OperationStatus = OperationStatus.COMPLETED,
    first_epoch: int = 0,
    policy: MonitorPolicy | None = None,
    **other: list[float],
) -> tuple[Operation, TrainingMetrics]:
    """An operation and its diagnosed history; ``train_loss`` falls steadily unless given."""
    length = len(val_loss) if val_loss is not None else len(next(iter(other.values())))
    columns: dict[str, list[float]] = {"train_loss": [1.0 - 0.05 * i for i in range(length)], **other}
    if val_loss is not None:
        columns["val_loss"] = val_loss
    history = [
        EpochRecord.model_validate({"epoch": first_epoch + i, **{name: values[i] for name, values in columns.items()}})
        for i in range(length)
    ]
    operation = Operation(
        operation_id=operation_id,
        operation_type="training",
        status=status,
        created_at=NOW,
        updated_at=NOW,
        metadata=OperationMetadata(strategy="mean_reversion", symbol="EURUSD", timeframe="1h"),
        total_epochs=100,
    )
    diagnosis = analyze(history, policy)
    return operation, TrainingMetrics(**dict(diagnosis), epochs=history, total_epochs_completed=length)


@pytest.mark.parametrize(
    ("runs", "min_delta", "ranking", "reason_parts"),
    [
        pytest.param(
            [run("a", [0.9, 0.7, 0.6]), run("b", [0.9, 0.5, 0.55]), run("c", [0.8, 0.65, 0.62])],
            0.0,
            ["b", "a", "c"],
            ["b is better: best val_loss 0.5 at epoch 1 vs 0.6 at epoch 2 for a", "16.7% lower"],
            id="lowest-best-loss-wins",
        ),
        pytest.param(
            [run("a", [0.9, 0.6, 0.6]), run("b", [0.9, 0.7, 0.6000001])],
            0.001,
            ["a", "b"],
            ["tie on val_loss", "fewer epochs (2 vs 3)"],
            id="tie-goes-to-the-faster-run",
        ),
        pytest.param(
            [run("sick", [1.0, 0.8, 0.6, math.nan]), run("well", [1.0, 0.8, 0.6, 0.61])],
            0.001,
            ["well", "sick"],
            ["tie on val_loss", "because sick is diverging"],
            id="tie-goes-to-the-healthy-run",
        ),
        pytest.param(
            [run("silent", None, val_accuracy=[0.5, 0.6]), run("talks", [0.9, 0.8])],
            0.0,
            ["talks", "silent"],
            ["talks is the only run with val_loss", "No best value for silent"],
            id="runs-without-the-metric-go-last",
        ),
        pytest.param(
            [run("a", OVERFITTING_VAL), run("b", [0.9, 0.8, 0.7], status=OperationStatus.RUNNING)],
            0.0,
            ["a", "b"],
            ["a is overfitting after its best epoch: use the weights of epoch 4", "Still running: b"],
            id="caveats-overfitting-and-still-running",
        ),
    ],
)
def test_ranks_runs_and_says_why(
    runs: list[tuple[Operation, TrainingMetrics]], min_delta: float, ranking: list[str], reason_parts: list[str]
) -> None:
    comparison = compare_runs(runs, min_delta=min_delta)
    assert comparison.ranking == ranking
    assert comparison.best_run == ranking[0]
    assert [summary.operation_id for summary in comparison.runs] == [operation.operation_id for operation, _ in runs]
    for part in reason_parts:
        assert part in comparison.reason


def test_max_mode_prefers_the_higher_value() -> None:
    policy = MonitorPolicy(monitor="val_accuracy")
    comparison = compare_runs(
        [
            run("low", val_accuracy=[0.5, 0.6, 0.62], policy=policy),
            run("high", val_accuracy=[0.5, 0.7, 0.68], policy=policy),
        ]
    )
    assert (comparison.monitor, comparison.mode) == ("val_accuracy", "max")
    assert comparison.ranking == ["high", "low"]
    assert "high is better: best val_accuracy 0.7 at epoch 1 vs 0.62 at epoch 2 for low" in comparison.reason
    assert "higher is better" in comparison.reason


def test_no_run_with_the_metric_has_no_best_run() -> None:
    comparison = compare_runs([run("a", None, val_accuracy=[0.5]), run("b", None, val_accuracy=[0.6])])
    assert comparison.best_run is None
    assert comparison.reason.startswith("None of the runs reported val_loss yet")


def test_summary_holds_best_end_and_verdicts() -> None:
    operation, metrics = run("a", OVERFITTING_VAL, first_epoch=1, f1=[0.1 * i for i in range(11)])
    summary = summarize_run(operation, metrics)
    assert (summary.best_epoch, summary.best_value, summary.epochs_to_best) == (5, 0.45, 5)
    assert (summary.epochs_run, summary.epochs_planned, summary.final_epoch) == (11, 100, 11)
    assert summary.final_metrics == {"train_loss": pytest.approx(0.5), "val_loss": 0.75, "f1": pytest.approx(1.0)}
    assert summary.is_overfitting and not summary.is_diverging
    assert summary.recommendation is Action.STOP_AND_RESTORE_BEST
    assert summary.recommendation_reason.startswith("Stop and use epoch 5")
    assert (summary.strategy, summary.symbol, summary.timeframe) == ("mean_reversion", "EURUSD", "1h")


def test_non_finite_values_survive_json() -> None:
    comparison = compare_runs([run("a", [0.9, math.inf]), run("b", [0.8, 0.7])])
    dumped = comparison.model_dump(mode="json")
    assert dumped["runs"][0]["final_metrics"]["val_loss"] == "Infinity"
    assert dumped["runs"][0]["is_diverging"] is True


@pytest.mark.parametrize(
    ("runs", "message"),
    [
        ([run("a", [0.5])], r"two or more different operation ids, got \['a'\]"),
        ([run("a", [0.5]), run("a", [0.5])], "two or more different operation ids"),
        (
            [run("a", [0.5]), run("b", [0.5], policy=MonitorPolicy(monitor="val_accuracy"))],
            "different monitors",
        ),
    ],
)
def test_refuses_what_cannot_be_compared(runs: list[tuple[Operation, TrainingMetrics]], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        compare_runs(runs)
