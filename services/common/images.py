"""Reading WindowImages off the bus into a core collector: shared by the trainer and the evaluator."""

from __future__ import annotations

import time

import numpy as np
from pydantic import ValidationError

from schemas.images import WindowImage


def parse_image(value: bytes | None) -> tuple[WindowImage | None, str]:
    """A WindowImage, or None and why it cannot be one (for the dead-letter topic)."""
    try:
        return WindowImage.model_validate_json(value or b""), ""
    except (ValidationError, ValueError) as error:
        return None, f"not a WindowImage: {str(error)[:400]}"


def pixels(image: WindowImage) -> np.ndarray:
    return np.asarray(image.pixels, dtype=np.uint8)


class IdleClock:
    """When a link goes quiet, the wall clock takes over from event time, so the last day's quiet
    period still ends (a live link that sends nothing; the end of a replay)."""

    def __init__(self, idle_seconds: float) -> None:
        self.idle_seconds = idle_seconds
        self.last_record = self.last_fired = time.monotonic()

    def record_seen(self) -> None:
        self.last_record = time.monotonic()

    def due(self) -> bool:
        """True every ``idle_seconds`` while no record has come for at least that long."""
        now = time.monotonic()
        if now - self.last_record >= self.idle_seconds and now - self.last_fired >= self.idle_seconds:
            self.last_fired = now
            return True
        return False

    @staticmethod
    def now_ms() -> int:
        return int(time.time() * 1000)
