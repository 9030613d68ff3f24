"""Hugging Face Transformers: one callback reports every epoch (with its evaluation) to trainops; a stop asked
through trainops ends the training after the epoch it was asked in.

A tiny BERT built from its config on random token sequences: nothing is downloaded.

    python examples/integrations/transformers_example.py  # local database, or a server when TRAINOPS_URL is set
    trainops ops watch <operation id>                     # in another terminal, while it runs
    trainops ops cancel <operation id> --reason "enough"  # training ends after the current epoch
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    EvalPrediction,
    Trainer,
    TrainingArguments,
)

from trainops.integrations.transformers import TrainOpsCallback


class Tokens(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Random sequences of 16 token ids; the label says whether the first token is in the upper half."""

    def __init__(self, size: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, 100, (size, 16), generator=generator)
        self.labels = (self.ids[:, 0] >= 50).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[index], "labels": self.labels[index]}


def accuracy(prediction: EvalPrediction) -> dict[str, float]:
    return {"accuracy": float((np.argmax(prediction.predictions, axis=-1) == prediction.label_ids).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    epochs = parser.parse_args().epochs

    config = BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    with tempfile.TemporaryDirectory() as output_dir:
        args = TrainingArguments(
            output_dir=output_dir,
            num_train_epochs=epochs,
            per_device_train_batch_size=32,
            learning_rate=1e-3,
            eval_strategy="epoch",
            logging_steps=5,
            save_strategy="no",
            report_to=[],
            disable_tqdm=True,
        )
        # as a context manager, the callback also records a training that raised (the Trainer never tells callbacks)
        with TrainOpsCallback(task="text_classification") as callback:
            trainer = Trainer(
                model=BertForSequenceClassification(config),
                args=args,
                train_dataset=Tokens(256, seed=0),
                eval_dataset=Tokens(128, seed=1),
                compute_metrics=accuracy,
                callbacks=[callback],
            )
            trainer.train()
    print(f"trainops: {callback.operation_id} ended; best epoch {callback.best_epoch}")
    print(f"see it with: trainops ops metrics {callback.operation_id}")


if __name__ == "__main__":
    main()
