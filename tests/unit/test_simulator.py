"""The lab simulator: deterministic, complete ground truth, and traffic nDPI labels like real traffic."""

import csv
import datetime as dt
import hashlib
from collections import Counter
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from twinwatch.devices import read_devices_file
from twinwatch.fingerprint import fingerprint_flows
from twinwatch.flows import FlowSettings, _streamer, read_flows
from twinwatch.protocols import PROTOCOL_ROWS, protocol_rows
from twinwatch.simulator.lab import LabConfig, build_lab, simulate_day
from twinwatch.simulator.profiles import CHANGE_KINDS, HOUSEHOLD
from twinwatch.windows import WindowSpec

SMALL = LabConfig(days=1, devices=("bulb", "leak"))


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    simulate_day(SMALL, 1, tmp_path / "a.pcap")
    simulate_day(SMALL, 1, tmp_path / "b.pcap")
    simulate_day(LabConfig(days=1, devices=("bulb", "leak"), seed=8), 1, tmp_path / "c.pcap")
    assert digest(tmp_path / "a.pcap") == digest(tmp_path / "b.pcap")
    assert digest(tmp_path / "a.pcap") != digest(tmp_path / "c.pcap")


def test_household_covers_every_kind_of_change_and_trait():
    kinds = Counter(profile.change for profile in HOUSEHOLD)
    assert len(HOUSEHOLD) >= 12
    assert set(CHANGE_KINDS) <= set(kinds)
    assert kinds[None] >= 2  # some devices never change
    assert any(p.noisy for p in HOUSEHOLD) and any(p.sparse for p in HOUSEHOLD)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="unknown device profile"):
        LabConfig(devices=("toaster",))
    with pytest.raises(ValueError, match="unknown change kind"):
        LabConfig(change_kinds=("sideways",))


@pytest.fixture(scope="module")
def two_day_lab(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab")
    manifest = build_lab(LabConfig(days=2, change_day=2), out)
    return out, manifest


@pytest.mark.slow
def test_manifest_holds_the_ground_truth(two_day_lab):
    out, manifest = two_day_lab
    rows = list(csv.DictReader(open(out / "manifest.csv")))
    assert len(rows) == 12 * 2
    by_device = {(r["device"], r["day"]): r for r in rows}
    assert by_device[("plug", "1")]["firmware_version"] != by_device[("plug", "2")]["firmware_version"]
    assert by_device[("plug", "2")]["changed"] == "1" and by_device[("plug", "2")]["change_kind"] == "large"
    assert by_device[("speaker", "2")]["changed"] == "0"
    assert len(read_devices_file(out / "devices.csv")) == 12
    assert [p.name for p in manifest.pcaps] == ["day01_2026-01-12.pcap", "day02_2026-01-13.pcap"]


@pytest.mark.slow
def test_ndpi_labels_cover_the_protocol_rows(two_day_lab):
    """nDPI's own labels (no port fallback) must reach every row once the new firmware runs (OCSP)."""
    _, manifest = two_day_lab
    rows, flows, unknown = Counter(), 0, 0
    for path in manifest.pcaps:
        for flow in _streamer(str(path), FlowSettings(), with_trace=False):
            flows += 1
            unknown += flow.application_name == "Unknown"
            rows.update(protocol_rows(flow.protocol, flow.application_name))
    assert set(rows) == set(PROTOCOL_ROWS), f"rows never labelled: {set(PROTOCOL_ROWS) - set(rows)}"
    assert unknown / flows < 0.02


@pytest.mark.slow
def test_windows_per_device_day(two_day_lab):
    out, manifest = two_day_lab
    flows = read_flows(manifest.pcaps)
    fingerprints = fingerprint_flows(flows, WindowSpec(tz=manifest.config.tz), read_devices_file(out / "devices.csv"))
    per_device = Counter()
    for device_day in fingerprints.device_days:
        per_device[device_day.device.mac] += device_day.n_images
    sparse = next(d.mac for d in manifest.devices if d.sparse)
    for mac, count in per_device.items():
        if mac == sparse:
            assert 16 <= count <= 44, count  # about half of 2 × 30
        else:
            assert count >= 58, (mac, count)
    # Daytime traffic exists (most of the packets) but never enters a fingerprint.
    zone = ZoneInfo(manifest.config.tz)
    hours = np.array([dt.datetime.fromtimestamp(t / 1000, zone).hour for t in flows.packet_time_ms[::97]])
    assert (hours >= 7).mean() > 0.5
    for device_day in fingerprints.device_days:
        starts = [dt.datetime.fromtimestamp(t / 1000, zone) for t in device_day.window_start_ms]
        assert all(s.date() == device_day.day and s.time() <= dt.time(5, 48) for s in starts)
