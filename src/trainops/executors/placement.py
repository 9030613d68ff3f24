"""Where a training runs: the node (host, and the Ray node when Ray knows it) and the device it trained on.

Recorded on the operation's metadata (``node``, ``ray_node_id``, ``device``) by every worker, local or remote, so
``GET /operations/{id}`` says where a run trained: ``cuda:0`` on a GPU node, not the device the server guessed
when it created the operation.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import torch


def node_metadata() -> dict[str, Any]:
    """``{"node": hostname}``, plus ``ray_node_id`` inside a Ray worker or driver that has connected to Ray.

    Ray is asked only when it is already imported and initialised: a job's entrypoint (the trainops worker) never
    connects to Ray itself, and importing or starting Ray just to learn the node's id would cost seconds and
    sessions for nothing. Ray sets no environment variable with the node id for a job's entrypoint, so there it
    is left to the executor, which knows where it submitted the job.
    """
    fields: dict[str, Any] = {"node": socket.gethostname()}
    ray = sys.modules.get("ray")
    if ray is not None:
        try:
            if ray.is_initialized():
                fields["ray_node_id"] = ray.get_runtime_context().get_node_id()
        except Exception:  # an odd Ray state must never stop a training; the hostname is enough
            pass
    return fields


def device_name(device: torch.device) -> str:
    """``cpu``, ``cuda:0``, ``mps``: the device with its index where torch picks one (``cuda`` means the current
    CUDA device, which a worker given ``CUDA_VISIBLE_DEVICES`` sees as 0)."""
    if device.type == "cuda" and device.index is None:
        return f"cuda:{torch.cuda.current_device()}"
    return str(device)
