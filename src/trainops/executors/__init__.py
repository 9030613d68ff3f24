"""Running training jobs: in this process, in local worker processes, and (later) on a Ray cluster.

Every executor runs the same job (:func:`trainops.executors.jobs.run_training`): the strategy recorded in a
training operation, reported through a :class:`~trainops.client.run.Run` into that operation.
"""
