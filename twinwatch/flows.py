"""Flows with their packets, from nfstream (nDPI labels) plus a per-packet plugin.

A flow record loses what window features need (medians and inter-arrival times across a window,
packets of one flow split over two windows), so the ``PacketTrace`` plugin keeps each packet's
time, direction and size inside its flow. ``FlowTable`` is the columnar result for a set of pcaps.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from nfstream import NFPlugin, NFStreamer

from twinwatch.protocols import label_with_port_fallback

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlowSettings:
    """nfstream flow cut-off rules; the dpkt reference follows the same ones."""

    idle_timeout_s: int = 120
    active_timeout_s: int = 1800
    n_dissections: int = 20


class PacketTrace(NFPlugin):
    """Keeps every packet's time (ms), direction (0 = client→server) and IP total length."""

    def on_init(self, packet, flow):  # noqa: D102 - nfstream plugin hook
        flow.udps.trace_time = [packet.time]
        flow.udps.trace_direction = [packet.direction]
        flow.udps.trace_size = [packet.ip_size]

    def on_update(self, packet, flow):  # noqa: D102 - nfstream plugin hook
        flow.udps.trace_time.append(packet.time)
        flow.udps.trace_direction.append(packet.direction)
        flow.udps.trace_size.append(packet.ip_size)


@dataclass
class FlowTable:
    """Flows (one row each) and their packets (one row each, ``packet_flow`` points at the flow)."""

    client_mac: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    server_mac: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    client_ip: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    server_ip: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    client_port: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    server_port: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    ip_protocol: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    application_name: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    first_seen_ms: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    source: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    packet_flow: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    packet_time_ms: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    packet_direction: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    packet_size: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))

    @property
    def n_flows(self) -> int:
        return int(self.client_mac.size)

    @property
    def n_packets(self) -> int:
        return int(self.packet_time_ms.size)

    @classmethod
    def from_rows(cls, flows: Sequence[dict], source: str) -> FlowTable:
        """Build from dicts with the flow fields and ``times``/``directions``/``sizes`` lists."""
        lengths = np.array([len(f["times"]) for f in flows], dtype=np.int64)
        table = cls(
            client_mac=np.array([f["client_mac"] for f in flows], dtype=object),
            server_mac=np.array([f["server_mac"] for f in flows], dtype=object),
            client_ip=np.array([f["client_ip"] for f in flows], dtype=object),
            server_ip=np.array([f["server_ip"] for f in flows], dtype=object),
            client_port=np.array([f["client_port"] for f in flows], dtype=np.int64),
            server_port=np.array([f["server_port"] for f in flows], dtype=np.int64),
            ip_protocol=np.array([f["ip_protocol"] for f in flows], dtype=np.int64),
            application_name=np.array([f["application_name"] for f in flows], dtype=object),
            first_seen_ms=np.array([f["first_seen_ms"] for f in flows], dtype=np.int64),
            source=np.array([source] * len(flows), dtype=object),
            packet_flow=np.repeat(np.arange(len(flows), dtype=np.int64), lengths),
            packet_time_ms=np.fromiter((t for f in flows for t in f["times"]), dtype=np.int64),
            packet_direction=np.fromiter((d for f in flows for d in f["directions"]), dtype=np.int8),
            packet_size=np.fromiter((s for f in flows for s in f["sizes"]), dtype=np.int32),
        )
        return table

    @classmethod
    def concat(cls, tables: Iterable[FlowTable]) -> FlowTable:
        tables = list(tables)
        if not tables:
            return cls()
        offsets = np.cumsum([0] + [t.n_flows for t in tables[:-1]])
        merged = {}
        for name in cls.__dataclass_fields__:
            merged[name] = np.concatenate([getattr(t, name) for t in tables])
        merged["packet_flow"] = np.concatenate([t.packet_flow + o for t, o in zip(tables, offsets, strict=True)])
        return cls(**merged)

    def subset(self, flow_index: np.ndarray) -> FlowTable:
        """The given flows and their packets, renumbered."""
        flow_index = np.asarray(flow_index, dtype=np.int64)
        keep = np.zeros(self.n_flows, dtype=bool)
        keep[flow_index] = True
        renumber = np.full(self.n_flows, -1, dtype=np.int64)
        renumber[np.nonzero(keep)[0]] = np.arange(int(keep.sum()))
        packet_keep = keep[self.packet_flow]
        flow_fields = {
            name: getattr(self, name)[keep]
            for name in self.__dataclass_fields__
            if not name.startswith("packet_")
        }
        return FlowTable(
            **flow_fields,
            packet_flow=renumber[self.packet_flow[packet_keep]],
            packet_time_ms=self.packet_time_ms[packet_keep],
            packet_direction=self.packet_direction[packet_keep],
            packet_size=self.packet_size[packet_keep],
        )


def _streamer(path: str, settings: FlowSettings, with_trace: bool) -> NFStreamer:
    return NFStreamer(
        source=path,
        statistical_analysis=False,
        n_dissections=settings.n_dissections,
        idle_timeout=settings.idle_timeout_s,
        active_timeout=settings.active_timeout_s,
        udps=PacketTrace() if with_trace else None,
        n_meters=1,
    )


def flow_row(flow) -> dict:
    """An nfstream flow (with the PacketTrace plugin) as a plain dict: ends, label, packets."""
    return {
        "client_mac": flow.src_mac,
        "server_mac": flow.dst_mac,
        "client_ip": flow.src_ip,
        "server_ip": flow.dst_ip,
        "client_port": flow.src_port,
        "server_port": flow.dst_port,
        "ip_protocol": flow.protocol,
        "application_name": label_with_port_fallback(flow.application_name, flow.protocol, flow.src_port,
                                                     flow.dst_port),
        "first_seen_ms": flow.bidirectional_first_seen_ms,
        "times": flow.udps.trace_time,
        "directions": flow.udps.trace_direction,
        "sizes": flow.udps.trace_size,
    }


def iter_flow_rows(source: str, settings: FlowSettings = FlowSettings()) -> Iterator[dict]:
    """Flows as they expire from a capture file or a live interface name (nfstream decides which)."""
    try:
        for flow in _streamer(source, settings, with_trace=True):
            yield flow_row(flow)
    except (ValueError, OSError) as error:
        raise ValueError(f"{source}: cannot read as a capture ({error})") from error


def read_pcap_flows(path: str | os.PathLike, settings: FlowSettings = FlowSettings()) -> FlowTable:
    """All flows of one pcap with their packets (nfstream with the PacketTrace plugin)."""
    path = str(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such capture file")
    return FlowTable.from_rows(list(iter_flow_rows(path, settings)), source=path)


def count_flows_only(path: str | os.PathLike, settings: FlowSettings = FlowSettings()) -> tuple[int, int]:
    """(flows, packets) of one pcap through nfstream alone, no plugin: the benchmark baseline."""
    flows = packets = 0
    for flow in _streamer(str(path), settings, with_trace=False):
        flows += 1
        packets += flow.bidirectional_packets
    return flows, packets


def read_flows(
    paths: Sequence[str | os.PathLike],
    settings: FlowSettings = FlowSettings(),
    workers: int | None = None,
    on_file_done: Callable[[str], None] | None = None,
    on_file_error: Callable[[str, str], None] | None = None,
) -> FlowTable:
    """Flows of many pcaps, one file per worker process (each file is its own flow space).

    With ``on_file_error`` a file that cannot be read is reported (path, reason) and skipped;
    without it the error is raised.
    """
    paths = [str(p) for p in paths]
    tables = []
    for path, result in _read_each(paths, settings, workers or min(len(paths), os.cpu_count() or 1)):
        try:
            tables.append(result())
        except (ValueError, OSError) as error:
            if on_file_error is None:
                raise
            on_file_error(path, str(error))
        if on_file_done:
            on_file_done(path)
    return FlowTable.concat(tables)


def _read_each(paths: list[str], settings: FlowSettings, workers: int) -> Iterator[tuple[str, Callable[[], FlowTable]]]:
    """(path, call giving its flows), in path order: in this process, or from a pool of ``workers``."""
    if workers <= 1 or len(paths) <= 1:
        for path in paths:
            yield path, partial(read_pcap_flows, path, settings)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(read_pcap_flows, path, settings) for path in paths]
        for path, future in zip(paths, futures, strict=True):
            yield path, future.result
