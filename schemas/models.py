"""ModelRecord: a twin the trainer published (topic twinwatch.models.v1, key: the served model's name).

The evaluator scores with the newest record's Triton version; every ChangeEvent names the version
that made it, and this record says what that version was trained on.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field


class DevicePlanRef(BaseModel):
    baseline: dt.date
    training: dt.date
    validation: dt.date


class ModelRecord(BaseModel):
    schema_version: Literal[1] = 1
    model_name: str = Field(description="the Triton model serving the twin's arm")
    served_version: int = Field(ge=1, description="version folder in the model repository, loaded by Triton")
    model_version: str = Field(description="tnn-<hash of the weights>, as in ChangeEvent.model_version")
    trained_at: dt.datetime
    devices: dict[str, DevicePlanRef] = Field(description="device MAC → the days it was trained on")
    best_epoch: int
    epochs: int
    val_loss: float
    val_accuracy: float
    training_pairs: int
    validation_pairs: int
