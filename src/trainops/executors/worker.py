"""``python -m trainops.executors.worker OPERATION_ID``: run one training operation in this process.

Started by the server's :class:`~trainops.executors.local.LocalExecutor` and by ``trainops train --detach``.
Settings come from the environment the parent pinned (same database, same directories).
"""

from __future__ import annotations

import sys
import traceback

from trainops.client.local import LocalTrainOps
from trainops.errors import TrainOpsError
from trainops.executors.jobs import run_training
from trainops.service.bootstrap import open_service
from trainops.service.workers import this_worker
from trainops.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m trainops.executors.worker OPERATION_ID", file=sys.stderr)
        return 2
    settings = get_settings()
    ops = LocalTrainOps(open_service(settings), settings=settings)
    try:
        training = ops.training  # the strategy training service: a clear error when the train extra is missing
        operation = ops.get_operation(args[0])
        final = run_training(
            ops, operation, data_dir=training.data_dir, models_dir=training.models_dir, worker=this_worker()
        )
    except TrainOpsError as error:
        print(f"training {args[0]} did not complete: {error.message}", file=sys.stderr)
        return 1
    except Exception:  # recorded on the operation by the run; the log keeps the traceback
        traceback.print_exc()
        return 1
    finally:
        ops.close()
    print(f"training {final.operation_id} ended {final.status.value}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
