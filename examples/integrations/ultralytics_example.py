"""Ultralytics YOLO: attach trainops to a model and every epoch of ``model.train`` lands in trainops; a stop asked
through trainops ends the fit after the epoch it was asked in.

    python examples/integrations/ultralytics_example.py     # local database, or a server when TRAINOPS_URL is set
    trainops ops watch <operation id>                       # in another terminal, while it runs
    trainops ops cancel <operation id> --reason "enough"    # the fit ends after the current epoch

The data set is synthetic (64x64 images with one box each, written to a temporary folder) and the model is built
from its yaml, so no weights or data are downloaded. Ultralytics still looks for its plot font (Arial.ttf) at every
fit and downloads it once into its settings folder: offline, copy any TrueType font there under that name.
A run trained without trainops can be imported afterwards: ``import_results("runs/detect/train")``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from ultralytics import YOLO

from trainops.integrations.ultralytics import attach


def synthetic_boxes(root: Path, images: int = 32, seed: int = 0) -> Path:
    """A YOLO data set of bright boxes on a dark background (one class), three quarters to train on; returns its
    data yaml."""
    rng = np.random.default_rng(seed)
    for index in range(images):
        split = "train" if index < images * 3 // 4 else "val"
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        image = np.full((64, 64, 3), 30, np.uint8)
        x, y = (int(value) for value in rng.integers(2, 30, size=2))
        width, height = (int(value) for value in rng.integers(14, 32, size=2))
        image[y : y + height, x : x + width] = (230, 70, 50)
        Image.fromarray(image).save(root / "images" / split / f"{index}.png")
        box = f"0 {(x + width / 2) / 64:.5f} {(y + height / 2) / 64:.5f} {width / 64:.5f} {height / 64:.5f}\n"
        (root / "labels" / split / f"{index}.txt").write_text(box)
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: box\n")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    epochs = parser.parse_args().epochs

    with tempfile.TemporaryDirectory() as folder:
        data = synthetic_boxes(Path(folder) / "boxes")
        model = YOLO("yolov8n.yaml")
        tracker = attach(model)  # task object_detection, the trainer's arguments as the run's config
        model.train(data=str(data), epochs=epochs, imgsz=64, batch=8, workers=0, plots=False, project=f"{folder}/runs")
    print(f"trainops: {tracker.operation_id} ended; best epoch {tracker.best_epoch}")
    print(f"see it with: trainops ops metrics {tracker.operation_id}")


if __name__ == "__main__":
    main()
