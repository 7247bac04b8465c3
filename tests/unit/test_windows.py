import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from twinwatch.windows import WindowSpec, assign_windows


def ms(text: str, tz: str = "UTC") -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp() * 1000)


def test_default_spec_has_thirty_windows_ending_at_0603():
    spec = WindowSpec()
    assert spec.windows_per_day == 30
    day = dt.date(2026, 1, 12)
    last_start = spec.window_start_ms(day, 29)
    assert last_start == ms("2026-01-12T05:48:00")
    assert last_start + spec.window_ms == ms("2026-01-12T06:03:00")


def test_overlap_puts_packets_in_one_or_two_windows():
    spec = WindowSpec()
    times = np.array([
        ms("2026-01-12T00:00:00"),  # window 0 only
        ms("2026-01-12T00:12:00"),  # windows 0 and 1 (0 ends 00:15)
        ms("2026-01-12T00:14:59.999"),  # windows 0 and 1
        ms("2026-01-12T00:15:00"),  # window 1 only: windows are [start, end)
        ms("2026-01-12T06:02:59"),  # window 29 only
        ms("2026-01-12T06:03:00"),  # after the last window
        ms("2026-01-12T12:00:00"),  # daytime: no window
        ms("2026-01-11T23:59:59"),  # before the period
    ])
    a = assign_windows(times, spec)
    got = sorted((int(p), a.days[d].isoformat(), int(w)) for p, d, w in
                 zip(a.packet_index, a.day_index, a.window_index, strict=True))
    assert got == [
        (0, "2026-01-12", 0),
        (1, "2026-01-12", 0), (1, "2026-01-12", 1),
        (2, "2026-01-12", 0), (2, "2026-01-12", 1),
        (3, "2026-01-12", 1),
        (4, "2026-01-12", 29),
    ]


def test_time_zone_moves_the_quiet_period():
    berlin = WindowSpec(tz="Europe/Berlin")
    # 23:30 UTC on the 11th is 00:30 in Berlin on the 12th (UTC+1 in winter): window 2 (00:24–00:39).
    a = assign_windows(np.array([ms("2026-01-11T23:30:00")]), berlin)
    assert [(a.days[d].isoformat(), int(w)) for d, w in zip(a.day_index, a.window_index, strict=True)] == [
        ("2026-01-12", 2)
    ]
    # The same instant is daytime-free but outside the UTC quiet period.
    assert assign_windows(np.array([ms("2026-01-11T23:30:00")]), WindowSpec()).packet_index.size == 0


def test_summer_time_offset_is_applied():
    spec = WindowSpec(tz="Europe/Berlin")  # UTC+2 in July
    a = assign_windows(np.array([ms("2026-07-01T22:10:00")]), spec)
    assert [(a.days[d].isoformat(), int(w)) for d, w in zip(a.day_index, a.window_index, strict=True)] == [
        ("2026-07-02", 0)
    ]


def test_period_across_midnight_belongs_to_the_day_it_starts():
    spec = WindowSpec.from_strings(tz="UTC", quiet="22:00-04:00")
    assert spec.period_minutes == 360 and spec.windows_per_day == 30
    a = assign_windows(np.array([ms("2026-01-13T01:00:00")]), spec)
    assert {a.days[d].isoformat() for d in a.day_index} == {"2026-01-12"}


def test_all_day_period():
    spec = WindowSpec.from_strings(quiet="00:00-24:00")
    assert spec.period_minutes == 1440 and spec.windows_per_day == 120
    assert WindowSpec.from_strings(quiet="00:00-00:00").windows_per_day == 120


@pytest.mark.parametrize("bad", ["0-6", "00:00", "25:00-06:00"])
def test_malformed_quiet_period_is_refused(bad):
    with pytest.raises(ValueError, match="quiet period"):
        WindowSpec.from_strings(quiet=bad)


def test_unknown_time_zone_is_refused():
    with pytest.raises(Exception, match="Mars"):
        WindowSpec(tz="Mars/Olympus")


def test_next_window_end_is_the_next_close_time():
    import datetime as dt

    spec = WindowSpec(tz="Europe/Berlin")
    day = dt.date(2026, 3, 29)  # the clocks go forward at 02:00
    start = spec.period_start_ms(day)
    assert spec.next_window_end_ms(start) == start + 15 * 60_000
    assert spec.next_window_end_ms(start + 15 * 60_000) == start + 27 * 60_000
    last_end = spec.window_start_ms(day, spec.windows_per_day - 1) + spec.window_ms
    assert spec.next_window_end_ms(last_end - 1) == last_end
    assert spec.next_window_end_ms(last_end) == spec.period_start_ms(day + dt.timedelta(days=1)) + 15 * 60_000
