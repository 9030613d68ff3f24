"""How a run is judged: which metric, which direction is better, how patient to be."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from trainops.core.epoch import EpochRecord
from trainops.core.json_types import JsonTyped
from trainops.core.numbers import check_plain_numbers
from trainops.errors import InvalidInputError

Mode = Literal["min", "max"]
StopRule = Literal["projection", "patience"]

_MIN_MODE_WORDS = frozenset(
    {
        "loss",
        "losses",
        "error",
        "errors",
        "err",
        "nll",
        "mse",
        "mae",
        "rmse",
        "msle",
        "rmsle",
        "mape",
        "smape",
        "mase",
        "deviance",  # Poisson/Gamma/Tweedie deviance, even as a "tweedie_deviance_score" (torchmetrics)
        "brier",  # "brier_score": a squared error despite its name
        "perplexity",
        "ppl",
        "bpd",  # bits per dimension
        "bpc",  # bits per character
        "wer",  # word, character and translation edit rates: the share of the text that is wrong
        "cer",
        "ter",
        "distance",
        "kl",
        "kld",
        "divergence",
        "fid",  # Frechet, kernel inception and video distances
        "kid",
        "fvd",
        "lpips",
        "perceptual",  # LPIPS spelt out ("learned_perceptual_image_patch_similarity") is a distance too
        "ece",  # expected calibration error
        "bouldin",  # the Davies-Bouldin index, even as sklearn's "davies_bouldin_score"
        "gap",  # a gap between two values (train and val accuracy, a duality gap) is better small
        "drawdown",
        "regret",
    }
)
_UNBOUNDED_SCORE_WORDS = frozenset(
    # trading and reinforcement learning: more is better, with no ceiling
    {"sharpe", "sortino", "calmar", "cagr", "pnl", "profit", "return", "returns", "reward", "rewards", "rew"}
)  # "rew": Stable-Baselines3's "ep_rew_mean"
_MAX_MODE_WORDS = frozenset(
    {
        # classification
        "acc",
        "accuracy",
        "correct",
        "auc",
        "auroc",
        "rocauc",
        "auprc",
        "aupr",
        "aucpr",
        "prauc",
        "gini",
        "fmeasure",
        "fscore",
        "fbeta",
        "f2",
        "precision",
        "recall",
        "sensitivity",
        "specificity",
        "tpr",
        "tnr",
        "mcc",
        "kappa",
        "qwk",
        "exact",  # Hugging Face's "exact_match" and squad_v2's "exact"
        "exactmatch",
        "em",
        "r2",
        "rsquared",
        "explained",  # explained variance
        "score",
        "scores",
        # correlation and similarity
        "corr",
        "corrcoef",
        "correlation",
        "pearson",
        "pearsonr",
        "spearman",
        "spearmanr",
        "kendall",
        "kendalltau",
        "ccc",
        "concordance",
        "cindex",
        "similarity",
        # detection, segmentation, tracking, pose
        "iou",
        "miou",
        "fwiou",
        "jaccard",
        "dice",
        "mdice",
        "dsc",
        "pq",
        "pck",
        "pckh",
        "oks",
        "mota",
        "hota",
        "idf1",
        "fitness",  # Ultralytics' weighted mAP
        # text generation
        "bleu",
        "sacrebleu",
        "gleu",
        "bleurt",
        "bertscore",
        "meteor",
        "spice",
        "comet",
        "mauve",
        "sari",
        # images, audio, generative models
        "psnr",
        "ssim",
        "msssim",
        "snr",
        "sisnr",
        "sdr",
        "sisdr",
        "pesq",
        "stoi",
        "elbo",
        "likelihood",
        "loglik",
        "loglikelihood",
        # clustering
        "silhouette",
        "calinski",
        *_UNBOUNDED_SCORE_WORDS,
        "success",
        "win",
        "winrate",
        # speed
        "throughput",
        "fps",
    }
)
# Whole words that are a score with a number or a letter after them (word by word, so "cap" and "gap" are not AP).
_MAX_MODE_FAMILIES = re.compile(
    r"""
      (map|f1|rouge|chrf|cider)[a-z0-9]*         # mAP50, f1score, rouge1, rougeLsum, chrf2, ciderd
    | (bleu|ndcg|mrr|hits?|recall|precision)\d*  # bleu4, ndcg10, hits10, recall5
    | (top|acc|delta)\d+                         # top1, acc5, delta1 (depth); not top1err
    | ap(\d+|[sml])?                             # COCO's AP, AP50, AP75 and APs/APm/APl
    | m?ar\d*                                    # COCO's average recall: AR100, torchmetrics' mar_100
    """,
    re.VERBOSE,
)
# Scores spelt as two or more words ("top_1", "pass@k", "r_squared", "c_index", "samples_per_second").
_MAX_MODE_PHRASES = re.compile(r"(^|_)((top|pass)_(at_)?(\d+|k)|pass_rate|r_squared|c_index|per_sec(ond)?)(_|$)")
# A maximised objective after one of these is negated into a loss: "neg_elbo", "negative_log_likelihood". Not class
# scores: "negative_f1" is the F1 of the negative class.
_NEGATIONS = frozenset({"neg", "negative"})
_NEGATED_OBJECTIVES = frozenset(
    {
        "elbo",
        "likelihood",
        "loglik",
        "loglikelihood",
        "snr",
        "sisnr",
        "sdr",
        "sisdr",
        "psnr",
        "ssim",
        "similarity",
        "reward",
        "rewards",
        "return",
        "returns",
    }
)


def mode_for(metric: str) -> Mode:
    """``max`` for score-like metric names, ``min`` otherwise, judged word by word.

    The name is split into lowercase words at anything but letters and digits (``eval/rougeLsum`` is ``eval``,
    ``rougelsum``; ``ndcg@10`` is ``ndcg``, ``10``). A loss-like word (loss, error, nll, wer, perplexity,
    distance, fid, kl, ...) or a negated objective (``neg_elbo``, ``negative_log_likelihood``) makes it ``min``,
    whatever else the name says. Otherwise a score-like word makes it ``max``: accuracy, f1, auc, precision, recall,
    the mAP, AP, ROUGE, BLEU, NDCG, MRR, hits and top-k families with their numbers, IoU, PSNR, SSIM, ELBO,
    likelihood, correlations, kappa, MCC, reward, ... Any other name is ``min``, as a loss is. Words match whole, so
    ``cap_loss`` and ``gap`` are not AP.

    scikit-learn's negated scorers (``neg_mean_squared_error``) read as the errors they negate, ``min``, though
    their values grow as the model improves: pass ``mode="max"`` for them.

    Args:
        metric: The metric's name, in any framework's spelling.

    Returns:
        ``"max"`` when a higher value is better, else ``"min"``.

    >>> mode_for("val_acc"), mode_for("val_heatmap_loss"), mode_for("mAP50"), mode_for("grad_accum_loss")
    ('max', 'min', 'max', 'min')
    >>> mode_for("val_pnl"), mode_for("win_rate"), mode_for("max_drawdown")
    ('max', 'max', 'min')
    >>> mode_for("eval_rougeLsum"), mode_for("ndcg@10"), mode_for("val_top_1"), mode_for("val_wer")
    ('max', 'max', 'max', 'min')
    >>> mode_for("val_elbo"), mode_for("neg_elbo"), mode_for("negative_log_likelihood"), mode_for("negative_f1")
    ('max', 'min', 'min', 'max')
    >>> mode_for("val_ap50"), mode_for("cap_loss"), mode_for("gap")
    ('max', 'min', 'min')
    """
    words = [word for word in re.split(r"[^a-z0-9]+", metric.lower()) if word]
    if any(word in _MIN_MODE_WORDS for word in words) or _negates_an_objective(words):
        return "min"
    if any(word in _MAX_MODE_WORDS or _MAX_MODE_FAMILIES.fullmatch(word) for word in words):
        return "max"
    return "max" if _MAX_MODE_PHRASES.search("_".join(words)) else "min"


def unbounded_score(metric: str) -> bool:
    """Whether ``metric`` is a score with no ceiling (a Sharpe ratio, a profit, a reward), however close to [0, 1]
    its values have stayed so far.

    >>> unbounded_score("val_sharpe"), unbounded_score("ep_rew_mean"), unbounded_score("val_iou")
    (True, True, False)
    """
    words = re.split(r"[^a-z0-9]+", metric.lower())
    return not _UNBOUNDED_SCORE_WORDS.isdisjoint(words)


def _negates_an_objective(words: Sequence[str]) -> bool:
    """Whether ``neg`` or ``negative`` comes before a maximised objective: ``neg_elbo`` is a loss."""
    return any(
        word in _NEGATIONS and not _NEGATED_OBJECTIVES.isdisjoint(words[position + 1 :])
        for position, word in enumerate(words)
    )


class MonitorPolicy(JsonTyped):
    """The parameters of the diagnosis, with Keras/Lightning meanings where they have one.

    Two ways to decide between stop and continue (``stop_rule``):

    - ``projection`` (the default): stop when continuing to the end of the run is projected to improve the best
      ``monitor`` value by no more than ``min_improvement_pct``. The projection extends the recent trend, slowing
      as it has been slowing, and allows for the luck of a noisy metric; see
      :func:`trainops.core.projection.projection` and ``docs/diagnosis.md``. The run's planned length is the horizon;
      without one, as many epochs again as the run has done (at least ``patience``). The projection must say so
      at ``confirm_epochs`` evaluations in a row, so one lucky or unlucky epoch does not decide.
    - ``patience``: Keras/Lightning early stopping: stop after ``patience`` epochs without an improvement larger
      than ``min_delta``, or when validation loss overfits.

    Either way, divergence (non-finite values, ``divergence_threshold``, a blow-up past ``divergence_factor``,
    rising training loss) means stop. The defaults of ``projection`` were calibrated on real training curves
    (``bench/diagnosis.py``).

    Each field's ``description`` says what it sets; the REST query, the MCP tool and the CLI options are generated
    from these fields, so every edge shows the same names, bounds, defaults and text.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    monitor: str = Field(
        "val_loss",
        min_length=1,
        max_length=128,
        description="Metric to judge the run by: val_loss, val_accuracy or any custom metric the run reports. Not "
        "chosen, a run that recorded its task is judged on the task's primary metric (mAP50 for object detection, "
        "val_accuracy for classification) once it reports it, others on val_loss.",
    )
    mode: Literal["min", "max", "auto"] = Field(
        "auto",
        description="min when lower is better, max when higher is; auto picks max for accuracy-like names (a word "
        "such as acc, f1, auc or map in the name, and no loss or error), else min.",
    )
    min_delta: float = Field(
        0.0,
        ge=0.0,
        allow_inf_nan=False,
        description="A change smaller than this does not count as an improvement (absolute, in the metric's units).",
    )
    patience: int = Field(
        10,
        ge=1,
        le=100_000,
        description="Epochs without improvement before the run counts as stalled (the stop of stop_rule patience). "
        "It counts epochs that reported monitor, not wall-clock epochs: a run validating every other epoch needs "
        "half the patience. Under stop_rule projection it is the least horizon of a run with no planned length, and a "
        "score (not val_loss) whose gain is projected is stopped all the same once neither it nor val_loss has "
        "improved for 1.5 times patience.",
    )
    window: int = Field(
        10,
        ge=3,
        le=100_000,
        description="Recent epochs the trend, overfitting and rising-loss tests look at (least-squares slopes).",
    )
    divergence_threshold: float | None = Field(
        None,
        allow_inf_nan=False,
        description="In min mode, a monitor value above this means the run diverged (below it in max mode); "
        "left out, there is no such test.",
    )
    divergence_factor: float = Field(
        3.0,
        gt=1.0,
        allow_inf_nan=False,
        description="In min mode with positive values, the latest confirm_epochs values above this multiple of the "
        "best mean the run blew up.",
    )
    check_finite: bool = Field(True, description="Treat NaN or infinite monitor or train_loss values as divergence.")
    flat_tolerance_pct: float = Field(
        1.0,
        ge=0.0,
        le=100.0,
        allow_inf_nan=False,
        description="A fitted change smaller than this percentage over the window counts as flat.",
    )
    rising_tolerance_pct: float = Field(
        5.0,
        ge=0.0,
        le=1000.0,
        allow_inf_nan=False,
        description="train_loss rising by more than this percentage over the window (and significantly, given its "
        "noise) counts as divergence.",
    )
    stop_rule: StopRule = Field(
        "projection",
        description="projection: stop when continuing to the end of the run is projected to improve the best "
        "monitor value by no more than min_improvement_pct; patience: Keras/Lightning early stopping, after patience "
        "epochs without an improvement larger than min_delta.",
    )
    min_improvement_pct: float = Field(
        1.0,
        ge=0.0,
        le=1000.0,
        allow_inf_nan=False,
        description="For stop_rule projection: continuing is worth it only if it is projected to improve the best "
        "monitor value by more than this percentage of it.",
    )
    noise_allowance: float = Field(
        0.5,
        ge=0.0,
        le=10.0,
        allow_inf_nan=False,
        description="For stop_rule projection: how much a noisy metric's chance of a lucky new best counts, in "
        "units of its noise (the residual standard deviation around its recent trend) times sqrt(2 ln epochs_left), "
        "the expected best of that many noisy draws. 0 trusts the trend alone.",
    )
    confirm_epochs: int = Field(
        3,
        ge=1,
        le=1000,
        description="The projection (stop_rule projection) must find continuing not worth it at this many "
        "evaluations of monitor in a row, the latest and those before it, before the recommendation is to stop, and "
        "a loss blow-up (divergence_factor) must last as many; 1 stops on the first. A single noisy epoch then cannot "
        "stop a run. Non-finite values, divergence_threshold, rising training loss and a run at its planned end stop "
        "at once.",
    )

    @property
    def resolved_mode(self) -> Mode:
        if self.mode != "auto":
            return self.mode
        return mode_for(self.monitor)


class PolicyText(MonitorPolicy):
    """:class:`MonitorPolicy` read from text, where every value is a word (a query string, a CLI's ``--set
    FIELD=VALUE``): numbers in plain decimal notation only (``"1_000"`` is refused rather than read as 1000),
    booleans as ``true``/``false``. Validate into it, then build the policy from the fields it set."""

    @field_validator("*", mode="before")
    @classmethod
    def _json_type(cls, value: Any, info: ValidationInfo) -> Any:
        return value  # text stands for every type here: the model validator below reads the numbers

    @model_validator(mode="before")
    @classmethod
    def _plain_numbers(cls, data: Any) -> Any:
        return check_plain_numbers(cls, data)

    def policy(self) -> MonitorPolicy:
        """The policy of the fields given (the rest stay unset, so :func:`check_monitor` knows a ``monitor``
        chosen from one left to its default)."""
        return MonitorPolicy.model_validate(self.model_dump(include=self.model_fields_set))


def check_monitor(policy: MonitorPolicy, history: Sequence[EpochRecord]) -> None:
    """Refuse a ``monitor`` the run has never reported, naming the metrics it has (Lightning's ``strict=True``).

    A misspelt monitor would otherwise read as "no val_los reported yet" for ever. Only a monitor chosen
    explicitly, other than the default ``val_loss``, is checked: runs without validation are legitimate, and
    callers that always pass ``monitor`` (the CLI, the MCP server) pass the default by name. An empty history is
    never an error either: there is nothing to compare with yet.

    Args:
        policy: The policy about to judge ``history``.
        history: The run's epoch records.

    Raises:
        InvalidInputError: The monitor is not among the metrics any epoch reported; ``details`` holds
            ``monitor`` and ``reported`` (sorted).

    Example:
        >>> history = [EpochRecord(epoch=0, train_loss=0.9, val_loss=1.0)]
        >>> check_monitor(MonitorPolicy(monitor="val_loss"), history)  # reported: fine
        >>> check_monitor(MonitorPolicy(monitor="val_los"), history)
        Traceback (most recent call last):
        ...
        trainops.errors.InvalidInputError: monitor 'val_los' is not a metric this run has reported; ...
    """
    monitor = policy.monitor
    if "monitor" not in policy.model_fields_set or monitor == MonitorPolicy.model_fields["monitor"].default:
        return
    if not history or any(record.value(monitor) is not None for record in history):
        return
    reported = sorted({name for record in history for name in record.metric_names()})
    so_far = f"it has reported: {', '.join(reported)}" if reported else "it has reported no metrics yet"
    raise InvalidInputError(
        f"monitor {monitor!r} is not a metric this run has reported; {so_far}. Pass one of them as monitor "
        "(metrics a run reports later become available then)",
        details={"monitor": monitor, "reported": reported},
    )
