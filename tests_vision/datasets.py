"""Tiny synthetic data sets the vision tests write themselves: nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 64


def detection_dataset(root: Path, train: int = 8, val: int = 4, seed: int = 0) -> Path:
    """A YOLO detection data set of 64x64 images, each with one bright box (class ``box``) on a dark background;
    returns its data yaml."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("val", val)):
        images, labels = root / "images" / split, root / "labels" / split
        images.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image = np.full((SIZE, SIZE, 3), 30, np.uint8)
            x, y = (int(value) for value in rng.integers(2, 30, size=2))
            width, height = (int(value) for value in rng.integers(14, 32, size=2))
            image[y : y + height, x : x + width] = (230, 70, 50)
            Image.fromarray(image).save(images / f"{index}.png")
            centre_x, centre_y = (x + width / 2) / SIZE, (y + height / 2) / SIZE
            (labels / f"{index}.txt").write_text(
                f"0 {centre_x:.5f} {centre_y:.5f} {width / SIZE:.5f} {height / SIZE:.5f}\n"
            )
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: box\n")
    return data


def classification_dataset(root: Path, per_class: int = 8, val_per_class: int = 4, seed: int = 0) -> Path:
    """An image-folder classification data set (``train/<class>/``, ``val/<class>/``) of 32x32 images, red and
    blue plus noise; returns its root, which is what Ultralytics takes as ``data``."""
    rng = np.random.default_rng(seed)
    colours = {"red": (220, 40, 40), "blue": (40, 40, 220)}
    for split, count in (("train", per_class), ("val", val_per_class)):
        for name, colour in colours.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                noisy = np.array(colour)[None, None, :] + rng.normal(0, 30, (32, 32, 3))
                Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(folder / f"{index}.png")
    return root
