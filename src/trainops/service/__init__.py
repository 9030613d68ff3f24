"""Services: the operations lifecycle, strategy training and the model registry, over the store.

Nothing is imported here: a training script that imports the client's ``Run`` (which uses the progress throttle)
should not load the store with it. Import from the modules: ``trainops.service.operations``, ``.training``,
``.registry``, ``.bootstrap``.
"""
