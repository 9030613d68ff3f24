"""Framework integrations: one callback per framework that reports its training to trainops and lets trainops stop it.

Each lives in its own module and imports its framework, so import the one you use (this package imports none)::

    from trainops.integrations.lightning import TrainOpsCallback      # Lightning (or pytorch_lightning)
    from trainops.integrations.transformers import TrainOpsCallback   # Hugging Face Transformers' Trainer
    from trainops.integrations.keras import TrainOpsCallback          # Keras 3

Every callback works with no arguments (``trainops.connect()``'s defaults: ``TRAINOPS_URL``, else the local
database) and takes the keyword arguments of :class:`~trainops.callbacks.TrainingCallbacks` (``task``, ``config``,
``mlflow``, ``stop_on_recommendation``, ...). Each reports every epoch under trainops' canonical metric names
(the framework's own names are kept as aliases), records the hyperparameters the framework knows, and ends the
framework's loop after the current epoch when a person, an agent or the diagnosis asks the run to stop.
See docs/integrations.md.
"""
