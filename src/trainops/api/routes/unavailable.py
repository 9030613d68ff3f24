"""The routes of the ``train`` extra on a server installed without it: each answers 501 naming the extra.

Without them a client would read a bare 404 and wonder whether it mistyped the path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter

from trainops import extras

TRAIN_RESOURCES = {
    "training": "strategy training",
    "strategies": "strategy files",
    "data": "market data",
    "models": "the model registry",
}
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]

router = APIRouter()


def _refuse(feature: str) -> Callable[[], Awaitable[None]]:
    async def missing_extra() -> None:
        extras.require("train", feature)

    return missing_extra


for resource, feature in TRAIN_RESOURCES.items():
    for path in (f"/{resource}", f"/{resource}/{{rest:path}}"):
        router.add_api_route(path, _refuse(feature), methods=METHODS, include_in_schema=False)
