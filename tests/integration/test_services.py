"""capture and windower against the real broker: every record delivered, the embedded images out."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from schemas.flows import FlowRecord
from schemas.images import WindowImage
from schemas.topics import FLOWS, IMAGES, dead_letter
from services.capture.main import CaptureSettings, run
from services.common.kafka import KafkaSettings
from tests.golden.make_golden import INPUT, SPEC
from tests.integration.kafka_helpers import committed, consume, produce
from tests.integration.processes import start_service, stop, wait_until_ready
from twinwatch.devices import find_routers
from twinwatch.fingerprint import fingerprint_flows
from twinwatch.flows import read_pcap_flows
from twinwatch.streaming import flow_records

pytestmark = pytest.mark.integration


def test_capture_publishes_every_flow_record_once(stack_status):
    topic = f"twinwatch.test.flows.{uuid.uuid4().hex[:8]}"
    flows = read_pcap_flows(INPUT)
    expected = list(flow_records(flows, find_routers(flows)))  # capture learns the router, as analyze finds it
    stats = run(CaptureSettings(source=str(INPUT), topic=topic),
                KafkaSettings(bootstrap_servers=stack_status.bootstrap_servers))
    assert stats.records == len(expected) and stats.delivered == stats.records and stats.failed == 0
    received = consume(stack_status.bootstrap_servers, topic, len(expected))
    assert len(received) == len(expected)
    for key, value in received:
        record = FlowRecord.model_validate_json(value)
        assert key.decode() == record.device_mac
    assert sorted(json.loads(v)["first_seen_ms"] for _, v in received) == sorted(r["first_seen_ms"] for r in expected)


@pytest.fixture
def windower(stack_status, tmp_path):
    env = os.environ | {
        "TWINWATCH_KAFKA_BOOTSTRAP_SERVERS": stack_status.bootstrap_servers,
        "TWINWATCH_WINDOWER_TZ": SPEC.tz,
        "TWINWATCH_WINDOWER_IDLE_FLUSH_SECONDS": "3",
        "TWINWATCH_WINDOWER_APP_ID": f"windower-test-{uuid.uuid4().hex[:8]}",
    }
    process, log = start_service("windower", env, tmp_path)
    yield process, log
    stop(process)


def test_windower_emits_the_embedded_fingerprints(stack_status, windower):
    process, log = windower
    wait_until_ready(process, log)
    embedded = fingerprint_flows(read_pcap_flows(INPUT), SPEC)
    expected = {(d.device.mac, d.day.isoformat(), int(w)): image for d in embedded.device_days
                for w, image in zip(d.window_index, d.images, strict=True)}
    stats = run(CaptureSettings(source=str(INPUT), gateways=["f4:f2:6d:00:00:01"]),
                KafkaSettings(bootstrap_servers=stack_status.bootstrap_servers))
    assert stats.failed == 0
    produce(stack_status.bootstrap_servers, FLOWS, [(b"aa:bb:cc:dd:ee:ff", b"{not json")])  # one bad record
    received = consume(stack_status.bootstrap_servers, IMAGES, len(expected), timeout=120)
    assert process.poll() is None, log.read_text()[-3000:]
    images = [WindowImage.model_validate_json(value) for _, value in received]
    got = {(i.device_mac, i.day.isoformat(), i.window_index): np.array(i.pixels, dtype=np.uint8) for i in images}
    assert set(got) == set(expected), log.read_text()[-3000:]
    for key, image in expected.items():
        np.testing.assert_array_equal(got[key], image, err_msg=str(key))
    dead = consume(stack_status.bootstrap_servers, dead_letter(FLOWS), 1, timeout=30)
    assert dead and dead[0][1] == b"{not json"


def start_windower(env: dict, folder: Path) -> tuple[subprocess.Popen, Path]:
    process, log = start_service("windower", env, folder, f"windower-{uuid.uuid4().hex[:4]}")
    wait_until_ready(process, log)
    return process, log


def test_windower_recovers_its_state_after_a_restart(stack_status, tmp_path):
    """Half a day's flows, a stop, a new worker: its tables come back from their changelogs and the
    windows that straddle the restart still hold every flow (each once)."""
    from twinwatch.simulator.lab import GATEWAY, LabConfig, simulate_day
    from twinwatch.windows import WindowSpec

    config = LabConfig(days=1, devices=("plug", "bulb", "speaker"))
    simulate_day(config, 1, tmp_path / "day.pcap")
    flows = read_pcap_flows(tmp_path / "day.pcap")
    embedded = fingerprint_flows(flows, WindowSpec(tz=config.tz))
    expected = {(d.device.mac, d.day.isoformat(), int(w)): image for d in embedded.device_days
                for w, image in zip(d.window_index, d.images, strict=True)}
    records = sorted(flow_records(flows, {GATEWAY.mac}), key=lambda r: max(r["times_ms"]))
    messages = [(r["device_mac"].encode(), json.dumps(r).encode()) for r in records]
    kafka = KafkaSettings(bootstrap_servers=stack_status.bootstrap_servers,
                          topic_prefix=f"restart-{uuid.uuid4().hex[:6]}.")
    app_id = f"windower-{kafka.topic_prefix}".rstrip(".")
    env = os.environ | {"TWINWATCH_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
                        "TWINWATCH_KAFKA_TOPIC_PREFIX": kafka.topic_prefix, "TWINWATCH_WINDOWER_TZ": config.tz,
                        "TWINWATCH_WINDOWER_APP_ID": app_id, "TWINWATCH_WINDOWER_IDLE_FLUSH_SECONDS": "3600"}
    half = len(messages) // 2
    first, first_log = start_windower(env, tmp_path)
    try:
        produce(kafka.bootstrap_servers, kafka.topic(FLOWS), messages[:half])
        deadline = time.monotonic() + 300
        while committed(kafka.bootstrap_servers, app_id, kafka.topic(FLOWS)) < half:
            assert time.monotonic() < deadline, first_log.read_text()[-3000:]
            time.sleep(1)
    finally:
        stop(first)
    second, second_log = start_windower(env | {"TWINWATCH_WINDOWER_IDLE_FLUSH_SECONDS": "3"}, tmp_path)
    try:
        produce(kafka.bootstrap_servers, kafka.topic(FLOWS), messages[half:])
        received = consume(kafka.bootstrap_servers, kafka.topic(IMAGES), len(expected), timeout=180)
        time.sleep(5)  # anything sent twice arrives by now
        received += consume(kafka.bootstrap_servers, kafka.topic(IMAGES), 10 * len(expected), timeout=5)[
            len(received):]
    finally:
        stop(second)
    got = {}
    for _, value in received:
        image = WindowImage.model_validate_json(value)
        got.setdefault((image.device_mac, image.day.isoformat(), image.window_index), np.array(image.pixels))
    assert set(got) == set(expected), second_log.read_text()[-3000:]
    for key, image in expected.items():
        np.testing.assert_array_equal(got[key], image, err_msg=str(key))
    restored = re.search(r"restored (\d+) held flow record", second_log.read_text())
    assert restored and int(restored.group(1)) > 0, second_log.read_text()[-3000:]
