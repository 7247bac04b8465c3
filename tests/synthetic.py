"""Synthetic fingerprints for the evaluator's and trainer's tests: four devices over six days."""

import datetime as dt

import numpy as np

from twinwatch.windows import WindowSpec

SPEC = WindowSpec(tz="UTC")
DAYS = [dt.date(2026, 1, 12) + dt.timedelta(days=i) for i in range(6)]


def lab_images() -> dict[tuple[str, dt.date], np.ndarray]:
    """Four devices over six days: A steady, B changes on day 5, C has a sparse day 5, D too few days."""
    rng = np.random.default_rng(3)
    patterns = {mac: rng.integers(0, 255, (13, 53)) for mac in ("aa", "bb", "cc", "dd")}
    out = {}
    for mac, pattern in patterns.items():
        for number, day in enumerate(DAYS, start=1):
            if mac == "dd" and number in (2, 4, 5):
                continue
            windows = 2 if (mac == "cc" and number == 5) else 12
            base = pattern if not (mac == "bb" and number >= 5) else 255 - pattern
            noise = rng.integers(-20, 20, (windows, 13, 53))
            out[(f"{mac}:00:00:00:00:01", day)] = np.clip(base + noise, 0, 255).astype(np.uint8)
    return out
