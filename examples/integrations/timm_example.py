"""timm: a timm-style loop (``train_one_epoch`` and ``validate`` returning dicts, as in timm's train.py) reports
each epoch with ``report_epoch``; a stop asked through trainops ends it after the epoch it was asked in.

    python examples/integrations/timm_example.py            # local database, or a server when TRAINOPS_URL is set
    trainops ops watch <operation id>                       # in another terminal, while it runs
    trainops ops cancel <operation id> --reason "enough"    # the loop ends after the current epoch

The images are synthetic (32x32, ten classes, each a colour plus noise) and the model is built from timm's config
(no weights downloaded). timm's top-1/top-5 accuracies are percentages; trainops stores them as fractions.
A run trained by timm's own train.py can be imported afterwards: ``import_summary("output/train/<run>")``.
"""

from __future__ import annotations

import argparse
from collections import OrderedDict

import timm
import torch
from timm.utils import AverageMeter, accuracy
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainops.callbacks import TrainingCallbacks
from trainops.integrations.timm import report_epoch

Loader = DataLoader[tuple[torch.Tensor, ...]]


def synthetic_images(classes: int = 10, seed: int = 0) -> tuple[Loader, Loader]:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(600) % classes
    colours = torch.rand(classes, 3, 1, 1, generator=generator)
    images = colours[labels] + 0.4 * torch.randn(600, 3, 32, 32, generator=generator)
    train, val = TensorDataset(images[:500], labels[:500]), TensorDataset(images[500:], labels[500:])
    return DataLoader(train, batch_size=50, shuffle=True, generator=generator), DataLoader(val, batch_size=100)


def train_one_epoch(model: nn.Module, loader: Loader, optimizer: torch.optim.Optimizer) -> OrderedDict[str, float]:
    losses = AverageMeter()
    model.train()
    for images, labels in loader:
        loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.update(loss.item(), images.size(0))
    return OrderedDict([("loss", losses.avg)])


def validate(model: nn.Module, loader: Loader) -> OrderedDict[str, float]:
    losses, top1, top5 = AverageMeter(), AverageMeter(), AverageMeter()
    model.eval()
    with torch.no_grad():
        for images, labels in loader:
            output = model(images)
            acc1, acc5 = accuracy(output, labels, topk=(1, 5))  # in percent, as timm reports them
            losses.update(nn.functional.cross_entropy(output, labels).item(), images.size(0))
            top1.update(acc1.item(), images.size(0))
            top5.update(acc5.item(), images.size(0))
    return OrderedDict([("loss", losses.avg), ("top1", top1.avg), ("top5", top5.avg)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--model", default="test_resnet", help="any timm model name (built without weights)")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = timm.create_model(args.model, pretrained=False, num_classes=10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    train_loader, val_loader = synthetic_images()
    config = {"model": args.model, "lr": 0.05, "epochs": args.epochs}
    with TrainingCallbacks(task="image_classification", config=config, total_epochs=args.epochs) as tracker:
        for epoch in range(args.epochs):
            tracker.on_epoch_begin(epoch)
            train_metrics = train_one_epoch(model, train_loader, optimizer)
            eval_metrics = validate(model, val_loader)
            lr = optimizer.param_groups[0]["lr"]
            if report_epoch(tracker, epoch, train_metrics, eval_metrics, lr=lr):
                break  # a person, an agent or the diagnosis asked the run to stop
    print(f"trainops: {tracker.operation_id} ended; best epoch {tracker.best_epoch}")
    print(f"see it with: trainops ops metrics {tracker.operation_id}")


if __name__ == "__main__":
    main()
