"""Test-set evaluation of a trained classifier: loss, accuracy, precision/recall/F1 and the confusion matrix.

The metrics are computed here with numpy (scikit-learn is not a dependency of trainops) and match
scikit-learn's ``precision_recall_fscore_support(..., labels=range(K), zero_division=0)``: every class counts
in the macro average, including one absent from the test split, and a ratio with nothing to divide by is 0,
without a warning.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from trainops.errors import InvalidInputError
from trainops.pipeline.trainer import EVAL_BATCH_SIZE, predict_logits
from trainops.schemas.training import ClassMetrics

__all__ = [
    "DEFAULT_CLASS_NAMES",
    "ClassMetrics",
    "EvaluationResult",
    "confusion_matrix",
    "cross_entropy",
    "evaluate",
    "evaluate_predictions",
]

DEFAULT_CLASS_NAMES: tuple[str, ...] = ("BUY", "HOLD", "SELL")


class EvaluationResult(BaseModel):
    """The test-set metrics of a classifier.

    ``precision``, ``recall`` and ``f1_score`` are macro averages (every class weighs the same, so a rare SELL
    class counts as much as a common HOLD); the ``*_weighted`` ones weigh classes by their support.
    ``confusion_matrix[i][j]`` counts samples of true class ``i`` predicted as ``j``, in ``class_names`` order.
    ``support`` is the number of test samples. ``test_loss`` is the plain (unweighted) cross entropy.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    test_loss: float
    test_accuracy: float
    precision: float
    recall: float
    f1_score: float
    precision_weighted: float
    recall_weighted: float
    f1_weighted: float
    confusion_matrix: list[list[int]]
    per_class: dict[str, ClassMetrics]
    support: int
    class_names: list[str]


def confusion_matrix(
    y_true: npt.NDArray[np.integer], y_pred: npt.NDArray[np.integer], num_classes: int
) -> npt.NDArray[np.int64]:
    """``num_classes`` x ``num_classes`` counts, rows the true class, columns the predicted one.

    >>> confusion_matrix(np.array([0, 0, 2]), np.array([0, 1, 2]), 3).tolist()
    [[1, 1, 0], [0, 0, 0], [0, 0, 1]]
    """
    flat = y_true.astype(np.int64) * num_classes + y_pred.astype(np.int64)
    counts: npt.NDArray[np.int64] = np.bincount(flat, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )
    return counts


def _divide(numerator: npt.NDArray[np.floating], denominator: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """Elementwise ratio, 0 where the denominator is 0 (scikit-learn's ``zero_division=0``), without warnings."""
    result = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=result, where=denominator != 0)
    return result


def cross_entropy(logits: npt.NDArray[np.floating], y_true: npt.NDArray[np.integer]) -> float:
    """Mean cross entropy of integer labels under softmax(``logits``), in float64 and stable for large logits."""
    scores = logits.astype(np.float64)
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probabilities[np.arange(len(y_true)), y_true].mean())


def evaluate_predictions(
    y_true: npt.ArrayLike,
    logits: npt.ArrayLike,
    *,
    class_names: Sequence[str] = DEFAULT_CLASS_NAMES,
) -> EvaluationResult:
    """Score class scores (logits, or log-probabilities) against the true labels; the pure half of
    :func:`evaluate`, usable on predictions made anywhere.

    Args:
        y_true: Integer class indices, one per sample.
        logits: Samples x classes scores; the predicted class is the highest one.
        class_names: One name per class, in index order.

    Raises:
        InvalidInputError: The shapes do not match each other or ``class_names``, or a label is out of range.
    """
    names = list(class_names)
    labels, scores = np.asarray(y_true), np.asarray(logits)
    _check_inputs(labels, scores, names)
    num_classes = len(names)
    y = labels.astype(np.int64)
    predictions = scores.argmax(axis=1)
    matrix = confusion_matrix(y, predictions, num_classes)

    true_positives = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    support = matrix.sum(axis=1).astype(np.float64)
    precision = _divide(true_positives, predicted)
    recall = _divide(true_positives, support)
    # scikit-learn's form: 2tp / (2tp + fp + fn), so f1 is 0 exactly when there is nothing to score
    f1 = _divide(2 * true_positives, predicted + support)
    weights = support / support.sum()

    return EvaluationResult(
        test_loss=cross_entropy(scores, y),
        test_accuracy=float(true_positives.sum() / len(y)),
        precision=float(precision.mean()),
        recall=float(recall.mean()),
        f1_score=float(f1.mean()),
        precision_weighted=float((precision * weights).sum()),
        recall_weighted=float((recall * weights).sum()),
        f1_weighted=float((f1 * weights).sum()),
        confusion_matrix=matrix.tolist(),
        per_class={
            name: ClassMetrics(
                precision=float(precision[index]),
                recall=float(recall[index]),
                f1=float(f1[index]),
                support=int(support[index]),
                accuracy=float(recall[index]),
            )
            for index, name in enumerate(names)
        },
        support=len(y),
        class_names=names,
    )


def _check_inputs(labels: np.ndarray, scores: np.ndarray, names: list[str]) -> None:
    if len(names) < 2 or len(set(names)) != len(names):
        raise InvalidInputError(
            f"class_names must name at least 2 distinct classes, got {names}",
            details={"class_names": names},
        )
    if labels.ndim != 1 or labels.shape[0] == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise InvalidInputError(
            f"y_test must be a non-empty 1-D array of integer class indices, got shape {labels.shape} "
            f"and dtype {labels.dtype}",
            details={"shape": list(labels.shape), "dtype": str(labels.dtype)},
        )
    if scores.ndim != 2 or scores.shape != (labels.shape[0], len(names)):
        raise InvalidInputError(
            f"the model's scores have shape {scores.shape}, expected ({labels.shape[0]}, {len(names)}): one row per "
            f"test sample and one column per class in {names}; pass class_names matching the model's outputs",
            details={"shape": list(scores.shape), "class_names": names},
        )
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= len(names):
        bad = low if low < 0 else high
        raise InvalidInputError(
            f"y_test holds the label {bad}, outside the classes 0..{len(names) - 1} ({', '.join(names)})",
            details={"label": bad, "class_names": names},
        )


def evaluate(
    model: nn.Module,
    x_test: npt.ArrayLike,
    y_test: npt.ArrayLike,
    *,
    device: str | torch.device,
    class_names: Sequence[str] = DEFAULT_CLASS_NAMES,
    batch_size: int = EVAL_BATCH_SIZE,
) -> EvaluationResult:
    """Evaluate ``model`` on the test split: loss, accuracy, macro and weighted precision/recall/F1, per class.

    Args:
        model: A classifier returning logits; it is run in eval mode without gradients on ``device``.
        x_test: Test features, samples x features.
        y_test: Test labels, integer class indices.
        device: Where to run the model.
        class_names: One name per model output, in index order.
        batch_size: Rows per forward pass.

    Raises:
        InvalidInputError: The arrays do not fit each other, the model or ``class_names``.
    """
    return evaluate_predictions(y_test, predict_logits(model, x_test, device, batch_size), class_names=class_names)
