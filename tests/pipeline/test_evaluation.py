"""Test-set evaluation, checked against scikit-learn (the reference, installed for development only)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
from sklearn.metrics import accuracy_score, log_loss, precision_recall_fscore_support
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from torch import nn

from trainops.errors import InvalidInputError
from trainops.pipeline.evaluation import ClassMetrics, confusion_matrix, evaluate, evaluate_predictions
from trainops.pipeline.model import ArchitectureConfig, build_mlp
from trainops.pipeline.trainer import predict_logits

LABELS = [0, 1, 2]
NAMES = ("BUY", "HOLD", "SELL")


def one_hot_logits(predictions: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    """Scores whose argmax is ``predictions``."""
    return np.eye(3, dtype=np.float32)[predictions] * 4.0


def random_case(seed: int, true_classes: list[int], predicted_classes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.choice(true_classes, size=200), rng.choice(predicted_classes, size=200)


CASES = [
    pytest.param([0, 1, 2], [0, 1, 2], id="all classes"),
    pytest.param([0, 2], [0, 1, 2], id="HOLD missing from y_test"),
    pytest.param([0, 1], [0, 1], id="SELL neither true nor predicted"),
    pytest.param([1], [0, 1, 2], id="one true class"),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("true_classes", "predicted_classes"), CASES)
def test_metrics_match_scikit_learn(seed: int, true_classes: list[int], predicted_classes: list[int]) -> None:
    y_true, y_pred = random_case(seed, true_classes, predicted_classes)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division warnings for absent classes
        result = evaluate_predictions(y_true, one_hot_logits(y_pred), class_names=NAMES)

    def reference(average: str | None) -> Any:
        return precision_recall_fscore_support(y_true, y_pred, labels=LABELS, average=average, zero_division=0)

    precision, recall, f1, support = reference(None)
    macro, weighted = reference("macro"), reference("weighted")
    assert (result.precision, result.recall, result.f1_score) == pytest.approx(macro[:3])
    assert (result.precision_weighted, result.recall_weighted, result.f1_weighted) == pytest.approx(weighted[:3])
    assert result.confusion_matrix == sk_confusion_matrix(y_true, y_pred, labels=LABELS).tolist()
    assert result.test_accuracy == pytest.approx(accuracy_score(y_true, y_pred))
    assert result.support == 200
    for index, name in enumerate(NAMES):
        metrics = result.per_class[name]
        assert (metrics.precision, metrics.recall, metrics.f1) == pytest.approx(
            (precision[index], recall[index], f1[index])
        )
        assert metrics.support == support[index]
        assert metrics.accuracy == metrics.recall


def test_loss_matches_scikit_learn_log_loss() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(300, 3)).astype(np.float32)
    y_true = rng.choice([0, 2], size=300)
    probabilities = torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()

    result = evaluate_predictions(y_true, logits)

    assert result.test_loss == pytest.approx(log_loss(y_true, probabilities, labels=LABELS), rel=1e-6)


def test_loss_stays_finite_for_confident_logits() -> None:
    result = evaluate_predictions(np.array([0, 1]), np.array([[1000.0, 0.0, -1000.0], [0.0, 900.0, 0.0]]))
    assert result.test_loss == pytest.approx(0.0, abs=1e-12)


def test_result_serialises_with_class_names() -> None:
    result = evaluate_predictions(np.array([0, 1, 2, 2]), one_hot_logits(np.array([0, 2, 2, 2])))

    data = result.model_dump()
    assert data["class_names"] == ["BUY", "HOLD", "SELL"]
    assert data["per_class"]["SELL"] == {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2, "accuracy": 1.0}
    assert data["per_class"]["HOLD"] == ClassMetrics(precision=0, recall=0, f1=0, support=1, accuracy=0).model_dump()
    assert data["confusion_matrix"] == [[1, 0, 0], [0, 0, 1], [0, 0, 2]]


def test_evaluate_runs_the_model_and_scores_its_predictions() -> None:
    rng = np.random.default_rng(0)
    x_test = rng.normal(size=(500, 6)).astype(np.float32)
    y_test = rng.integers(0, 3, 500)
    model = build_mlp(6, ArchitectureConfig(hidden_layers=[8]), seed=0)

    result = evaluate(model, x_test, y_test, device="cpu", batch_size=128)

    predictions = predict_logits(model, x_test, "cpu").argmax(axis=1)
    assert result.test_accuracy == pytest.approx(accuracy_score(y_test, predictions))
    model.eval()  # evaluate ran it without dropout
    with torch.no_grad():
        expected_loss = nn.functional.cross_entropy(model(torch.from_numpy(x_test)), torch.from_numpy(y_test))
    assert result.test_loss == pytest.approx(float(expected_loss), rel=1e-5)


def test_evaluate_takes_the_class_names_of_the_model() -> None:
    logits = np.array([[0.0, 2.0], [3.0, 0.0]], dtype=np.float32)
    result = evaluate(nn.Identity(), logits, np.array([1, 1]), device="cpu", class_names=("DOWN", "UP"))
    assert list(result.per_class) == ["DOWN", "UP"]
    assert result.confusion_matrix == [[0, 0], [1, 1]]


@pytest.mark.parametrize(
    ("y_true", "logits", "names", "message"),
    [
        ([0, 1], np.zeros((2, 3)), ("UP", "DOWN"), r"scores have shape \(2, 3\), expected \(2, 2\)"),
        ([0, 3], np.zeros((2, 3)), NAMES, r"y_test holds the label 3, outside the classes 0\.\.2 \(BUY, HOLD, SELL\)"),
        ([], np.zeros((0, 3)), NAMES, r"y_test must be a non-empty 1-D array"),
        ([0.0, 1.0], np.zeros((2, 3)), NAMES, r"integer class indices, got shape \(2,\) and dtype float64"),
        ([0, 1], np.zeros((3, 3)), NAMES, r"one row per test sample"),
        ([0, 1], np.zeros((2, 3)), ("BUY", "BUY", "SELL"), r"class_names must name at least 2 distinct classes"),
    ],
)
def test_mismatched_inputs_are_refused(y_true: Any, logits: Any, names: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        evaluate_predictions(np.array(y_true), logits, class_names=names)


def test_confusion_matrix_counts_true_rows_against_predicted_columns() -> None:
    matrix = confusion_matrix(np.array([0, 0, 1, 2, 2]), np.array([0, 2, 1, 2, 0]), 3)
    assert matrix.tolist() == [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
