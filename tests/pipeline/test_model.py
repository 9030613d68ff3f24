"""The strategy MLP: its layers, name, size, and the config errors a strategy author will read."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from trainops.errors import InvalidInputError
from trainops.pipeline.model import (
    ACTIVATIONS,
    ArchitectureConfig,
    architecture_name,
    build_mlp,
    model_size_mb,
    parameter_count,
)


def test_layers_are_linear_activation_dropout_per_hidden_layer_then_logits() -> None:
    config = ArchitectureConfig(hidden_layers=[64, 32], activation="tanh", dropout=0.1)
    model = build_mlp(10, config)

    assert [type(layer) for layer in model] == [
        nn.Linear,
        nn.Tanh,
        nn.Dropout,
        nn.Linear,
        nn.Tanh,
        nn.Dropout,
        nn.Linear,
    ]
    linears = [layer for layer in model if isinstance(layer, nn.Linear)]
    assert [(layer.in_features, layer.out_features) for layer in linears] == [(10, 64), (64, 32), (32, 3)]
    assert all(layer.p == 0.1 for layer in model if isinstance(layer, nn.Dropout))
    assert model(torch.zeros(5, 10)).shape == (5, 3)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_builds_its_module(activation: Any) -> None:
    model = build_mlp(4, ArchitectureConfig(hidden_layers=[8], activation=activation), num_classes=2)
    assert type(model[1]) is type(ACTIVATIONS[activation]())
    assert model(torch.zeros(1, 4)).shape == (1, 2)


def test_zero_dropout_keeps_the_layer_so_weight_names_do_not_change() -> None:
    with_dropout = build_mlp(4, ArchitectureConfig(hidden_layers=[8, 8], dropout=0.3))
    without = build_mlp(4, ArchitectureConfig(hidden_layers=[8, 8], dropout=0.0))
    assert list(with_dropout.state_dict()) == list(without.state_dict())


def test_architecture_name() -> None:
    assert architecture_name(ArchitectureConfig(hidden_layers=[64, 32, 16])) == "mlp_64_32_16"
    assert architecture_name(ArchitectureConfig(hidden_layers=[8])) == "mlp_8"


@pytest.mark.parametrize(
    ("input_size", "hidden", "classes"),
    [(10, [64, 32], 3), (1, [1], 2), (60, [128, 64, 32, 16], 3)],
)
def test_parameter_count_is_weights_plus_biases_of_every_linear_layer(
    input_size: int, hidden: list[int], classes: int
) -> None:
    widths = [input_size, *hidden, classes]
    expected = sum(fan_in * fan_out + fan_out for fan_in, fan_out in pairwise(widths))

    model = build_mlp(input_size, ArchitectureConfig(hidden_layers=hidden), num_classes=classes)

    assert parameter_count(model) == expected


def test_model_size_counts_parameter_and_buffer_bytes_in_mebibytes() -> None:
    model = build_mlp(60, ArchitectureConfig(hidden_layers=[64, 32]))
    assert model_size_mb(model) == pytest.approx(parameter_count(model) * 4 / 2**20)

    model.append(nn.BatchNorm1d(3))  # 6 float parameters, 2 float buffers and one int64 counter
    assert model_size_mb(model) == pytest.approx((parameter_count(model) * 4 + 2 * 3 * 4 + 8) / 2**20)


def test_same_seed_builds_the_same_weights_without_touching_the_global_generator() -> None:
    config = ArchitectureConfig(hidden_layers=[16])
    state = torch.random.get_rng_state()

    first, second = build_mlp(4, config, seed=7), build_mlp(4, config, seed=7)

    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters(), strict=True))
    other = build_mlp(4, config, seed=8)
    assert not torch.equal(next(first.parameters()), next(other.parameters()))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"hidden_layers": []}, r"hidden_layers must list 1 to 8 layer sizes, got 0 \(\[\]\)"),
        ({"hidden_layers": [8] * 9}, r"1 to 8 layer sizes, got 9"),
        ({"hidden_layers": [64, 0]}, r"hidden_layers\[1\] is 0: each layer needs 1 to 4096 units"),
        ({"hidden_layers": [5000]}, r"hidden_layers\[0\] is 5000"),
        ({"hidden_layers": [True]}, r"valid integer"),
        ({"hidden_layers": [8], "dropout": 1.0}, r"dropout\n.*less than 1"),
        ({"hidden_layers": [8], "dropout": -0.1}, r"dropout\n.*greater than or equal to 0"),
        ({"hidden_layers": [8], "activation": "swish"}, r"activation\n.*'relu', 'tanh'"),
        ({"hidden_layers": [8], "layers": [8]}, r"layers\n.*Extra inputs are not permitted"),
    ],
)
def test_config_errors_name_the_rule_and_the_value(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ArchitectureConfig(**fields)


@pytest.mark.parametrize(
    ("input_size", "classes", "message"),
    [
        (0, 3, r"input_size must be a positive number of features, got 0"),
        (True, 3, r"input_size .* got True"),
        (4, 1, r"num_classes must be at least 2, got 1"),
    ],
)
def test_build_refuses_impossible_sizes(input_size: Any, classes: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        build_mlp(input_size, ArchitectureConfig(hidden_layers=[8]), num_classes=classes)
