"""The streaming path on the real stack reaches the embedded run's verdicts, device by device and day by day.

A lab with every kind of firmware change is replayed through capture → Kafka → the Faust windower →
the trainer (Triton loads its model) → the evaluator (scores through Triton) → ChangeEvents; the same
pcaps then go through ``twinwatch analyze`` with the trainer's model.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from schemas.events import ChangeEvent
from schemas.models import ModelRecord
from schemas.topics import EVENTS, FLOWS, IMAGES, MODELS, dead_letter
from services.capture.main import CaptureSettings, run
from services.common.kafka import KafkaSettings
from tests.integration.kafka_helpers import committed, consume
from tests.integration.processes import start_service, stop, wait_until_ready
from twinwatch.cli import app
from twinwatch.simulator.lab import GATEWAY, LabConfig, LabManifest, build_lab
from twinwatch.simulator.profiles import CHANGE_KINDS, PROFILES
from twinwatch.stack import StackStatus

pytestmark = pytest.mark.integration
# one device per kind of change (large, subtle, invisible, timing, sizes) and one that never changes
CONFIG = LabConfig(days=6, change_day=5, devices=("plug", "bulb", "tapo", "doorbell", "fan", "speaker"), seed=21)


@dataclass
class Streamed:
    out: Path
    manifest: LabManifest
    records_produced: int
    records_consumed: int
    model: ModelRecord
    events: list[ChangeEvent]
    status: StackStatus
    logs: dict[str, str]
    kafka: KafkaSettings
    env: dict[str, str]


@pytest.fixture(scope="module")
def streamed(stack, tmp_path_factory):
    status = stack.up()
    out = tmp_path_factory.mktemp("stream-lab")
    manifest = build_lab(CONFIG, out / "lab")
    assert {PROFILES[d].change for d in CONFIG.devices} - {None} == set(CHANGE_KINDS)
    prefix = f"e2e-{uuid.uuid4().hex[:6]}."
    kafka = KafkaSettings(bootstrap_servers=status.bootstrap_servers, topic_prefix=prefix)
    windower_id = f"windower-{prefix}".rstrip(".")
    env = os.environ | {
        "TWINWATCH_KAFKA_BOOTSTRAP_SERVERS": status.bootstrap_servers,
        "TWINWATCH_KAFKA_TOPIC_PREFIX": prefix,
        "TWINWATCH_TRITON_GRPC_URL": status.triton_grpc_url,
        "TWINWATCH_WINDOWER_TZ": CONFIG.tz, "TWINWATCH_WINDOWER_IDLE_FLUSH_SECONDS": "10",
        "TWINWATCH_WINDOWER_APP_ID": windower_id,
        "TWINWATCH_TRAINER_TZ": CONFIG.tz, "TWINWATCH_TRAINER_MODEL_REPOSITORY": str(status.model_repository),
        "TWINWATCH_EVALUATOR_TZ": CONFIG.tz, "TWINWATCH_EVALUATOR_IDLE_FLUSH_SECONDS": "40",
        "TWINWATCH_EVALUATOR_APP_ID": f"evaluator-{prefix}".rstrip("."),
        "TWINWATCH_EVALUATOR_DEVICES_FILE": str(out / "lab" / "devices.csv"),
        "OMP_NUM_THREADS": "1",  # three Python services share two cores
    }
    windower, windower_log = start_service("windower", env, out)
    trainer, trainer_log = start_service("trainer", env, out)
    evaluator, evaluator_log = start_service("evaluator", env, out)
    try:
        wait_until_ready(windower, windower_log)
        stats = run(CaptureSettings(source=str(out / "lab" / "pcaps"), gateways=[GATEWAY.mac]), kafka)
        assert stats.records > 0 and stats.delivered == stats.records and stats.failed == 0
        trainer.wait(900)
        assert trainer.returncode == 0, trainer_log.read_text()[-3000:]
        models = consume(kafka.bootstrap_servers, prefix + MODELS, 1)
        (record,) = [ModelRecord.model_validate_json(value) for _, value in models]
        expected_events = len(CONFIG.devices) * (CONFIG.days - 3)
        raw = consume(kafka.bootstrap_servers, prefix + EVENTS, expected_events, timeout=300)
        assert len(raw) == expected_events, evaluator_log.read_text()[-3000:]
        events = [ChangeEvent.model_validate_json(v) for _, v in raw]
        deadline = time.monotonic() + 60
        while committed(kafka.bootstrap_servers, windower_id, prefix + FLOWS) < stats.records:
            assert time.monotonic() < deadline, "the windower did not consume every flow record"
            time.sleep(1)
        consumed = committed(kafka.bootstrap_servers, windower_id, prefix + FLOWS)
    finally:
        for process in (evaluator, trainer, windower):
            stop(process)
    logs = {name: log.read_text() for name, log in
            (("windower", windower_log), ("trainer", trainer_log), ("evaluator", evaluator_log))}
    return Streamed(out, manifest, stats.records, consumed, record, events, status, logs, kafka, env)


@pytest.fixture(scope="module")
def embedded(streamed):
    """``twinwatch analyze`` on the same pcaps, with the model the trainer published."""
    out, model = streamed.out, streamed.model
    model_dir = streamed.status.model_repository / model.model_name / str(model.served_version)
    result = CliRunner().invoke(app, [
        "analyze", str(out / "lab" / "pcaps"), "--devices", str(out / "lab" / "devices.csv"), "--tz", CONFIG.tz,
        "--model", str(model_dir), "--gateway", GATEWAY.mac, "--json", str(out / "embedded.jsonl"),
        "--report", str(out / "report.html")])
    assert result.exit_code == 0, result.output
    return [ChangeEvent.model_validate_json(line) for line in (out / "embedded.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_every_flow_record_produced_was_consumed(streamed):
    assert streamed.records_consumed == streamed.records_produced > 0


@pytest.mark.slow
def test_stream_events_equal_embedded_verdicts(streamed, embedded):
    manifest, record = streamed.manifest, streamed.model
    stream = {(e.device.mac, e.day): e for e in streamed.events}
    assert len(stream) == len(streamed.events)  # one event per device-day
    batch = {(e.device.mac, e.day): e for e in embedded}
    assert set(stream) == set(batch)
    for key, event in batch.items():
        got = stream[key]
        assert got.verdict == event.verdict, (key, got.reason, event.reason)
        assert (got.metrics is None) == (event.metrics is None)
        if event.metrics:
            assert got.metrics.hedges_g == pytest.approx(event.metrics.hedges_g, abs=1e-3), key
            assert got.metrics.mean_score == pytest.approx(event.metrics.mean_score, abs=1e-4), key
        assert got.model_version == event.model_version == record.model_version
        assert got.event_id == event.event_id  # a SIEM that has one drops the other
        assert got.served_version == record.served_version and event.served_version is None
        assert got.baseline_day == event.baseline_day and got.day_windows == event.day_windows
        assert got.device.name == event.device.name != ""
    # and the verdicts are the lab's truth on the devices whose change shows on the wire
    changed = {d.mac for d in manifest.devices if PROFILES[d.key].change in ("large", "subtle")}
    for (mac, day), event in stream.items():
        if mac in changed and day >= manifest.date_of(CONFIG.change_day):
            assert event.verdict == "changed", (mac, day, event.reason)


@pytest.mark.slow
def test_trainer_trained_on_the_first_three_days_and_triton_serves_it(streamed):
    manifest, record, status = streamed.manifest, streamed.model, streamed.status
    assert sorted(record.devices) == sorted(d.mac for d in manifest.devices)
    for days in record.devices.values():
        assert (days.baseline, days.training, days.validation) == tuple(manifest.date_of(n) for n in (1, 2, 3))
    assert record.served_version >= 2 and record.val_accuracy >= 0.9
    assert (status.model_repository / record.model_name / str(record.served_version) / "twin_arm.torchscript").is_file()
    assert "published" in streamed.logs["trainer"]


@pytest.mark.slow
def test_a_bad_image_is_dead_lettered_and_the_evaluator_lives_on(streamed):
    from tests.integration.kafka_helpers import produce

    kafka = streamed.kafka
    # the module's services are stopped: a fresh evaluator resumes from its state topic
    process, log = start_service("evaluator", streamed.env, streamed.out, "evaluator-again")
    try:
        produce(kafka.bootstrap_servers, kafka.topic(IMAGES), [(b"aa:bb:cc:dd:ee:ff", b'{"pixels": 1}')])
        dead = consume(kafka.bootstrap_servers, dead_letter(kafka.topic(IMAGES)), 1, timeout=60)
        assert dead and dead[0][1] == b'{"pixels": 1}', log.read_text()[-3000:]
        time.sleep(2)
        assert process.poll() is None, log.read_text()[-3000:]
        assert "state of 6 device(s) restored" in log.read_text()
        events = consume(kafka.bootstrap_servers, kafka.topic(EVENTS), 100, timeout=10)
        assert len(events) == len(CONFIG.devices) * (CONFIG.days - 3)  # nothing judged twice after the restart
    finally:
        stop(process)


@pytest.mark.slow
def test_the_events_make_a_report_to_forward(streamed, tmp_path):
    from twinwatch.report import write_events_report

    page = write_events_report(streamed.events, tmp_path / "events.html").read_text()
    assert page.count("data:image/png;base64,") == len(CONFIG.devices)  # Hedges' g per day, per device
    assert "<script" not in page and "Moved most" in page
    assert all(PROFILES[key].name in page for key in CONFIG.devices)
