"""``python -m trainops.executors.worker OPERATION_ID``: run one training operation in this process.

Two modes, chosen by the environment:

- **local** (no ``TRAINOPS_URL``): started by the server's :class:`~trainops.executors.local.LocalExecutor` and by
  ``trainops train --detach`` with the environment the parent pinned: it reports to the same database and reads
  and writes the same data and models directories.
- **remote** (``TRAINOPS_URL``, and ``TRAINOPS_API_TOKEN`` when the server wants one): a Ray job's entrypoint, or
  any process on a machine that reaches the API and shares no disk with it. It reports through
  :class:`~trainops.client.http.HttpTrainOps`, downloads the market data into its own ``TRAINOPS_HOME`` (unless
  ``TRAINOPS_DATA_DIR`` already holds it) and sends the trained model version to the server's registry
  (:mod:`trainops.executors.remote`).

Both record the worker as ``host:pid`` when they start the operation, and the node and device on its metadata.
"""

from __future__ import annotations

import sys
import traceback
from functools import partial

from trainops.client.base import TrainOps
from trainops.client.http import HttpTrainOps
from trainops.client.local import LocalTrainOps
from trainops.core.operation import Operation
from trainops.errors import TrainOpsError
from trainops.executors.jobs import run_training
from trainops.executors.remote import market_data_dir, models_scratch_dir, patiently
from trainops.service.bootstrap import open_service
from trainops.service.workers import this_worker
from trainops.settings import Settings, get_settings


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m trainops.executors.worker OPERATION_ID", file=sys.stderr)
        return 2
    operation_id = args[0]
    try:
        settings = get_settings()
        ops: TrainOps = (
            HttpTrainOps(settings.url, token=settings.api_token)
            if settings.url
            else LocalTrainOps(open_service(settings), settings=settings)
        )
    except TrainOpsError as error:
        print(f"training {operation_id} did not start: {error.message}", file=sys.stderr)
        return 1
    try:
        final = _train(ops, operation_id, settings)
    except TrainOpsError as error:
        print(f"training {operation_id} did not complete: {error.message}", file=sys.stderr)
        return 1
    except Exception:  # recorded on the operation by the run; the log keeps the traceback
        traceback.print_exc()
        return 1
    finally:
        ops.close()
    print(f"training {final.operation_id} ended {final.status.value}", file=sys.stderr)
    return 0


def _train(ops: TrainOps, operation_id: str, settings: Settings) -> Operation:
    if isinstance(ops, LocalTrainOps):
        training = ops.training  # the strategy training service: a clear error when the train extra is missing
        operation = ops.get_operation(operation_id)
        return run_training(
            ops, operation, data_dir=training.data_dir, models_dir=training.models_dir, worker=this_worker()
        )
    print(f"training {operation_id} reports to {settings.url}", file=sys.stderr)
    # a job the cluster starts while the API restarts waits for it, as its downloads and upload do
    operation = patiently(lambda: ops.get_operation(operation_id), f"read {operation_id} from {settings.url}")
    return run_training(
        ops,
        operation,
        data_dir=partial(market_data_dir, ops, settings=settings),
        models_dir=models_scratch_dir(settings),
        upload_model=True,
        worker=this_worker(),
    )


if __name__ == "__main__":
    raise SystemExit(main())
