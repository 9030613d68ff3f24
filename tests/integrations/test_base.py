"""What the framework integrations share: they take exactly TrainingCallbacks' options, and importing the package
loads no framework (each module imports its own, and only scripts that use that framework import it)."""

from __future__ import annotations

import inspect
from pathlib import Path

from tests.test_light_import import heavy_modules_loaded
from trainops.callbacks import TrainingCallbacks
from trainops.integrations.base import TrainingOptions

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = ("lightning", "pytorch_lightning", "transformers", "keras", "torch", "tensorflow", "jax")


def test_the_options_are_the_keyword_arguments_of_training_callbacks() -> None:
    parameters = inspect.signature(TrainingCallbacks).parameters.values()
    keywords = {parameter.name for parameter in parameters if parameter.kind is inspect.Parameter.KEYWORD_ONLY}
    assert set(TrainingOptions.__annotations__) == keywords


def test_importing_the_package_loads_no_framework() -> None:
    assert heavy_modules_loaded("import trainops.integrations.base", FRAMEWORKS, ROOT) == {}
