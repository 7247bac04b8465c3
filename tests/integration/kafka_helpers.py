"""Real Kafka clients for the integration tests."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition


def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    errors = []
    for key, value in messages:
        producer.produce(topic, key=key, value=value, on_delivery=lambda err, _msg: err and errors.append(err))
    assert producer.flush(30) == 0, "messages still queued after 30 s"
    assert not errors, errors


def consume(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[tuple[bytes, bytes]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    received: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(received) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None and message.error().code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                continue  # the topic appears when its producer first writes
            assert message.error() is None, message.error()
            received.append((message.key(), message.value()))
    finally:
        consumer.close()
    return received


def committed(bootstrap: str, group: str, topic: str) -> int:
    """Records of a topic (partitions from offset 0) that a consumer group has committed as done."""
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        partitions = reader.list_topics(topic, timeout=10).topics[topic].partitions
        offsets = reader.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return sum(max(o.offset, 0) for o in offsets)
    finally:
        reader.close()
