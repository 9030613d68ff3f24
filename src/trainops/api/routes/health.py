from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Response

from trainops.api.deps import ServiceDep, call_service
from trainops.api.openapi import DATABASE_ERRORS
from trainops.api.responses import Envelope, envelope
from trainops.schemas.health import Health
from trainops.service.bootstrap import check_health

router = APIRouter(tags=["health"], responses=DATABASE_ERRORS)


@router.get("/health", response_model=Envelope[Health])
async def health(service: ServiceDep) -> Response:
    """Liveness and what the server runs on (version, database, schema revision); 503 while the database does not
    answer. Needs no token."""
    return envelope(await call_service(service, partial(check_health, service)))
