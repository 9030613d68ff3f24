"""Quickstart: train a small PyTorch classifier on scikit-learn's digits and let trainops judge it.

Every epoch is reported through trainops (in-process on the local database, or to a server when TRAINOPS_URL is
set). At the end the script prints the stored history and the diagnosis trainops computed from it. The training
set is deliberately small and the network wide, so the run overfits after a while: watch trainops notice.

    python examples/quickstart.py                 # 60 epochs, then the history and diagnosis
    python examples/quickstart.py --follow-advice # stop as soon as trainops recommends it, keep the best weights
    trainops ops watch <operation id>             # in another terminal, while it runs
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from rich.console import Console
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import trainops
from trainops.cli.render import diagnosis_panel, epochs_table

console = Console()


def load_data(train_size: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Digits (8x8 images, 10 classes, 1,797 samples, shipped inside scikit-learn), scaled to [0, 1]."""
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.long)
    x_train, x_val, y_train, y_val = train_test_split(x, y, train_size=train_size, random_state=seed, stratify=y)
    return x_train, x_val, y_train, y_val


def build_model(width: int) -> nn.Module:
    return nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10))


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        logits = model(x)
        return float(loss_fn(logits, y)), float((logits.argmax(dim=1) == y).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--train-size", type=int, default=200, help="training samples (small: it overfits)")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--follow-advice", action="store_true", help="stop when trainops recommends stopping")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    x_train, x_val, y_train, y_val = load_data(args.train_size, args.seed)
    model = build_model(args.width)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    batches = max(1, (len(x_train) + args.batch_size - 1) // args.batch_size)
    best_state, best_val = copy.deepcopy(model.state_dict()), float("inf")

    ops = trainops.connect()
    metadata = {"strategy": "digits-mlp", "parameters": vars(args), "device": "cpu"}
    with ops.run(total_epochs=args.epochs, metadata=metadata) as run:
        console.print(
            f"Tracking [bold]{run.operation_id}[/bold]; follow it with: trainops ops watch {run.operation_id}"
        )
        for epoch in range(args.epochs):
            started = time.perf_counter()
            model.train()
            order = torch.randperm(len(x_train))
            total_loss, correct = 0.0, 0
            for batch in range(batches):
                index = order[batch * args.batch_size : (batch + 1) * args.batch_size]
                optimizer.zero_grad()
                logits = model(x_train[index])
                loss = loss_fn(logits, y_train[index])
                loss.backward()
                optimizer.step()
                total_loss += float(loss) * len(index)
                correct += int((logits.argmax(dim=1) == y_train[index]).sum())
                run.batch(epoch, batch + 1, batches)
            val_loss, val_accuracy = evaluate(model, x_val, y_val, loss_fn)
            if val_loss < best_val:
                best_val, best_state = val_loss, copy.deepcopy(model.state_dict())
            run.log(
                epoch,
                train_loss=total_loss / len(x_train),
                val_loss=val_loss,
                train_accuracy=correct / len(x_train),
                val_accuracy=val_accuracy,
                learning_rate=optimizer.param_groups[0]["lr"],
                duration=time.perf_counter() - started,
            )
            if run.should_stop():
                console.print(f"Stop requested: {run.should_stop()}")
                break
            if args.follow_advice:
                advice = ops.get_metrics(run.operation_id).metrics.recommendation
                if advice.action is not trainops.Action.CONTINUE:
                    console.print(f"[yellow]trainops advises:[/yellow] {advice.reason}")
                    break
        model.load_state_dict(best_state)
        final_loss, final_accuracy = evaluate(model, x_val, y_val, loss_fn)
        run.result = {"val_loss": final_loss, "val_accuracy": final_accuracy, "restored_best": True}

    metrics = ops.get_metrics(run.operation_id).metrics
    console.print(epochs_table(metrics.epochs, metrics.best_epoch))
    console.print(diagnosis_panel(metrics))
    first_stop = first_stop_advice(metrics.epochs, args.epochs)
    if first_stop is not None:
        epoch, reason = first_stop
        console.print(
            f"trainops first advised stopping after epoch {epoch} ({epoch + 1} of {len(metrics.epochs)} epochs run): "
            f"{reason}"
        )
    console.print(
        f"Kept the weights of the best epoch: val_loss {final_loss:.4f}, val_accuracy {final_accuracy:.1%}.\n"
        f"Stored in the {ops.health().database} database; see it again with: "
        f"trainops ops metrics {run.operation_id}"
    )
    ops.close()


def first_stop_advice(epochs: list[trainops.EpochRecord], planned: int) -> tuple[int, str] | None:
    """Replay the diagnosis epoch by epoch (it is a pure function): when would trainops have said stop?"""
    for end in range(1, len(epochs) + 1):
        advice = trainops.analyze(epochs[:end], total_epochs_planned=planned).recommendation
        if advice.action is not trainops.Action.CONTINUE:
            return epochs[end - 1].epoch, advice.reason
    return None


if __name__ == "__main__":
    main()
