"""trainer and evaluator against the real broker and Triton, fed with synthetic fingerprints."""

from __future__ import annotations

import os
import time
import uuid

import numpy as np
import pytest

from schemas.events import ChangeEvent
from schemas.images import WindowImage
from schemas.models import ModelRecord
from schemas.topics import EVENTS, IMAGES, MODELS, dead_letter
from services.common.kafka import KafkaSettings
from services.common.triton import TritonEmbedder, TritonSettings
from services.trainer.main import TrainerSettings
from services.trainer.main import run as train
from tests.integration.kafka_helpers import consume, produce
from tests.integration.processes import start_service, stop
from tests.synthetic import DAYS, SPEC, lab_images
from twinwatch.analysis import in_process
from twinwatch.streaming import StreamEvaluator
from twinwatch.twin import TrainedTwin, embed

pytestmark = pytest.mark.integration


def image_messages(images: dict) -> list[tuple[bytes, bytes]]:
    """Every window as the windower publishes it, day by day."""
    out = []
    for (mac, day), stack in sorted(images.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        for window, pixels in enumerate(stack):
            start = SPEC.window_start_ms(day, window)
            image = WindowImage(device_mac=mac, device_ip="192.168.1.9", day=day, window_index=window,
                                window_start_ms=start, window_end_ms=start + SPEC.window_ms, pixels=pixels.tolist())
            out.append((mac.encode(), image.model_dump_json().encode()))
    return out


@pytest.fixture(scope="module")
def published(stack):
    status = stack.up()
    kafka = KafkaSettings(bootstrap_servers=status.bootstrap_servers, topic_prefix=f"svc-{uuid.uuid4().hex[:6]}.")
    triton = TritonSettings(grpc_url=status.triton_grpc_url)
    produce(kafka.bootstrap_servers, kafka.topic(IMAGES), image_messages(lab_images()))
    settings = TrainerSettings(tz=SPEC.tz, model_repository=status.model_repository, epochs=3, idle_flush_seconds=3)
    record = train(settings, kafka, triton)
    assert record is not None
    model = TrainedTwin.load(status.model_repository / record.model_name / str(record.served_version))
    return status, kafka, triton, settings, record, model


def test_trainer_publishes_a_version_triton_serves(published):
    status, kafka, triton, settings, record, model = published
    assert sorted(record.devices) == ["aa:00:00:00:00:01", "bb:00:00:00:00:01", "cc:00:00:00:00:01"]  # dd: 2 days
    assert all((d.baseline, d.training, d.validation) == tuple(DAYS[:3]) for d in record.devices.values())
    (announced,) = [ModelRecord.model_validate_json(v) for _, v in consume(kafka.bootstrap_servers,
                                                                           kafka.topic(MODELS), 1)]
    assert announced == record
    images = lab_images()[("aa:00:00:00:00:01", DAYS[0])]
    served = TritonEmbedder(triton, record.served_version)
    try:
        np.testing.assert_allclose(served(images), embed(model.model, images).numpy(), rtol=1e-4, atol=1e-5)
    finally:
        served.close()
    assert train(settings, kafka, triton) is None  # a model is published: a second run does nothing


def test_evaluator_events_equal_the_core_with_the_same_model(published, tmp_path):
    status, kafka, _, _, record, model = published
    expected = StreamEvaluator(SPEC)
    for (mac, day), stack in sorted(lab_images().items(), key=lambda kv: (kv[0][1], kv[0][0])):
        for window, image in enumerate(stack):
            expected.add_image(mac, "", day, window, image, SPEC.window_start_ms(day, window) + SPEC.window_ms)
    expected.flush()
    verdicts = {(mac, day): expected.judge(mac, day, in_process(model), record.model_version)
                for mac, day in expected.due()}
    env = os.environ | {"TWINWATCH_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
                        "TWINWATCH_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
                        "TWINWATCH_TRITON_GRPC_URL": status.triton_grpc_url,
                        "TWINWATCH_EVALUATOR_TZ": SPEC.tz, "TWINWATCH_EVALUATOR_IDLE_FLUSH_SECONDS": "3",
                        "TWINWATCH_EVALUATOR_APP_ID": f"evaluator-{uuid.uuid4().hex[:6]}"}
    process, log = start_service("evaluator", env, tmp_path)
    try:
        raw = consume(kafka.bootstrap_servers, kafka.topic(EVENTS), len(verdicts), timeout=120)
        events = {(e.device.mac, e.day): e for e in (ChangeEvent.model_validate_json(v) for _, v in raw)}
        assert set(events) == set(verdicts), log.read_text()[-3000:]
        for key, decision in verdicts.items():
            assert events[key].verdict == decision.verdict, key
            if decision.metrics:
                assert events[key].metrics.hedges_g == pytest.approx(decision.metrics.hedges_g, abs=1e-3)
            assert events[key].served_version == record.served_version
        assert {e.verdict for e in events.values()} == {"stable", "changed", "insufficient-data"}
        produce(kafka.bootstrap_servers, kafka.topic(IMAGES), [(b"aa:00:00:00:00:01", b"not an image")])
        dead = consume(kafka.bootstrap_servers, dead_letter(kafka.topic(IMAGES)), 1, timeout=60)
        assert dead and dead[0][1] == b"not an image"
        time.sleep(1)
        assert process.poll() is None, log.read_text()[-3000:]
    finally:
        stop(process)
    assert "stopped after" in log.read_text()  # SIGTERM: a last checkpoint, then a clean exit
