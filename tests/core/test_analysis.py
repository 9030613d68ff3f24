"""analyze(): from a per-epoch history to a diagnosis and a recommendation.

Table-driven in the style of Lightning's ``test_early_stopping_patience``: a series of losses and a policy in,
the best epoch, the verdicts and the action out.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field

import pytest

from trainops.core import Action, EpochRecord, MonitorPolicy, TrendDirection, analyze

NAN = math.nan
INF = math.inf


def history(
    val: list[float] | None = None,
    train: list[float] | None = None,
    *,
    epochs: list[int] | None = None,
    monitor: str = "val_loss",
) -> list[EpochRecord]:
    """Records with ``monitor`` (a standard field or a custom metric) and ``train_loss`` per epoch."""
    length = len(val) if val is not None else len(train or [])
    numbers = epochs if epochs is not None else list(range(length))
    records = []
    for i, epoch in enumerate(numbers):
        fields: dict[str, object] = {"epoch": epoch}
        if val is not None:
            fields[monitor] = val[i]
        if train is not None:
            fields["train_loss"] = train[i]
        records.append(EpochRecord.model_validate(fields))
    return records


def contract_history() -> list[EpochRecord]:
    """Epochs 0..49: train_loss falls the whole time; val_loss falls to its minimum at epoch 30, then rises."""
    records = []
    for epoch in range(50):
        train = round(1.0 - 0.015 * epoch, 6)
        val = round(1.0 - 0.02 * epoch if epoch <= 30 else 0.4 + 0.01 * (epoch - 30), 6)
        records.append(EpochRecord(epoch=epoch, train_loss=train, val_loss=val))
    return records


def test_contract_overfitting_scenario() -> None:
    diagnosis = analyze(contract_history(), MonitorPolicy())

    assert diagnosis.monitor == "val_loss"
    assert diagnosis.mode == "min"
    assert diagnosis.best_epoch == 30
    assert diagnosis.best_value == pytest.approx(0.4)
    assert diagnosis.best_val_loss == pytest.approx(0.4)
    assert diagnosis.epochs_since_improvement == 19
    assert diagnosis.is_overfitting is True
    assert diagnosis.overfitting_since_epoch == 31
    assert diagnosis.is_plateaued is False
    assert diagnosis.is_diverging is False
    assert diagnosis.trend.direction is TrendDirection.WORSENING
    assert diagnosis.epochs_analyzed == 50

    recommendation = diagnosis.recommendation
    assert recommendation.action is Action.STOP_AND_RESTORE_BEST
    assert recommendation.restore_epoch == 30
    # The projection decides; the overfitting it saw is named as evidence too.
    assert recommendation.reason.startswith(
        "Stop and use epoch 30: continuing 50 more epoch(s) is not projected to beat the best val_loss "
        "(0.59 now against best 0.4 at epoch 30)"
    ), recommendation.reason
    match = re.search(
        r"; val_loss rose (?P<val>\d+\.\d)% over epochs 31-49 while train_loss fell (?P<train>\d+\.\d)%$",
        recommendation.reason,
    )
    assert match, recommendation.reason
    # val_loss 0.4 -> 0.59 is +47.5%; train_loss 0.55 -> 0.265 is -51.8%
    assert float(match["val"]) == pytest.approx(47.5, abs=0.05)
    assert float(match["train"]) == pytest.approx(51.8, abs=0.05)


def test_contract_overfitting_evidence() -> None:
    diagnosis = analyze(contract_history())

    signals = {signal.rule: signal for signal in diagnosis.signals}
    assert set(signals) == {"overfitting", "no_improvement", "projected_improvement"}
    overfit = signals["overfitting"]
    assert overfit.severity == "warning"
    assert overfit.parameters["flat_tolerance_pct"] == 1.0
    assert overfit.evidence["since_epoch"] == 31
    assert overfit.evidence["best_val_epoch"] == 30
    assert overfit.evidence["best_val_loss"] == pytest.approx(0.4)
    assert overfit.evidence["latest_val_loss"] == pytest.approx(0.59)
    assert overfit.evidence["val_change_pct"] == pytest.approx(47.5)
    assert overfit.evidence["train_change_pct"] == pytest.approx(-51.818, abs=1e-3)
    assert overfit.evidence["val_slope"] == pytest.approx(0.01)
    assert overfit.evidence["train_slope"] == pytest.approx(-0.015)
    stall = signals["no_improvement"]
    assert stall.parameters == {"patience": 10, "min_delta": 0.0}
    assert stall.evidence["best_epoch"] == 30
    assert stall.evidence["epochs_since_improvement"] == 19
    assert stall.evidence["trend"] == "worsening"


@dataclass(frozen=True)
class Expect:
    best_epoch: int | None
    since: int
    action: Action
    rules: tuple[str, ...] = ()
    restore: int | None = None
    trend: TrendDirection | None = None
    plateaued: bool = False
    overfitting: bool = False
    diverging: bool = False
    mode: str = "min"
    evidence: dict[str, dict[str, object]] = field(default_factory=dict)


def _down(n: int, start: float = 1.0, step: float = 0.01) -> list[float]:
    return [round(start - step * i, 6) for i in range(n)]


CASES = [
    pytest.param(
        history([1 / (e + 1) for e in range(20)], [1 / (e + 1) for e in range(20)]),
        MonitorPolicy(),
        Expect(best_epoch=19, since=0, action=Action.CONTINUE, trend=TrendDirection.IMPROVING),
        id="steadily-improving",
    ),
    pytest.param(
        history([1.0, 0.9, 0.8, 0.7, 0.6] + [0.5] * 15, _down(20)),
        MonitorPolicy(patience=5),
        Expect(
            best_epoch=5,
            since=14,
            action=Action.STOP_AND_RESTORE_BEST,
            rules=("plateau",),
            restore=5,
            trend=TrendDirection.FLAT,
            plateaued=True,
            evidence={"plateau": {"best_epoch": 5, "best_value": 0.5, "epochs_since_improvement": 14}},
        ),
        id="plateau-after-5-epochs",
    ),
    pytest.param(
        history([1.0, 0.9, 0.8, 0.7, 0.6] + [0.5] * 4, _down(9)),
        MonitorPolicy(patience=5),
        Expect(best_epoch=5, since=3, action=Action.CONTINUE, trend=TrendDirection.IMPROVING),
        id="flat-but-within-patience",
    ),
    pytest.param(
        history(_down(20, step=0.0005)),
        MonitorPolicy(patience=5, min_delta=0.05),
        Expect(
            best_epoch=0,
            since=19,
            action=Action.STOP_AND_RESTORE_BEST,
            rules=("plateau",),
            restore=0,
            trend=TrendDirection.FLAT,
            plateaued=True,
        ),
        id="min-delta-hides-tiny-improvements",
    ),
    pytest.param(
        history(_down(20, step=0.0005)),
        MonitorPolicy(patience=5),
        Expect(best_epoch=19, since=0, action=Action.CONTINUE, trend=TrendDirection.FLAT),
        id="same-series-without-min-delta",
    ),
    pytest.param(
        history([0.5 + 0.02 * e for e in range(15)], _down(15), monitor="val_accuracy"),
        MonitorPolicy(monitor="val_accuracy"),
        Expect(best_epoch=14, since=0, action=Action.CONTINUE, trend=TrendDirection.IMPROVING, mode="max"),
        id="auto-max-on-val-accuracy",
    ),
    pytest.param(
        history([0.5, 0.6, 0.7, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5], monitor="val_accuracy"),
        MonitorPolicy(monitor="val_accuracy", patience=5, window=5),
        Expect(
            best_epoch=3,
            since=6,
            action=Action.STOP_AND_RESTORE_BEST,
            rules=("no_improvement",),
            restore=3,
            trend=TrendDirection.WORSENING,
            mode="max",
            evidence={"no_improvement": {"best_epoch": 3, "best_value": 0.8, "trend": "worsening"}},
        ),
        id="val-accuracy-falling-after-peak",
    ),
    pytest.param(
        # one NaN the run has recovered from (an overflow under mixed precision): evidence, not a divergence
        history([1.0, 0.8, 0.6, NAN, 0.5], [1.0, 0.8, 0.6, 0.5, 0.4]),
        MonitorPolicy(),
        Expect(
            best_epoch=4,
            since=0,
            action=Action.CONTINUE,
            rules=("non_finite_recovered",),
            evidence={
                "non_finite_recovered": {
                    "first_epoch": 3,
                    "metrics": "val_loss",
                    "non_finite_epochs": 1,
                    "last_epoch": 3,
                }
            },
        ),
        id="nan-val-loss-mid-run-recovered",
    ),
    pytest.param(
        history([1.0, NAN, 0.6, NAN, 0.5], [1.0, 0.8, 0.6, 0.5, 0.4]),
        MonitorPolicy(),
        Expect(
            best_epoch=4,
            since=0,
            action=Action.STOP,
            rules=("non_finite",),
            diverging=True,
            evidence={
                "non_finite": {"first_epoch": 1, "since_epoch": 1, "metrics": "val_loss", "non_finite_epochs": 2}
            },
        ),
        id="nan-val-loss-twice-within-the-window",
    ),
    pytest.param(
        history([1.0, 0.8, 0.6, 0.5, NAN], [1.0, 0.9, 0.8, 0.7, 0.6]),
        MonitorPolicy(),
        Expect(
            best_epoch=3,
            since=1,
            action=Action.STOP_AND_RESTORE_BEST,
            rules=("non_finite",),
            restore=3,
            diverging=True,
            evidence={"non_finite": {"first_epoch": 4, "metrics": "val_loss"}},
        ),
        id="nan-val-loss-at-the-end",
    ),
    pytest.param(
        history([1.0, 0.8, 0.6, 0.55, 0.5], [1.0, 0.8, 0.7, 0.5, INF]),
        MonitorPolicy(),
        Expect(
            best_epoch=4,
            since=0,
            action=Action.STOP,
            rules=("non_finite",),
            diverging=True,
            evidence={"non_finite": {"first_epoch": 4, "metrics": "train_loss"}},
        ),
        id="infinite-train-loss",
    ),
    pytest.param(
        history([1.0, 0.8, 0.6, 0.5, -INF]),
        MonitorPolicy(),
        Expect(
            best_epoch=3,
            since=1,
            action=Action.STOP_AND_RESTORE_BEST,
            rules=("non_finite",),
            restore=3,
            diverging=True,
            evidence={"non_finite": {"first_epoch": 4, "metrics": "val_loss"}},
        ),
        id="minus-infinity-val-loss",
    ),
    pytest.param(
        history([1.0, 0.8, NAN, 0.5, 0.4]),
        MonitorPolicy(check_finite=False),
        Expect(best_epoch=4, since=0, action=Action.CONTINUE, trend=TrendDirection.IMPROVING),
        id="check-finite-off",
    ),
    pytest.param(
        history([1.0, 0.9, 0.8, 1.8], [1.0, 0.8, 0.6, 0.5]),
        MonitorPolicy(divergence_threshold=1.5),
        Expect(
            best_epoch=2,
            since=1,
            action=Action.STOP_AND_RESTORE_BEST,
            rules=("divergence_threshold",),
            restore=2,
            diverging=True,
            evidence={"divergence_threshold": {"epoch": 3, "value": 1.8}},
        ),
        id="divergence-threshold",
    ),
    pytest.param(
        history([0.5, 0.6, 0.7, 0.05], monitor="val_accuracy"),
        MonitorPolicy(monitor="val_accuracy", divergence_threshold=0.1),
        Expect(
            best_epoch=2,
            since=1,
            action=Action.STOP_AND_RESTORE_BEST,
            rules=("divergence_threshold",),
            restore=2,
            diverging=True,
            mode="max",
            evidence={"divergence_threshold": {"epoch": 3, "value": 0.05}},
        ),
        id="divergence-threshold-max-mode",
    ),
    pytest.param(
        # three epochs past divergence_factor times the best: confirm_epochs (3) of them
        history([1.0, 0.8, 0.6, 0.5, 1.8, 2.0, 2.2], [1.0, 0.8, 0.6, 0.5, 0.45, 0.44, 0.43]),
        MonitorPolicy(),
        Expect(
            best_epoch=3,
            since=3,
            action=Action.STOP_AND_RESTORE_BEST,
            rules=("loss_blowup", "overfitting"),  # three epochs of rise past the best, the training loss falling
            restore=3,
            diverging=True,
            overfitting=True,
            evidence={
                "loss_blowup": {
                    "epoch": 6,
                    "value": 2.2,
                    "best_epoch": 3,
                    "best_value": 0.5,
                    "ratio": 4.4,
                    "since_epoch": 4,
                }
            },
        ),
        id="loss-blowup",
    ),
    pytest.param(
        history([1.0, 0.8, 0.6, 0.5, 0.48, 2.0], [1.0, 0.8, 0.6, 0.5, 0.45, 0.44]),
        MonitorPolicy(),
        Expect(best_epoch=4, since=1, action=Action.CONTINUE, trend=TrendDirection.FLAT),
        id="one-epoch-past-the-factor-is-no-blowup-yet",
    ),
    pytest.param(
        history([1.0, 0.8, 0.6, 0.5, 1.5], [1.0, 0.8, 0.6, 0.5, 0.45]),
        MonitorPolicy(),
        Expect(best_epoch=3, since=1, action=Action.CONTINUE, trend=TrendDirection.FLAT),
        id="rise-to-exactly-3x-is-no-blowup",
    ),
    pytest.param(
        history(_down(12), [0.5 + 0.05 * e for e in range(12)]),
        MonitorPolicy(),
        Expect(
            best_epoch=11,
            since=0,
            action=Action.STOP,
            rules=("train_loss_rising",),
            trend=TrendDirection.IMPROVING,
            diverging=True,
            evidence={"train_loss_rising": {"from_epoch": 2, "to_epoch": 11, "percent_change": 75.0}},
        ),
        id="train-loss-rising",
    ),
    pytest.param(
        history([1.0, 0.9], [1.0, 0.9]),
        MonitorPolicy(),
        Expect(best_epoch=1, since=0, action=Action.CONTINUE, trend=TrendDirection.UNKNOWN),
        id="too-few-epochs",
    ),
    pytest.param(
        [],
        MonitorPolicy(),
        Expect(best_epoch=None, since=0, action=Action.CONTINUE, trend=TrendDirection.UNKNOWN),
        id="empty-history",
    ),
    pytest.param(
        history(None, _down(5)),
        MonitorPolicy(),
        Expect(best_epoch=None, since=0, action=Action.CONTINUE, trend=TrendDirection.UNKNOWN),
        id="monitor-never-reported",
    ),
    pytest.param(
        history([0.1 + 0.05 * e for e in range(10)], monitor="f1"),
        MonitorPolicy(monitor="f1"),
        Expect(best_epoch=9, since=0, action=Action.CONTINUE, trend=TrendDirection.IMPROVING, mode="max"),
        id="custom-metric-f1",
    ),
    pytest.param(
        history([1.0, 0.8, 0.6, 0.62, 0.61, 0.63, 0.62, 0.61], monitor="my_loss"),
        MonitorPolicy(monitor="my_loss", patience=5, window=5),
        Expect(
            best_epoch=2,
            since=5,
            action=Action.STOP_AND_RESTORE_BEST,
            rules=("plateau",),
            restore=2,
            trend=TrendDirection.FLAT,
            plateaued=True,
        ),
        id="custom-loss-plateau",
    ),
    pytest.param(
        history([1.0, 0.8, 0.6, 0.6, 0.6, 0.6], _down(6, step=0.1), epochs=[10, 12, 14, 20, 22, 30]),
        MonitorPolicy(patience=3, window=4),
        Expect(
            best_epoch=14,
            since=3,
            action=Action.STOP_AND_RESTORE_BEST,
            rules=("plateau",),
            restore=14,
            trend=TrendDirection.FLAT,
            plateaued=True,
            evidence={"plateau": {"best_epoch": 14, "epochs_since_improvement": 3}},
        ),
        id="plateau-epochs-from-10-with-gaps",
    ),
    pytest.param(
        history(
            [1.0, 0.8, 0.6, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75],
            _down(9, step=0.1),
            epochs=[100, 102, 104, 106, 110, 112, 120, 121, 125],
        ),
        MonitorPolicy(),
        Expect(
            best_epoch=106,
            since=5,
            action=Action.STOP_AND_RESTORE_BEST,
            rules=("overfitting",),
            restore=106,
            trend=TrendDirection.FLAT,
            overfitting=True,
            evidence={"overfitting": {"since_epoch": 110, "best_val_epoch": 106}},
        ),
        id="overfitting-with-gaps",
    ),
]


@pytest.mark.parametrize(("records", "policy", "expect"), CASES)
def test_analyze(records: list[EpochRecord], policy: MonitorPolicy, expect: Expect) -> None:
    """The rules one by one, under Keras/Lightning early stopping (``stop_rule="patience"``); the projection,
    which decides by default, has tests of its own below."""
    diagnosis = analyze(records, policy.model_copy(update={"stop_rule": "patience"}))

    assert diagnosis.mode == expect.mode
    assert diagnosis.best_epoch == expect.best_epoch
    assert diagnosis.epochs_since_improvement == expect.since
    assert tuple(signal.rule for signal in diagnosis.signals) == expect.rules
    assert diagnosis.is_plateaued is expect.plateaued
    assert diagnosis.is_overfitting is expect.overfitting
    assert diagnosis.is_diverging is expect.diverging
    if expect.trend is not None:
        assert diagnosis.trend.direction is expect.trend
    assert diagnosis.recommendation.action is expect.action
    assert diagnosis.recommendation.restore_epoch == expect.restore
    assert diagnosis.epochs_analyzed == len(records)
    signals = {signal.rule: signal for signal in diagnosis.signals}
    for rule, evidence in expect.evidence.items():
        for key, value in evidence.items():
            assert signals[rule].evidence[key] == value, (rule, key)


@pytest.mark.parametrize(("records", "policy"), [case.values[:2] for case in CASES], ids=[case.id for case in CASES])
def test_every_signal_carries_parameters_evidence_and_a_message(
    records: list[EpochRecord], policy: MonitorPolicy
) -> None:
    for signal in analyze(records, policy).signals:
        assert signal.parameters, signal.rule
        assert signal.evidence, signal.rule
        assert signal.message, signal.rule
        assert all(isinstance(value, int | float | str | bool) for value in signal.parameters.values())


@pytest.mark.parametrize(
    ("losses", "patience", "expected_stop_epoch", "restore_epoch"),
    [
        pytest.param([6, 5, 5, 5, 5, 5], 3, 4, 1, id="flat-after-one-improvement"),
        pytest.param([6, 5, 4, 4, 3, 3], 1, 3, 2, id="patience-1"),
        pytest.param([6, 5, 6, 5, 5, 5], 3, 4, 1, id="equal-is-not-an-improvement"),
        pytest.param([6, 5, 4, 3, 2, 1], 1, None, None, id="never-stops"),
    ],
)
def test_early_stopping_patience(
    losses: list[float], patience: int, expected_stop_epoch: int | None, restore_epoch: int | None
) -> None:
    """Lightning's table: the first epoch whose history says stop, as EarlyStopping would have stopped."""
    policy = MonitorPolicy(patience=patience, stop_rule="patience")
    stop_epoch = None
    for last in range(len(losses)):
        recommendation = analyze(history(losses[: last + 1]), policy).recommendation
        if recommendation.action is not Action.CONTINUE:
            stop_epoch = last
            assert recommendation.action is Action.STOP_AND_RESTORE_BEST
            assert recommendation.restore_epoch == restore_epoch
            break

    assert stop_epoch == expected_stop_epoch


def test_divergence_outranks_overfitting() -> None:
    records = [*contract_history(), EpochRecord(epoch=50, train_loss=0.25, val_loss=NAN)]

    diagnosis = analyze(records)

    assert {"non_finite", "overfitting"} <= {signal.rule for signal in diagnosis.signals}
    assert diagnosis.is_diverging is True
    assert diagnosis.recommendation.action is Action.STOP_AND_RESTORE_BEST
    assert diagnosis.recommendation.restore_epoch == 30
    assert diagnosis.recommendation.reason == (
        "Stop and use epoch 30: val_loss became non-finite (NaN or infinity) at epoch 50"
    )


def test_threshold_reason_comes_before_blowup() -> None:
    diagnosis = analyze(history([1.0, 0.8, 0.6, 5.0]), MonitorPolicy(divergence_threshold=2.0, confirm_epochs=1))

    rules = [signal.rule for signal in diagnosis.signals]
    assert rules == ["divergence_threshold", "loss_blowup", "projected_improvement"]
    assert diagnosis.recommendation.reason == (
        "Stop and use epoch 2: val_loss is 5 at epoch 3, above the divergence threshold 2"
    )


def test_overfitting_is_judged_on_val_loss_while_another_metric_is_monitored() -> None:
    records = [
        record.model_copy(update={"metrics": {"f1": 0.5 + 0.01 * min(record.epoch, 30)}})
        for record in contract_history()
    ]

    # the patience rule stops on overfitting (the projection would judge f1's plateau by itself)
    diagnosis = analyze(records, MonitorPolicy(monitor="f1", stop_rule="patience"))

    assert (diagnosis.mode, diagnosis.best_epoch, diagnosis.best_value) == ("max", 30, pytest.approx(0.8))
    assert diagnosis.best_val_loss == pytest.approx(0.4)
    assert diagnosis.is_overfitting is True
    assert diagnosis.overfitting_since_epoch == 31
    assert diagnosis.recommendation.restore_epoch == 30


@pytest.mark.parametrize(
    ("records", "reason"),
    [
        pytest.param([], "No val_loss reported yet: keep training and check again after a few epochs.", id="empty"),
        pytest.param(
            history([1.0, 0.9]),
            "Only 2 epoch(s) of 100 planned with val_loss: too few to judge a trend; keep training.",
            id="too-few",
        ),
        pytest.param(
            history([1 / (e + 1) for e in range(20)]),
            "Continue: continuing 80 more epoch(s) is projected to improve val_loss by about 69.1% (needs more "
            "than 1%); best 0.05 at epoch 19; val_loss is improving (-46.0% over epochs 10-19).",
            id="improving",
        ),
    ],
)
def test_continue_reasons(records: list[EpochRecord], reason: str) -> None:
    recommendation = analyze(records, total_epochs_planned=100).recommendation

    assert recommendation.action is Action.CONTINUE
    assert recommendation.restore_epoch is None
    assert recommendation.reason == reason


def _noisy(seed: int, n: int, curve: list[float], noise: float) -> list[float]:
    rng = random.Random(seed)
    return [value * (1 + rng.gauss(0, noise)) for value in curve]


def test_noisy_but_improving_is_not_flat_or_overfitting() -> None:
    epochs = range(40)
    val = _noisy(7, 40, [math.exp(-0.05 * e) for e in epochs], 0.03)
    train = _noisy(8, 40, [math.exp(-0.06 * e) for e in epochs], 0.03)

    diagnosis = analyze(history(val, train))

    assert diagnosis.trend.direction is TrendDirection.IMPROVING
    assert diagnosis.is_overfitting is False
    assert diagnosis.is_plateaued is False
    assert diagnosis.is_diverging is False
    assert diagnosis.signals == []
    assert diagnosis.recommendation.action is Action.CONTINUE


def test_noisy_flat_is_not_improving() -> None:
    val = _noisy(0, 40, [0.5] * 40, 0.05)
    train = _noisy(1, 40, [0.4] * 40, 0.05)

    # 20 epochs left (the luck of 40 more noisy draws could still beat the best by 1%)
    diagnosis = analyze(history(val, train), total_epochs_planned=60)

    assert diagnosis.trend.direction is TrendDirection.FLAT
    assert diagnosis.is_overfitting is False
    assert diagnosis.is_diverging is False
    assert diagnosis.is_plateaued is True
    assert diagnosis.recommendation.action is Action.STOP_AND_RESTORE_BEST


def test_noise_is_rarely_called_a_trend() -> None:
    """Over many fixed seeds, pure noise is called improving in few windows (|t| >= 2 on 10 points)."""
    improving = 0
    for seed in range(200):
        val = _noisy(seed, 40, [0.5] * 40, 0.05)
        if analyze(history(val)).trend.direction is TrendDirection.IMPROVING:
            improving += 1

    assert improving <= 20


def test_auto_mode_on_a_loss_whose_name_contains_a_max_hint() -> None:
    diagnosis = analyze(
        history(_down(15, step=0.05), monitor="val_heatmap_loss"), MonitorPolicy(monitor="val_heatmap_loss")
    )

    assert diagnosis.best_epoch == 14
    assert diagnosis.recommendation.action is Action.CONTINUE


def test_analyze_is_pure() -> None:
    records = contract_history()
    before = [record.model_copy() for record in records]

    first = analyze(records)
    second = analyze(records)

    assert first == second
    assert records == before


def test_a_run_that_recovered_from_one_nan_long_ago_may_continue() -> None:
    records = [EpochRecord(epoch=0, train_loss=1.0, val_loss=1.0)]
    records.append(EpochRecord(epoch=1, train_loss=math.nan, val_loss=math.nan))
    records += [EpochRecord(epoch=e, train_loss=1 / e, val_loss=1 / e + 0.01) for e in range(2, 30)]

    diagnosis = analyze(records)

    assert diagnosis.is_diverging is False
    assert diagnosis.recommendation.action is Action.CONTINUE
    assert [signal.rule for signal in diagnosis.signals] == ["non_finite_recovered"]
    # while the NaN is the latest value, the same run is diverging; from the next finite epoch on, it has recovered
    assert analyze(records[:2]).is_diverging is True
    assert analyze(records[:3]).is_diverging is False


def test_training_loss_rising_under_a_warm_up_is_not_divergence() -> None:
    # Ultralytics-style: the rate climbs for the first epochs, training loss climbs with it, validation improves
    train = [1.0, 1.4, 1.9, 2.3, 2.6, 2.8, 2.9, 3.0]
    val = [3.4, 3.3, 3.25, 3.2, 3.14, 3.09, 3.03, 2.94]
    rates = [0.001, 0.004, 0.007, 0.01, 0.0099, 0.0098, 0.0097, 0.0096]
    records = [
        EpochRecord(epoch=e, train_loss=t, val_loss=v, learning_rate=r)
        for e, (t, v, r) in enumerate(zip(train, val, rates, strict=True))
    ]
    unreported = [record.model_copy(update={"learning_rate": None}) for record in records]

    warm = analyze(records, total_epochs_planned=30)
    bare = analyze(unreported, total_epochs_planned=30)

    assert "train_loss_rising" not in {signal.rule for signal in warm.signals}
    assert warm.is_diverging is False
    assert warm.recommendation.action is Action.CONTINUE
    assert bare.is_diverging is True  # without the rates, the same rise reads as divergence


def test_a_history_out_of_order_or_with_epochs_sent_again_is_judged_as_the_store_keeps_it() -> None:
    """Oldest first, the last record of each epoch: newest first used to crash the forecast (complex powers), and
    an epoch sent again at the end made trends run "over epochs 21-3"."""
    records = [EpochRecord(epoch=e, train_loss=0.1 + 1 / (e + 1), val_loss=0.1 + 1 / (e + 1)) for e in range(30)]
    resent = EpochRecord(epoch=3, train_loss=0.2, val_loss=0.2)
    kept = [resent if record.epoch == 3 else record for record in records]

    assert analyze(records[::-1], total_epochs_planned=60) == analyze(records, total_epochs_planned=60)
    assert analyze([*records, resent], total_epochs_planned=60) == analyze(kept, total_epochs_planned=60)


def test_values_too_large_to_fit_are_not_called_too_few_epochs() -> None:
    records = [EpochRecord(epoch=e, val_loss=(0.1 + 1 / (e + 1)) * 1e300) for e in range(30)]

    reason = analyze(records, total_epochs_planned=60).recommendation.reason

    assert reason.startswith("val_loss's values are too large to fit a trend to"), reason


@pytest.mark.parametrize("scale", [1e-14, 1e-11, 1.0, 1e6])
def test_the_diagnosis_does_not_depend_on_the_metric_s_units(scale: float) -> None:
    """The same curves in other units (an MSE of small-valued targets): absolute floors made noise at 1e-11 a
    divergence and stopped an improving run at 1e-14."""
    rng = random.Random(5)
    improving = [0.1 + 1 / (e + 1) for e in range(30)]
    noisy = [0.5 * (1 + rng.gauss(0.0, 0.01)) for _ in range(30)]

    def judged(values: list[float]) -> tuple[object, ...]:
        records = [EpochRecord(epoch=e, train_loss=scale * v, val_loss=scale * v) for e, v in enumerate(values)]
        diagnosis = analyze(records, total_epochs_planned=60)
        return diagnosis.recommendation.action, diagnosis.is_diverging, diagnosis.trend.direction

    assert judged(improving) == (Action.CONTINUE, False, TrendDirection.IMPROVING)
    assert judged(noisy)[1:] == (False, TrendDirection.FLAT)


def test_a_stop_at_an_epoch_that_was_not_validated_restores_the_best_validated_one() -> None:
    """Validated every other epoch: the weights at hand (epoch 39) were never validated; Keras restores epoch 38."""
    records = [
        EpochRecord(epoch=e, train_loss=0.5, val_loss=(0.5 if e < 38 else 0.499) if e % 2 == 0 else None)
        for e in range(40)
    ]

    recommendation = analyze(records, total_epochs_planned=40).recommendation  # at its planned end

    assert recommendation.action is Action.STOP_AND_RESTORE_BEST
    assert recommendation.restore_epoch == 38
