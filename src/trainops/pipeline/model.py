"""The strategy model: a multilayer perceptron over fuzzy features, described by a small config.

The config is what a strategy YAML holds under ``model.architecture`` and what the model registry saves next to
the weights, so a saved model can always be rebuilt layer for layer from it.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Annotated, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from trainops.errors import InvalidInputError

Activation = Literal["relu", "tanh", "sigmoid", "gelu", "leaky_relu", "elu"]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
}
"""The module each ``activation`` name builds (torch defaults, e.g. a 0.01 slope for ``leaky_relu``)."""

MAX_HIDDEN_LAYERS = 8
MAX_LAYER_SIZE = 4096


class ArchitectureConfig(BaseModel):
    """The shape of the MLP: hidden layer sizes, activation and dropout.

    Args:
        hidden_layers: Units per hidden layer, input side first (``[64, 32]``); 1 to 8 layers of 1 to 4096 units.
        activation: The non-linearity after every hidden layer.
        dropout: Probability of zeroing a hidden unit while training, in [0, 1); 0 keeps the layer as a no-op so
            the layer positions (and so the weight names) do not depend on it.

    >>> architecture_name(ArchitectureConfig(hidden_layers=[64, 32, 16]))
    'mlp_64_32_16'
    """

    model_config = ConfigDict(extra="forbid")

    hidden_layers: list[Annotated[int, Field(strict=True)]]
    activation: Activation = "relu"
    dropout: float = Field(0.2, ge=0.0, lt=1.0, allow_inf_nan=False)

    @field_validator("hidden_layers")
    @classmethod
    def _check_hidden_layers(cls, layers: list[int]) -> list[int]:
        if not 1 <= len(layers) <= MAX_HIDDEN_LAYERS:
            raise ValueError(
                f"hidden_layers must list 1 to {MAX_HIDDEN_LAYERS} layer sizes, got {len(layers)} ({layers}); "
                "e.g. [64, 32]"
            )
        for position, size in enumerate(layers):
            if not 1 <= size <= MAX_LAYER_SIZE:
                raise ValueError(f"hidden_layers[{position}] is {size}: each layer needs 1 to {MAX_LAYER_SIZE} units")
        return layers


def build_mlp(
    input_size: int,
    config: ArchitectureConfig,
    num_classes: int = 3,
    *,
    seed: int | None = None,
) -> nn.Sequential:
    """Build the MLP: ``Linear -> activation -> Dropout`` per hidden layer, then a ``Linear`` to class logits.

    The model returns logits (no softmax): the loss applies log-softmax itself, and ``predict_proba`` applies
    softmax when probabilities are wanted.

    Args:
        input_size: Number of features per sample.
        config: Hidden layers, activation and dropout.
        num_classes: Number of output classes (3 for BUY/HOLD/SELL).
        seed: When given, the initial weights come from this seed without touching the global random state, so
            the same seed builds the same model; ``None`` draws from the global generator.

    Returns:
        The model, on the CPU.

    Raises:
        InvalidInputError: ``input_size`` or ``num_classes`` is out of range.

    >>> model = build_mlp(10, ArchitectureConfig(hidden_layers=[8], dropout=0.0))
    >>> [type(layer).__name__ for layer in model]
    ['Linear', 'ReLU', 'Dropout', 'Linear']
    """
    if not _is_count(input_size, minimum=1):
        raise InvalidInputError(
            f"input_size must be a positive number of features, got {input_size!r}; "
            "pass the width of the feature matrix (x.shape[1])",
            details={"input_size": repr(input_size)},
        )
    if not _is_count(num_classes, minimum=2):
        raise InvalidInputError(
            f"num_classes must be at least 2, got {num_classes!r}",
            details={"num_classes": repr(num_classes)},
        )
    if seed is None:
        return _layers(int(input_size), config, int(num_classes))
    # fork_rng restores the global CPU generator afterwards: building a model should not reseed the caller's run.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _layers(int(input_size), config, int(num_classes))


def _is_count(value: object, *, minimum: int) -> bool:
    """An integer (numpy's too, as ``x.shape`` arithmetic yields) of at least ``minimum``; ``True`` is no count."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= minimum


def _layers(input_size: int, config: ArchitectureConfig, num_classes: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = input_size
    for size in config.hidden_layers:
        layers += [nn.Linear(width, size), ACTIVATIONS[config.activation](), nn.Dropout(config.dropout)]
        width = size
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def architecture_name(config: ArchitectureConfig) -> str:
    """A short name for the architecture, for run and model names: ``mlp_64_32_16``."""
    return "mlp_" + "_".join(str(size) for size in config.hidden_layers)


def parameter_count(model: nn.Module) -> int:
    """Number of parameters (trainable or not) in ``model``."""
    return sum(parameter.numel() for parameter in model.parameters())


def model_size_mb(model: nn.Module) -> float:
    """Memory the model's parameters and buffers take, in MiB (2**20 bytes): the size of its saved weights."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors) / 2**20
