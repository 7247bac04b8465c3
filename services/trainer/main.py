"""trainer: the twin trained from the training days' fingerprints on the bus, served by Triton.

    python -m services.trainer.main [--retrain]

Wiring only: WindowImages are gathered per device-day by the core (``DayCollector``); once at least
``min_devices`` devices have a baseline, a training and a validation day (the core's ``plan_devices``,
as in the embedded run), the core's ``train_from_fingerprints`` trains the twin. The model is written
as version n+1 of the served model repository, Triton loads it (explicit model control), and a
ModelRecord on ``twinwatch.models.v1`` tells the evaluators which version to score with. A job: it
reads the images topic from its start and exits once a model is published (or one already is).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import shutil
import uuid
from pathlib import Path

import numpy as np
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.models import DevicePlanRef, ModelRecord
from schemas.topics import IMAGES, MODELS
from services.common.images import IdleClock, parse_image, pixels
from services.common.kafka import KafkaSettings, consumer, read_all, reliable_producer
from services.common.triton import TritonSettings, load_version
from twinwatch.analysis import model_version, plan_devices, train_from_fingerprints
from twinwatch.decisions import DecisionRules
from twinwatch.streaming import DayCollector, training_fingerprints
from twinwatch.twin import TrainConfig, TrainedTwin
from twinwatch.windows import WindowSpec

logger = logging.getLogger(__name__)
MODEL_CODE = Path(__file__).resolve().parents[2] / "model_repository" / "tnn" / "1" / "model.py"  # in a checkout


class TrainerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TWINWATCH_TRAINER_", protected_namespaces=())
    tz: str = "UTC"
    quiet: str = "00:00-06:00"
    model_repository: Path = Path("model_repository")  # the one Triton serves (stack status prints it)
    min_devices: int = 2
    min_windows: int = 4
    seed: int = 0
    epochs: int = 50
    patience: int = 5
    grace_minutes: int = 60  # a day is over this long after its last window ends (event time)
    idle_flush_seconds: float = 120.0  # after this long without an image, the wall clock ends the days
    retrain: bool = False


def published(kafka: KafkaSettings) -> list[ModelRecord]:
    return [ModelRecord.model_validate_json(value) for _, value in read_all(kafka, kafka.topic(MODELS)) if value]


def next_version(model_dir: Path) -> int:
    versions = [int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def publish_model(model: TrainedTwin, settings: TrainerSettings, triton: TritonSettings) -> ModelRecord:
    """Write the model as the next version folder, have Triton load it; the record says what it is."""
    model_dir = settings.model_repository / triton.model_name
    version = next_version(model_dir)
    partial = model_dir / f".{version}-{uuid.uuid4().hex[:6]}"  # Triton never sees a half-written version
    model.save(partial)
    served_code = sorted(model_dir.glob("[0-9]*/model.py"), key=lambda p: int(p.parent.name))
    shutil.copy2(served_code[0] if served_code else MODEL_CODE, partial / "model.py")
    partial.rename(model_dir / str(version))
    load_version(triton, version)
    best = model.best
    return ModelRecord(
        model_name=triton.model_name, served_version=version, model_version=model_version(model),
        trained_at=dt.datetime.now(dt.UTC),
        devices={mac: DevicePlanRef(**days) for mac, days in model.metadata["devices"].items()},
        best_epoch=model.best_epoch, epochs=len(model.history), val_loss=best.val_loss,
        val_accuracy=best.val_accuracy, training_pairs=model.metadata["train_pairs"],
        validation_pairs=model.metadata["validation_pairs"])


def run(settings: TrainerSettings, kafka: KafkaSettings, triton: TritonSettings) -> ModelRecord | None:
    existing = published(kafka)
    if existing and not settings.retrain:
        logger.info("a model is published already (%s, version %d); --retrain to train another",
                    existing[-1].model_version, existing[-1].served_version)
        return None
    spec = WindowSpec.from_strings(tz=settings.tz, quiet=settings.quiet)
    rules = DecisionRules(min_windows=settings.min_windows)
    collector = DayCollector(spec, settings.grace_minutes * 60_000)
    complete: dict[tuple[str, dt.date], np.ndarray] = {}
    ips: dict[str, str] = {}
    producer = reliable_producer(kafka)
    images = consumer(kafka, f"twinwatch-trainer-{uuid.uuid4().hex[:8]}")  # every run reads from the start
    images.subscribe([kafka.topic(IMAGES)])
    clock = IdleClock(settings.idle_flush_seconds)
    try:
        while True:
            message = images.poll(1.0)
            if message is not None and message.error() is None:
                clock.record_seen()
                image, why = parse_image(message.value())
                if image is None:  # the evaluator dead-letters it; training goes on without it
                    logger.warning("skipping a record at %s[%d]@%d: %s", kafka.topic(IMAGES), message.partition(),
                                   message.offset(), why)
                    continue
                ips[image.device_mac] = image.device_ip or ips.get(image.device_mac, "")
                collector.add(image.device_mac, image.day, image.window_index, pixels(image), image.window_end_ms)
                days = collector.complete()
            elif clock.due():
                days = collector.complete(until_ms=clock.now_ms())
            else:
                continue
            if not days:
                continue
            complete.update({(mac, day): stack for mac, day, stack in days})
            fingerprints = training_fingerprints(spec, complete, ips)
            plans, skipped = plan_devices(fingerprints, rules)
            logger.info("%d complete device-day(s); %d device(s) ready to train on", len(complete), len(plans))
            if len(plans) < settings.min_devices:
                continue
            for mac, reason in skipped.items():
                logger.info("not training on %s: %s", mac, reason)
            config = TrainConfig(epochs=settings.epochs, patience=settings.patience, init_seed=settings.seed,
                                 pair_seed=settings.seed)
            model = train_from_fingerprints(fingerprints, plans, config, on_epoch=lambda r: logger.info(
                "epoch %d: val loss %.4f, val acc %.3f", r.epoch, r.val_loss, r.val_accuracy))
            record = publish_model(model, settings, triton)
            producer.produce(kafka.topic(MODELS), key=record.model_name.encode(),
                             value=record.model_dump_json().encode())
            if producer.flush(60) != 0:
                raise RuntimeError("the ModelRecord was not acknowledged within 60 s")
            logger.info("published %s as %s version %d (val acc %.3f, %d devices)", record.model_version,
                        record.model_name, record.served_version, record.val_accuracy, len(record.devices))
            return record
    finally:
        images.close()
        producer.flush(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retrain", action="store_true", help="train even when a model is published already")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s trainer %(levelname)s %(message)s")
    settings = TrainerSettings(**({"retrain": True} if args.retrain else {}))
    run(settings, KafkaSettings(), TritonSettings())


if __name__ == "__main__":
    main()
