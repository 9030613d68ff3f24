"""Training the strategy MLP: a lean epoch loop that reports through the Reporter protocol.

The loop is written to cost what a bare PyTorch loop costs. The data moves to the device once; batches are
indexed there; per-batch numbers (loss, accuracy, gradient norm) stay on the device and are folded into epoch
totals every few hundred batches, so the host waits for the device once per epoch, never per batch. The only
per-batch work beyond the bare loop is one ``_foreach_norm`` for the gradient norm and two reporter calls,
which the reporter keeps cheap (it throttles).

Decisions (is this epoch the best, is it time to stop early) are small pure functions over numbers, sharing
:func:`trainops.core.rules.is_improvement` with the diagnosis, so trainops has one definition of "better".
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from trainops.core.cancellation import CancelRequest
from trainops.core.epoch import EpochRecord
from trainops.core.policy import Mode, mode_for
from trainops.core.progress import ProgressState
from trainops.core.reporter import Reporter
from trainops.core.rules import Best, is_improvement
from trainops.errors import InvalidInputError

MONITORABLE_METRICS: tuple[str, ...] = ("val_loss", "val_accuracy", "train_loss", "train_accuracy")
"""Metrics early stopping (and best-weight tracking) can watch: the ones every epoch record carries."""

EVAL_BATCH_SIZE = 4096
"""Rows per forward pass when validating or predicting: large, as no gradients are kept."""

_FOLD_BATCHES = 256
_FOLD_SAMPLES = 65_536
"""Per-batch tensors are folded into the epoch totals after this many batches or samples, whichever comes
first: often enough to bound memory, rarely enough that folding costs nothing per batch."""

StateDict = dict[str, torch.Tensor]


# --------------------------------------------------------------------------------------------------- configs


class EarlyStoppingConfig(BaseModel):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    Keras semantics: the best epoch is the last one that improved on the previous best by more than
    ``min_delta``; training stops at ``best_epoch + patience`` and the best epoch's weights are restored. The
    direction comes from the name (``val_accuracy`` is maximised, losses minimised), as in the diagnosis.
    """

    model_config = ConfigDict(extra="forbid")

    monitor: str = "val_loss"
    patience: int = Field(10, ge=1, le=100_000, strict=True)
    min_delta: float = Field(0.0, ge=0.0, allow_inf_nan=False, strict=True)

    @field_validator("monitor")
    @classmethod
    def _check_monitor(cls, monitor: str) -> str:
        if monitor not in MONITORABLE_METRICS:
            raise ValueError(
                f"{monitor!r} is not a metric the trainer reports; use one of {', '.join(MONITORABLE_METRICS)}"
            )
        return monitor


class SchedulerConfig(BaseModel):
    """How the learning rate changes between epochs.

    ``step`` multiplies it by ``gamma`` every ``step_size`` epochs; ``exponential`` by ``gamma`` every epoch;
    ``reduce_on_plateau`` by ``factor`` once ``val_loss`` has not improved for more than ``patience`` epochs
    (torch's relative threshold of 1e-4), never below ``min_lr``. Fields a type does not use are ignored.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["step", "exponential", "reduce_on_plateau"]
    step_size: int = Field(10, ge=1, le=100_000, strict=True)
    gamma: float = Field(0.5, gt=0.0, le=1.0, allow_inf_nan=False, strict=True)
    factor: float = Field(0.5, gt=0.0, lt=1.0, allow_inf_nan=False, strict=True)
    patience: int = Field(5, ge=0, le=100_000, strict=True)
    min_lr: float = Field(0.0, ge=0.0, allow_inf_nan=False, strict=True)


class TrainingConfig(BaseModel):
    """How to train: optimiser, batches, epochs and the optional early stopping, scheduler and clipping.

    This is the ``model.training`` section of a strategy YAML, as is.

    Args:
        learning_rate: Initial step size of the optimiser.
        batch_size: Training samples per optimiser step (the last batch of an epoch may be smaller).
        epochs: Maximum number of passes over the training split.
        optimizer: ``adam``, ``sgd`` (no momentum) or ``rmsprop``.
        weight_decay: L2 penalty added by the optimiser.
        early_stopping: Stop when the monitored metric stalls, and restore the best weights.
        lr_scheduler: Change the learning rate between epochs.
        gradient_clip: Clip the total gradient L2 norm to this value before each step.
        seed: Seeds torch, numpy and the batch order, so the same seed gives the same history on the CPU;
            ``None`` leaves the random state alone.
    """

    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(0.001, gt=0.0, allow_inf_nan=False, strict=True)
    batch_size: int = Field(32, ge=1, le=65_536, strict=True)
    epochs: int = Field(50, ge=1, le=100_000, strict=True)
    optimizer: Literal["adam", "sgd", "rmsprop"] = "adam"
    weight_decay: float = Field(0.0, ge=0.0, allow_inf_nan=False, strict=True)
    early_stopping: EarlyStoppingConfig | None = None
    lr_scheduler: SchedulerConfig | None = None
    gradient_clip: float | None = Field(None, gt=0.0, allow_inf_nan=False, strict=True)
    seed: int | None = Field(42, ge=0, le=2**32 - 1, strict=True)

    @property
    def monitor(self) -> str:
        """The metric that picks the best epoch: early stopping's, or ``val_loss``."""
        return self.early_stopping.monitor if self.early_stopping else "val_loss"


# --------------------------------------------------------------------------------------------------- outcome


@dataclass(frozen=True, slots=True)
class TrainingOutcome:
    """What a fit did and why it ended.

    Attributes:
        history: One record per finished epoch (a cancelled epoch is not included).
        monitor: The metric that chose the best epoch.
        best_epoch: The best epoch by ``monitor`` (``None`` if no epoch finished with a finite value).
        best_value: ``monitor`` at ``best_epoch``.
        early_stopped: Early stopping ended the run.
        stopped_epoch: The epoch the run ended at before its last planned one: the epoch that triggered early
            stopping, the one whose loss became non-finite, or the one under way when a cancel arrived.
            ``None`` when every planned epoch ran.
        cancelled: The stop request that ended the run, if one did.
        diverged: Why the run was judged diverged (non-finite training loss), if it was.
        stop_reason: A sentence for people saying why the run ended early, if it did.
        restored_best_weights: The model holds the weights of ``best_epoch`` (done whenever early stopping is
            configured or the run was cancelled or diverged), not those of the last step.
        epochs_completed: ``len(history)``.
        duration_seconds: Wall time of the whole fit.
        device: Where the model trained (``cpu``, ``cuda:0``).
        samples_per_second: Training samples stepped on per second of ``duration_seconds``.
    """

    history: list[EpochRecord]
    monitor: str
    best_epoch: int | None
    best_value: float | None
    early_stopped: bool
    stopped_epoch: int | None
    cancelled: CancelRequest | None
    diverged: str | None
    stop_reason: str | None
    restored_best_weights: bool
    epochs_completed: int
    duration_seconds: float
    device: str
    samples_per_second: float


# ------------------------------------------------------------------------------------------------- decisions


def update_best(best: Best | None, epoch: int, value: float, mode: Mode, min_delta: float) -> Best | None:
    """The best epoch after seeing ``value`` at ``epoch``: the incremental twin of
    :func:`trainops.core.rules.find_best` (Keras semantics; non-finite values never win).

    >>> best = update_best(None, 0, 1.0, "min", 0.0)
    >>> best = update_best(best, 1, 0.5, "min", 0.0)
    >>> update_best(best, 2, 0.6, "min", 0.0)
    Best(epoch=1, value=0.5, since=1)
    """
    if math.isfinite(value) and (best is None or is_improvement(value, best.value, mode, min_delta)):
        return Best(epoch, value, 0)
    if best is None:
        return None
    return Best(best.epoch, best.value, best.since + 1)


def should_stop_early(best: Best | None, epochs_seen: int, patience: int) -> bool:
    """Whether ``patience`` epochs have passed without an improvement (all of them, if none was ever finite)."""
    stale = best.since if best is not None else epochs_seen
    return stale >= patience


def divergence_reason(epoch: int, train_loss: float, learning_rate: float, non_finite_features: int) -> str:
    """The sentence saying why a run whose ``train_loss`` became NaN or infinite diverged, with the likely fix.

    >>> divergence_reason(3, float("nan"), 10.0, 0)
    'train_loss became nan at epoch 3; lower learning_rate (now 10) or set gradient_clip'
    """
    if non_finite_features:
        cause = f"x_train holds {non_finite_features} NaN or infinite values: clean or impute the features"
    else:
        cause = f"lower learning_rate (now {learning_rate:g}) or set gradient_clip"
    return f"train_loss became {train_loss} at epoch {epoch}; {cause}"


def early_stop_reason(config: EarlyStoppingConfig, best: Best | None, epochs_seen: int) -> str:
    """The sentence saying why early stopping ended the run."""
    stalled = best.since if best is not None else epochs_seen
    where = f"; best {best.value:.6g} at epoch {best.epoch}" if best is not None else "; it was never finite"
    return (
        f"early stopping: {config.monitor} did not improve by more than {config.min_delta:g} "
        f"for {stalled} epochs (patience {config.patience}){where}"
    )


# --------------------------------------------------------------------------------------------------- helpers


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The device to train on: ``device`` as given, else ``cuda`` when torch sees a GPU, else ``cpu``.

    Raises:
        InvalidInputError: ``device`` is not a device name, or names CUDA on a machine without it.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidInputError(
            f"device {device!r} is not a device torch knows; use 'cpu', 'cuda', 'cuda:1', ... "
            "or leave it unset to pick CUDA when available",
            details={"device": str(device)},
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(
            f"device {device!r} asks for CUDA, but torch sees no GPU here; use 'cpu' or leave device unset",
            details={"device": str(device)},
        )
    return resolved


def build_optimizer(
    parameters: Iterable[nn.Parameter], config: TrainingConfig, device: torch.device
) -> torch.optim.Optimizer:
    """The optimiser ``config`` names, in its fastest implementation for ``device``.

    Adam and SGD use torch's fused kernels (one kernel for all parameters, several times faster than the
    per-tensor loop torch picks by default on the CPU); RMSprop, which has none, uses the multi-tensor path.
    """
    params = list(parameters)
    fused = device.type in ("cpu", "cuda")
    lr, decay = config.learning_rate, config.weight_decay
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=decay, fused=fused or None)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=decay, fused=fused or None)
    return torch.optim.RMSprop(params, lr=lr, weight_decay=decay, foreach=True)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: SchedulerConfig | None
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The learning-rate scheduler ``config`` describes, stepped once per epoch (``None`` for none)."""
    if config is None:
        return None
    schedulers = torch.optim.lr_scheduler
    if config.type == "step":
        return schedulers.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
    if config.type == "exponential":
        return schedulers.ExponentialLR(optimizer, gamma=config.gamma)
    return schedulers.ReduceLROnPlateau(
        optimizer, mode="min", factor=config.factor, patience=config.patience, min_lr=config.min_lr
    )


def _linear_widths(model: nn.Module) -> tuple[int | None, int | None]:
    """(inputs of the first Linear layer, outputs of the last one): the feature and class counts of an MLP."""
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    if not linears:
        return None, None
    return int(linears[0].in_features), int(linears[-1].out_features)


def _features(name: str, x: npt.ArrayLike, width: int | None) -> npt.NDArray[np.float32]:
    array = np.asarray(x)
    if array.ndim != 2 or array.shape[0] == 0:
        raise InvalidInputError(
            f"{name} must be a non-empty 2-D array (samples x features), got shape {array.shape}",
            details={"name": name, "shape": list(array.shape)},
        )
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
        raise InvalidInputError(
            f"{name} must hold numbers, got dtype {array.dtype}; convert it with {name}.astype(np.float32)",
            details={"name": name, "dtype": str(array.dtype)},
        )
    if width is not None and array.shape[1] != width:
        raise InvalidInputError(
            f"{name} has {array.shape[1]} features but the model expects {width}; "
            "build the model with input_size equal to the feature count",
            details={"name": name, "features": array.shape[1], "expected": width},
        )
    return np.ascontiguousarray(array, dtype=np.float32)


def _labels(name: str, y: npt.ArrayLike, rows: int, num_classes: int | None) -> npt.NDArray[np.int64]:
    array = np.asarray(y)
    if array.ndim != 1 or array.shape[0] != rows:
        raise InvalidInputError(
            f"{name} must be a 1-D array with one label per sample ({rows}), got shape {array.shape}",
            details={"name": name, "shape": list(array.shape), "expected_rows": rows},
        )
    if not np.issubdtype(array.dtype, np.integer):
        raise InvalidInputError(
            f"{name} must hold integer class indices, got dtype {array.dtype}; convert it with {name}.astype(np.int64)",
            details={"name": name, "dtype": str(array.dtype)},
        )
    low, high = int(array.min()), int(array.max())
    if low < 0 or (num_classes is not None and high >= num_classes):
        bad = low if low < 0 else high
        raise InvalidInputError(
            f"{name} holds the label {bad}, outside the model's classes 0..{(num_classes or 1) - 1}; "
            "encode labels as 0-based class indices",
            details={"name": name, "label": bad, "num_classes": num_classes},
        )
    return np.ascontiguousarray(array, dtype=np.int64)


def _class_weights(weights: Sequence[float] | None, num_classes: int | None) -> list[float] | None:
    if weights is None:
        return None
    values = [float(w) for w in weights]
    if num_classes is not None and len(values) != num_classes:
        raise InvalidInputError(
            f"class_weights has {len(values)} values but the model has {num_classes} classes; give one per class",
            details={"class_weights": values, "num_classes": num_classes},
        )
    if not all(math.isfinite(w) and w > 0 for w in values):
        raise InvalidInputError(
            f"class_weights must all be positive and finite, got {values}; "
            "drop a class's samples rather than weighting it 0",
            details={"class_weights": values},
        )
    return values


def snapshot(model: nn.Module) -> StateDict:
    """A copy of the model's weights that later steps cannot change (kept on the model's device)."""
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


@dataclass
class _Validation:
    """A split's [loss * weight, weight] sums and correct-prediction count, still on the device."""

    sums: torch.Tensor
    correct: torch.Tensor
    rows: int


@dataclass
class _EpochTotals:
    """Per-batch tensors of one epoch, folded on the device into running sums without waiting for it."""

    device: torch.device
    class_weights: torch.Tensor | None
    rows: int
    batches: int
    logits: list[torch.Tensor] = field(default_factory=list)
    labels: list[torch.Tensor] = field(default_factory=list)
    param_norms: list[Sequence[torch.Tensor]] = field(default_factory=list)
    total_norms: list[torch.Tensor] = field(default_factory=list)
    sums: torch.Tensor = field(init=False)
    """[loss * weight, weight, gradient norm] summed so far."""
    correct: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.sums = torch.zeros(3, device=self.device)
        self.correct = torch.zeros((), dtype=torch.int64, device=self.device)

    @torch.no_grad()
    def fold(self) -> None:
        """Add the batches kept since the last fold to the sums (a few large device ops, no wait)."""
        if not self.logits:
            return
        logits, labels = torch.cat(self.logits), torch.cat(self.labels)
        if self.param_norms:
            norms = _sum_of_total_norms(self.param_norms)
        else:
            norms = torch.stack(self.total_norms).float().sum()
        self.sums += torch.cat([_loss_sum(logits, labels, self.class_weights), norms.view(1)])
        self.correct += (logits.argmax(dim=1) == labels).sum()
        for kept in (self.logits, self.labels, self.param_norms, self.total_norms):
            kept.clear()

    def record(self, epoch: int, validation: _Validation, learning_rate: float, started: float) -> EpochRecord:
        """The epoch's record; the one point per epoch where the host waits for the device."""
        self.fold()
        loss, weight, norms, val_loss, val_weight = torch.cat([self.sums, validation.sums]).tolist()
        correct, val_correct = torch.stack([self.correct, validation.correct]).tolist()
        return EpochRecord(
            epoch=epoch,
            train_loss=_ratio(loss, weight),
            val_loss=_ratio(val_loss, val_weight),
            train_accuracy=correct / self.rows,
            val_accuracy=val_correct / validation.rows,
            learning_rate=learning_rate,
            duration=time.perf_counter() - started,
            timestamp=datetime.now(UTC),
            metrics={"grad_norm": norms / self.batches},
        )


def _loss_sum(logits: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor | None) -> torch.Tensor:
    """[summed cross entropy, summed sample weight] on the device: their ratio is the criterion's mean."""
    loss = F.cross_entropy(logits.float(), labels, weight=class_weights, reduction="sum")
    # new_full launches a fill, where a host number turned into a device tensor could wait for the device
    weight = class_weights[labels].sum() if class_weights is not None else loss.new_full((), labels.shape[0])
    return torch.stack([loss, weight])


def _sum_of_total_norms(param_norms: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
    """Sum over batches of each batch's total L2 norm, from the per-parameter norms of every batch."""
    counts = {len(norms) for norms in param_norms}
    if len(counts) == 1:
        stacked = torch.stack([norm for norms in param_norms for norm in norms]).view(len(param_norms), -1)
        return stacked.float().square().sum(dim=1).sqrt().sum()
    return torch.stack([torch.stack(list(norms)).float().square().sum().sqrt() for norms in param_norms]).sum()


@torch.no_grad()
def _evaluate_split(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, class_weights: torch.Tensor | None
) -> _Validation:
    """Loss and correct predictions over a split, in eval mode, without waiting for the device."""
    model.eval()
    sums = torch.zeros(2, device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    for start in range(0, x.shape[0], EVAL_BATCH_SIZE):
        logits = model(x[start : start + EVAL_BATCH_SIZE])
        labels = y[start : start + EVAL_BATCH_SIZE]
        sums += _loss_sum(logits, labels, class_weights)
        correct += (logits.argmax(dim=1) == labels).sum()
    return _Validation(sums, correct, x.shape[0])


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


# --------------------------------------------------------------------------------------------------- trainer


class Trainer:
    """Trains a classifier on in-memory arrays and reports every epoch through a :class:`Reporter`.

    Args:
        config: Optimiser, batches, epochs, early stopping, scheduler, clipping and seed.
        reporter: Where progress, epochs and batches go, and where stop requests come from.
        device: Where to train; ``cuda`` when torch sees a GPU, else ``cpu``.

    Raises:
        InvalidInputError: ``device`` is unknown or unavailable.

    >>> import numpy as np
    >>> from trainops.core import NullReporter
    >>> from trainops.pipeline.model import ArchitectureConfig, build_mlp
    >>> x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    >>> y = (x[:, 0] > 0).astype(np.int64)
    >>> model = build_mlp(4, ArchitectureConfig(hidden_layers=[8]), num_classes=2, seed=0)
    >>> config = TrainingConfig(learning_rate=0.05, epochs=500, early_stopping=EarlyStoppingConfig(patience=3))
    >>> outcome = Trainer(config, NullReporter(), device="cpu").fit(model, x, y, x, y)
    >>> outcome.early_stopped, outcome.stopped_epoch == outcome.best_epoch + 3, outcome.epochs_completed < 500
    (True, True, True)
    """

    def __init__(self, config: TrainingConfig, reporter: Reporter, *, device: str | torch.device | None = None):
        self.config = config
        self.reporter = reporter
        self.device = resolve_device(device)

    def fit(
        self,
        model: nn.Module,
        x_train: npt.ArrayLike,
        y_train: npt.ArrayLike,
        x_val: npt.ArrayLike,
        y_val: npt.ArrayLike,
        *,
        class_weights: Sequence[float] | None = None,
    ) -> TrainingOutcome:
        """Train ``model`` in place on the training split, validating after every epoch.

        Batches are drawn in a seeded random order from the training split only; the validation split is only
        ever evaluated. ``train_loss`` and ``train_accuracy`` are running values over the epoch's batches (train
        mode, before each step: Keras' meaning); ``val_*`` are measured after the epoch in eval mode. Both losses
        use the training criterion, class-weighted when ``class_weights`` is given, so they stay comparable.
        Each record also carries ``grad_norm``: the mean over batches of the total gradient L2 norm, before
        clipping.

        The run ends early, without raising, when early stopping fires, when the training loss becomes
        non-finite (``diverged``) or when the reporter's ``should_stop()`` returns a request (checked before
        every batch; the unfinished epoch is dropped). In those cases, and whenever early stopping is
        configured, the best epoch's weights are put back. The model is left in eval mode on the device.

        Args:
            model: A classifier returning logits, e.g. from :func:`trainops.pipeline.model.build_mlp`.
            x_train: Training features, samples x features (converted to float32).
            y_train: Training labels, integer class indices (converted to int64).
            x_val: Validation features.
            y_val: Validation labels.
            class_weights: One positive weight per class for the cross entropy, e.g. to offset rare classes.

        Returns:
            The history and how the run ended.

        Raises:
            InvalidInputError: The arrays or weights do not fit each other or the model.
        """
        started = time.perf_counter()
        config, reporter, device = self.config, self.reporter, self.device
        input_width, num_classes = _linear_widths(model)
        features = _features("x_train", x_train, input_width)
        labels = _labels("y_train", y_train, features.shape[0], num_classes)
        val_features = _features("x_val", x_val, features.shape[1])
        val_labels = _labels("y_val", y_val, val_features.shape[0], num_classes)
        weights = _class_weights(class_weights, num_classes)
        params = [parameter for parameter in model.parameters() if parameter.requires_grad]
        if not params:
            raise InvalidInputError("the model has no trainable parameters; unfreeze some before fitting")

        generator = torch.Generator(device=device)
        if config.seed is None:
            generator.seed()
        else:
            torch.manual_seed(config.seed)
            np.random.seed(config.seed)
            generator.manual_seed(config.seed)

        model.to(device)
        x = torch.from_numpy(features).to(device)
        y = torch.from_numpy(labels).to(device)
        xv = torch.from_numpy(val_features).to(device)
        yv = torch.from_numpy(val_labels).to(device)
        weight_tensor = None if weights is None else torch.tensor(weights, dtype=torch.float32, device=device)
        optimizer = build_optimizer(params, config, device)
        scheduler = build_scheduler(optimizer, config.lr_scheduler)

        rows, batch_size = x.shape[0], config.batch_size
        total_batches = -(-rows // batch_size)
        monitor = config.monitor
        mode = mode_for(monitor)
        min_delta = config.early_stopping.min_delta if config.early_stopping else 0.0
        history: list[EpochRecord] = []
        best: Best | None = None
        best_state: StateDict | None = None
        cancelled: CancelRequest | None = None
        diverged: str | None = None
        stop_reason: str | None = None
        early_stopped = False
        stopped_epoch: int | None = None
        samples = 0

        reporter.progress(ProgressState.training(1, config.epochs, batch=0, total_batches=total_batches))
        for epoch in range(config.epochs):
            epoch_started = time.perf_counter()
            learning_rate = float(optimizer.param_groups[0]["lr"])
            totals = _EpochTotals(device, weight_tensor, rows, total_batches)
            batches, request = self._train_epoch(epoch, model, params, optimizer, x, y, generator, totals)
            samples += min(batches * batch_size, rows)
            if request is not None:
                cancelled, stopped_epoch = request, epoch
                stop_reason = f"cancelled by {request.requested_by}: {request.reason}"
                break
            record = totals.record(epoch, _evaluate_split(model, xv, yv, weight_tensor), learning_rate, epoch_started)
            history.append(record)
            reporter.epoch(record)
            reporter.progress(ProgressState.training(epoch + 1, config.epochs))

            value = record.value(monitor)
            best = update_best(best, epoch, math.nan if value is None else value, mode, min_delta)
            if best is not None and best.epoch == epoch:
                best_state = snapshot(model)
            train_loss = math.nan if record.train_loss is None else record.train_loss
            if not math.isfinite(train_loss):
                non_finite = int((~torch.isfinite(x)).sum().item())
                diverged = stop_reason = divergence_reason(epoch, train_loss, learning_rate, non_finite)
                stopped_epoch = epoch
                break
            stopping = config.early_stopping
            if stopping is not None and should_stop_early(best, len(history), stopping.patience):
                early_stopped, stopped_epoch = True, epoch
                stop_reason = early_stop_reason(stopping, best, len(history))
                break
            _step_scheduler(scheduler, record.val_loss)

        restore = best_state is not None and (
            config.early_stopping is not None or cancelled is not None or diverged is not None
        )
        if restore and best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        duration = time.perf_counter() - started
        return TrainingOutcome(
            history=history,
            monitor=monitor,
            best_epoch=best.epoch if best else None,
            best_value=best.value if best else None,
            early_stopped=early_stopped,
            stopped_epoch=stopped_epoch,
            cancelled=cancelled,
            diverged=diverged,
            stop_reason=stop_reason,
            restored_best_weights=restore,
            epochs_completed=len(history),
            duration_seconds=duration,
            device=str(device),
            samples_per_second=samples / duration if duration > 0 else 0.0,
        )

    def _train_epoch(
        self,
        epoch: int,
        model: nn.Module,
        params: list[nn.Parameter],
        optimizer: torch.optim.Optimizer,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator,
        totals: _EpochTotals,
    ) -> tuple[int, CancelRequest | None]:
        """One pass over the training split in a fresh random order: (batches done, the stop request if any).

        The hot loop: everything per batch stays on the device, and nothing here waits for it.
        """
        reporter = self.reporter
        rows, batch_size, clip = x.shape[0], self.config.batch_size, self.config.gradient_clip
        total_batches = -(-rows // batch_size)
        fold_every = max(1, min(_FOLD_BATCHES, _FOLD_SAMPLES // batch_size))
        order = torch.randperm(rows, generator=generator, device=x.device)
        model.train()
        for batch in range(total_batches):
            request = reporter.should_stop()
            if request is not None:
                return batch, request
            index = order[batch * batch_size : (batch + 1) * batch_size]
            inputs, targets = x.index_select(0, index), y.index_select(0, index)
            logits = model(inputs)
            loss = F.cross_entropy(logits, targets, weight=totals.class_weights)
            for parameter in params:  # optimizer.zero_grad(set_to_none=True) without its profiler overhead
                parameter.grad = None
            torch.autograd.backward(loss)
            if clip is None:
                # One multi-tensor kernel; the total norm is assembled from these when the epoch is folded.
                totals.param_norms.append(torch._foreach_norm([p.grad for p in params if p.grad is not None]))
            else:
                totals.total_norms.append(nn.utils.clip_grad_norm_(params, clip))
            optimizer.step()
            totals.logits.append(logits.detach())
            totals.labels.append(targets)
            if len(totals.logits) >= fold_every:
                totals.fold()
            reporter.batch(epoch, batch + 1, total_batches)
        return total_batches, None


def _step_scheduler(scheduler: torch.optim.lr_scheduler.LRScheduler | None, val_loss: float | None) -> None:
    if scheduler is None:
        return
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(math.nan if val_loss is None else val_loss)
    else:
        scheduler.step()


# ------------------------------------------------------------------------------------------------ prediction


@torch.no_grad()
def predict_logits(
    model: nn.Module, x: npt.ArrayLike, device: str | torch.device, batch_size: int = EVAL_BATCH_SIZE
) -> npt.NDArray[np.float32]:
    """The model's raw class scores for ``x`` (samples x classes), computed in eval mode without gradients.

    The model is moved to ``device``; its train/eval mode is put back afterwards.

    Raises:
        InvalidInputError: ``x`` is not a 2-D numeric array or ``batch_size`` is not positive.
    """
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be at least 1, got {batch_size}")
    target = resolve_device(device)
    array = np.asarray(x)
    if array.ndim != 2 or array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
        raise InvalidInputError(
            f"x must be a 2-D numeric array (samples x features), got shape {array.shape} and dtype {array.dtype}",
            details={"shape": list(array.shape), "dtype": str(array.dtype)},
        )
    features = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    was_training = model.training
    model.to(target)
    model.eval()
    try:
        chunks = [
            model(features[start : start + batch_size].to(target)).float().cpu()
            for start in range(0, max(features.shape[0], 1), batch_size)
        ]
    finally:
        model.train(was_training)
    result: npt.NDArray[np.float32] = torch.cat(chunks).numpy()
    return result


def predict_proba(
    model: nn.Module, x: npt.ArrayLike, device: str | torch.device, batch_size: int = EVAL_BATCH_SIZE
) -> npt.NDArray[np.float32]:
    """Class probabilities for ``x`` (samples x classes, rows sum to 1): softmax over :func:`predict_logits`."""
    logits = torch.from_numpy(predict_logits(model, x, device, batch_size))
    probabilities: npt.NDArray[np.float32] = torch.softmax(logits, dim=1).numpy()
    return probabilities
