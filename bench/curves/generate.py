"""Rebuild the corpus of real training curves: ``bench/curves/corpus.json``.

Every run here really trains, on the CPU, and records its full per-epoch history for every planned epoch. The
families of runs (a run's id starts with its family):

- ``digits``, ``breast_cancer``, ``wine``, ``diabetes``: small PyTorch MLPs in a plain loop on the data sets that
  ship inside scikit-learn (the first three classification, diabetes regression), across widths, depths,
  dropout, optimizers and learning rates (some large enough to diverge to NaN), learning-rate schedules, small or
  label-noisy training sets (which overfit) and slow learners;
- ``strategy``: the strategy pipeline (indicators -> fuzzy memberships -> features -> ZigZag labels -> MLP) on the
  real sample market data, with its early stopping switched off so the whole planned history is recorded;
- ``lightning`` and ``keras``: the same kinds of MLPs on the same data sets, trained by ``lightning.pytorch``'s
  ``Trainer`` and by Keras 3's ``fit`` (torch backend), on at most ``MAX_TRAIN`` training samples;
- ``transformers``: a tiny BERT or GPT-2 built from its config (nothing downloaded) trained by Hugging Face's
  ``Trainer`` with its own schedules (linear, cosine, constant) and gradient clipping, each data set read as tokens
  (one token per feature: its bin, see :func:`tokens`);
- ``schedules``: the scikit-learn families' MLPs and loop under learning-rate schedules that bend curves in ways a
  trend line misreads: step decay at fixed epochs, cosine annealing, linear warm-up then a linear or cosine fall,
  cosine with warm restarts, one-cycle (see :func:`schedules_spec`);
- ``strategy_wide``: the strategy pipeline's three strategy files moved to other symbols and timeframes of the
  sample data, several at once (two symbols, or a base timeframe with a longer one's context), with labels sized to
  each market and the pipeline's own learning-rate schedulers (see :data:`MARKETS`);
- ``timm``: timm's tiny test models (a ResNet, a ViT, an EfficientNet, a ConvNeXt, built from their configs)
  classifying synthetic images in a loop shaped like timm's ``train.py``, with timm's schedulers (see
  :func:`timm_spec`);
- ``yolo``: Ultralytics' ``yolov8n`` built from its yaml, detecting coloured boxes on synthetic images with
  Ultralytics' own training loop, its warm-up and its mosaic augmentation (see :func:`yolo_spec`).

The framework and vision families report through trainops' own integrations (Lightning's, Keras' and Hugging
Face's ``TrainOpsCallback``, ``trainops.integrations.timm.report_epoch``, ``trainops.integrations.ultralytics.attach``)
into an in-process trainops on a temporary SQLite database, and their curves are read back from it through the facade
(``get_metrics``): the corpus holds what trainops stored.

The vision families need torchvision, which lives in its own environment (``.venv-vision``: another torch, timm and
Ultralytics, no scikit-learn), so the corpus records the versions of what trained each family, family by family.

Runs are drawn from archetypes (healthy, overfitting, slow, unstable, regularised, anything) so that stopping
and continuing are both common answers; each run's configuration and seed come from the corpus seed (the framework
families and those added since each from a generator of their own, so adding or resizing one changes no other run),
and torch runs single-threaded, so the same seed rebuilds the same corpus on the same versions (see the file's
header) and the same trainops: a change to the strategy pipeline changes the strategy runs it would retrain.

    .venv/bin/python bench/curves/generate.py            # all 500 runs but the vision families': ~20 min on 2 cores
    .venv-vision/bin/python bench/curves/generate.py --families timm yolo   # the vision families' 96: ~25 min
    .venv/bin/python bench/curves/generate.py --families lightning keras transformers   # those alone: ~10 min
    .venv/bin/python bench/curves/generate.py --families schedules strategy_wide        # those alone: ~2.5 min
    .venv/bin/python bench/curves/generate.py --jobs 1 --limit 10 --out /tmp/corpus.json   # a quick look

``--families`` retrains the named families and keeps every other run of the corpus file as it is, with the versions
recorded for it; it refuses when the file was generated with another seed, and starts a file of only those families
when there is none. Without ``--families`` the generator trains every family this environment can and keeps the
others (the vision families, outside ``.venv-vision``).

Fresh runs, from another seed, are the check no calibration has seen (``bench/diagnosis.py --fresh``)::

    .venv/bin/python bench/curves/generate.py --seed 777 --out /tmp/fresh.json --families diabetes wine  # ...
    .venv-vision/bin/python bench/curves/generate.py --seed 777 --out /tmp/fresh.json --families timm
    .venv/bin/python bench/diagnosis.py --fresh /tmp/fresh.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainops.client import TrainOps

# set before any framework is imported, here and in every worker: Keras on torch (TensorFlow is not installed),
# Hugging Face offline (the tiny models are built from a config), no tokenizer threads
os.environ["KERAS_BACKEND"] = "torch"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

SEED = 20261201
OUT = Path(__file__).parent / "corpus.json"
DIGITS = 5
"""Significant digits kept per value: far below any difference the diagnosis judges, and compact."""

# Every family holds at least 40 runs, 20 of them held out: with fewer, one run's three cuts move a family's figures
# by several points (the framework and vision families, once 12 to 24 runs, were grown to 48).
SKLEARN_RUNS = {"digits": 56, "breast_cancer": 48, "wine": 44, "diabetes": 48}
STRATEGY_RUNS = 48
FRAMEWORK_RUNS = {"lightning": 48, "keras": 48, "transformers": 48}
"""Runs reported through trainops' framework integrations; each family's specs come from a generator of its own."""
LATER_RUNS = {"schedules": 72, "strategy_wide": 40}
"""Families added since, each from a generator of its own too: plain loops, like the first families."""
VISION_RUNS = {"timm": 48, "yolo": 48}
"""Families trained in the vision environment (``.venv-vision``: torch with torchvision, timm and Ultralytics, and no
scikit-learn), each from a generator of its own, on synthetic images written per run."""
VISION_HELP = (
    "the vision families need the vision environment: make .venv-vision/.installed, then "
    ".venv-vision/bin/python bench/curves/generate.py --families timm yolo"
)
DATASETS = ("digits", "breast_cancer", "wine", "diabetes")
MAX_TRAIN, MAX_VAL = 320, 256
"""The framework families' samples at most: a framework's loop costs milliseconds a batch, and a few
hundred samples still learn, overfit and diverge like the whole data set."""
STRATEGIES = ("mean_reversion", "trend_following", "multi_timeframe")
ARCHETYPES = ("healthy", "overfit", "slow", "unstable", "regularized", "anything")
PLANNED = (60, 80, 100, 120, 150, 200)
STORED_FIELDS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "learning_rate")
"""The per-epoch numbers a corpus run keeps."""


# ------------------------------------------------------------------------------------------------ run specs


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return float(f"{math.exp(rng.uniform(math.log(low), math.log(high))):.3g}")


def sklearn_spec(dataset: str, index: int, rng: random.Random) -> dict[str, Any]:
    """One run's configuration, drawn from an archetype in turn (so each data set gets every kind)."""
    archetype = ARCHETYPES[index % len(ARCHETYPES)]
    spec: dict[str, Any] = {
        "dataset": dataset,
        "archetype": archetype,
        "hidden": [rng.choice((32, 64, 128))] * rng.choice((1, 2)),
        "dropout": 0.0,
        "optimizer": "adam",
        "learning_rate": _log_uniform(rng, 1e-4, 2e-3),
        "weight_decay": 0.0,
        "batch_size": rng.choice((32, 64)),
        "epochs": rng.choice(PLANNED),
        "train_fraction": 1.0,
        "label_noise": 0.0,
        "schedule": "constant",
        "scale_target": True,
        "seed": rng.randrange(2**31),
    }
    if archetype == "healthy" and rng.random() < 0.5:
        spec |= {"optimizer": "momentum", "learning_rate": _log_uniform(rng, 1e-3, 2e-2)}
    elif archetype == "overfit":
        spec |= {
            "hidden": [rng.choice((128, 256, 512))] * rng.choice((2, 3)),
            "train_fraction": rng.choice((0.1, 0.2, 0.35)),
            "label_noise": rng.choice((0.0, 0.2, 0.4)) if dataset != "diabetes" else 0.0,
            "learning_rate": _log_uniform(rng, 1e-3, 1e-2),
            "batch_size": rng.choice((16, 32)),
        }
    elif archetype == "slow":
        spec |= {
            "optimizer": rng.choice(("sgd", "sgd", "adam")),
            "learning_rate": _log_uniform(rng, 1e-4, 3e-3),
            "hidden": [rng.choice((16, 32, 64))] * rng.choice((1, 2, 3)),
            "batch_size": rng.choice((64, 128)),
        }
        if spec["optimizer"] == "adam":
            spec["learning_rate"] = _log_uniform(rng, 2e-5, 2e-4)
    elif archetype == "unstable":
        spec |= {
            "optimizer": rng.choice(("sgd", "momentum", "adam", "rmsprop")),
            "learning_rate": _log_uniform(rng, 0.05, 5.0),
            "batch_size": rng.choice((8, 16, 32)),
            "scale_target": rng.random() < 0.5,
        }
    elif archetype == "regularized":
        spec |= {
            "hidden": [rng.choice((64, 128, 256))] * rng.choice((2, 3)),
            "dropout": rng.choice((0.2, 0.3, 0.5)),
            "weight_decay": rng.choice((1e-4, 1e-3, 1e-2)),
            "optimizer": rng.choice(("adam", "adamw", "momentum")),
            "schedule": rng.choice(("constant", "cosine", "step")),
            "label_noise": rng.choice((0.0, 0.1)) if dataset != "diabetes" else 0.0,
        }
        spec["learning_rate"] = _log_uniform(rng, 2e-4, 2e-3)
        if spec["optimizer"] == "momentum":
            spec["learning_rate"] = _log_uniform(rng, 2e-3, 3e-2)
    elif archetype == "anything":
        spec |= {
            "hidden": [rng.choice((8, 16, 64, 256))] * rng.choice((1, 2, 3)),
            "dropout": rng.choice((0.0, 0.0, 0.1, 0.3)),
            "optimizer": rng.choice(("sgd", "momentum", "adam", "adamw", "rmsprop")),
            "learning_rate": _log_uniform(rng, 1e-4, 0.3),
            "weight_decay": rng.choice((0.0, 0.0, 1e-4, 1e-2)),
            "batch_size": rng.choice((16, 32, 64, 128)),
            "train_fraction": rng.choice((0.25, 0.5, 1.0, 1.0)),
            "label_noise": rng.choice((0.0, 0.0, 0.1, 0.3)) if dataset != "diabetes" else 0.0,
            "schedule": rng.choice(("constant", "constant", "cosine", "step")),
        }
    return spec


def strategy_spec(index: int, rng: random.Random) -> dict[str, Any]:
    archetype = ARCHETYPES[index % len(ARCHETYPES)]
    spec: dict[str, Any] = {
        "strategy": STRATEGIES[index % len(STRATEGIES)],
        "archetype": archetype,
        "hidden": rng.choice(([32, 16], [64, 32], [128, 64])),
        "dropout": rng.choice((0.0, 0.2)),
        "optimizer": "adam",
        "learning_rate": _log_uniform(rng, 3e-4, 3e-3),
        "weight_decay": 0.0,
        "batch_size": rng.choice((32, 64, 128)),
        "epochs": rng.choice((60, 80, 100)),
        "seed": rng.randrange(2**31),
    }
    if archetype == "overfit":
        spec |= {"hidden": [256, 256, 128], "dropout": 0.0, "learning_rate": _log_uniform(rng, 1e-3, 5e-3)}
    elif archetype == "slow":
        spec |= {"optimizer": "sgd", "learning_rate": _log_uniform(rng, 1e-3, 2e-2)}
    elif archetype == "unstable":
        spec |= {"optimizer": rng.choice(("sgd", "rmsprop", "adam")), "learning_rate": _log_uniform(rng, 0.05, 2.0)}
    elif archetype == "regularized":
        spec |= {"dropout": 0.4, "weight_decay": 1e-3}
    elif archetype == "anything":
        spec |= {
            "optimizer": rng.choice(("sgd", "adam", "rmsprop")),
            "learning_rate": _log_uniform(rng, 1e-4, 0.1),
            "dropout": rng.choice((0.0, 0.2, 0.5)),
        }
    return spec


@dataclass(frozen=True)
class Market:
    """What a ``strategy_wide`` run trains on: a strategy file's indicators and fuzzy sets, moved to other symbols
    and timeframes (the sample data's: EURUSD 1h, 4h, 1d and GOOG 1d, 1w), with ZigZag labels sized to their
    swings (a move worth trading is larger on longer bars and on a stock than on a currency pair)."""

    strategy: str
    symbols: tuple[str, ...]
    timeframes: tuple[str, ...]
    zigzag_threshold: float
    label_lookahead: int


MARKETS = (
    Market("mean_reversion", ("EURUSD",), ("4h",), 0.008, 30),
    Market("mean_reversion", ("EURUSD",), ("1d",), 0.015, 10),
    Market("mean_reversion", ("GOOG",), ("1d",), 0.05, 20),
    Market("mean_reversion", ("GOOG",), ("1w",), 0.1, 12),
    Market("mean_reversion", ("EURUSD", "GOOG"), ("1d",), 0.02, 15),
    Market("trend_following", ("GOOG",), ("1w",), 0.12, 12),
    Market("trend_following", ("GOOG",), ("1d",), 0.04, 15),
    Market("multi_timeframe", ("EURUSD",), ("1h", "4h"), 0.005, 48),
    Market("multi_timeframe", ("EURUSD",), ("4h", "1d"), 0.008, 30),
    Market("multi_timeframe", ("GOOG",), ("1d", "1w"), 0.07, 25),
)
"""The oscillators of ``mean_reversion`` read alike on any market; ``trend_following``'s price ratios suit GOOG
and ``multi_timeframe``'s MACD histograms a range of prices, so they move across timeframes, not assets."""


def strategy_wide_spec(index: int, rng: random.Random) -> dict[str, Any]:
    """A ``strategy_wide`` run: the ``strategy`` family's archetypes on a market in turn (see :data:`MARKETS`),
    over more planned epochs, with half the runs under one of the pipeline's own learning-rate schedulers (step,
    exponential, reduce on plateau) and some with gradient clipping."""
    market = MARKETS[index % len(MARKETS)]
    spec = strategy_spec(index, rng) | {
        "strategy": market.strategy,
        "symbols": list(market.symbols),
        "timeframes": list(market.timeframes),
        "zigzag_threshold": market.zigzag_threshold,
        "label_lookahead": market.label_lookahead,
        "epochs": rng.choice((60, 80, 100, 150)),
        "lr_scheduler": None,
        "gradient_clip": rng.choice((None, None, 1.0)),
    }
    match rng.choice(("none", "step", "exponential", "reduce_on_plateau")):
        case "step":
            spec["lr_scheduler"] = {"type": "step", "step_size": rng.choice((10, 20, 30)), "gamma": 0.5}
        case "exponential":
            spec["lr_scheduler"] = {"type": "exponential", "gamma": rng.choice((0.95, 0.97, 0.99))}
        case "reduce_on_plateau":
            spec["lr_scheduler"] = {"type": "reduce_on_plateau", "factor": 0.5, "patience": rng.choice((3, 5, 10))}
    return spec


def mlp_spec(index: int, rng: random.Random) -> dict[str, Any]:
    """A Lightning or Keras run: the same MLPs as the scikit-learn families, each data set in turn getting every
    archetype, on at most ``MAX_TRAIN`` training and ``MAX_VAL`` validation samples."""
    dataset = DATASETS[index // len(ARCHETYPES) % len(DATASETS)]
    return sklearn_spec(dataset, index, rng) | {"max_train": MAX_TRAIN, "max_val": MAX_VAL}


def transformers_spec(index: int, rng: random.Random) -> dict[str, Any]:
    """A Hugging Face run: a tiny BERT or GPT-2 built from its config, over a scikit-learn data set read as
    tokens (each feature's bin, see :func:`tokens`), trained by the ``Trainer`` with its own schedules."""
    archetype = ARCHETYPES[index % len(ARCHETYPES)]
    dataset = DATASETS[index // len(ARCHETYPES) % len(DATASETS)]
    spec: dict[str, Any] = {
        "dataset": dataset,
        "archetype": archetype,
        "model": rng.choice(("bert", "gpt2")),
        "hidden": rng.choice((16, 32)),
        "layers": rng.choice((1, 2)),
        "dropout": 0.0,
        "optimizer": "adamw",
        "learning_rate": _log_uniform(rng, 3e-4, 3e-3),
        "weight_decay": 0.0,
        "batch_size": rng.choice((32, 64)),
        "epochs": rng.choice(PLANNED),
        "train_fraction": 1.0,
        "label_noise": 0.0,
        "schedule": rng.choice(("linear", "constant", "cosine")),
        "max_grad_norm": 1.0,
        "scale_target": True,
        "max_train": MAX_TRAIN,
        "max_val": MAX_VAL,
        "seed": rng.randrange(2**31),
    }
    if archetype == "overfit":
        spec |= {
            "hidden": 64,
            "layers": rng.choice((2, 3)),
            "train_fraction": rng.choice((0.1, 0.2, 0.35)),
            "label_noise": rng.choice((0.0, 0.2, 0.4)) if dataset != "diabetes" else 0.0,
            "learning_rate": _log_uniform(rng, 1e-3, 5e-3),
            "batch_size": rng.choice((16, 32)),
            "schedule": "constant",
        }
    elif archetype == "slow":
        spec |= {"optimizer": rng.choice(("sgd", "sgd", "adamw")), "schedule": rng.choice(("constant", "linear"))}
        spec["learning_rate"] = (
            _log_uniform(rng, 1e-3, 3e-2) if spec["optimizer"] == "sgd" else _log_uniform(rng, 1e-5, 1e-4)
        )
    elif archetype == "unstable":
        spec |= {
            "optimizer": rng.choice(("sgd", "adamw")),
            "max_grad_norm": rng.choice((0.0, 0.0, 1.0)),
            "batch_size": rng.choice((16, 32)),
            "scale_target": rng.random() < 0.5,
        }
        spec["learning_rate"] = (
            _log_uniform(rng, 0.3, 30.0) if spec["optimizer"] == "sgd" else _log_uniform(rng, 0.01, 1.0)
        )
    elif archetype == "regularized":
        spec |= {
            "hidden": rng.choice((32, 64)),
            "layers": 2,
            "dropout": rng.choice((0.1, 0.2, 0.3)),
            "weight_decay": rng.choice((0.01, 0.1)),
            "schedule": rng.choice(("cosine", "linear")),
            "label_noise": rng.choice((0.0, 0.1)) if dataset != "diabetes" else 0.0,
        }
    elif archetype == "anything":
        spec |= {
            "hidden": rng.choice((16, 32, 64)),
            "layers": rng.choice((1, 2, 3)),
            "dropout": rng.choice((0.0, 0.0, 0.1, 0.3)),
            "optimizer": rng.choice(("sgd", "adamw", "adamw")),
            "weight_decay": rng.choice((0.0, 0.0, 0.01, 0.1)),
            "batch_size": rng.choice((16, 32, 64)),
            "train_fraction": rng.choice((0.25, 0.5, 1.0, 1.0)),
            "label_noise": rng.choice((0.0, 0.0, 0.1, 0.3)) if dataset != "diabetes" else 0.0,
            "schedule": rng.choice(("linear", "constant", "cosine")),
            "max_grad_norm": rng.choice((0.0, 1.0, 1.0)),
        }
        spec["learning_rate"] = (
            _log_uniform(rng, 1e-3, 1.0) if spec["optimizer"] == "sgd" else _log_uniform(rng, 1e-5, 0.03)
        )
    return spec


SCHEDULES = ("multistep", "cosine", "warmup_linear", "warmup_cosine", "restarts", "one_cycle")
"""The ``schedules`` family's learning-rate schedules, each set per epoch by :func:`_learning_rate`."""


def schedules_spec(index: int, rng: random.Random) -> dict[str, Any]:
    """A run of the ``schedules`` family: a scikit-learn family's MLP (its data set and archetype in turn) trained
    with a learning-rate schedule that bends its curves, and that schedule's parameters.

    - ``multistep``: the rate drops by ``gamma`` at each of its ``milestones`` (epochs), a plateau and then a
      sudden fall in the loss;
    - ``cosine``: annealed from the rate to 0 over the planned epochs;
    - ``warmup_linear``, ``warmup_cosine``: a linear rise over ``warmup_epochs`` to a peak (the drawn rate, or
      three times it, as people pair warm-up with larger rates), then a linear or cosine fall to 0;
    - ``restarts``: cosine annealing restarted every ``cycle_epochs``, each cycle ``cycle_mult`` times longer
      (SGDR), so the loss jumps back up at every restart;
    - ``one_cycle``: a cosine rise from a 25th of the peak over ``warmup_fraction`` of the run, then a fall to
      far below where it started.
    """
    dataset = DATASETS[index // len(ARCHETYPES) % len(DATASETS)]  # the archetype is sklearn_spec's, in turn
    # the schedule turns one place each block of archetypes: every schedule meets every archetype and data set
    schedule = SCHEDULES[(index + index // len(ARCHETYPES)) % len(SCHEDULES)]
    spec = sklearn_spec(dataset, index, rng) | {"schedule": schedule}
    planned = spec["epochs"]
    match spec["schedule"]:
        case "multistep":
            fractions = rng.choice(((0.5, 0.75), (0.3, 0.6, 0.8), (0.25, 0.5, 0.75), (0.4,)))
            spec |= {"milestones": [round(planned * f) for f in fractions], "gamma": rng.choice((0.1, 0.2, 0.5))}
        case "warmup_linear" | "warmup_cosine":
            spec |= {"warmup_epochs": max(2, round(planned * rng.choice((0.05, 0.1, 0.2))))}
            spec["learning_rate"] = float(f"{spec['learning_rate'] * rng.choice((1, 3)):.3g}")
        case "restarts":
            cycle_mult = rng.choice((1, 2))
            cycle_epochs = round(planned / rng.choice((3, 4, 5) if cycle_mult == 1 else (3, 7)))
            spec |= {"cycle_epochs": max(5, cycle_epochs), "cycle_mult": cycle_mult}
        case "one_cycle":
            spec |= {"warmup_fraction": rng.choice((0.2, 0.3, 0.4))}
            spec["learning_rate"] = float(f"{spec['learning_rate'] * rng.choice((1, 3)):.3g}")
    return spec


TIMM_MODELS = ("test_resnet", "test_vit", "test_efficientnet", "test_convnext")
"""timm's tiny test models, built from their configs (nothing downloaded): a ResNet, a ViT, an EfficientNet and a
ConvNeXt of a few hundred thousand parameters each."""
TIMM_PLANNED = (40, 60, 80, 100)
IMAGE_SIZE = 32


def timm_spec(index: int, rng: random.Random) -> dict[str, Any]:
    """A timm run: one of :data:`TIMM_MODELS` classifying synthetic images (each class a blurred random pattern,
    each image its class's faint pattern under Gaussian noise, see :func:`images`), in a loop shaped like timm's
    ``train.py`` (``train_one_epoch``/``validate`` dicts, reported with ``trainops.integrations.timm.report_epoch``)
    with timm's own schedulers (``create_scheduler_v2``: cosine or step, with or without warm-up, or none)."""
    archetype = ARCHETYPES[index % len(ARCHETYPES)]
    optimizer = rng.choice(("sgd", "adamw"))
    spec: dict[str, Any] = {
        "archetype": archetype,
        "model": TIMM_MODELS[index // len(ARCHETYPES) % len(TIMM_MODELS)],
        "classes": rng.choice((4, 6, 8)),
        "train_samples": 256,
        "val_samples": 128,
        "signal": rng.choice((0.3, 0.45, 0.6, 0.9)),
        "label_noise": 0.0,
        "optimizer": optimizer,
        "learning_rate": _log_uniform(rng, 0.01, 0.1) if optimizer == "sgd" else _log_uniform(rng, 3e-4, 3e-3),
        "weight_decay": rng.choice((0.0, 1e-4)),
        "drop_rate": 0.0,
        "batch_size": rng.choice((32, 64)),
        "sched": rng.choice(("cosine", "step", "none")),
        "warmup_epochs": rng.choice((0, 0, 3)),
        "epochs": rng.choice(TIMM_PLANNED),
        "seed": rng.randrange(2**31),
    }
    if archetype == "overfit":
        spec |= {
            "train_samples": rng.choice((32, 48, 64)),
            "label_noise": rng.choice((0.0, 0.2, 0.4)),
            "weight_decay": 0.0,
            "sched": "none",
            "batch_size": 16,
        }
    elif archetype == "slow":
        spec["learning_rate"] = _log_uniform(rng, 1e-4, 1e-3) if optimizer == "sgd" else _log_uniform(rng, 1e-5, 1e-4)
    elif archetype == "unstable":
        spec |= {"batch_size": 16, "warmup_epochs": 0}
        spec["learning_rate"] = _log_uniform(rng, 0.5, 5.0) if optimizer == "sgd" else _log_uniform(rng, 0.01, 0.3)
    elif archetype == "regularized":
        spec |= {
            "weight_decay": rng.choice((0.05, 0.1)) if optimizer == "adamw" else rng.choice((5e-4, 1e-3)),
            "drop_rate": rng.choice((0.2, 0.3, 0.5)),
            "label_noise": rng.choice((0.0, 0.1)),
            "sched": "cosine",
            "warmup_epochs": rng.choice((0, 3, 5)),
        }
    elif archetype == "anything":
        spec |= {
            "train_samples": rng.choice((48, 128, 256, 256)),
            "label_noise": rng.choice((0.0, 0.0, 0.1, 0.3)),
            "drop_rate": rng.choice((0.0, 0.0, 0.2)),
            "weight_decay": rng.choice((0.0, 1e-4, 0.05)),
            "batch_size": rng.choice((16, 32, 64)),
        }
        spec["learning_rate"] = _log_uniform(rng, 1e-3, 1.0) if optimizer == "sgd" else _log_uniform(rng, 1e-5, 0.03)
    return spec


YOLO_PLANNED = (30, 40, 60)


def yolo_spec(index: int, rng: random.Random) -> dict[str, Any]:
    """A YOLO run: Ultralytics' ``yolov8n`` built from its yaml (no weights), detecting one or two coloured boxes
    on synthetic 64x64 images (see :func:`boxes`), with Ultralytics' own training loop: its warm-up, linear or
    cosine decay, mosaic augmentation closed for the last epochs, reported through
    ``trainops.integrations.ultralytics.attach``. The loss is the sum of its box, class and DFL losses."""
    archetype = ARCHETYPES[index % len(ARCHETYPES)]
    spec: dict[str, Any] = {
        "archetype": archetype,
        "model": "yolov8n.yaml",
        "train_images": 48,
        "val_images": 16,
        "classes": rng.choice((1, 2)),
        "optimizer": "SGD",
        "lr0": _log_uniform(rng, 0.005, 0.02),
        "lrf": 0.01,
        "cos_lr": rng.random() < 0.5,
        "weight_decay": 0.0005,
        "warmup_epochs": 3.0,
        "mosaic": 1.0,
        "close_mosaic": 10,
        "augment": True,
        "batch": 8,
        "epochs": rng.choice(YOLO_PLANNED),
        "seed": rng.randrange(2**31),
    }
    if archetype == "overfit":
        spec |= {"train_images": rng.choice((8, 12)), "mosaic": 0.0, "close_mosaic": 0, "augment": False, "batch": 4}
    elif archetype == "slow":
        spec |= {"lr0": _log_uniform(rng, 1e-4, 5e-4)}
    elif archetype == "unstable":
        spec |= {"lr0": _log_uniform(rng, 0.05, 0.3), "warmup_epochs": 0.0, "batch": 4}
    elif archetype == "regularized":
        spec |= {"weight_decay": rng.choice((0.005, 0.01)), "cos_lr": True}
    elif archetype == "anything":
        spec |= {
            "optimizer": rng.choice(("SGD", "AdamW")),
            "train_images": rng.choice((16, 32, 48)),
            "augment": rng.random() < 0.7,
            "batch": rng.choice((4, 8)),
        }
        spec["lr0"] = _log_uniform(rng, 1e-3, 0.05) if spec["optimizer"] == "SGD" else _log_uniform(rng, 1e-4, 3e-3)
    return spec


FAMILY_SPECS = {
    "lightning": mlp_spec,
    "keras": mlp_spec,
    "transformers": transformers_spec,
    "schedules": schedules_spec,
    "strategy_wide": strategy_wide_spec,
    "timm": timm_spec,
    "yolo": yolo_spec,
}


def all_specs(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    specs = [
        {"id": f"{dataset}-{i:03d}", "family": dataset, **sklearn_spec(dataset, i, rng)}
        for dataset, count in SKLEARN_RUNS.items()
        for i in range(count)
    ]
    specs += [{"id": f"strategy-{i:03d}", "family": "strategy", **strategy_spec(i, rng)} for i in range(STRATEGY_RUNS)]
    for family, count in (FRAMEWORK_RUNS | LATER_RUNS | VISION_RUNS).items():
        # a generator of its own per family: adding or resizing one leaves every other run as it was
        family_rng = random.Random(f"{seed}:{family}")
        specs += [
            {"id": f"{family}-{i:03d}", "family": family, **FAMILY_SPECS[family](i, family_rng)} for i in range(count)
        ]
    return specs


def families() -> list[str]:
    """Every family of runs, in the corpus' order."""
    return [*SKLEARN_RUNS, "strategy", *FRAMEWORK_RUNS, *LATER_RUNS, *VISION_RUNS]


# ------------------------------------------------------------------------------------------------ training


def _round(value: float) -> float | None:
    if not math.isfinite(value):
        return None
    return float(f"{value:.{DIGITS}g}")


def _history(records: Sequence[Mapping[str, float]], planned: int) -> dict[str, list[float | None]]:
    """Columns of the per-epoch records, padded with NaN (None) to the planned length once the run broke."""
    columns: dict[str, list[float | None]] = {}
    for name in records[0]:
        values = [_round(record[name]) for record in records]
        columns[name] = values + [None] * (planned - len(values))
    return columns


def _learning_rate(spec: Mapping[str, Any], epoch: int) -> float:
    """The rate in effect for the whole of ``epoch`` (0-based): what torch's ``CosineAnnealingLR``, ``StepLR``,
    ``MultiStepLR``, ``CosineAnnealingWarmRestarts`` and ``OneCycleLR`` (its rate; the momentum stays put) set when
    stepped once per epoch, and for warm-up a linear rise to the rate, then a linear or cosine fall to 0 by the
    planned end (see :func:`schedules_spec`)."""
    base, planned = float(spec["learning_rate"]), spec["epochs"]
    if spec["schedule"] == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * epoch / planned))
    if spec["schedule"] == "step":
        return base * 0.1 ** (epoch // max(1, planned // 3))
    if spec["schedule"] == "multistep":
        return base * spec["gamma"] ** sum(epoch >= milestone for milestone in spec["milestones"])
    if spec["schedule"] in ("warmup_linear", "warmup_cosine"):
        warmup = spec["warmup_epochs"]
        if epoch < warmup:
            return base * (epoch + 1) / warmup
        done = (epoch - warmup) / (planned - warmup)
        return base * (1 - done if spec["schedule"] == "warmup_linear" else 0.5 * (1 + math.cos(math.pi * done)))
    if spec["schedule"] == "restarts":
        into, period = epoch, spec["cycle_epochs"]
        while into >= period:
            into, period = into - period, period * spec["cycle_mult"]
        return base * 0.5 * (1 + math.cos(math.pi * into / period))
    if spec["schedule"] == "one_cycle":
        return _one_cycle(base, spec["warmup_fraction"], planned, epoch)
    return base


def _one_cycle(peak: float, warmup_fraction: float, planned: int, epoch: int) -> float:
    """torch's ``OneCycleLR`` with its defaults (cosine both ways, from ``peak / 25`` up to ``peak`` and down to
    ``peak / 25 / 1e4``) over ``planned`` steps, one per epoch."""

    def anneal(start: float, end: float, done: float) -> float:
        return end + (start - end) / 2 * (math.cos(math.pi * done) + 1)

    start = peak / 25
    rise_end, fall_end = warmup_fraction * planned - 1, planned - 1
    if epoch <= rise_end:
        return anneal(start, peak, epoch / rise_end)
    return anneal(peak, start / 1e4, (epoch - rise_end) / (fall_end - rise_end))


@dataclass(frozen=True)
class Tabular:
    """A scikit-learn data set as one run sees it: split, cut to its training fraction, standardised, and with
    its label noise applied (``classes`` is ``None`` for regression)."""

    x_train: Any
    y_train: Any
    x_val: Any
    y_val: Any
    classes: int | None

    @property
    def regression(self) -> bool:
        return self.classes is None

    def tensors(self) -> tuple[Any, Any, Any, Any]:
        """``(x_train, y_train, x_val, y_val)`` as torch tensors, a regression's targets as columns."""
        import torch

        xt, xv = torch.tensor(self.x_train), torch.tensor(self.x_val)
        yt, yv = torch.tensor(self.y_train), torch.tensor(self.y_val)
        if self.regression:
            yt, yv = yt[:, None], yv[:, None]
        return xt, yt, xv, yv


def tabular(spec: Mapping[str, Any]) -> Tabular:
    import numpy as np
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(spec["seed"])
    loader = {
        "digits": datasets.load_digits,
        "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
        "diabetes": datasets.load_diabetes,
    }[spec["dataset"]]
    x, y = loader(return_X_y=True)
    regression = spec["dataset"] == "diabetes"
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=0.3, random_state=spec["seed"] % 2**31, stratify=None if regression else y
    )
    keep = max(16, round(len(x_train) * spec["train_fraction"]))
    keep = min(keep, spec.get("max_train") or keep)  # the framework families' epochs must stay cheap
    x_train, y_train = x_train[:keep], y_train[:keep]
    x_val, y_val = x_val[: spec.get("max_val")], y_val[: spec.get("max_val")]
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std < 1e-8] = 1.0  # a feature constant in training (digits' border pixels) is left unscaled
    x_train, x_val = ((x_train - mean) / std).astype("float32"), ((x_val - mean) / std).astype("float32")
    if regression:
        if spec["scale_target"]:
            y_mean, y_std = y_train.mean(), y_train.std()
            y_train, y_val = (y_train - y_mean) / y_std, (y_val - y_mean) / y_std
        return Tabular(x_train, y_train.astype("float32"), x_val, y_val.astype("float32"), None)
    classes = int(y.max()) + 1
    y_train = y_train.copy()
    noisy = rng.random(len(y_train)) < spec["label_noise"]
    y_train[noisy] = rng.integers(0, classes, int(noisy.sum()))
    return Tabular(x_train, y_train.astype("int64"), x_val, y_val.astype("int64"), classes)


@dataclass
class TabularLoop:
    """A run of the scikit-learn families (and ``schedules``) as it trains, one epoch a call to :meth:`epoch`.

    Its state (the model, the optimizer, the data) is all in the object and torch's global generator, which draws
    each epoch's order and dropout: a copy taken between epochs (``copy.deepcopy``) and a reseeded generator train
    another future of the same run from that epoch on (``bench/diagnosis_ceiling.py``).
    """

    spec: Mapping[str, Any]
    model: Any
    optimizer: Any
    loss_fn: Any
    xt: Any
    yt: Any
    xv: Any
    yv: Any
    regression: bool

    @classmethod
    def start(cls, spec: Mapping[str, Any]) -> TabularLoop:
        """The run before its first epoch: seeded, its data split, its model initialised."""
        import torch
        from torch import nn

        torch.manual_seed(spec["seed"])
        data = tabular(spec)
        regression = data.regression
        xt, yt, xv, yv = data.tensors()
        model = _mlp(spec, xt.shape[1], 1 if data.classes is None else data.classes)
        loss_fn = nn.MSELoss() if regression else nn.CrossEntropyLoss()
        return cls(spec, model, _optimizer(model, spec), loss_fn, xt, yt, xv, yv, regression)

    def epoch(self, epoch: int) -> dict[str, float]:
        """Train epoch ``epoch`` (0-based) and evaluate: its record."""
        import torch

        xt, yt, spec = self.xt, self.yt, self.spec
        for group in self.optimizer.param_groups:
            group["lr"] = _learning_rate(spec, epoch)
        self.model.train()
        order = torch.randperm(len(xt))
        total, correct = 0.0, 0
        for start in range(0, len(xt), spec["batch_size"]):
            batch = order[start : start + spec["batch_size"]]
            self.optimizer.zero_grad()
            out = self.model(xt[batch])
            loss = self.loss_fn(out, yt[batch])
            loss.backward()
            self.optimizer.step()
            total += loss.item() * len(batch)
            if not self.regression:
                correct += int((out.argmax(1) == yt[batch]).sum())
        self.model.eval()
        with torch.no_grad():
            out = self.model(self.xv)
            record = {"train_loss": total / len(xt), "val_loss": float(self.loss_fn(out, self.yv))}
            if not self.regression:
                record["train_accuracy"] = correct / len(xt)
                record["val_accuracy"] = float((out.argmax(1) == self.yv).float().mean())
        record["learning_rate"] = _learning_rate(spec, epoch)
        return record


def broken(record: Mapping[str, float]) -> bool:
    """The weights are NaN now: every later epoch would report NaN, as a real loop's would."""
    return not (math.isfinite(record["train_loss"]) and math.isfinite(record["val_loss"]))


def train_sklearn(spec: Mapping[str, Any]) -> dict[str, Any]:
    loop = TabularLoop.start(spec)
    records: list[dict[str, float]] = []
    for epoch in range(spec["epochs"]):
        records.append(loop.epoch(epoch))
        if broken(records[-1]):
            break
    return _history(records, spec["epochs"])


def _mlp(spec: Mapping[str, Any], inputs: int, outputs: int) -> Any:
    from torch import nn

    layers: list[nn.Module] = []
    width = inputs
    for hidden in spec["hidden"]:
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        if spec["dropout"]:
            layers.append(nn.Dropout(spec["dropout"]))
        width = hidden
    return nn.Sequential(*layers, nn.Linear(width, outputs))


def _optimizer(model: Any, spec: Mapping[str, Any]) -> Any:
    import torch

    lr, decay = spec["learning_rate"], spec["weight_decay"]
    params = model.parameters()
    match spec["optimizer"]:
        case "sgd":
            return torch.optim.SGD(params, lr=lr, weight_decay=decay)
        case "momentum":
            return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=decay)
        case "adam":
            return torch.optim.Adam(params, lr=lr, weight_decay=decay)
        case "adamw":
            return torch.optim.AdamW(params, lr=lr, weight_decay=decay)
        case "rmsprop":
            return torch.optim.RMSprop(params, lr=lr, weight_decay=decay)
    raise ValueError(f"unknown optimizer {spec['optimizer']!r}")


_SAMPLE_DATA: Path | None = None


def strategy_file(spec: Mapping[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """The strategy file ``data`` (parsed YAML) as ``spec`` trains it: its model and training section replaced
    (no early stopping, so every planned epoch is recorded) and, for a ``strategy_wide`` run, its market and
    labels, learning-rate scheduler and gradient clipping too."""
    model = data["model"]
    model["architecture"] |= {"hidden_layers": spec["hidden"], "dropout": spec["dropout"]}
    model["training"] = {
        "learning_rate": spec["learning_rate"],
        "batch_size": spec["batch_size"],
        "epochs": spec["epochs"],
        "optimizer": spec["optimizer"],
        "weight_decay": spec["weight_decay"],
        "seed": spec["seed"],
    }
    if "symbols" not in spec:
        return data  # a ``strategy`` run: the file's own market
    symbols, timeframes = spec["symbols"], spec["timeframes"]
    data["training_data"] = {
        "symbols": {"mode": "single", "symbol": symbols[0]}
        if len(symbols) == 1
        else {"mode": "multi_symbol", "list": symbols},
        "timeframes": {"mode": "single", "timeframe": timeframes[0]}
        if len(timeframes) == 1
        else {"mode": "multi_timeframe", "list": timeframes, "base_timeframe": timeframes[0]},
    }
    data["training"]["labels"] = {
        "source": "zigzag",
        "zigzag_threshold": spec["zigzag_threshold"],
        "label_lookahead": spec["label_lookahead"],
    }
    for key in ("lr_scheduler", "gradient_clip"):
        if spec[key] is not None:
            model["training"][key] = spec[key]
    return data


def train_strategy(spec: Mapping[str, Any]) -> dict[str, Any]:
    import yaml

    from trainops.core.epoch import EpochRecord
    from trainops.core.reporter import NullReporter
    from trainops.pipeline.data_files import write_sample_data
    from trainops.pipeline.strategy import parse_strategy
    from trainops.pipeline.training import StrategyTrainingJob

    global _SAMPLE_DATA
    if _SAMPLE_DATA is None:
        _SAMPLE_DATA = Path(tempfile.mkdtemp(prefix="trainops-corpus-"))
        write_sample_data(_SAMPLE_DATA)
    root = Path(__file__).resolve().parents[2]
    data = strategy_file(spec, yaml.safe_load((root / "strategies" / f"{spec['strategy']}.yaml").read_text()))

    class Collect(NullReporter):
        def __init__(self) -> None:
            self.records: list[EpochRecord] = []

        def epoch(self, record: EpochRecord) -> None:
            self.records.append(record)

    reporter = Collect()
    StrategyTrainingJob(parse_strategy(data), data_dir=_SAMPLE_DATA, reporter=reporter, device="cpu").run()
    nan = math.nan
    records = [
        {
            "train_loss": r.train_loss if r.train_loss is not None else nan,
            "val_loss": r.val_loss if r.val_loss is not None else nan,
            "train_accuracy": r.train_accuracy if r.train_accuracy is not None else nan,
            "val_accuracy": r.val_accuracy if r.val_accuracy is not None else nan,
            "learning_rate": r.learning_rate if r.learning_rate is not None else nan,
        }
        for r in reporter.records
    ]
    return _history(records, spec["epochs"])


# ------------------------------------------------------------------------------------------------ frameworks
# These runs report through trainops' own framework integrations into an in-process trainops on a SQLite database
# of the worker's own, and their curves are read back from it: the corpus holds what trainops stored.

_OPS: TrainOps | None = None


def _ops(workdir: Path) -> TrainOps:
    """This worker process's trainops, on a database of its own under ``workdir`` (opened once per process)."""
    global _OPS
    if _OPS is None:
        import trainops
        from trainops.settings import Settings

        home = workdir / f"worker-{os.getpid()}"
        home.mkdir(parents=True, exist_ok=True)
        settings = Settings(home=home, database_url=f"sqlite:///{home / 'trainops.db'}", url=None)
        _OPS = trainops.connect(settings=settings)
    return _OPS


def stored_epochs(
    ops: TrainOps, operation_id: str | None, planned: int, first: int = 0
) -> tuple[str | None, list[Any]]:
    """The run's task and epoch records as trainops stored them, read back through the facade: every planned
    epoch, numbered from ``first`` (as the framework numbers them), of a run that completed. The task picks the
    metric trainops judged the run by (``bench/_corpus.py``)."""
    from trainops.core.operation import OperationStatus

    if operation_id is None:
        raise RuntimeError("the integration opened no operation: trainops' warning above says why")
    operation = ops.get_operation(operation_id)
    if operation.status is not OperationStatus.COMPLETED:
        raise RuntimeError(f"{operation_id} ended {operation.status.value}: {operation.error}")
    epochs = ops.get_metrics(operation_id).metrics.epochs
    expected = list(range(first, first + planned))
    if [record.epoch for record in epochs] != expected:
        raise RuntimeError(f"{operation_id} stored epochs {[r.epoch for r in epochs]}, expected {expected}")
    task = operation.metadata.task
    return (None if task is None else task.value), epochs


def stored_history(ops: TrainOps, operation_id: str | None, planned: int) -> dict[str, Any]:
    """The run's task and per-epoch history as trainops stored them, read back through the facade."""
    task, epochs = stored_epochs(ops, operation_id, planned)
    fields = [name for name in STORED_FIELDS if any(getattr(record, name) is not None for record in epochs)]
    records = [
        {name: math.nan if getattr(record, name) is None else float(getattr(record, name)) for name in fields}
        for record in epochs
    ]
    return {"task": task, **_history(records, planned)}


def train_lightning(spec: Mapping[str, Any], workdir: Path) -> dict[str, Any]:
    import logging
    import warnings

    import lightning.pytorch as pl
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from trainops.integrations.lightning import TrainOpsCallback

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # its hardware and logger tips, every fit
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")  # its own
    pl.seed_everything(spec["seed"], verbose=False)
    data = tabular(spec)
    regression = data.regression
    xt, yt, xv, yv = data.tensors()

    class MLP(pl.LightningModule):
        """Logs as Lightning users do: ``train/loss``, ``train/acc`` per epoch, ``val/loss``, ``val/acc``, ``lr``."""

        def __init__(self) -> None:
            super().__init__()
            self.net = _mlp(spec, xt.shape[1], 1 if data.classes is None else data.classes)
            self.loss = nn.MSELoss() if regression else nn.CrossEntropyLoss()

        def _step(self, split: str, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            x, y = batch
            out = self.net(x)
            loss = self.loss(out, y)
            self.log(f"{split}/loss", loss, on_step=False, on_epoch=True)
            if not regression:
                self.log(f"{split}/acc", (out.argmax(1) == y).float().mean(), on_step=False, on_epoch=True)
            return loss

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            self.log("lr", self.optimizers().param_groups[0]["lr"], on_step=False, on_epoch=True)
            return self._step("train", batch)

        def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
            self._step("val", batch)

        def on_train_epoch_start(self) -> None:
            for group in self.optimizers().param_groups:
                group["lr"] = _learning_rate(spec, self.current_epoch)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return _optimizer(self.net, spec)

    generator = torch.Generator().manual_seed(spec["seed"])
    train = DataLoader(TensorDataset(xt, yt), batch_size=spec["batch_size"], shuffle=True, generator=generator)
    val = DataLoader(TensorDataset(xv, yv), batch_size=len(xv))
    callback = TrainOpsCallback(_ops(workdir), task="regression" if regression else "tabular_classification")
    trainer = pl.Trainer(
        max_epochs=spec["epochs"],
        callbacks=[callback],
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(MLP(), train, val)
    return stored_history(_ops(workdir), callback.operation_id, spec["epochs"])


def train_keras(spec: Mapping[str, Any], workdir: Path) -> dict[str, Any]:
    import keras

    from trainops.integrations.keras import TrainOpsCallback

    keras.utils.set_random_seed(spec["seed"])
    data = tabular(spec)
    regression = data.classes is None
    layers: list[Any] = [keras.Input((data.x_train.shape[1],))]
    for hidden in spec["hidden"]:
        layers.append(keras.layers.Dense(hidden, activation="relu"))
        if spec["dropout"]:
            layers.append(keras.layers.Dropout(spec["dropout"]))
    layers.append(keras.layers.Dense(1 if data.classes is None else data.classes))
    model = keras.Sequential(layers)
    lr, decay = spec["learning_rate"], spec["weight_decay"] or None  # Keras' weight decay is decoupled
    optimizer = {
        "sgd": lambda: keras.optimizers.SGD(lr, weight_decay=decay),
        "momentum": lambda: keras.optimizers.SGD(lr, momentum=0.9, weight_decay=decay),
        "adam": lambda: keras.optimizers.Adam(lr, weight_decay=decay),
        "adamw": lambda: keras.optimizers.AdamW(lr, weight_decay=decay or 0.0),
        "rmsprop": lambda: keras.optimizers.RMSprop(lr, weight_decay=decay),
    }[spec["optimizer"]]()
    if regression:
        model.compile(optimizer=optimizer, loss="mse")
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    schedule = keras.callbacks.LearningRateScheduler(lambda epoch, _: _learning_rate(spec, epoch))
    callback = TrainOpsCallback(_ops(workdir), task="regression" if regression else "tabular_classification")
    with callback:
        model.fit(
            data.x_train,
            data.y_train,
            validation_data=(data.x_val, data.y_val),
            epochs=spec["epochs"],
            batch_size=spec["batch_size"],
            callbacks=[schedule, callback],
            verbose=0,
        )
    return stored_history(_ops(workdir), callback.operation_id, spec["epochs"])


TOKEN_BINS = 16
"""Each standardised feature becomes one token: its bin among this many over [-3, 3] (the tails clipped)."""


def tokens(features: Any, model: str) -> Any:
    """Feature rows as token ids (0 unused, 1..TOKEN_BINS the bins) with a classification token: first for BERT
    (it pools the first), last for GPT-2 (it pools the last)."""
    import numpy as np

    ids = np.clip(np.floor((features + 3.0) * TOKEN_BINS / 6.0), 0, TOKEN_BINS - 1).astype("int64") + 1
    cls = np.full((len(ids), 1), TOKEN_BINS + 1, dtype="int64")
    return np.concatenate([cls, ids] if model == "bert" else [ids, cls], axis=1)


def train_transformers(spec: Mapping[str, Any], workdir: Path) -> dict[str, Any]:
    import numpy as np
    import torch
    import transformers
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        GPT2Config,
        GPT2ForSequenceClassification,
        PrinterCallback,
        Trainer,
        TrainingArguments,
    )

    from trainops.integrations.transformers import TrainOpsCallback

    transformers.set_seed(spec["seed"])
    data = tabular(spec)
    regression = data.classes is None

    class Rows(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
        def __init__(self, features: Any, labels: Any) -> None:
            self.ids = torch.tensor(tokens(features, spec["model"]))
            self.labels = torch.tensor(labels)

        def __len__(self) -> int:
            return len(self.ids)

        def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
            return {"input_ids": self.ids[index], "labels": self.labels[index]}

    labels = 1 if data.classes is None else data.classes
    size = {
        "vocab_size": TOKEN_BINS + 2,
        "num_labels": labels,
        "problem_type": "regression" if regression else "single_label_classification",
    }
    width, depth, dropout = spec["hidden"], spec["layers"], spec["dropout"]
    if spec["model"] == "bert":
        config = BertConfig(
            **size,
            hidden_size=width,
            num_hidden_layers=depth,
            num_attention_heads=2,
            intermediate_size=2 * width,
            max_position_embeddings=128,
            hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=dropout,
        )
        model: Any = BertForSequenceClassification(config)
    else:
        config = GPT2Config(
            **size,
            n_embd=width,
            n_layer=depth,
            n_head=2,
            n_positions=128,
            resid_pdrop=dropout,
            embd_pdrop=dropout,
            attn_pdrop=dropout,
            pad_token_id=0,
            bos_token_id=TOKEN_BINS + 1,
            eos_token_id=TOKEN_BINS + 1,
        )
        model = GPT2ForSequenceClassification(config)

    def accuracy(prediction: Any) -> dict[str, float]:
        return {"accuracy": float((np.argmax(prediction.predictions, axis=-1) == prediction.label_ids).mean())}

    args = TrainingArguments(
        output_dir=str(workdir / "transformers" / spec["id"]),
        num_train_epochs=spec["epochs"],
        per_device_train_batch_size=spec["batch_size"],
        per_device_eval_batch_size=512,
        learning_rate=spec["learning_rate"],
        weight_decay=spec["weight_decay"],
        optim="sgd" if spec["optimizer"] == "sgd" else "adamw_torch",
        lr_scheduler_type=spec["schedule"],
        max_grad_norm=spec["max_grad_norm"],
        eval_strategy="epoch",
        logging_strategy="epoch",
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        dataloader_pin_memory=False,
        seed=spec["seed"],
    )
    callback = TrainOpsCallback(_ops(workdir), task="regression" if regression else "text_classification")
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=Rows(data.x_train, data.y_train),
        eval_dataset=Rows(data.x_val, data.y_val),
        compute_metrics=None if regression else accuracy,
        callbacks=[callback],
    )
    trainer.remove_callback(PrinterCallback)  # it prints every log when tqdm is off
    with callback:
        trainer.train()
    return stored_history(_ops(workdir), callback.operation_id, spec["epochs"])


# ------------------------------------------------------------------------------------------------ vision families
# Trained in the vision environment (torch with torchvision, timm and Ultralytics), reported through trainops'
# integrations into the worker's trainops like the framework families above.


def images(spec: Mapping[str, Any]) -> tuple[Any, Any, Any, Any]:
    """A timm run's synthetic data: ``classes`` patterns (random 8x8 colour grids, blurred up to 32x32), each image
    its class's pattern, standardised and scaled by ``signal``, under Gaussian noise of standard deviation 1 (faint
    enough that a model learns for many epochs and can overfit); ``label_noise`` of the training labels replaced at
    random. Returns ``(x_train, y_train, x_val, y_val)`` tensors."""
    import torch

    generator = torch.Generator().manual_seed(spec["seed"])
    classes, train, val = spec["classes"], spec["train_samples"], spec["val_samples"]
    patterns = torch.nn.functional.interpolate(
        torch.rand(classes, 3, 8, 8, generator=generator), size=IMAGE_SIZE, mode="bilinear", align_corners=False
    )
    labels = torch.randint(0, classes, (train + val,), generator=generator)
    noise = torch.randn(train + val, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
    pictures = spec["signal"] * (patterns[labels] - 0.5) / 0.29 + noise
    y_train = labels[:train].clone()
    noisy = torch.rand(train, generator=generator) < spec["label_noise"]
    y_train[noisy] = torch.randint(0, classes, (int(noisy.sum()),), generator=generator)
    return pictures[:train], y_train, pictures[train:], labels[train:]


def train_timm(spec: Mapping[str, Any], workdir: Path) -> dict[str, Any]:
    from collections import OrderedDict

    import timm
    import torch
    from timm.scheduler import create_scheduler_v2
    from timm.utils import AverageMeter, accuracy
    from torch.utils.data import DataLoader, TensorDataset

    from trainops.callbacks import TrainingCallbacks
    from trainops.integrations.timm import report_epoch

    torch.manual_seed(spec["seed"])
    x_train, y_train, x_val, y_val = images(spec)
    generator = torch.Generator().manual_seed(spec["seed"])
    train_loader = DataLoader(
        TensorDataset(x_train, y_train), batch_size=spec["batch_size"], shuffle=True, generator=generator
    )
    val_loader = DataLoader(TensorDataset(x_val, y_val), batch_size=len(x_val))
    model = timm.create_model(spec["model"], pretrained=False, num_classes=spec["classes"], drop_rate=spec["drop_rate"])
    optimizer: torch.optim.Optimizer = (
        torch.optim.SGD(model.parameters(), lr=spec["learning_rate"], momentum=0.9, weight_decay=spec["weight_decay"])
        if spec["optimizer"] == "sgd"
        else torch.optim.AdamW(model.parameters(), lr=spec["learning_rate"], weight_decay=spec["weight_decay"])
    )
    scheduler = None
    if spec["sched"] != "none":
        scheduler, _ = create_scheduler_v2(
            optimizer,
            sched=spec["sched"],
            num_epochs=spec["epochs"],
            decay_epochs=max(1, spec["epochs"] // 3),
            decay_rate=0.1,
            warmup_epochs=spec["warmup_epochs"],
            warmup_lr=spec["learning_rate"] / 100,
        )
    tracker = TrainingCallbacks(
        _ops(workdir), task="image_classification", config=dict(spec), total_epochs=spec["epochs"]
    )
    with tracker:
        for epoch in range(spec["epochs"]):
            tracker.on_epoch_begin(epoch)
            losses = AverageMeter()
            model.train()
            for x, y in train_loader:
                loss = torch.nn.functional.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.update(loss.item(), x.size(0))
            model.eval()
            with torch.no_grad():
                x, y = next(iter(val_loader))
                output = model(x)
                (top1,) = accuracy(output, y, topk=(1,))
                val_loss = torch.nn.functional.cross_entropy(output, y).item()
            lr = sum(group["lr"] for group in optimizer.param_groups) / len(optimizer.param_groups)
            train_metrics = OrderedDict([("loss", losses.avg)])
            eval_metrics = OrderedDict([("loss", val_loss), ("top1", top1.item())])
            report_epoch(tracker, epoch, train_metrics, eval_metrics, lr=lr)
            if scheduler is not None:
                scheduler.step(epoch + 1)  # as timm's train.py: after each epoch, with the next epoch's number
    return stored_history(_ops(workdir), tracker.operation_id, spec["epochs"])


def boxes(spec: Mapping[str, Any], root: Path) -> Path:
    """A YOLO run's synthetic data set: 64x64 dark images, each with one or two bright boxes of its class's colour
    (one or two classes), written as Ultralytics reads them; returns its data yaml."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(spec["seed"])
    colours = ((230, 70, 50), (50, 120, 230))
    size = 64
    for split, count in (("train", spec["train_images"]), ("val", spec["val_images"])):
        pictures, labels = root / "images" / split, root / "labels" / split
        pictures.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image = np.full((size, size, 3), 30, np.uint8) + rng.integers(0, 20, (size, size, 3), dtype=np.uint8)
            lines = []
            for _ in range(int(rng.integers(1, 3))):
                kind = int(rng.integers(0, spec["classes"]))
                width, height = (int(value) for value in rng.integers(10, 30, size=2))
                x, y = int(rng.integers(0, size - width)), int(rng.integers(0, size - height))
                image[y : y + height, x : x + width] = colours[kind]
                lines.append(
                    f"{kind} {(x + width / 2) / size:.5f} {(y + height / 2) / size:.5f} "
                    f"{width / size:.5f} {height / size:.5f}"
                )
            Image.fromarray(image).save(pictures / f"{index}.png")
            (labels / f"{index}.txt").write_text("\n".join(lines) + "\n")
    names = "".join(f"\n  {kind}: {name}" for kind, name in enumerate(("red", "blue")[: spec["classes"]]))
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:{names}\n")
    return data


YOLO_LOSSES = ("box_loss", "cls_loss", "dfl_loss")


def train_yolo(spec: Mapping[str, Any], workdir: Path, run_id: str) -> dict[str, Any]:
    from ultralytics import YOLO
    from ultralytics.utils import LOGGER

    from trainops.integrations.ultralytics import attach

    LOGGER.setLevel("WARNING")
    root = workdir / run_id
    data = boxes(spec, root / "data")
    model = YOLO(spec["model"])
    tracker = attach(model, _ops(workdir))
    augment = (
        {}
        if spec["augment"]
        else {"hsv_h": 0.0, "hsv_s": 0.0, "hsv_v": 0.0, "translate": 0.0, "scale": 0.0, "fliplr": 0.0}
    )
    model.train(
        data=str(data),
        epochs=spec["epochs"],
        imgsz=64,
        batch=spec["batch"],
        device="cpu",
        workers=0,
        plots=False,  # no fonts to download
        amp=False,  # no weights to download for the AMP check
        seed=spec["seed"],
        deterministic=True,
        optimizer=spec["optimizer"],
        lr0=spec["lr0"],
        lrf=spec["lrf"],
        cos_lr=spec["cos_lr"],
        weight_decay=spec["weight_decay"],
        warmup_epochs=spec["warmup_epochs"],
        mosaic=spec["mosaic"],
        close_mosaic=spec["close_mosaic"],
        nbs=spec["batch"],  # a step every batch: on a few dozen images, the default 64 steps once in epochs
        patience=0,  # Ultralytics' own early stopping off: the whole planned history is recorded
        project=str(root / "runs"),
        name="run",
        exist_ok=True,
        verbose=False,
        **augment,
    )
    return yolo_history(_ops(workdir), tracker.operation_id, spec["epochs"])


def yolo_history(ops: TrainOps, operation_id: str | None, planned: int) -> dict[str, Any]:
    """A YOLO run's history as trainops stored it: Ultralytics numbers epochs from 1 (kept by trainops), and its
    losses are parts (box, class, DFL) whose sum is the loss it minimises. ``val_map50`` is the validation mAP50,
    the metric trainops judges a detection run by (``policy_for_task``); the corpus keeps it beside the losses."""
    task, epochs = stored_epochs(ops, operation_id, planned, first=1)

    def total(record: Any, split: str) -> float:
        parts = [record.metrics.get(f"{split}_{name}") for name in YOLO_LOSSES]
        return math.nan if any(part is None for part in parts) else float(sum(parts))

    records = [
        {
            "train_loss": total(record, "train"),
            "val_loss": total(record, "val"),
            "learning_rate": math.nan if record.learning_rate is None else float(record.learning_rate),
            "val_map50": math.nan if record.metrics.get("mAP50") is None else float(record.metrics["mAP50"]),
        }
        for record in epochs
    ]
    return {"task": task, **_history(records, planned)}


def run(spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Train one run; ``workdir`` holds the framework families' trainops databases and files."""
    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    match spec["family"]:
        case "strategy" | "strategy_wide":
            history = train_strategy(spec)
        case "lightning":
            history = train_lightning(spec, workdir)
        case "keras":
            history = train_keras(spec, workdir)
        case "transformers":
            history = train_transformers(spec, workdir)
        case "timm":
            history = train_timm(spec, workdir)
        case "yolo":
            history = train_yolo(spec, workdir, spec["id"])
        case _:
            history = train_sklearn(spec)
    config = {key: value for key, value in spec.items() if key not in ("id", "family", "epochs")}
    print(f"  {spec['id']:<20} {spec['archetype']:<12} {time.perf_counter() - started:5.1f} s", flush=True)
    return {"id": spec["id"], "family": spec["family"], "planned": spec["epochs"], "config": config, **history}


PACKAGES = {
    "lightning": "lightning",
    "keras": "keras",
    "transformers": "transformers",
    "timm": "timm",
    "yolo": "ultralytics",
}
"""The framework each family needs beyond torch (and scikit-learn: every family but the vision ones needs it)."""


def packages(family: str) -> tuple[str, ...]:
    """What trains a family's runs, whose versions the corpus records for it."""
    base = ("torch",) if family in VISION_RUNS else ("torch", "scikit-learn")
    return (*base, *([PACKAGES[family]] if family in PACKAGES else []))


def installed(family: str) -> bool:
    """Whether this environment can train the family's runs."""
    from importlib.util import find_spec

    modules = {"scikit-learn": "sklearn"}
    return all(find_spec(modules.get(name, name)) is not None for name in packages(family))


def versions(families: Iterable[str]) -> dict[str, dict[str, str]]:
    """Each family's versions of what trains it, as this environment has them."""
    return {family: {name: _version(name) for name in packages(family)} for family in families}


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, packages_distributions, version

    try:
        return version(package)
    except PackageNotFoundError:  # installed under another distribution's name (ultralytics-opencv-headless)
        return version(packages_distributions()[package][0])


def kept_runs(path: Path, seed: int, retrained: Sequence[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The runs of the corpus at ``path`` outside the ``retrained`` families, with the versions recorded for their
    families (none when there is no file yet: it will hold only the retrained families, as a fresh-seed check
    wants); refused when the corpus was generated with another seed (its runs would not be this generator's)."""
    rebuild = "rebuild the whole corpus (leave out --families)"
    if not path.exists():
        return [], {}
    corpus = json.loads(path.read_text())
    if corpus["seed"] != seed:
        raise SystemExit(f"{path} was generated with seed {corpus['seed']}, not {seed}: {rebuild}")
    kept = [run for run in corpus["runs"] if run["family"] not in retrained]
    families_kept = sorted({run["family"] for run in kept})
    recorded = corpus["versions"]
    if corpus.get("format", 1) == 1:  # one set of versions for every family: each family's part of it
        recorded = {family: {name: recorded[name] for name in packages(family)} for family in families_kept}
    return kept, {family: recorded[family] for family in families_kept}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=SEED, help="the corpus seed (default %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the corpus (default %(default)s)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N runs (a quick look)")
    parser.add_argument(
        "--families",
        nargs="+",
        choices=families(),
        metavar="FAMILY",
        help="retrain only these families and keep every other run of --out as it is (after adding or changing "
        f"a family; a new --out holds only these); one or more of: {', '.join(families())}",
    )
    args = parser.parse_args(argv)

    here = [family for family in families() if installed(family)]
    retrained = args.families or here
    missing = sorted(set(retrained) - set(here))
    if missing:
        raise SystemExit(f"this environment cannot train {', '.join(missing)}: {VISION_HELP}")
    specs = all_specs(args.seed)
    order = {spec["id"]: index for index, spec in enumerate(specs)}
    kept, kept_versions = kept_runs(args.out, args.seed, retrained) if set(retrained) != set(families()) else ([], {})
    if not args.families and kept:
        print(f"keeping {', '.join(kept_versions)}: {VISION_HELP}")
    specs = [spec for spec in specs if spec["family"] in retrained][: args.limit]
    started = time.perf_counter()
    print(f"training {len(specs)} runs on {args.jobs} process(es)" + (f", keeping {len(kept)}" if kept else ""))
    with (
        tempfile.TemporaryDirectory(prefix="trainops-corpus-") as workdir,
        ProcessPoolExecutor(max_workers=args.jobs) as pool,
    ):
        runs = list(pool.map(partial(run, workdir=Path(workdir)), specs, chunksize=1))
    runs = sorted([*kept, *runs], key=lambda run: order.get(run["id"], len(order)))
    recorded = kept_versions | versions(retrained)
    corpus = {
        "format": 2,
        "generator": "bench/curves/generate.py",
        "seed": args.seed,
        "versions": {family: recorded[family] for family in families() if family in recorded},
        "truth": "see bench/_corpus.py",
        "runs": runs,
    }
    args.out.write_text(json.dumps(corpus, separators=(",", ":"), allow_nan=False) + "\n")
    size = args.out.stat().st_size
    print(f"wrote {len(runs)} runs to {args.out} ({size / 1024:.0f} KiB) in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
