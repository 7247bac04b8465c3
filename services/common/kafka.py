"""Kafka glue shared by the services: producers that never lose a record, and dead-lettering."""

from __future__ import annotations

import json
import logging

from confluent_kafka import Producer
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.topics import dead_letter

logger = logging.getLogger(__name__)


class KafkaSettings(BaseSettings):
    """Connection to the broker (env ``TWINWATCH_KAFKA_*``); SASL only when a username is set."""

    model_config = SettingsConfigDict(env_prefix="TWINWATCH_KAFKA_")
    bootstrap_servers: str = "127.0.0.1:9092"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None

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
                                                "compression.type": "gzip"})


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
