"""Rebuild the corpus of real training curves: ``bench/curves/corpus.json``.

Every run here really trains, on the CPU, and records its full per-epoch history for every planned epoch:

- small PyTorch MLPs on the data sets that ship inside scikit-learn (digits, breast cancer, wine: classification;
  diabetes: regression), across widths, depths, dropout, optimizers and learning rates (some large enough to
  diverge to NaN), learning-rate schedules, small or label-noisy training sets (which overfit) and slow learners;
- the strategy pipeline (indicators -> fuzzy memberships -> features -> ZigZag labels -> MLP) on the real sample
  market data, with its early stopping switched off so the whole planned history is recorded.

Runs are drawn from archetypes (healthy, overfitting, slow, unstable, regularised, anything) so that stopping
and continuing are both common answers; each run's configuration and seed come from the corpus seed, and torch
runs single-threaded, so the same seed rebuilds the same corpus on the same versions (see the file's header).

    .venv/bin/python bench/curves/generate.py            # ~5 min on 2 cores
    .venv/bin/python bench/curves/generate.py --jobs 1 --limit 10 --out /tmp/corpus.json   # a quick look
"""

from __future__ import annotations

import argparse
import json
import math
import random
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

SEED = 20261201
OUT = Path(__file__).parent / "corpus.json"
DIGITS = 5
"""Significant digits kept per value: far below any difference the diagnosis judges, and compact."""

SKLEARN_RUNS = {"digits": 56, "breast_cancer": 48, "wine": 44, "diabetes": 48}
STRATEGY_RUNS = 30
STRATEGIES = ("mean_reversion", "trend_following", "multi_timeframe")
ARCHETYPES = ("healthy", "overfit", "slow", "unstable", "regularized", "anything")
PLANNED = (60, 80, 100, 120, 150, 200)


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


def all_specs(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    specs = [
        {"id": f"{dataset}-{i:03d}", "family": dataset, **sklearn_spec(dataset, i, rng)}
        for dataset, count in SKLEARN_RUNS.items()
        for i in range(count)
    ]
    specs += [{"id": f"strategy-{i:03d}", "family": "strategy", **strategy_spec(i, rng)} for i in range(STRATEGY_RUNS)]
    return specs


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
    base = float(spec["learning_rate"])
    if spec["schedule"] == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * epoch / spec["epochs"]))
    if spec["schedule"] == "step":
        return base * 0.1 ** (epoch // max(1, spec["epochs"] // 3))
    return base


def train_sklearn(spec: Mapping[str, Any]) -> dict[str, Any]:
    import numpy as np
    import torch
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    from torch import nn

    torch.manual_seed(spec["seed"])
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
    x_train, y_train = x_train[:keep], y_train[:keep]
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std < 1e-8] = 1.0  # a feature constant in training (digits' border pixels) is left unscaled
    x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
    if regression:
        if spec["scale_target"]:
            y_mean, y_std = y_train.mean(), y_train.std()
            y_train, y_val = (y_train - y_mean) / y_std, (y_val - y_mean) / y_std
        targets = (
            torch.tensor(y_train, dtype=torch.float32)[:, None],
            torch.tensor(y_val, dtype=torch.float32)[:, None],
        )
        outputs = 1
        loss_fn: nn.Module = nn.MSELoss()
    else:
        classes = int(y.max()) + 1
        y_train = y_train.copy()
        noisy = rng.random(len(y_train)) < spec["label_noise"]
        y_train[noisy] = rng.integers(0, classes, int(noisy.sum()))
        targets = (torch.tensor(y_train, dtype=torch.long), torch.tensor(y_val, dtype=torch.long))
        outputs = classes
        loss_fn = nn.CrossEntropyLoss()
    xt, xv = torch.tensor(x_train, dtype=torch.float32), torch.tensor(x_val, dtype=torch.float32)
    yt, yv = targets

    layers: list[nn.Module] = []
    width = xt.shape[1]
    for hidden in spec["hidden"]:
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        if spec["dropout"]:
            layers.append(nn.Dropout(spec["dropout"]))
        width = hidden
    model = nn.Sequential(*layers, nn.Linear(width, outputs))
    optimizer = _optimizer(model, spec)

    records: list[dict[str, float]] = []
    for epoch in range(spec["epochs"]):
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(spec, epoch)
        model.train()
        order = torch.randperm(len(xt))
        total, correct = 0.0, 0
        for start in range(0, len(xt), spec["batch_size"]):
            batch = order[start : start + spec["batch_size"]]
            optimizer.zero_grad()
            out = model(xt[batch])
            loss = loss_fn(out, yt[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
            if not regression:
                correct += int((out.argmax(1) == yt[batch]).sum())
        model.eval()
        with torch.no_grad():
            out = model(xv)
            record = {"train_loss": total / len(xt), "val_loss": float(loss_fn(out, yv))}
            if not regression:
                record["train_accuracy"] = correct / len(xt)
                record["val_accuracy"] = float((out.argmax(1) == yv).float().mean())
        record["learning_rate"] = _learning_rate(spec, epoch)
        records.append(record)
        if not (math.isfinite(record["train_loss"]) and math.isfinite(record["val_loss"])):
            break  # the weights are NaN now: every later epoch reports NaN, as a real loop would
    return _history(records, spec["epochs"])


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
    data = yaml.safe_load((root / "strategies" / f"{spec['strategy']}.yaml").read_text())
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


def run(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    history = train_strategy(spec) if spec["family"] == "strategy" else train_sklearn(spec)
    config = {key: value for key, value in spec.items() if key not in ("id", "family", "epochs")}
    print(f"  {spec['id']:<20} {spec['archetype']:<12} {time.perf_counter() - started:5.1f} s", flush=True)
    return {"id": spec["id"], "family": spec["family"], "planned": spec["epochs"], "config": config, **history}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=SEED, help="the corpus seed (default %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the corpus (default %(default)s)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N runs (a quick look)")
    args = parser.parse_args(argv)

    import sklearn
    import torch

    specs = all_specs(args.seed)[: args.limit]
    started = time.perf_counter()
    print(f"training {len(specs)} runs on {args.jobs} process(es)")
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(run, specs, chunksize=1))
    corpus = {
        "format": 1,
        "generator": "bench/curves/generate.py",
        "seed": args.seed,
        "versions": {"torch": torch.__version__, "scikit-learn": sklearn.__version__},
        "truth": "see bench/_corpus.py",
        "runs": runs,
    }
    args.out.write_text(json.dumps(corpus, separators=(",", ":"), allow_nan=False) + "\n")
    size = args.out.stat().st_size
    print(f"wrote {len(runs)} runs to {args.out} ({size / 1024:.0f} KiB) in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
