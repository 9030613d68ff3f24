"""Wire types of the per-step series: the body that reports several step points at once.

The points (:class:`~trainops.core.steps.StepRecord`) and the series read back
(:class:`~trainops.core.steps.StepSeries`) cross the wire as they are.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from trainops.core.steps import StepRecord

MAX_STEPS_PER_WRITE = 100_000
"""More than a run keeps (the cap thins them), and about what the default request size limit lets through."""


class StepBatch(BaseModel):
    """Several step points in one request (``{"steps": [...]}``); a single point may be posted bare."""

    model_config = ConfigDict(extra="forbid")

    steps: list[StepRecord] = Field(max_length=MAX_STEPS_PER_WRITE)
