"""A slow, independent reference for the fingerprint features: dpkt packets → flows → 13 × 53 matrices.

The production path (nfstream flows, vectorised numpy features) is fast but intricate; this module
computes the same numbers the obvious way — plain loops, lists, ``statistics.median`` — straight from
the packets of a pcap, so that a golden test can check that both agree to the last bit. It shares no
flow, window or feature code with production: only the protocol-row table (``PROTOCOL_ROWS``,
``row_mask``) and the ``WindowSpec`` parameters are imported. The definition followed is
``docs/features.md``.

Flow rules copied from nfstream 6.6.0 (``lib_engine.c``, ``meter.py``), because the features depend on
where flows start and who their client is:

- A frame is used only if it is at least 28 bytes long and carries IPv4 or IPv6 (after any 802.1Q tags);
  IPv4 fragments other than the first, IPv4 packets whose total length is shorter than their header and
  IPv6 packets cut short by the snap length are dropped, as nfstream drops them.
- Time is the pcap record time in integer ms, ``tv_sec * 1000 + tv_usec // 1000``; nfstream never lets
  time run backwards inside a file (a packet older than the newest one seen gets the newest time).
- Size is the IP total length: the IPv4 ``len`` field, or 40 + payload length for IPv6.
- A flow is keyed by (IP protocol, both (ip, port) ends unordered, VLAN id); ports are 0 unless the
  packet is TCP (transport length ≥ 20) or UDP (≥ 8). The client is the sender of the first packet.
  A packet starts a new flow for its key when ``time - last_seen ≥ idle timeout`` (120 s) or
  ``time - first_seen ≥ active timeout`` (1800 s). Every file is its own flow space.

dpkt cannot run nDPI, so application labels come from a ``label_of(flow_key, first_seen_ms)`` callable:
``FlowTableLabels`` looks them up in a production ``FlowTable``; ``port_label`` guesses from ports.
"""

from __future__ import annotations

import bisect
import datetime as dt
import ipaddress
import logging
import os
import socket
import statistics
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import dpkt
import numpy as np

from twinwatch.protocols import PROTOCOL_ROWS, row_mask
from twinwatch.windows import WindowSpec

if TYPE_CHECKING:  # only the type: the reference never runs production flow code
    from twinwatch.flows import FlowTable

logger = logging.getLogger(__name__)

IDLE_TIMEOUT_MS = 120_000
ACTIVE_TIMEOUT_MS = 1_800_000
MIN_FRAME_BYTES = 28  # nfstream ignores shorter frames ("min IP + min UDP")
IPV6_HEADER_BYTES = 40
TCP_HEADER_BYTES = 20
UDP_HEADER_BYTES = 8
IPV6_EXTENSION_HEADERS = (0, 43, 44, 60, 135)  # hop-by-hop, routing, fragment, destination, mobility
IPV6_NO_NEXT_HEADER = 59

# The 53 columns of docs/features.md, in order (the golden test checks this list against the table).
DIRECTIONS = ("C", "S", "B")
COLUMN_NAMES: tuple[str, ...] = (
    ("client_server_packet_ratio",)
    + tuple(f"packets_per_second_{d}" for d in DIRECTIONS)
    + tuple(
        f"{stat}_{d}"
        for stat in ("packet_count", "mean_packet_size", "max_packet_size", "min_packet_size",
                     "range_packet_size", "median_packet_size", "bytes_per_second")
        for d in DIRECTIONS
    )
    + tuple(
        f"{stat}_{d}"
        for stat in ("sum_inter_arrival", "max_inter_arrival", "min_inter_arrival", "mean_inter_arrival",
                     "median_inter_arrival", "range_inter_arrival")
        for d in DIRECTIONS
    )
    + tuple(
        f"{stat}_{d}"
        for stat in ("max_port", "min_port", "range_port", "mean_port", "median_port")
        for d in ("C", "S")
    )
)
COLUMN = {name: index for index, name in enumerate(COLUMN_NAMES)}
assert len(COLUMN_NAMES) == 53

MatrixKey = tuple[str, dt.date, int]  # (device MAC, local date of the quiet period, window index)


@dataclass(frozen=True)
class FlowKey:
    """Who a flow is between, as nfstream names it (client = sender of the first packet)."""

    source: str  # the pcap (real path): every file is its own flow space
    ip_protocol: int
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    vlan: int = 0


LabelOf = Callable[[FlowKey, int], "str | None"]


@dataclass
class Packet:
    """One IP packet as nfstream sees it."""

    time_ms: int
    src_mac: str
    dst_mac: str
    src_ip: str
    dst_ip: str
    src_port: int
    dst_port: int
    ip_protocol: int
    vlan: int
    size: int


@dataclass
class Flow:
    """A bidirectional flow and its packets (direction 0 = client → server)."""

    key: FlowKey
    client_mac: str
    server_mac: str
    first_seen_ms: int
    last_seen_ms: int
    times: list[int] = field(default_factory=list)
    directions: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    application_name: str = ""


@dataclass
class ReadStats:
    """How many frames of a capture became packets, and why the others were dropped."""

    frames: int = 0
    packets: int = 0
    restamped: int = 0  # packets older than the newest one before them, given the newest time
    dropped: Counter = field(default_factory=Counter)

    def add(self, other: ReadStats) -> None:
        self.frames += other.frames
        self.packets += other.packets
        self.restamped += other.restamped
        self.dropped.update(other.dropped)


# ---------------------------------------------------------------------------------------------------
# Packets
# ---------------------------------------------------------------------------------------------------


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def _time_ms(ts: float | Decimal) -> int:
    """Integer ms of a dpkt timestamp, as libpcap + nfstream compute it (``sec*1000 + usec//1000``).

    dpkt hands microsecond captures over as ``sec + usec / 1e6`` (a float, whose error at today's epoch is
    about 0.1 µs, so rounding recovers ``usec`` exactly) and nanosecond captures as an exact Decimal
    (libpcap truncates those to µs, so flooring the ms is the same).
    """
    if isinstance(ts, Decimal):
        return int(ts * 1000)
    return round(ts * 1_000_000) // 1000


def _ports(ip_protocol: int, transport_length: int, transport: object) -> tuple[int, int] | None:
    """(src, dst) ports: only TCP with ≥ 20 and UDP with ≥ 8 bytes of declared transport length have any."""
    if ip_protocol == 6 and transport_length >= TCP_HEADER_BYTES or (
        ip_protocol == 17 and transport_length >= UDP_HEADER_BYTES
    ):
        if isinstance(transport, (dpkt.tcp.TCP, dpkt.udp.UDP)):
            return int(transport.sport), int(transport.dport)
        raw = bytes(transport)
        if len(raw) < 4:
            return None  # nfstream would read ports past the captured bytes; we cannot follow it there
        return struct.unpack("!HH", raw[:4])
    return 0, 0


def decode_frame(buf: bytes, time_ms: int, dropped: Counter) -> Packet | None:
    """The IP packet in an Ethernet frame, or None (counted in ``dropped``) where nfstream ignores it."""
    if len(buf) < MIN_FRAME_BYTES:
        dropped["short frame"] += 1
        return None
    try:
        eth = dpkt.ethernet.Ethernet(buf)
    except (dpkt.UnpackError, dpkt.NeedData):
        dropped["bad ethernet"] += 1
        return None
    tags = getattr(eth, "vlan_tags", None) or []
    vlan = int(tags[-1].id) if tags else 0
    ip_offset = 14 + 4 * len(tags)
    ip = eth.data
    if isinstance(ip, dpkt.ip.IP):
        if ip.v != 4:
            dropped["not IPv4 inside an IPv4 frame"] += 1
            return None
        if ip.offset != 0:
            dropped["IPv4 non-first fragment"] += 1
            return None
        if ip.p in (4, 41):
            dropped["IP-in-IP tunnel (not followed)"] += 1
            return None
        header = ip.hl * 4
        if ip.len < header:
            dropped["IPv4 total length < header length"] += 1
            return None
        ports = _ports(ip.p, ip.len - header, ip.data)
        if ports is None:
            dropped["ports not captured"] += 1
            return None
        family, size = socket.AF_INET, int(ip.len)
    elif isinstance(ip, dpkt.ip6.IP6):
        if len(buf) < ip_offset + IPV6_HEADER_BYTES + ip.plen:
            dropped["IPv6 cut by snap length"] += 1
            return None
        extension = 0
        for header in getattr(ip, "all_extension_headers", []) or []:
            extension += header.length
        if ip.p == IPV6_NO_NEXT_HEADER or ip.p in IPV6_EXTENSION_HEADERS:
            dropped["IPv6 without transport"] += 1
            return None
        ports = _ports(ip.p, ip.plen - extension, ip.data)
        if ports is None:
            dropped["ports not captured"] += 1
            return None
        family, size = socket.AF_INET6, IPV6_HEADER_BYTES + int(ip.plen)
    else:
        dropped["not IP"] += 1
        return None
    return Packet(
        time_ms=time_ms,
        src_mac=_mac(eth.src),
        dst_mac=_mac(eth.dst),
        src_ip=socket.inet_ntop(family, ip.src),
        dst_ip=socket.inet_ntop(family, ip.dst),
        src_port=ports[0],
        dst_port=ports[1],
        ip_protocol=int(ip.p),
        vlan=vlan,
        size=size,
    )


def read_packets(path: str | os.PathLike) -> tuple[list[Packet], ReadStats]:
    """The IP packets of one capture, times made non-decreasing as nfstream does."""
    stats = ReadStats()
    packets: list[Packet] = []
    newest = 0
    with open(path, "rb") as handle:
        reader = dpkt.pcap.UniversalReader(handle)
        if reader.datalink() != dpkt.pcap.DLT_EN10MB:
            raise ValueError(f"{path}: the reference reads Ethernet captures only, not link type "
                             f"{reader.datalink()}")
        for ts, buf in reader:
            stats.frames += 1
            packet = decode_frame(buf, _time_ms(ts), stats.dropped)
            if packet is None:
                continue
            # nfstream's meter clock only moves forward: a late packet is stamped with the newest time.
            if packet.time_ms > newest:
                newest = packet.time_ms
            else:
                stats.restamped += packet.time_ms < newest
                packet.time_ms = newest
            packets.append(packet)
    stats.packets = len(packets)
    return packets, stats


# ---------------------------------------------------------------------------------------------------
# Flows
# ---------------------------------------------------------------------------------------------------


def build_flows(
    packets: Iterable[Packet],
    source: str,
    idle_timeout_ms: int = IDLE_TIMEOUT_MS,
    active_timeout_ms: int = ACTIVE_TIMEOUT_MS,
) -> list[Flow]:
    """Bidirectional flows of one capture's packets (in capture order), cut by idle and active timeouts."""
    open_flows: dict[tuple, Flow] = {}
    finished: list[Flow] = []
    for packet in packets:
        ends = sorted([(packet.src_ip, packet.src_port), (packet.dst_ip, packet.dst_port)])
        key = (packet.ip_protocol, packet.vlan, ends[0], ends[1])
        flow = open_flows.get(key)
        if flow is not None and (
            packet.time_ms - flow.last_seen_ms >= idle_timeout_ms
            or packet.time_ms - flow.first_seen_ms >= active_timeout_ms
        ):
            finished.append(flow)
            flow = None
        if flow is None:
            flow = Flow(
                key=FlowKey(source, packet.ip_protocol, packet.src_ip, packet.src_port, packet.dst_ip,
                            packet.dst_port, packet.vlan),
                client_mac=packet.src_mac,
                server_mac=packet.dst_mac,
                first_seen_ms=packet.time_ms,
                last_seen_ms=packet.time_ms,
            )
            open_flows[key] = flow
        from_client = (packet.src_ip, packet.src_port, packet.dst_ip, packet.dst_port) == (
            flow.key.client_ip, flow.key.client_port, flow.key.server_ip, flow.key.server_port
        )
        flow.times.append(packet.time_ms)
        flow.directions.append(0 if from_client else 1)
        flow.sizes.append(packet.size)
        flow.last_seen_ms = packet.time_ms
    return finished + list(open_flows.values())


def read_pcap_flows_reference(
    path: str | os.PathLike,
    idle_timeout_ms: int = IDLE_TIMEOUT_MS,
    active_timeout_ms: int = ACTIVE_TIMEOUT_MS,
) -> tuple[list[Flow], ReadStats]:
    """Flows of one capture, unlabelled."""
    packets, stats = read_packets(path)
    return build_flows(packets, os.path.realpath(path), idle_timeout_ms, active_timeout_ms), stats


def read_flows_reference(
    paths: Sequence[str | os.PathLike], workers: int = 1
) -> tuple[list[Flow], ReadStats]:
    """Flows of many captures (each file its own flow space), in ``workers`` processes."""
    paths = [str(p) for p in paths]
    totals = ReadStats()
    flows: list[Flow] = []
    if workers <= 1 or len(paths) <= 1:
        results = map(read_pcap_flows_reference, paths)
        for file_flows, stats in results:
            flows.extend(file_flows)
            totals.add(stats)
        return flows, totals
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for file_flows, stats in pool.map(read_pcap_flows_reference, paths, chunksize=8):
            flows.extend(file_flows)
            totals.add(stats)
    return flows, totals


# ---------------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------------


class FlowTableLabels:
    """``label_of`` from a production ``FlowTable``: nDPI's label of the flow with the same key and start.

    Returns None for a flow the table does not hold (counted in ``misses``); a key the table holds
    twice with different labels is counted in ``ambiguous`` and looked up as a miss.
    """

    def __init__(self, table: FlowTable) -> None:
        self.labels: dict[tuple, str] = {}
        self.ambiguous = 0
        self.misses = 0
        clashing: set[tuple] = set()
        for index in range(int(table.n_flows)):
            key = (
                os.path.realpath(str(table.source[index])),
                int(table.ip_protocol[index]),
                str(table.client_ip[index]),
                int(table.client_port[index]),
                str(table.server_ip[index]),
                int(table.server_port[index]),
                int(table.first_seen_ms[index]),
            )
            label = str(table.application_name[index])
            if key in self.labels and self.labels[key] != label:
                clashing.add(key)
            self.labels[key] = label
        for key in clashing:
            del self.labels[key]
        self.ambiguous = len(clashing)

    def __call__(self, key: FlowKey, first_seen_ms: int) -> str | None:
        label = self.labels.get(
            (key.source, key.ip_protocol, key.client_ip, key.client_port, key.server_ip, key.server_port,
             first_seen_ms)
        )
        if label is None:
            self.misses += 1
        return label


_UDP_PORT_LABELS = {53: "DNS", 123: "NTP", 5353: "MDNS", 1900: "SSDP", 5060: "SIP", 443: "QUIC"}
_TCP_PORT_LABELS = {53: "DNS", 5060: "SIP", 80: "HTTP", 8080: "HTTP", 443: "TLS", 8883: "TLS"}


def port_label(key: FlowKey, first_seen_ms: int) -> str:
    """A label from well-known ports (server port first), for use without nfstream; "Unknown" otherwise.

    The ports are the ones docs/features.md names for flows nDPI cannot classify.
    """
    table = {6: _TCP_PORT_LABELS, 17: _UDP_PORT_LABELS}.get(key.ip_protocol, {})
    for port in (key.server_port, key.client_port):
        if port in table:
            return table[port]
    return "Unknown"


def apply_labels(flows: Iterable[Flow], label_of: LabelOf) -> int:
    """Set every flow's ``application_name``; returns how many flows ``label_of`` could not label."""
    unlabelled = 0
    for flow in flows:
        label = label_of(flow.key, flow.first_seen_ms)
        if label is None:
            unlabelled += 1
            label = ""
        flow.application_name = label
    return unlabelled


# ---------------------------------------------------------------------------------------------------
# Devices
# ---------------------------------------------------------------------------------------------------


def _is_unicast_mac(mac: str) -> bool:
    return mac != "00:00:00:00:00:00" and int(mac[:2], 16) & 1 == 0


def _address_kind(address: str) -> str:
    """'local' (private or link-local unicast), 'global', or 'other' (multicast, broadcast, unspecified)."""
    ip = ipaddress.ip_address(address)
    if ip.is_multicast or ip.is_unspecified or ip.is_loopback or address == "255.255.255.255":
        return "other"
    if ip.version == 4 and address.endswith(".255"):
        return "other"
    if ip.is_private or ip.is_link_local:
        return "local"
    return "global"


def find_local_devices(flows: Iterable[Flow]) -> list[str]:
    """Local hosts: unicast MACs seen with a private IP, minus those seen with a public one (gateways)."""
    local: set[str] = set()
    gateways: set[str] = set()
    for flow in flows:
        for mac, ip in ((flow.client_mac, flow.key.client_ip), (flow.server_mac, flow.key.server_ip)):
            if not _is_unicast_mac(mac):
                continue
            kind = _address_kind(ip)
            if kind == "global":
                gateways.add(mac)
            elif kind == "local":
                local.add(mac)
    return sorted(local - gateways)


# ---------------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------------


@dataclass
class CellPacket:
    time_ms: int
    direction: int
    size: int
    flow: int


def _cell_features(packets: list[CellPacket], flows: list[Flow], window_seconds: float) -> list[float]:
    """The 53 features of one (window, protocol row) cell, per docs/features.md."""
    values = [0.0] * len(COLUMN_NAMES)
    if not packets:
        return values
    by_direction = {
        "C": [p for p in packets if p.direction == 0],
        "S": [p for p in packets if p.direction == 1],
        "B": list(packets),
    }
    values[COLUMN["client_server_packet_ratio"]] = len(by_direction["C"]) / max(len(by_direction["S"]), 1)
    for direction, chosen in by_direction.items():
        n = len(chosen)
        values[COLUMN[f"packets_per_second_{direction}"]] = n / window_seconds
        if n == 0:
            continue
        sizes = [p.size for p in chosen]
        values[COLUMN[f"packet_count_{direction}"]] = n
        values[COLUMN[f"mean_packet_size_{direction}"]] = sum(sizes) / n
        values[COLUMN[f"max_packet_size_{direction}"]] = max(sizes)
        values[COLUMN[f"min_packet_size_{direction}"]] = min(sizes)
        values[COLUMN[f"range_packet_size_{direction}"]] = max(sizes) - min(sizes)
        values[COLUMN[f"median_packet_size_{direction}"]] = statistics.median(sizes)
        values[COLUMN[f"bytes_per_second_{direction}"]] = sum(sizes) / window_seconds
        if n < 2:
            continue
        # Gaps stay integer ms until the end, so sums and medians are exact; reported in seconds.
        times = sorted(p.time_ms for p in chosen)
        gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
        values[COLUMN[f"sum_inter_arrival_{direction}"]] = sum(gaps) / 1000
        values[COLUMN[f"max_inter_arrival_{direction}"]] = max(gaps) / 1000
        values[COLUMN[f"min_inter_arrival_{direction}"]] = min(gaps) / 1000
        values[COLUMN[f"mean_inter_arrival_{direction}"]] = sum(gaps) / (n - 1) / 1000
        values[COLUMN[f"median_inter_arrival_{direction}"]] = statistics.median(gaps) / 1000
        values[COLUMN[f"range_inter_arrival_{direction}"]] = (max(gaps) - min(gaps)) / 1000
    flows_in_cell = sorted({p.flow for p in packets})
    for direction in ("C", "S"):
        if direction == "C":
            ports = [flows[f].key.client_port for f in flows_in_cell]
        else:
            ports = [flows[f].key.server_port for f in flows_in_cell]
        values[COLUMN[f"max_port_{direction}"]] = max(ports)
        values[COLUMN[f"min_port_{direction}"]] = min(ports)
        values[COLUMN[f"range_port_{direction}"]] = max(ports) - min(ports)
        values[COLUMN[f"mean_port_{direction}"]] = sum(ports) / len(ports)
        values[COLUMN[f"median_port_{direction}"]] = statistics.median(ports)
    return values


def device_matrices(flows: list[Flow], mac: str, spec: WindowSpec) -> dict[tuple[dt.date, int], np.ndarray]:
    """13 × 53 matrix of every (day, window) in which the device has at least one packet."""
    zone = ZoneInfo(spec.tz)
    own = [index for index, flow in enumerate(flows) if mac in (flow.client_mac, flow.server_mac)]
    packets = [
        CellPacket(time, direction, size, index)
        for index in own
        for time, direction, size in zip(flows[index].times, flows[index].directions, flows[index].sizes,
                                         strict=True)
    ]
    packets.sort(key=lambda p: p.time_ms)
    times = [p.time_ms for p in packets]
    rows_of = {index: row_mask(flows[index].key.ip_protocol, flows[index].application_name) for index in own}
    # A day's quiet period starts on its local date and lasts at most a day (+ the last window's overhang),
    # so a packet can only fall in the periods of its own local date and of the two dates before.
    days: set[dt.date] = set()
    for minute in {t // 60_000 for t in times}:
        date = dt.datetime.fromtimestamp(minute * 60, zone).date()
        days.update(date - dt.timedelta(days=back) for back in (0, 1, 2))
    window_seconds = spec.window_ms / 1000
    result: dict[tuple[dt.date, int], np.ndarray] = {}
    for day in sorted(days):
        period_start = spec.period_start_ms(day)
        for window in range(spec.windows_per_day):
            start = period_start + window * spec.step_ms
            end = start + spec.window_ms
            inside = packets[bisect.bisect_left(times, start):bisect.bisect_left(times, end)]
            if not inside:
                continue
            matrix = np.zeros((len(PROTOCOL_ROWS), len(COLUMN_NAMES)))
            for row in range(len(PROTOCOL_ROWS)):
                cell = [p for p in inside if rows_of[p.flow] >> row & 1]
                matrix[row] = _cell_features(cell, flows, window_seconds)
            result[(day, window)] = matrix
    return result


# ---------------------------------------------------------------------------------------------------
# The whole run
# ---------------------------------------------------------------------------------------------------


@dataclass
class ReferenceFlows:
    """The labelled flows of a set of captures (read once, windowed under any number of specs)."""

    flows: list[Flow]
    stats: ReadStats
    unlabelled: int


@dataclass
class ReferenceRun:
    """Everything the reference computed from a set of captures."""

    flows: list[Flow]
    stats: ReadStats
    devices: list[str]
    unlabelled: int
    matrices: dict[MatrixKey, np.ndarray]


def read_reference(
    paths: Sequence[str | os.PathLike], label_of: LabelOf = port_label, workers: int = 1
) -> ReferenceFlows:
    """Flows of the captures, labelled by ``label_of`` (flows it cannot label are counted)."""
    flows, stats = read_flows_reference(paths, workers=workers)
    unlabelled = apply_labels(flows, label_of)
    logger.info(
        "reference: %d frames → %d packets (dropped: %s; %d restamped to keep time monotonic), "
        "%d flows (%d unlabelled)",
        stats.frames, stats.packets, dict(stats.dropped), stats.restamped, len(flows), unlabelled,
    )
    return ReferenceFlows(flows, stats, unlabelled)


def window_reference(
    read: ReferenceFlows, spec: WindowSpec, macs: Sequence[str] | None = None
) -> ReferenceRun:
    """Matrices of every device (``macs`` seen in the flows, or the local hosts found) in every window."""
    flows = read.flows
    if macs is None:
        devices = find_local_devices(flows)
    else:
        seen = {flow.client_mac for flow in flows} | {flow.server_mac for flow in flows}
        devices = [mac.lower() for mac in macs if mac.lower() in seen]
    matrices: dict[MatrixKey, np.ndarray] = {}
    for mac in devices:
        for (day, window), matrix in device_matrices(flows, mac, spec).items():
            matrices[(mac, day, window)] = matrix
    logger.info("reference: %d devices, %d window matrices", len(devices), len(matrices))
    return ReferenceRun(flows, read.stats, devices, read.unlabelled, matrices)


def reference_run(
    paths: Sequence[str | os.PathLike],
    spec: WindowSpec,
    label_of: LabelOf = port_label,
    macs: Sequence[str] | None = None,
    workers: int = 1,
) -> ReferenceRun:
    """Flows, labels, devices (``macs`` or found as local hosts) and per-window matrices of the captures."""
    return window_reference(read_reference(paths, label_of, workers), spec, macs)


def reference_fingerprints(
    paths: Sequence[str | os.PathLike],
    spec: WindowSpec,
    label_of: LabelOf = port_label,
    macs: Sequence[str] | None = None,
    workers: int = 1,
) -> dict[MatrixKey, np.ndarray]:
    """{(mac, day, window index): 13 × 53 matrix} for every window in which a device has ≥ 1 packet."""
    return reference_run(paths, spec, label_of, macs, workers).matrices
