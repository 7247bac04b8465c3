"""Quiet-period windows: 15-minute windows every 12 minutes inside a daily local-time period."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

MS_PER_MINUTE = 60_000


@dataclass(frozen=True)
class WindowSpec:
    """Where the windows of a day lie.

    The period starts at ``period_start`` local time (site time zone ``tz``) and lasts
    ``period_minutes``; windows of ``window_minutes`` start every ``step_minutes`` from the period
    start, ``period_minutes // step_minutes`` of them (30 for 00:00–06:00, the last ending at 06:03,
    as in the paper). A day is named by the local date on which its period starts, so a period that
    crosses midnight (22:00 + 6 h) still belongs to one day. Times are event times from the capture.
    """

    tz: str = "UTC"
    period_start: dt.time = dt.time(0, 0)
    period_minutes: int = 360
    window_minutes: int = 15
    step_minutes: int = 12

    def __post_init__(self) -> None:
        if self.window_minutes <= 0 or self.step_minutes <= 0 or self.period_minutes <= 0:
            raise ValueError("window, step and period lengths must be positive")
        if self.period_minutes > 24 * 60:
            raise ValueError("the quiet period cannot be longer than a day")
        ZoneInfo(self.tz)  # raises ZoneInfoNotFoundError for an unknown zone

    @classmethod
    def from_strings(cls, tz: str = "UTC", quiet: str = "00:00-06:00", **kwargs: int) -> WindowSpec:
        """Build from a ``HH:MM-HH:MM`` quiet period (an end at or before the start wraps midnight)."""
        try:
            start_text, end_text = (part.strip() for part in quiet.split("-"))
            start = dt.time.fromisoformat(start_text)
            end = dt.time(0, 0) if end_text == "24:00" else dt.time.fromisoformat(end_text)
            if len(start_text) != 5 or len(end_text) != 5:
                raise ValueError(quiet)
        except ValueError as error:
            raise ValueError(f"quiet period {quiet!r} is not HH:MM-HH:MM") from error
        minutes = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
        if minutes <= 0:
            minutes += 24 * 60
        return cls(tz=tz, period_start=start, period_minutes=minutes, **kwargs)

    @property
    def windows_per_day(self) -> int:
        return self.period_minutes // self.step_minutes

    @property
    def window_ms(self) -> int:
        return self.window_minutes * MS_PER_MINUTE

    @property
    def step_ms(self) -> int:
        return self.step_minutes * MS_PER_MINUTE

    def period_start_ms(self, day: dt.date) -> int:
        """UTC epoch milliseconds at which the quiet period of local date ``day`` starts."""
        local = dt.datetime.combine(day, self.period_start, tzinfo=ZoneInfo(self.tz))
        return int(local.timestamp()) * 1000

    def window_start_ms(self, day: dt.date, index: int) -> int:
        return self.period_start_ms(day) + index * self.step_ms

    def local_date(self, epoch_ms: int) -> dt.date:
        return dt.datetime.fromtimestamp(epoch_ms / 1000, ZoneInfo(self.tz)).date()

    def next_window_end_ms(self, after_ms: int) -> int:
        """The first moment after ``after_ms`` at which some window ends (a stream closes windows then)."""
        today = self.local_date(after_ms)
        ends = (self.period_start_ms(today + dt.timedelta(days=back)) + w * self.step_ms + self.window_ms
                for back in (-1, 0, 1, 2) for w in range(self.windows_per_day))
        return min(end for end in ends if end > after_ms)


@dataclass(frozen=True)
class WindowAssignment:
    """Which (day, window) each packet falls in; a packet may fall in two overlapping windows."""

    packet_index: np.ndarray  # int64, index into the packets given
    day_index: np.ndarray  # int64, index into ``days``
    window_index: np.ndarray  # int64, 0 … windows_per_day-1
    days: tuple[dt.date, ...]


def assign_windows(times_ms: np.ndarray, spec: WindowSpec) -> WindowAssignment:
    """Assign every packet time to each quiet-period window that contains it ([start, end))."""
    times_ms = np.asarray(times_ms, dtype=np.int64)
    empty = np.zeros(0, dtype=np.int64)
    if times_ms.size == 0:
        return WindowAssignment(empty, empty, empty, ())
    first_day = spec.local_date(int(times_ms.min())) - dt.timedelta(days=1)
    last_day = spec.local_date(int(times_ms.max()))
    days = tuple(first_day + dt.timedelta(days=n) for n in range((last_day - first_day).days + 1))
    anchors = np.array([spec.period_start_ms(day) for day in days], dtype=np.int64)
    latest_day = np.searchsorted(anchors, times_ms, side="right") - 1
    parts_packet, parts_day, parts_window = [], [], []
    # A day's last window may run past the next period's start (all-day periods, 23-hour DST days),
    # so look in the period that started most recently and in the one before it.
    for day_back in (0, 1):
        day_index = latest_day - day_back
        inside = day_index >= 0
        offset = times_ms - anchors[np.clip(day_index, 0, None)]
        latest = offset // spec.step_ms
        for back in range(math.ceil(spec.window_ms / spec.step_ms)):
            window = latest - back
            in_period = (window >= 0) & (window < spec.windows_per_day)
            hit = inside & in_period & (offset < window * spec.step_ms + spec.window_ms)
            index = np.nonzero(hit)[0]
            parts_packet.append(index)
            parts_day.append(day_index[index])
            parts_window.append(window[index])
    packet_index = np.concatenate(parts_packet)
    day_used = np.concatenate(parts_day)
    window_used = np.concatenate(parts_window)
    # Renumber days so that only days that have windows remain.
    used_days, compact = np.unique(day_used, return_inverse=True)
    return WindowAssignment(
        packet_index=packet_index,
        day_index=compact.astype(np.int64),
        window_index=window_used.astype(np.int64),
        days=tuple(days[i] for i in used_days),
    )
