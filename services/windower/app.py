"""windower: a Faust app turning FlowRecords into WindowImages per device, in event time.

    faust -A services.windower.app worker -l info

Wiring only: the core's ``WindowBuilder`` holds each device's flows until its hopping windows
(15 min every 12 min, inside the quiet period) close past the watermark, and computes their images
with the same functions as the embedded run. Its state lives in two Faust tables (each held flow
record under its own key, so a record costs one small changelog write; each device's closed windows
and watermark, written when windows close), recovered from their changelog topics after a restart.
A timer closes windows by wall clock when the link goes quiet. Bad records go to the dead-letter
topic; the stream goes on.
"""

from __future__ import annotations

import logging
import time

import faust
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.flows import FlowRecord
from schemas.images import WindowImage
from schemas.topics import FLOWS, IMAGES, dead_letter
from services.common.kafka import KafkaSettings, ensure_topics
from twinwatch.streaming import ClosedWindow, WindowBuilder
from twinwatch.windows import WindowSpec

logger = logging.getLogger(__name__)


class WindowerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TWINWATCH_WINDOWER_")
    tz: str = "UTC"
    quiet: str = "00:00-06:00"
    grace_seconds: int | None = None  # default: the flow active timeout plus a minute
    idle_flush_seconds: float = 30.0  # after this long without a record, the wall clock drives the watermark
    app_id: str = "twinwatch-windower"
    partitions: int = 1  # of the flows and images topics, when this worker creates them


settings = WindowerSettings()
kafka = KafkaSettings()
spec = WindowSpec.from_strings(tz=settings.tz, quiet=settings.quiet)
# Faust declares the topics it consumes; the images and dead-letter topics it only writes must exist
# before the first send, or the sends (and the table changelog writes queued behind them) wait forever.
ensure_topics(kafka, {kafka.topic(FLOWS): {}, kafka.topic(IMAGES): {}}, partitions=settings.partitions)
ensure_topics(kafka, {dead_letter(kafka.topic(FLOWS)): {}})
app = faust.App(settings.app_id, broker=f"kafka://{kafka.bootstrap_servers}", value_serializer="raw",
                key_serializer="raw", store="memory://", topic_partitions=settings.partitions, web_enabled=False)
# internal=True: the worker declares the topics it reads and writes, so it can start before any producer.
flows_topic = app.topic(kafka.topic(FLOWS), key_type=bytes, value_type=bytes, partitions=settings.partitions,
                        internal=True)
images_topic = app.topic(kafka.topic(IMAGES), key_type=bytes, value_type=bytes, partitions=settings.partitions,
                         internal=True)
dead_letters = app.topic(dead_letter(kafka.topic(FLOWS)), key_type=bytes, value_type=bytes, partitions=1,
                         internal=True)
held_flows = app.Table("windower-flows", default=None)  # "<mac>|<partition>-<offset>" → FlowRecord held
devices = app.Table("windower-devices", default=None)  # device MAC → closed windows, watermark, address

builder: WindowBuilder | None = None
last_record_at = time.monotonic()


def current_builder() -> WindowBuilder:
    """The worker's builder, rebuilt from the recovered table the first time."""
    global builder
    if builder is None:
        grace = {} if settings.grace_seconds is None else {"grace_ms": settings.grace_seconds * 1000}
        builder = WindowBuilder(spec, **grace)
        for mac, saved in devices.items():
            if saved:
                builder.closed[mac] = {tuple(k) for k in saved["closed"]}
                builder.watermark_ms = max(builder.watermark_ms, saved["watermark_ms"])
                builder.device_ips[mac] = saved.get("ip", "")
        for _, record in sorted(held_flows.items()):
            if record:
                builder.add(record)
        logger.info("restored %d held flow record(s) of %d device(s)", sum(map(len, builder.flows.values())),
                    len(builder.flows))
    return builder


def window_image(closed: ClosedWindow) -> bytes:
    image = WindowImage(device_mac=closed.device_mac, device_ip=closed.device_ip, day=closed.day,
                        window_index=closed.window_index, window_start_ms=closed.window_start_ms,
                        window_end_ms=closed.window_end_ms, pixels=closed.image.tolist())
    return image.model_dump_json().encode()


async def publish(closed_windows: list[ClosedWindow], persist: bool = True) -> None:
    """Send the closed windows' images; ``persist`` records the new state (only inside the stream:
    Faust tables change there). Windows closed by the timer may be sent again after a restart;
    consumers keep one image per (device, day, window)."""
    for closed in closed_windows:
        if closed.image is not None:  # blank windows carry nothing (paper 4.2)
            await images_topic.send(key=closed.device_mac.encode(), value=window_image(closed))
    current = current_builder()
    if persist:
        for mac in {c.device_mac for c in closed_windows}:
            devices[mac] = {"closed": sorted(current.closed.get(mac, set())), "watermark_ms": current.watermark_ms,
                            "ip": current.device_ips.get(mac, "")}
        for mac, record_id in current.forgotten:
            held_flows.pop(f"{mac}|{record_id}", None)
        current.forgotten.clear()


@app.agent(flows_topic)
async def windows(stream):
    global last_record_at
    async for event in stream.events():
        key, value = event.key, event.value
        try:
            record = FlowRecord.model_validate_json(value).model_dump()
        except (ValidationError, ValueError) as error:
            await dead_letters.send(key=key, value=value, headers={"reason": str(error)[:500].encode()})
            continue
        last_record_at = time.monotonic()
        record["_id"] = f"{event.message.partition}-{event.message.offset:012d}"
        current = current_builder()
        if current.add(record):  # False: re-read after a restart, held already
            held_flows[f"{record['device_mac']}|{record['_id']}"] = record
        await publish(current.close_ready())


@app.timer(interval=5.0)
async def close_quiet_links() -> None:
    """Wall-clock fallback: after a quiet spell the watermark follows the wall clock, so windows close
    on a link that sends nothing (live) and every window closes at the end of a replay (event time
    long past)."""
    if builder is not None and time.monotonic() - last_record_at >= settings.idle_flush_seconds:
        builder.advance_to(int(time.time() * 1000))
        closed = builder.close_ready()
        if closed:
            logger.info("idle for %.0f s: closed %d window(s)", settings.idle_flush_seconds, len(closed))
            await publish(closed, persist=False)
