"""Keras 3: one callback reports every epoch to trainops; a stop asked through trainops ends ``fit`` after the
epoch it was asked in.

    python examples/integrations/keras_example.py         # local database, or a server when TRAINOPS_URL is set
    trainops ops watch <operation id>                     # in another terminal, while it runs
    trainops ops cancel <operation id> --reason "enough"  # fit ends after the current epoch
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # this example runs on PyTorch; jax or tensorflow work as well

import keras
import numpy as np

from trainops.integrations.keras import TrainOpsCallback


def synthetic_data() -> tuple[np.ndarray, np.ndarray]:
    """1,000 points in 20 dimensions, labelled by the sign of the sum of the first two plus noise."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 20)).astype("float32")
    y = (x[:, 0] + x[:, 1] + 0.5 * rng.normal(size=1000) > 0).astype("int32")
    return x, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    epochs = parser.parse_args().epochs

    model = keras.Sequential(
        [keras.Input((20,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(2, activation="softmax")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = synthetic_data()
    # as a context manager, the callback also records a fit that raised (Keras never tells callbacks)
    with TrainOpsCallback(task="tabular_classification") as callback:
        model.fit(x, y, epochs=epochs, batch_size=64, validation_split=0.2, callbacks=[callback], verbose=2)
    print(f"trainops: {callback.operation_id} ended; best epoch {callback.best_epoch}")
    print(f"see it with: trainops ops metrics {callback.operation_id}")


if __name__ == "__main__":
    main()
