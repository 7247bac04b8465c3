"""evaluator: fingerprints in, one ChangeEvent per device and day out, scored through Triton.

    python -m services.evaluator.main

Wiring only: the core's ``StreamEvaluator`` gathers each device's WindowImages per day, plans its
baseline, training and validation days and judges every later day with the embedded run's
functions; the pair scores come from the twin's arm served by Triton (gRPC, one batched request per
image set) in the version the newest ModelRecord names. Each device's state (open days, baseline
and reference images, verdicts given) is kept in a compacted topic and read back after a restart;
offsets are committed only after that state and the events are acknowledged. A record it cannot
handle goes to the dead-letter topic with the reason; the stream goes on.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from tritonclient.utils import InferenceServerException

from schemas.models import ModelRecord
from schemas.topics import EVENTS, IMAGES, MODELS
from services.common.images import IdleClock, parse_image, pixels
from services.common.kafka import (
    ChangelogStore,
    KafkaSettings,
    consumer,
    ensure_topics,
    reliable_producer,
    send_to_dead_letter,
    to_json,
)
from services.common.triton import TritonEmbedder, TritonSettings
from twinwatch.analysis import change_event
from twinwatch.decisions import DecisionRules
from twinwatch.devices import read_devices_file
from twinwatch.streaming import StreamEvaluator
from twinwatch.windows import WindowSpec

logger = logging.getLogger(__name__)


class EvaluatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TWINWATCH_EVALUATOR_")
    tz: str = "UTC"
    quiet: str = "00:00-06:00"
    min_windows: int = 4
    reference: str = "validation"  # or "training" (the paper's reference scores)
    grace_minutes: int = 60  # a day is over this long after its last window ends (event time)
    idle_flush_seconds: float = 120.0  # after this long without an image, the wall clock ends the days
    app_id: str = "twinwatch-evaluator"  # consumer group; its state topic is <app_id>.state
    devices_file: Path | None = None  # CSV mac,name,model: names on the events
    commit_every: int = 500  # images between checkpoints (state + events flushed, offsets committed)


class Evaluator:
    """The service's loop around the core; ``stop`` ends it after a last checkpoint."""

    def __init__(self, settings: EvaluatorSettings, kafka: KafkaSettings, triton: TritonSettings) -> None:
        self.settings, self.kafka, self.triton = settings, kafka, triton
        spec = WindowSpec.from_strings(tz=settings.tz, quiet=settings.quiet)
        self.rules = DecisionRules(min_windows=settings.min_windows, reference=settings.reference)
        self.spec = spec
        self.names = {d.mac: d for d in read_devices_file(settings.devices_file)} if settings.devices_file else {}
        self.producer = reliable_producer(kafka)
        self.images_topic, self.models_topic, self.events_topic = map(kafka.topic, (IMAGES, MODELS, EVENTS))
        ensure_topics(kafka, {self.models_topic: {}, self.events_topic: {}})
        self.store = ChangelogStore(kafka, kafka.topic(f"{settings.app_id}.state"), self.producer)
        self.core = self.restored()
        self.model: ModelRecord | None = None
        self.embedder: TritonEmbedder | None = None
        self.stop = threading.Event()
        self.touched: set[str] = set()
        self.uncommitted = 0
        self.events = 0

    def restored(self) -> StreamEvaluator:
        """The core with every device's state as last checkpointed (by this worker or another)."""
        core = StreamEvaluator(self.spec, self.rules, self.settings.grace_minutes * 60_000)
        for mac, saved in self.store.load().items():
            core.restore(mac, saved)
        logger.info("state of %d device(s) restored", len(core.tracks))
        return core

    def run(self) -> None:
        images = consumer(self.kafka, self.settings.app_id)
        assignments = 0

        def assigned(_consumer, _partitions) -> None:
            nonlocal assignments
            assignments += 1
            if assignments > 1:  # a rebalance: another worker may have judged these devices' days meanwhile
                self.core = self.restored()

        images.subscribe([self.images_topic], on_assign=assigned, on_revoke=lambda c, partitions: self.checkpoint(c))
        models = consumer(self.kafka, f"{self.settings.app_id}-models-{uuid.uuid4().hex[:8]}")
        models.assign([TopicPartition(self.models_topic, 0, OFFSET_BEGINNING)])
        clock = IdleClock(self.settings.idle_flush_seconds)
        try:
            while not self.stop.is_set():
                self.read_models(models)
                message = images.poll(0.5)
                if message is not None and message.error() is None:
                    clock.record_seen()
                    self.take(message)
                    self.touched |= self.core.complete()
                elif clock.due():
                    self.touched |= self.core.complete(until_ms=clock.now_ms())
                self.judge_due()
                if self.uncommitted >= self.settings.commit_every or (message is None and self.touched):
                    self.checkpoint(images)
            self.checkpoint(images)
        finally:
            images.close()
            models.close()
            self.producer.flush(30)

    def read_models(self, models) -> None:
        while (message := models.poll(0)) is not None:
            if message.error() is not None:
                continue
            try:
                record = ModelRecord.model_validate_json(message.value() or b"")
            except (ValidationError, ValueError) as error:
                send_to_dead_letter(self.producer, self.models_topic, message.key(), message.value(), str(error)[:400])
                continue
            if self.model is None or record.served_version > self.model.served_version:
                logger.info("scoring with %s (Triton %s version %d)", record.model_version, record.model_name,
                            record.served_version)
                self.model = record
                if self.embedder:
                    self.embedder.close()
                self.embedder = TritonEmbedder(self.triton.model_copy(update={"model_name": record.model_name}),
                                               record.served_version)

    def take(self, message) -> None:
        self.uncommitted += 1
        image, why = parse_image(message.value())
        if image is None:
            send_to_dead_letter(self.producer, self.images_topic, message.key(), message.value(), why)
            return
        if not self.core.add_image(image.device_mac, image.device_ip, image.day, image.window_index, pixels(image),
                                   image.window_end_ms):
            send_to_dead_letter(self.producer, self.images_topic, message.key(), message.value(),
                                f"late: {image.device_mac} {image.day} was already judged")
            return
        self.touched.add(image.device_mac)

    def judge_due(self) -> None:
        if self.model is None or self.embedder is None:
            return
        for mac, day in self.core.due():
            try:
                decision = self.core.judge(mac, day, self.embedder, self.model.model_version)
            except InferenceServerException as error:  # Triton down or reloading: the day stays due
                logger.error("scoring %s %s through Triton failed (%s); retrying in 5 s", mac, day, error)
                time.sleep(5)
                return
            except Exception as error:  # this device-day cannot be judged: park it with the reason, go on
                logger.exception("cannot judge %s %s", mac, day)
                record = {"device_mac": mac, "day": day.isoformat(), "model_version": self.model.model_version}
                send_to_dead_letter(self.producer, self.events_topic, mac.encode(), to_json(record),
                                    f"{type(error).__name__}: {error}"[:400])
                self.core.judged(mac, day)
                self.touched.add(mac)
                continue
            track = self.core.tracks[mac]
            device = self.core.device(mac)
            if mac in self.names:
                device = replace(self.names[mac], ip=device.ip or self.names[mac].ip)
            event = change_event(decision, device, track.plan.baseline, self.model.model_version,
                                 self.model.served_version)
            self.producer.produce(self.events_topic, key=mac.encode(), value=event.model_dump_json().encode())
            self.core.judged(mac, day)
            self.touched.add(mac)
            self.events += 1
            logger.info("%s %s: %s (g %s)", mac, day, decision.verdict,
                        f"{decision.metrics.hedges_g:+.2f}" if decision.metrics else "n/a")

    def checkpoint(self, images) -> None:
        """State and events acknowledged by the broker, then the images' offsets committed."""
        for mac in self.touched:
            self.store.put(mac, self.core.state_of(mac))
        if self.producer.flush(60) != 0:
            raise RuntimeError("state or events not acknowledged within 60 s; offsets left uncommitted")
        if self.uncommitted:
            images.commit(asynchronous=False)
        self.touched.clear()
        self.uncommitted = 0


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s evaluator %(levelname)s %(message)s")
    service = Evaluator(EvaluatorSettings(), KafkaSettings(), TritonSettings())
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: service.stop.set())
    service.run()
    logger.info("stopped after %d event(s)", service.events)


if __name__ == "__main__":
    main()
