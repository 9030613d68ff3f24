"""``/metrics``: what metrics mean, per task (the definitions a UI renders an unknown run with)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from trainops.api.responses import Envelope, envelope
from trainops.core.metric_definitions import TaskType
from trainops.schemas.metrics import MetricDefinitions, metric_definitions

router = APIRouter(prefix="/metrics", tags=["metrics"])


@router.get("/definitions", response_model=Envelope[MetricDefinitions])
async def get_metric_definitions(
    task: Annotated[
        str | None,
        Query(
            description=f"only this task's metrics; one of {', '.join(TaskType)}",
            examples=["object_detection"],
            # documented as the enum it is; read as text, so that an unknown task gets the 422 listing them
            json_schema_extra={"enum": [task.value for task in TaskType]},
        ),
    ] = None,
) -> Response:
    """Each task's primary metric (the diagnosis's default monitor for a run that records its task) and the
    definition of every metric trainops knows for it: label, format (percent, float, int), whether higher is
    better, and its tier (primary, standard; anything else a run reports is custom). 422 for an unknown task,
    listing the known ones."""
    return envelope(metric_definitions(task))
