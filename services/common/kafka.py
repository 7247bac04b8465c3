"""Kafka glue shared by the services: producers that never lose a record, and dead-lettering."""

from __future__ import annotations

import json
import logging
import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.topics import dead_letter

logger = logging.getLogger(__name__)
LIBRDKAFKA_LOGGER = logging.getLogger("twinwatch.librdkafka")  # the client library's own log lines, via logging


class KafkaSettings(BaseSettings):
    """Connection to the broker (env ``TWINWATCH_KAFKA_*``); SASL only when a username is set."""

    model_config = SettingsConfigDict(env_prefix="TWINWATCH_KAFKA_")
    bootstrap_servers: str = "127.0.0.1:9092"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    topic_prefix: str = ""  # e.g. "site-a." : one broker, several segments (or test runs) kept apart

    def topic(self, name: str) -> str:
        """A bus topic's name under this deployment's prefix."""
        return self.topic_prefix + name

    def client_config(self) -> dict:
        config: dict = {"bootstrap.servers": self.bootstrap_servers}
        if self.sasl_username:
            config |= {"security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN",
                       "sasl.username": self.sasl_username,
                       "sasl.password": self.sasl_password.get_secret_value() if self.sasl_password else ""}
        return config


def reliable_producer(settings: KafkaSettings) -> Producer:
    """Idempotent, acks=all: a record the broker acknowledged is written once and survives a broker restart."""
    return Producer(settings.client_config() | {"enable.idempotence": True, "acks": "all", "linger.ms": 20,
                                                "compression.type": "gzip", "message.max.bytes": 16 * 2**20},
                    logger=LIBRDKAFKA_LOGGER)


class DeliveryTracker:
    """Counts acknowledged and failed deliveries, so a service can prove it lost nothing."""

    def __init__(self) -> None:
        self.delivered = 0
        self.failed: list[str] = []

    def __call__(self, error, message) -> None:
        if error is not None:
            self.failed.append(f"{message.topic()}: {error}")
            logger.error("delivery failed on %s: %s", message.topic(), error)
        else:
            self.delivered += 1


def send_to_dead_letter(producer: Producer, topic: str, key: bytes | None, value: bytes | None, reason: str) -> None:
    """Park a record that cannot be handled, with the reason, on the topic's dead-letter topic."""
    logger.warning("dead-lettering a record of %s: %s", topic, reason)
    producer.produce(dead_letter(topic), key=key, value=value,
                     headers=[("reason", reason.encode()), ("source_topic", topic.encode())])


def to_json(record: dict) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


def consumer(settings: KafkaSettings, group_id: str, **extra) -> Consumer:
    """A consumer that commits only when told: a record counts as done once its effects are on the bus."""
    return Consumer(settings.client_config() | {"group.id": group_id, "auto.offset.reset": "earliest",
                                                "enable.auto.commit": False, **extra})


def ensure_topics(settings: KafkaSettings, topics: dict[str, dict[str, str]], partitions: int = 1) -> None:
    """Create the topics that do not exist yet (name → topic config), e.g. a compacted state topic."""
    admin = AdminClient(settings.client_config())
    existing = set(admin.list_topics(timeout=30).topics)
    wanted = [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config)
              for name, config in topics.items() if name not in existing]
    for name, future in (admin.create_topics(wanted) if wanted else {}).items():
        try:
            future.result(30)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            logger.debug("topic %s appeared meanwhile", name)


def read_all(settings: KafkaSettings, topic: str, timeout: float = 30.0) -> list[tuple[bytes | None, bytes | None]]:
    """Every record of a topic up to its current end, partition by partition (no consumer group)."""
    reader = Consumer(settings.client_config() | {"group.id": f"read-all-{uuid.uuid4().hex}",
                                                  "enable.auto.commit": False})
    try:
        metadata = reader.list_topics(topic, timeout=timeout).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return []
        ends, assignment = {}, []
        for partition in metadata.partitions:
            low, high = _watermarks(reader, TopicPartition(topic, partition), timeout)
            if high > low:
                ends[partition] = high
                assignment.append(TopicPartition(topic, partition, low))
        if not assignment:
            return []
        reader.assign(assignment)
        out, deadline = [], time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            message = reader.poll(0.5)
            if message is None or message.error() is not None:
                continue
            out.append((message.key(), message.value()))
            if message.offset() + 1 >= ends.get(message.partition(), 0):
                ends.pop(message.partition(), None)
        if ends:
            raise TimeoutError(f"{topic}: partitions {sorted(ends)} not read to their end within {timeout:.0f} s")
        return out
    finally:
        reader.close()


def _watermarks(reader: Consumer, partition: TopicPartition, timeout: float) -> tuple[int, int]:
    """A partition's offsets, waiting out a leader election (a topic created a moment ago)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return reader.get_watermark_offsets(partition, timeout=timeout)
        except KafkaException as error:
            if not error.args[0].retriable() and error.args[0].code() not in (
                    KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                    KafkaError.UNKNOWN_TOPIC_OR_PART) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


class ChangelogStore:
    """Key → JSON state in a compacted topic: what a service needs after a restart (like a Faust table's
    changelog). Writes go through the service's reliable producer, so they are flushed before the
    service commits the offsets of the records that caused them."""

    def __init__(self, settings: KafkaSettings, topic: str, producer: Producer) -> None:
        self.settings, self.topic, self.producer = settings, topic, producer
        ensure_topics(settings, {topic: {"cleanup.policy": "compact", "max.message.bytes": str(16 * 2**20)}})

    def load(self) -> dict[str, dict]:
        state: dict[str, dict] = {}
        for key, value in read_all(self.settings, self.topic):
            if key is None:
                continue
            if value is None:
                state.pop(key.decode(), None)
            else:
                state[key.decode()] = json.loads(value)
        return state

    def put(self, key: str, value: dict) -> None:
        self.producer.produce(self.topic, key=key.encode(), value=to_json(value))
