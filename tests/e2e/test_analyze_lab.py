"""The embedded main job on a small lab: the expected verdict for every device and day."""

import json

import pytest
from typer.testing import CliRunner

from twinwatch.cli import app
from twinwatch.simulator.lab import LabConfig, build_lab

# baseline day 1, training day 2, validation day 3; day 4 on the old firmware, days 5–6 on the new.
CONFIG = LabConfig(days=6, change_day=5, devices=("plug", "bulb", "speaker", "camera"), seed=21)
EXPECTED_CHANGE = {"plug": True, "bulb": True, "speaker": False, "camera": True}


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    out = tmp_path_factory.mktemp("small-lab")
    manifest = build_lab(CONFIG, out / "lab")
    result = CliRunner().invoke(app, [
        "analyze", str(out / "lab" / "pcaps"), "--devices", str(out / "lab" / "devices.csv"),
        "--tz", CONFIG.tz, "--json", str(out / "events.jsonl"), "--report", str(out / "report.html"),
        "--save-model", str(out / "model"),
    ])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    return out, manifest, events, result.output


@pytest.mark.slow
def test_training_on_four_devices_learns(analysed):
    out, *_ = analysed
    metadata = json.loads((out / "model" / "metadata.json").read_text())
    best = metadata["history"][metadata["best_epoch"] - 1]
    assert best["val_accuracy"] >= 0.95
    assert sorted(metadata["devices"]) == sorted(d.mac for d in build_lab.__globals__["lab_devices"](CONFIG))


@pytest.mark.slow
def test_every_device_day_has_the_expected_verdict(analysed):
    _, manifest, events, _ = analysed
    key_of = {d.mac: d.key for d in manifest.devices}
    got = {(key_of[e["device"]["mac"]], e["day"]): e["verdict"] for e in events}
    expected = {}
    for device in manifest.devices:
        for day in (4, 5, 6):
            changed = EXPECTED_CHANGE[device.key] and day >= CONFIG.change_day
            expected[(device.key, manifest.date_of(day).isoformat())] = "changed" if changed else "stable"
    assert got == expected


@pytest.mark.slow
def test_events_explain_themselves(analysed):
    _, manifest, events, output = analysed
    camera = next(d.mac for d in manifest.devices if d.key == "camera")
    changed = [e for e in events if e["device"]["mac"] == camera and e["verdict"] == "changed"]
    assert changed and all(e["metrics"]["hedges_g"] > 0.5 for e in changed)
    assert any("OCSP" in driver["name"] or "HTTP" in driver["name"] for e in changed for driver in e["why"])
    assert all(e["schema_version"] == 1 and e["model_version"].startswith("tnn-") for e in events)
    assert "CHANGED" in output and "Verdicts per device and day" in output


@pytest.mark.slow
def test_report_is_one_forwardable_file(analysed):
    out, *_ = analysed
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 3 * 4  # g plot, histogram, fingerprints per device
    assert "Hedges" in page and "<script" not in page


def test_too_little_data_gives_insufficient_data_not_a_crash(tmp_path):
    from tests.golden.make_golden import INPUT

    result = CliRunner().invoke(app, ["analyze", str(INPUT), "--tz", "Europe/Berlin",
                                      "--json", str(tmp_path / "e.jsonl"), "--report", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert len(events) == 3 and {e["verdict"] for e in events} == {"insufficient-data"}
    assert all("validation day" in e["reason"] and "no twin trained" in e["reason"] for e in events)
