"""ChangeEvent: one verdict per device per day, as the SIEM reads it (topic twinwatch.events.v1)."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Literal

from pydantic import BaseModel, Field, computed_field

SCHEMA_VERSION = 1


class DeviceRef(BaseModel):
    mac: str = Field(pattern=r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
    ip: str = ""
    name: str = ""
    model: str = ""


class ChangeMetrics(BaseModel):
    """The paper's four indicators (section 4.4) and what they were computed from."""

    all_samples_dissimilar_share: float
    majority_samples_dissimilar: bool
    mean_score: float
    mean_threshold_exceeded: bool
    hedges_g: float
    effect_size: Literal["negligible", "very small", "small", "medium", "large", "very large", "huge"]
    baseline_mean: float
    scores: int
    baseline_scores: int


class Driver(BaseModel):
    """A protocol row or feature group that moved against the baseline (mean grey level 0–255)."""

    kind: Literal["row", "group"]
    name: str
    baseline: float
    day: float
    text: str


class ChangeEvent(BaseModel):
    schema_version: Literal[1] = SCHEMA_VERSION
    device: DeviceRef
    day: dt.date
    verdict: Literal["stable", "changed", "insufficient-data"]
    reason: str
    metrics: ChangeMetrics | None = None
    why: list[Driver] = Field(default_factory=list)
    day_windows: int
    baseline_windows: int
    baseline_day: dt.date
    model_version: str = Field(description="the twin that scored the day: tnn-<hash of its weights>")
    served_version: int | None = Field(None, description="Triton version of model tnn that scored it (streaming)")

    @computed_field(description="the same for the same device, day and model: a SIEM drops a re-sent event by it")
    @property
    def event_id(self) -> str:
        return hashlib.sha256(f"{self.device.mac}|{self.day}|{self.model_version}".encode()).hexdigest()[:24]
