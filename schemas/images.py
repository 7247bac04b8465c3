"""WindowImage: one device's fingerprint of one window (topic twinwatch.images.v1, key: device MAC)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field, field_validator

ROWS, COLUMNS = 13, 53


class WindowImage(BaseModel):
    schema_version: Literal[1] = 1
    image_spec_version: int = 1
    device_mac: str = Field(pattern=r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
    device_ip: str = ""
    day: dt.date = Field(description="local date on which the device's quiet period started")
    window_index: int = Field(ge=0)
    window_start_ms: int
    window_end_ms: int
    pixels: list[list[int]] = Field(description="13 protocol rows × 53 feature columns, 0–255")

    @field_validator("pixels")
    @classmethod
    def _shape(cls, pixels: list[list[int]]) -> list[list[int]]:
        if len(pixels) != ROWS or any(len(row) != COLUMNS for row in pixels):
            raise ValueError(f"pixels must be {ROWS} rows of {COLUMNS} values")
        if any(not 0 <= v <= 255 for row in pixels for v in row):
            raise ValueError("pixels must lie in 0–255")
        return pixels
