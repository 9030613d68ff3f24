"""A two-process Trainer run on CPU (gloo) reporting through ``TrainOpsCallback()``, run by
``test_transformers_ddp.py``.

    torchrun --nproc_per_node 2 hf_ddp_fit.py OUT_DIR EPOCHS SECONDS_PER_EPOCH

torchrun starts both ranks (``RANK``, ``WORLD_SIZE``, ``MASTER_PORT`` in their environment); both take
``TRAINOPS_URL`` from the environment the test gave. The model is a one-layer BERT built from its config: nothing
is downloaded. Each rank writes its process id to ``OUT_DIR/rank<N>.pid`` when it starts (torchrun puts each rank
in a session of its own, so the test can only stop a rank left behind by its id), and what its own loop did to
``OUT_DIR/rank<N>.json`` when ``train()`` returned: the epochs it trained, the epoch at whose end
``control.should_training_stop`` was set, and what its callback knows (operation id, whether it reported, the best
epoch). A script of its own, not an import of the test module, so the ranks import nothing of pytest's.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers reads it

import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from trainops.integrations.transformers import TrainOpsCallback

warnings.filterwarnings("ignore")  # advice about CPU DDP and unused arguments: noise in the test's log


class Tokens(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Random sequences of 8 token ids; the label says whether the first token is in the upper half."""

    def __init__(self, size: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, 100, (size, 8), generator=generator)
        self.labels = (self.ids[:, 0] >= 50).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[index], "labels": self.labels[index]}


class Pace(TrainerCallback):
    """Makes each epoch last ``seconds`` on every rank, so a stop asked from outside lands mid-training."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_epoch_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        time.sleep(self.seconds)


class Witness(TrainerCallback):
    """Runs after trainops' callback: records each epoch this rank's loop trained and the epoch in which it was
    told to stop.

    trainops' callback sets ``should_training_stop`` with the epoch's record, which waits for the evaluation
    after the epoch; the Trainer sets it itself at its last step, so a run that ran its course stops in its last
    epoch."""

    def __init__(self) -> None:
        self.epoch = 0
        self.epochs: list[int] = []
        self.stopped_at: int | None = None

    def on_epoch_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.epoch = round(state.epoch or 0.0)  # where the previous epoch ended: 1.0 after the first

    def on_epoch_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.epochs.append(self.epoch)
        self._notice(control)

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self._notice(control)

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self._notice(control)

    def _notice(self, control: TrainerControl) -> None:
        if control.should_training_stop and self.stopped_at is None:
            self.stopped_at = self.epoch


def main(out: Path, epochs: int, seconds: float) -> None:
    rank = int(os.environ["RANK"])
    (out / f"rank{rank}.pid").write_text(str(os.getpid()))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    args = TrainingArguments(
        output_dir=str(out / "trainer"),
        num_train_epochs=epochs,
        per_device_train_batch_size=16,  # the sampler splits 64 samples between the ranks: 2 steps an epoch
        per_device_eval_batch_size=16,
        learning_rate=1e-3,
        eval_strategy="epoch",
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        ddp_backend="gloo",
        save_strategy="no",
        disable_tqdm=True,
    )
    callback = TrainOpsCallback()  # TRAINOPS_URL; the rank from the Trainer
    witness = Witness()
    trainer = Trainer(
        model=BertForSequenceClassification(config),
        args=args,
        train_dataset=Tokens(64, seed=0),
        eval_dataset=Tokens(32, seed=1),
        callbacks=[Pace(seconds), callback, witness],
    )
    trainer.train()
    report: dict[str, Any] = {
        "rank": args.process_index,
        "world_size": args.world_size,
        "epochs": witness.epochs,
        "stopped_at": witness.stopped_at,
        "global_step": trainer.state.global_step,
        "operation_id": callback.operation_id,
        "reporting": callback.tracker.is_reporting,
        "best_epoch": callback.best_epoch,
    }
    written = out / f"rank{rank}.json.part"
    written.write_text(json.dumps(report))
    written.rename(out / f"rank{rank}.json")  # whole or absent for the test reading it


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))
