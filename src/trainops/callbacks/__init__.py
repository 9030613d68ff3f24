"""Training callbacks: any framework's loop reports to trainops the same way, and can be stopped.

>>> from trainops.callbacks import TrainingCallbacks
>>> tracker = TrainingCallbacks(task="image_classification", total_epochs=10, config={"lr": 3e-4})
>>> with tracker:  # doctest: +SKIP
...     for epoch in range(10):
...         tracker.on_epoch_begin(epoch)
...         for batch, loss in enumerate(train_one_epoch()):
...             tracker.on_batch_end(batch, {"loss": loss})
...         tracker.on_epoch_end(epoch, {"loss": train_loss, "val_loss": val_loss, "val_accuracy": accuracy})
...         if tracker.should_stop():   # a person, an agent or the diagnosis asked
...             break

The framework integrations (:mod:`trainops.integrations`) call these hooks for you.
"""

from trainops.callbacks.sinks import ConsoleSink, GuardedSink, RunInfo, Sink
from trainops.callbacks.training import DIAGNOSIS, StopRequest, TrainingCallbacks, process_rank

__all__ = [
    "DIAGNOSIS",
    "ConsoleSink",
    "GuardedSink",
    "RunInfo",
    "Sink",
    "StopRequest",
    "TrainingCallbacks",
    "process_rank",
]
