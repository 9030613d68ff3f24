"""MonitorPolicy: which metric, which direction is better, and the bounds on every knob; check_monitor: a monitor
the run has never reported is refused, with the metrics it has."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

import trainops
from trainops.core import EpochRecord, MonitorPolicy
from trainops.core.policy import check_monitor, mode_for
from trainops.errors import InvalidInputError


def test_defaults_watch_val_loss_like_keras() -> None:
    policy = MonitorPolicy()

    assert policy.monitor == "val_loss"
    assert policy.mode == "auto"
    assert policy.resolved_mode == "min"
    assert policy.min_delta == 0.0
    assert policy.patience == 10
    assert policy.window == 10
    assert policy.divergence_threshold is None
    assert policy.divergence_factor == 3.0
    assert policy.check_finite is True
    assert policy.flat_tolerance_pct == 1.0
    assert policy.rising_tolerance_pct == 5.0


@pytest.mark.parametrize(
    ("monitor", "mode", "resolved"),
    [
        pytest.param("val_loss", "auto", "min", id="loss"),
        pytest.param("train_loss", "auto", "min", id="train-loss"),
        pytest.param("my_custom_loss", "auto", "min", id="custom-loss"),
        pytest.param("val_accuracy", "auto", "max", id="accuracy"),
        pytest.param("val_acc", "auto", "max", id="acc"),
        pytest.param("VAL_ACCURACY", "auto", "max", id="case-insensitive"),
        pytest.param("val_f1", "auto", "max", id="f1"),
        pytest.param("roc_auc", "auto", "max", id="auc"),
        pytest.param("precision", "auto", "max", id="precision"),
        pytest.param("recall", "auto", "max", id="recall"),
        pytest.param("mean_iou", "auto", "max", id="iou"),
        pytest.param("val_mAP", "auto", "max", id="map"),
        pytest.param("r2", "auto", "max", id="r2"),
        pytest.param("val_score", "auto", "max", id="score"),
        pytest.param("perplexity", "auto", "min", id="perplexity"),
        pytest.param("val_pnl", "auto", "max", id="pnl"),
        pytest.param("total_profit", "auto", "max", id="profit"),
        pytest.param("annual_return", "auto", "max", id="return"),
        pytest.param("sortino_ratio", "auto", "max", id="sortino"),
        pytest.param("calmar", "auto", "max", id="calmar"),
        pytest.param("win_rate", "auto", "max", id="win-rate"),
        pytest.param("episode_reward", "auto", "max", id="reward"),
        pytest.param("max_drawdown", "auto", "min", id="drawdown"),
        pytest.param("val_accuracy", "min", "min", id="explicit-min-wins"),
        pytest.param("val_loss", "max", "max", id="explicit-max-wins"),
    ],
)
def test_resolved_mode(monitor: str, mode: str, resolved: str) -> None:
    assert MonitorPolicy(monitor=monitor, mode=mode).resolved_mode == resolved


@pytest.mark.parametrize("monitor", ["val_heatmap_loss", "grad_accum_loss", "previous_loss"])
def test_auto_mode_treats_loss_names_as_min(monitor: str) -> None:
    assert MonitorPolicy(monitor=monitor).resolved_mode == "min"


# What Keras, Lightning/torchmetrics, Hugging Face evaluate, Ultralytics and scikit-learn report: scores (max)
# that the name alone must give away, numbers and case suffixes included.
SCORE_NAMES = [
    *("rouge1", "rouge2", "rougeL", "rougeLsum", "eval_rouge1", "val_bleu4", "sacrebleu", "chrf++", "meteor"),
    *("bertscore", "CIDEr-D", "eval_exact_match", "HasAns_exact", "val_em"),
    *("val_ndcg", "ndcg@10", "ndcg_at_10", "val_mrr", "hits@10", "hit_rate", "pass@1"),
    *("val_top1", "eval_top5", "val_top_1", "acc1"),
    *("ap", "ap50", "ap75", "bbox_AP", "APs", "AR@100", "mar_100", "fitness", "pckh"),
    *("val_psnr", "val_ssim", "ms_ssim", "si_sdr", "pesq", "fwiou", "jaccard_index", "dsc"),
    *("val_elbo", "log_likelihood", "val_loglik"),
    *("val_auprc", "aupr", "val_mcc", "val_kappa", "cohen_kappa", "specificity", "fbeta"),
    *("val_spearman", "pearson", "pearsonr", "corr", "matthews_correlation", "matthews_corrcoef", "c_index"),
    *("r_squared", "explained_variance", "cosine_similarity", "silhouette_score"),
    *("success_rate", "ep_rew_mean", "negative_f1"),  # the F1 of the negative class, not a negated F1
]
# Lower is better, among them names with a score's word in them: a loss-like word or a negation wins.
LOSS_NAMES = [
    *("wer", "cer", "val_wer", "ter", "perplexity", "val_ppl"),
    *("neg_elbo", "negative_elbo", "negative_log_likelihood", "neg_log_likelihood", "nll", "elbo_loss", "neg_si_sdr"),
    *("val_loss", "grad_accum_loss", "val_heatmap_loss", "loss_rouge", "ssim_loss", "top1_err", "top_5_error"),
    *("max_drawdown", "cap_loss", "gap", "acc_gap", "fid", "kl_divergence", "edit_distance", "lpips"),
    *("learned_perceptual_image_patch_similarity", "brier_score", "tweedie_deviance_score", "davies_bouldin_score"),
    *("neg_mean_squared_error", "learning_rate", "duration", "grad_norm"),
]


@pytest.mark.parametrize(
    ("metric", "mode"), [*((name, "max") for name in SCORE_NAMES), *((name, "min") for name in LOSS_NAMES)]
)
def test_mode_for_reads_the_direction_from_the_name(metric: str, mode: str) -> None:
    assert mode_for(metric) == mode
    assert MonitorPolicy(monitor=metric).resolved_mode == mode


def test_a_rising_rouge_is_an_improving_run_not_one_to_restore_to_its_first_epoch() -> None:
    # An agent monitoring ROUGE was told to stop and restore epoch 0: auto mode read rouge1 as a loss.
    history = [
        EpochRecord(epoch=e, train_loss=1 / (e + 1), val_loss=1 / (e + 1), metrics={"val_rouge1": 0.2 + 0.01 * e})
        for e in range(20)
    ]

    diagnosis = trainops.analyze(history, MonitorPolicy(monitor="val_rouge1"))

    assert diagnosis.best_epoch == 19
    assert diagnosis.recommendation.action.value == "continue"  # was stop_and_restore_best, restore_epoch 0
    assert diagnosis.recommendation.restore_epoch is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"patience": 0}, "patience\n  Input should be greater than or equal to 1", id="patience-0"),
        pytest.param({"window": 2}, "window\n  Input should be greater than or equal to 3", id="window-2"),
        pytest.param({"min_delta": -0.1}, "min_delta\n  Input should be greater than or equal to 0", id="min-delta"),
        pytest.param({"min_delta": float("nan")}, "min_delta\n  Input should be a finite number", id="min-delta-nan"),
        pytest.param({"divergence_factor": 1.0}, "divergence_factor\n  Input should be greater than 1", id="factor"),
        pytest.param(
            {"divergence_threshold": float("inf")}, "divergence_threshold\n  Input should be a finite", id="threshold"
        ),
        pytest.param({"flat_tolerance_pct": 101}, "flat_tolerance_pct\n  Input should be less than", id="flat-tol"),
        pytest.param({"rising_tolerance_pct": -1}, "rising_tolerance_pct\n  Input should be greater", id="rise-tol"),
        pytest.param({"monitor": ""}, "monitor\n  String should have at least 1 character", id="empty-monitor"),
        pytest.param({"mode": "minimize"}, "mode\n  Input should be 'min', 'max' or 'auto'", id="bad-mode"),
        pytest.param({"patiense": 3}, "patiense\n  Extra inputs are not permitted", id="typo-field"),
    ],
)
def test_policy_refuses_bad_values(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MonitorPolicy(**fields)


def test_policy_is_frozen() -> None:
    policy = MonitorPolicy()

    with pytest.raises(ValidationError, match="frozen"):
        policy.patience = 3  # type: ignore[misc]


VALIDATED = [
    EpochRecord(epoch=0, train_loss=1.0, val_loss=1.1, val_accuracy=0.5, duration=2.0),
    EpochRecord(epoch=1, train_loss=0.8, val_loss=0.9, val_accuracy=0.6, duration=2.0),
]
NO_VALIDATION = [EpochRecord(epoch=e, train_loss=1.0 / (e + 1)) for e in range(3)]
CUSTOM = [EpochRecord(epoch=0, train_loss=1.0), EpochRecord(epoch=1, train_loss=0.9, metrics={"val_f1": 0.7})]


@pytest.mark.parametrize(
    ("policy", "history"),
    [
        pytest.param(MonitorPolicy(), NO_VALIDATION, id="default-val_loss-without-validation"),
        pytest.param(MonitorPolicy(monitor="val_loss"), NO_VALIDATION, id="val_loss-by-name-without-validation"),
        pytest.param(MonitorPolicy(monitor="val_accuracy"), VALIDATED, id="explicit-standard-field-reported"),
        pytest.param(MonitorPolicy(monitor="val_f1"), CUSTOM, id="custom-metric-reported-later"),
        pytest.param(MonitorPolicy(monitor="duration"), VALIDATED, id="duration-reported"),
        pytest.param(MonitorPolicy(monitor="val_los"), [], id="empty-history"),
    ],
)
def test_check_monitor_accepts(policy: MonitorPolicy, history: list[EpochRecord]) -> None:
    check_monitor(policy, history)


@pytest.mark.parametrize(
    ("monitor", "history", "reported"),
    [
        pytest.param("val_los", VALIDATED, ["train_loss", "val_accuracy", "val_loss"], id="misspelt-standard"),
        pytest.param("val_accuracy", NO_VALIDATION, ["train_loss"], id="standard-never-set"),
        pytest.param("f1", CUSTOM, ["train_loss", "val_f1"], id="misspelt-custom"),
    ],
)
def test_check_monitor_refuses_a_metric_never_reported(
    monitor: str, history: list[EpochRecord], reported: list[str]
) -> None:
    message = (
        f"monitor '{monitor}' is not a metric this run has reported; it has reported: {', '.join(reported)}. "
        "Pass one of them as monitor (metrics a run reports later become available then)"
    )
    with pytest.raises(InvalidInputError, match=f"^{re.escape(message)}$") as raised:
        check_monitor(MonitorPolicy(monitor=monitor), history)

    assert raised.value.details == {"monitor": monitor, "reported": reported}
    assert raised.value.code == "invalid_input"


def test_check_monitor_on_a_run_that_reported_no_metrics_says_so() -> None:
    with pytest.raises(InvalidInputError, match="it has reported no metrics yet") as raised:
        check_monitor(MonitorPolicy(monitor="val_f1"), [EpochRecord(epoch=0, duration=1.0)])

    assert raised.value.details == {"monitor": "val_f1", "reported": []}
