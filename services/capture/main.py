"""capture: pcaps (a file or a folder, in time order) or a live interface → FlowRecords on Kafka.

    python -m services.capture.main SOURCE [--speed 1.0]

Wiring only: nfstream flows come from the core (``twinwatch.flows.iter_flow_rows``), are split per
device end by the core (``twinwatch.streaming.DeviceSplitter``, which also drops the gateways),
validated against the bus contract and produced keyed by device MAC with an idempotent acks=all
producer.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.flows import FlowRecord
from schemas.topics import FLOWS
from services.common.kafka import DeliveryTracker, KafkaSettings, reliable_producer, to_json
from twinwatch.fingerprint import expand_captures
from twinwatch.flows import FlowSettings, iter_flow_rows
from twinwatch.streaming import DeviceSplitter

logger = logging.getLogger(__name__)


class CaptureSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TWINWATCH_CAPTURE_")
    source: str = ""
    speed: float = 0.0  # 0: as fast as possible; 1.0: real time by the packets' own clock
    gateways: list[str] = []  # none given: routers are learnt from the public addresses they carry
    topic: str = FLOWS  # under TWINWATCH_KAFKA_TOPIC_PREFIX


@dataclass
class CaptureStats:
    flows: int = 0
    records: int = 0
    delivered: int = 0
    failed: int = 0


def sources(source: str) -> list[str]:
    """A file, the capture files of a folder in name (= time) order, or a live interface name."""
    path = Path(source)
    if path.exists():
        return [str(p) for p in expand_captures([path])]
    return [source]  # nfstream opens it as an interface


def run(settings: CaptureSettings, kafka: KafkaSettings, flow_settings: FlowSettings = FlowSettings()) -> CaptureStats:
    producer = reliable_producer(kafka)
    tracker = DeliveryTracker()
    stats = CaptureStats()
    splitter = DeviceSplitter(set(settings.gateways))
    first_event = first_wall = None
    topic = kafka.topic(settings.topic)
    for source in sources(settings.source):
        for row in iter_flow_rows(source, flow_settings):
            stats.flows += 1
            if settings.speed > 0:  # replay: a flow is published when its last packet was seen
                event = max(row["times"]) / 1000.0
                first_event = first_event or event
                first_wall = first_wall or time.monotonic()
                delay = (event - first_event) / settings.speed - (time.monotonic() - first_wall)
                if delay > 0:
                    time.sleep(delay)
            for record in splitter.records(row, source):
                FlowRecord.model_validate(record)
                producer.produce(topic, key=record["device_mac"].encode(), value=to_json(record),
                                 on_delivery=tracker)
                stats.records += 1
                producer.poll(0)
    producer.flush(60)
    stats.delivered, stats.failed = tracker.delivered, len(tracker.failed)
    logger.info("capture done: %s", stats)
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", help="pcap file, folder of pcaps, or interface name")
    parser.add_argument("--speed", type=float, help="replay speed (1.0 = real time); default as fast as possible")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s capture %(levelname)s %(message)s")
    overrides = {k: v for k, v in {"source": args.source, "speed": args.speed}.items() if v is not None}
    stats = run(CaptureSettings(**overrides), KafkaSettings())
    raise SystemExit(0 if stats.failed == 0 else 1)


if __name__ == "__main__":
    main()
