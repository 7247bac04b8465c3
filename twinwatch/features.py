"""Table 1 of the paper: 53 flow-statistic features per protocol row per window.

The column layout (group, name, direction, formula, unit) is defined once here in
``FEATURE_COLUMNS``; ``docs/features.md`` is written from it (``twinwatch docs features``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twinwatch.protocols import PROTOCOL_ROWS
from twinwatch.windows import WindowAssignment

CLIENT, SERVER, BOTH = "C", "S", "B"
N_ROWS = len(PROTOCOL_ROWS)


@dataclass(frozen=True)
class FeatureColumn:
    index: int
    name: str
    group: int
    direction: str
    formula: str
    unit: str


def _columns() -> tuple[FeatureColumn, ...]:
    spec: list[tuple[str, int, str, str, str]] = [
        ("client_server_packet_ratio", 1, "C/S", "n_C / max(n_S, 1)", "ratio"),
    ]
    for direction in (CLIENT, SERVER, BOTH):
        spec.append((f"packets_per_second_{direction}", 1, direction, "n / T", "packets/s"))
    packet_stats = [
        ("packet_count", "n", "packets"),
        ("mean_packet_size", "sum(size) / n", "bytes"),
        ("max_packet_size", "max(size)", "bytes"),
        ("min_packet_size", "min(size)", "bytes"),
        ("range_packet_size", "max(size) - min(size)", "bytes"),
        ("median_packet_size", "median(size)", "bytes"),
        ("bytes_per_second", "sum(size) / T", "bytes/s"),
    ]
    for name, formula, unit in packet_stats:
        for direction in (CLIENT, SERVER, BOTH):
            spec.append((f"{name}_{direction}", 2, direction, formula, unit))
    timing_stats = [
        ("sum_inter_arrival", "sum(iat)"),
        ("max_inter_arrival", "max(iat)"),
        ("min_inter_arrival", "min(iat)"),
        ("mean_inter_arrival", "sum(iat) / (n - 1)"),
        ("median_inter_arrival", "median(iat)"),
        ("range_inter_arrival", "max(iat) - min(iat)"),
    ]
    for name, formula in timing_stats:
        for direction in (CLIENT, SERVER, BOTH):
            spec.append((f"{name}_{direction}", 3, direction, formula, "s"))
    port_stats = [
        ("max_port", "max(port)"),
        ("min_port", "min(port)"),
        ("range_port", "max(port) - min(port)"),
        ("mean_port", "sum(port) / flows"),
        ("median_port", "median(port)"),
    ]
    for name, formula in port_stats:
        for direction in (CLIENT, SERVER):
            spec.append((f"{name}_{direction}", 4, direction, formula, "port number"))
    return tuple(FeatureColumn(i, *entry) for i, entry in enumerate(spec))


FEATURE_COLUMNS: tuple[FeatureColumn, ...] = _columns()
N_FEATURES = len(FEATURE_COLUMNS)
GROUP_SLICES: dict[int, slice] = {
    group: slice(
        min(c.index for c in FEATURE_COLUMNS if c.group == group),
        max(c.index for c in FEATURE_COLUMNS if c.group == group) + 1,
    )
    for group in (1, 2, 3, 4)
}
assert N_FEATURES == 53 and [GROUP_SLICES[g].stop - GROUP_SLICES[g].start for g in (1, 2, 3, 4)] == [4, 21, 18, 10]


@dataclass(frozen=True)
class GroupedStats:
    count: np.ndarray
    total: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray
    median: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        return np.divide(self.total, self.count, out=np.zeros_like(self.total), where=self.count > 0)

    @property
    def spread(self) -> np.ndarray:
        return self.maximum - self.minimum


def grouped_stats(keys: np.ndarray, values: np.ndarray, n_groups: int) -> GroupedStats:
    """Count, sum, min, max and median of ``values`` per integer key in ``[0, n_groups)``; 0 where empty."""
    keys = np.asarray(keys, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    order = np.lexsort((values, keys))
    sorted_keys, sorted_values = keys[order], values[order]
    count = np.bincount(sorted_keys, minlength=n_groups).astype(np.int64)
    total = np.bincount(sorted_keys, weights=sorted_values, minlength=n_groups).astype(np.float64)
    starts = np.concatenate(([0], np.cumsum(count)[:-1]))
    present = np.nonzero(count)[0]
    minimum = np.zeros(n_groups)
    maximum = np.zeros(n_groups)
    median = np.zeros(n_groups)
    if present.size:
        first = starts[present]
        n = count[present]
        minimum[present] = sorted_values[first]
        maximum[present] = sorted_values[first + n - 1]
        upper = sorted_values[first + n // 2]
        lower = sorted_values[first + (n - 1) // 2]
        median[present] = (lower + upper) / 2
    return GroupedStats(count, total, minimum, maximum, median)


@dataclass(frozen=True)
class DevicePackets:
    """One device's packets, columnar, with the flows they belong to.

    ``direction`` is 0 for client → server and 1 for server → client, where the client is the host
    that sent the flow's first packet (nfstream's src). Sizes are IP total lengths in bytes; times
    are capture event times in integer milliseconds.
    """

    time_ms: np.ndarray
    direction: np.ndarray
    size: np.ndarray
    flow: np.ndarray
    flow_row_mask: np.ndarray
    flow_client_port: np.ndarray
    flow_server_port: np.ndarray


def window_features(
    packets: DevicePackets, assignment: WindowAssignment, window_seconds: float
) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrices for every (day, window) that holds at least one of the device's packets.

    Returns ``(windows, matrices)``: ``windows`` is an (n, 2) array of (day index, window index)
    into ``assignment.days``; ``matrices`` is (n, 13, 53) float64 in the units of FEATURE_COLUMNS.
    """
    n_windows_per_day = int(assignment.window_index.max()) + 1 if assignment.window_index.size else 1
    slot = assignment.day_index * n_windows_per_day + assignment.window_index
    used_slots, slot_compact = np.unique(slot, return_inverse=True)
    n_used = used_slots.size
    windows = np.stack([used_slots // n_windows_per_day, used_slots % n_windows_per_day], axis=1)
    matrices = np.zeros((n_used, N_ROWS, N_FEATURES))
    if n_used == 0:
        return windows.astype(np.int64), matrices

    packet = assignment.packet_index
    flow = packets.flow[packet]
    masks = packets.flow_row_mask[flow]
    bits = ((masks[:, None] >> np.arange(N_ROWS)) & 1).astype(bool)
    entry, row = np.nonzero(bits)
    packet = packet[entry]
    flow = flow[entry]
    cell = slot_compact[entry] * N_ROWS + row  # one (window, row) cell
    direction = packets.direction[packet].astype(np.int64)
    size = packets.size[packet].astype(np.float64)
    time_ms = packets.time_ms[packet].astype(np.int64)
    n_cells = n_used * N_ROWS
    out = matrices.reshape(n_cells, N_FEATURES)

    by_direction = grouped_stats(cell * 2 + direction, size, n_cells * 2)
    by_cell = grouped_stats(cell, size, n_cells)
    stats_cs = [
        _take(by_direction, 0),
        _take(by_direction, 1),
        by_cell,
    ]
    count = [s.count.astype(np.float64) for s in stats_cs]
    out[:, 0] = count[0] / np.maximum(count[1], 1)
    out[:, 1:4] = np.stack(count, axis=1) / window_seconds
    column = GROUP_SLICES[2].start
    for values in (
        count,
        [s.mean for s in stats_cs],
        [s.maximum for s in stats_cs],
        [s.minimum for s in stats_cs],
        [s.spread for s in stats_cs],
        [s.median for s in stats_cs],
        [s.total / window_seconds for s in stats_cs],
    ):
        out[:, column:column + 3] = np.stack(values, axis=1)
        column += 3

    gaps_by_direction = _inter_arrival_stats(cell * 2 + direction, time_ms, n_cells * 2)
    timing = [
        _take(gaps_by_direction, 0),
        _take(gaps_by_direction, 1),
        _inter_arrival_stats(cell, time_ms, n_cells),
    ]
    for values in (
        [s.total for s in timing],
        [s.maximum for s in timing],
        [s.minimum for s in timing],
        [s.mean for s in timing],
        [s.median for s in timing],
        [s.spread for s in timing],
    ):
        out[:, column:column + 3] = np.stack(values, axis=1) / 1000.0
        column += 3

    # Ports: each flow that has a packet in the cell counts once.
    flow_cell = np.unique(np.stack([cell, flow], axis=1), axis=0)
    ports = [
        grouped_stats(flow_cell[:, 0], packets.flow_client_port[flow_cell[:, 1]], n_cells),
        grouped_stats(flow_cell[:, 0], packets.flow_server_port[flow_cell[:, 1]], n_cells),
    ]
    for values in (
        [s.maximum for s in ports],
        [s.minimum for s in ports],
        [s.spread for s in ports],
        [s.mean for s in ports],
        [s.median for s in ports],
    ):
        out[:, column:column + 2] = np.stack(values, axis=1)
        column += 2
    assert column == N_FEATURES
    return windows.astype(np.int64), matrices


def _take(stats: GroupedStats, direction: int) -> GroupedStats:
    return GroupedStats(*(getattr(stats, f)[direction::2] for f in ("count", "total", "minimum", "maximum", "median")))


def _inter_arrival_stats(keys: np.ndarray, time_ms: np.ndarray, n_keys: int) -> GroupedStats:
    """Stats of gaps between consecutive packets (by time) that share a key; 0 with fewer than 2."""
    order = np.lexsort((time_ms, keys))
    sorted_keys, sorted_times = keys[order], time_ms[order]
    same = sorted_keys[1:] == sorted_keys[:-1]
    gaps = (sorted_times[1:] - sorted_times[:-1])[same]
    gap_keys = sorted_keys[1:][same]
    return grouped_stats(gap_keys, gaps, n_keys)


def features_markdown() -> str:
    """The feature definition as written to docs/features.md (a test keeps the two equal)."""
    lines = [
        "# Fingerprint features (Table 1 of the paper)",
        "",
        "Generated from `twinwatch.features.FEATURE_COLUMNS`; `tests/unit/test_features.py` fails when they drift.",
        "",
        "A fingerprint is a 13 × 53 matrix per device per window: rows are the protocols "
        f"{', '.join(PROTOCOL_ROWS)}; columns are the features below.",
        "",
        "## Definitions",
        "",
        "- **Device packets.** Every packet of every flow in which the device (by MAC) is either end. A flow "
        "between two local devices counts for both.",
        "- **Client and server.** The client is the host that sent the flow's first packet (nfstream's `src`), "
        "the server the other end — whichever of them is the device. `C` = packets the client sent, `S` = packets "
        "the server sent, `B` = both.",
        "- **Rows.** A flow counts in its transport row (TCP, UDP, ICMP, IGMP by IP protocol) and in every row "
        "its nDPI label names (`TLS.Google` → TLS; `HTTP.OCSP` → HTTP and OCSP; `QUIC.YouTube` → QUIC). "
        "Protocols outside the 13 rows (MQTT, DHCP, …) count only in TCP/UDP; ICMPv6 counts nowhere. "
        "Where nDPI says `Unknown` (too little payload, e.g. a capture cut to headers) the well-known "
        "server port decides (53 DNS, 123 NTP, 5353 mDNS, 1900 SSDP, 5060 SIP, TCP 80/8080 HTTP, "
        "TCP 443/8883 TLS, UDP 443 QUIC).",
        "- **Window.** 15 minutes, `[start, start + 15 min)`, starting every 12 minutes from the start of the "
        "daily quiet period (default 00:00–06:00 local time): 30 windows a day, the last one 05:48–06:03. "
        "`T` = 900 s, the window length (not the span of the packets).",
        "- **Size.** The IP total length from the IP header (bytes), so captures truncated to headers keep "
        "true sizes.",
        "- **Time.** Capture event time in integer milliseconds (nfstream's resolution); inter-arrival "
        "times `iat` are gaps between consecutive packets of the cell (row × direction set, across all "
        "its flows) inside the window, reported in seconds. Fewer than two packets ⇒ timing features 0.",
        "- **Ports.** Each flow with at least one packet in the cell counts once with its client port (`C`) "
        "and its server port (`S`); ICMP and IGMP flows have port 0.",
        "- **Empty cells** give 0 for every feature. `median` of an even count is the mean of the middle two.",
        "",
        "## Columns",
        "",
        "| # | name | group | direction | formula | unit |",
        "|---|---|---|---|---|---|",
    ]
    for column in FEATURE_COLUMNS:
        lines.append(
            f"| {column.index} | `{column.name}` | {column.group} | {column.direction} | `{column.formula}` "
            f"| {column.unit} |"
        )
    lines += [
        "",
        "## Image (section 4.2)",
        "",
        "Each feature becomes a 0–255 grey level, `rint(255 · x / max)` with the minimum fixed at 0 "
        "(every feature is ≥ 0, and black must mean *none*, not *the smallest*):",
        "",
        "- group 1 (columns 0–3, across-protocol statistics) is normalised **per column across the 13 rows**, "
        "so it shows how the device's traffic divides between protocols;",
        "- groups 2 (4–24, packets), 3 (25–42, timings) and 4 (43–52, ports) are normalised **per row across "
        "the group's columns**, so each row shows the shape of that protocol's traffic.",
        "",
        "Images that are all black or all white carry nothing and are dropped (and counted).",
        "Our reading of the paper: \"normalised across the protocols\" for group 1 and \"per protocol\" for "
        "groups 2–4 name the axis along which the maximum is taken; the paper does not say whether the "
        "minimum is the observed one, and we fix it at 0 so that an absent protocol stays black.",
        "",
    ]
    return "\n".join(lines)
