"""Golden agreement: the production fingerprints equal an independent dpkt reference, window by window.

The production path (nfstream + PacketTrace flows, vectorised ``window_features``) and
``twinwatch.reference`` (dpkt packets, hand-built flows, plain-loop features) must give

- the same flows (every packet's time, direction and IP size, and both MACs),
- the same devices and the same (mac, day, window) keys (production drops blank images and counts them;
  the reference keeps every window with a packet, so the test drops and counts blank ones the same way),
- every 13 × 53 matrix equal within rtol = 1e-9 and atol = 1e-9 (the intent is bit-for-bit: the
  reference keeps integer sizes and ms until the last division, and the test logs the largest difference),
- identical ``to_images`` greyscale images.

nDPI labels cannot be recomputed with dpkt, so the reference takes them from the production flow table
by flow key and start time; a flow it cannot find there fails the test (zero unlabelled flows).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import socket
import struct
import time
from collections import Counter
from pathlib import Path

import dpkt
import numpy as np
import pytest

from twinwatch.devices import read_devices_file
from twinwatch.fingerprint import FingerprintSet, fingerprint_flows
from twinwatch.flows import FlowTable, read_flows, read_pcap_flows
from twinwatch.images import to_images
from twinwatch.reference import (
    COLUMN_NAMES,
    FlowKey,
    FlowTableLabels,
    ReferenceRun,
    port_label,
    read_reference,
    reference_run,
    window_reference,
)
from twinwatch.simulator import packets as frames
from twinwatch.simulator.lab import LabConfig, build_lab
from twinwatch.windows import WindowSpec

logger = logging.getLogger(__name__)

RTOL = 1e-9
ATOL = 1e-9
REPO = Path(__file__).resolve().parents[2]
REAL = REPO.parent / "shared/data/real"
SENTINEL = REAL / "iot_sentinel/captures_IoT_Sentinel/captures_IoT-Sentinel"
LIFECYCLE = REAL / "lifecycle_demo"
WORKERS = min(2, os.cpu_count() or 1)
ALL_DAY = WindowSpec.from_strings(tz="UTC", quiet="00:00-00:00")
LAB_DEVICES = ("panels", "camera", "plug", "bulb", "hub", "speaker")

Key = tuple[str, dt.date, int]


# ---------------------------------------------------------------------------------------------------
# Comparison helpers
# ---------------------------------------------------------------------------------------------------


def assert_same_flows(table: FlowTable, run: ReferenceRun) -> None:
    """Every production flow has a reference twin with the same packets (time, direction, size) and MACs."""
    order = np.argsort(table.packet_flow, kind="stable")  # each flow's packets together, in capture order
    flow_of = table.packet_flow[order]
    starts = np.searchsorted(flow_of, np.arange(table.n_flows), side="left")
    ends = np.searchsorted(flow_of, np.arange(table.n_flows), side="right")
    times, directions, sizes = (table.packet_time_ms[order], table.packet_direction[order],
                                table.packet_size[order])
    production = {}
    for i in range(table.n_flows):
        key = (os.path.realpath(table.source[i]), int(table.ip_protocol[i]), table.client_ip[i],
               int(table.client_port[i]), table.server_ip[i], int(table.server_port[i]),
               int(table.first_seen_ms[i]))
        production[key] = (
            times[starts[i]:ends[i]].tolist(),
            directions[starts[i]:ends[i]].tolist(),
            sizes[starts[i]:ends[i]].tolist(),
            table.client_mac[i],
            table.server_mac[i],
        )
    assert len(production) == table.n_flows, "two production flows share a key and a start time"
    unmatched, different = [], []
    for flow in run.flows:
        k = flow.key
        key = (k.source, k.ip_protocol, k.client_ip, k.client_port, k.server_ip, k.server_port,
               flow.first_seen_ms)
        theirs = production.pop(key, None)
        if theirs is None:
            unmatched.append(key)
        elif theirs != (flow.times, flow.directions, flow.sizes, flow.client_mac, flow.server_mac):
            different.append(key)
    assert not unmatched, f"{len(unmatched)} reference flows missing in production, e.g. {unmatched[:3]}"
    assert not different, f"{len(different)} flows differ in packets or MACs, e.g. {different[:3]}"
    assert not production, (
        f"{len(production)} production flows missing in the reference, e.g. {list(production)[:3]}"
    )
    assert run.stats.packets == table.n_packets


Windows = tuple[dict[Key, np.ndarray], dict[Key, np.ndarray], Counter]


def production_windows(fingerprints: FingerprintSet) -> Windows:
    """(matrices, images, blank images dropped per (mac, day)) of the production fingerprints."""
    matrices, images, blank = {}, {}, Counter()
    for device_day in fingerprints.device_days:
        for window, matrix, image in zip(device_day.window_index, device_day.features, device_day.images,
                                         strict=True):
            key = (device_day.device.mac, device_day.day, int(window))
            assert key not in matrices, f"production gives window {key} twice"
            matrices[key] = matrix
            images[key] = image
        if device_day.blank_dropped:
            blank[(device_day.device.mac, device_day.day)] += device_day.blank_dropped
    return matrices, images, blank


def reference_windows(run: ReferenceRun) -> Windows:
    """The reference's matrices and images, blank images (all black or all white) dropped and counted."""
    keys = sorted(run.matrices)
    if not keys:
        return {}, {}, Counter()
    stacked = np.stack([run.matrices[k] for k in keys])
    pictures = to_images(stacked)
    matrices, images, blank = {}, {}, Counter()
    for key, matrix, image in zip(keys, stacked, pictures, strict=True):
        if image.max() == 0 or image.min() == 255:
            blank[key[:2]] += 1
        else:
            matrices[key] = matrix
            images[key] = image
    return matrices, images, blank


def assert_agreement(table: FlowTable, fingerprints: FingerprintSet, run: ReferenceRun, name: str) -> int:
    """All the agreement assertions of the module docstring; returns how many matrices were compared."""
    assert run.unlabelled == 0, f"{run.unlabelled} reference flows have no production label"
    assert_same_flows(table, run)
    assert sorted(d.mac for d in fingerprints.devices) == sorted(run.devices)
    prod_matrices, prod_images, prod_blank = production_windows(fingerprints)
    ref_matrices, ref_images, ref_blank = reference_windows(run)
    assert set(prod_matrices) == set(ref_matrices), (
        f"only production: {sorted(set(prod_matrices) - set(ref_matrices))[:5]}; "
        f"only reference: {sorted(set(ref_matrices) - set(prod_matrices))[:5]}"
    )
    assert prod_blank == ref_blank
    worst, exact = 0.0, 0
    for key in sorted(prod_matrices):
        ours, theirs = prod_matrices[key], ref_matrices[key]
        np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, err_msg=f"matrix {key}")
        worst = max(worst, float(np.abs(ours - theirs).max()))
        exact += bool(np.array_equal(ours, theirs))
        np.testing.assert_array_equal(prod_images[key], ref_images[key], err_msg=f"image {key}")
    logger.info(
        "%s: %d flows, %d packets, %d devices, %d matrices compared (%d bit-identical, "
        "largest difference %g), %d blank windows dropped by both",
        name, table.n_flows, table.n_packets, len(run.devices), len(prod_matrices), exact, worst,
        sum(prod_blank.values()),
    )
    return len(prod_matrices)


def ethernet_pcaps(folder: Path) -> list[Path]:
    """Classic pcaps with Ethernet link type under ``folder``."""
    found = []
    for path in sorted(folder.rglob("*.pcap")):
        with open(path, "rb") as handle:
            try:
                if dpkt.pcap.Reader(handle).datalink() == dpkt.pcap.DLT_EN10MB:
                    found.append(path)
            except ValueError:
                continue
    return found


def run_both(pcaps: list[Path], spec: WindowSpec, name: str) -> int:
    """Production and reference over the same captures with devices found by each; compares them."""
    started = time.perf_counter()
    table = read_flows(pcaps, workers=WORKERS)
    fingerprints = fingerprint_flows(table, spec)
    production_s = time.perf_counter() - started
    labels = FlowTableLabels(table)
    assert labels.ambiguous == 0
    started = time.perf_counter()
    run = reference_run(pcaps, spec, label_of=labels, workers=WORKERS)
    reference_s = time.perf_counter() - started
    logger.info("%s: %d pcaps, production %.1f s, reference %.1f s", name, len(pcaps), production_s,
                reference_s)
    return assert_agreement(table, fingerprints, run, name)


# ---------------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------------


DEV_MAC, DEV_IP, DEV_IP6 = "50:c7:bf:1a:2b:01", "192.168.1.20", "fe80::52c7:bfff:fe1a:2b01"
GW_MAC, GW_IP, GW_IP6 = "f4:f2:6d:00:00:01", "192.168.1.1", "2001:db8::1"
CLOUD = "52.10.20.30"
T0 = 1_768_179_600  # 2026-01-12 01:00:00 UTC (clear of the midnight overhang, tested on its own below)


def ipv6_frame(src_mac: str, dst_mac: str, src: str, dst: str, proto: int, transport: bytes,
               hop_by_hop: bool = False) -> bytes:
    """Ethernet/IPv6 frame, optionally with a hop-by-hop header (checksums 0: neither side checks them)."""
    payload = transport
    next_header = proto
    if hop_by_hop:
        payload = bytes([proto, 0, 1, 4, 0, 0, 0, 0]) + transport  # PadN option fills the 8 bytes
        next_header = 0
    header = struct.pack("!IHBB", 6 << 28, len(payload), next_header, 64)
    header += socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
    return frames.mac_bytes(dst_mac) + frames.mac_bytes(src_mac) + b"\x86\xdd" + header + payload


def vlan_tagged(frame: bytes, vlan: int) -> bytes:
    return frame[:12] + b"\x81\x00" + struct.pack("!H", vlan) + frame[12:]


def write_pcap(path: Path, records: list[tuple[int, int, bytes]]) -> None:
    """A classic microsecond pcap with exactly the given (seconds, microseconds, frame) records."""
    with open(path, "wb") as handle:
        handle.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for sec, usec, frame in records:
            handle.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)


def edge_case_records() -> list[tuple[int, int, bytes]]:
    """Frames (in file order, time order but for one late packet) that probe nfstream's flow rules."""
    dns = frames.dns_query("a.example", 1)
    records: list[tuple[int, int, bytes]] = []

    def udp(sec: int, usec: int, sport: int, dport: int, forward: bool = True, vlan: int = 0) -> None:
        if forward:
            frame = frames.udp_frame(DEV_MAC, GW_MAC, DEV_IP, CLOUD, sport, dport, dns)
        else:
            frame = frames.udp_frame(GW_MAC, DEV_MAC, CLOUD, DEV_IP, dport, sport, dns)
        records.append((sec, usec, vlan_tagged(frame, vlan) if vlan else frame))

    # Idle timeout: a gap of exactly 120 s starts a new flow, 119.999 s does not.
    udp(T0 + 10, 0, 40001, 53)
    udp(T0 + 11, 999, 40001, 53, forward=False)  # 11.000999 s → 11000 ms
    udp(T0 + 131, 0, 40001, 53)  # 120.000 s after the last packet
    udp(T0 + 250, 999_999, 40001, 53)  # 119.999 s later (ms are floored)
    # The server speaks first: it is the client of the flow.
    udp(T0 + 400, 0, 40002, 123, forward=False)
    udp(T0 + 400, 20_000, 40002, 123)
    # The same five-tuple on two VLANs: two flows.
    udp(T0 + 500, 0, 40003, 5353, vlan=10)
    udp(T0 + 500, 1_000, 40003, 5353, vlan=20)
    udp(T0 + 500, 2_000, 40003, 5353, forward=False, vlan=10)
    # A late packet (5 ms before the newest): nfstream stamps it with the newest time.
    udp(T0 + 600, 10_000, 40004, 1900)
    udp(T0 + 600, 5_000, 40004, 1900, forward=False)
    # IPv6: UDP behind a hop-by-hop header, and TCP; sizes are 40 + payload length.
    udp6 = struct.pack("!HHHH", 5353, 5353, 8 + len(dns), 0) + dns
    records.append((T0 + 700, 0, ipv6_frame(DEV_MAC, GW_MAC, DEV_IP6, GW_IP6, 17, udp6, hop_by_hop=True)))
    tcp6 = struct.pack("!HHIIBBHHH", 40005, 443, 1, 0, 5 << 4, 0x02, 64240, 0, 0)
    records.append((T0 + 700, 100, ipv6_frame(DEV_MAC, GW_MAC, DEV_IP6, GW_IP6, 6, tcp6)))
    # IPv6 cut short by the capture: nfstream drops it.
    records.append((T0 + 700, 200, ipv6_frame(DEV_MAC, GW_MAC, DEV_IP6, GW_IP6, 17, udp6)[:60]))
    # IPv4 cut short: kept, with its IP total length as size.
    cut = frames.udp_frame(DEV_MAC, GW_MAC, DEV_IP, CLOUD, 40006, 443, b"q" * 900)
    records.append((T0 + 710, 0, cut[:80]))
    # A first fragment counts; a later fragment of the same datagram does not.
    first = bytearray(frames.udp_frame(DEV_MAC, GW_MAC, DEV_IP, CLOUD, 40007, 5060, dns))
    first[20:22] = struct.pack("!H", 0x2000)  # more fragments, offset 0
    later = bytearray(first)
    later[20:22] = struct.pack("!H", 0x0010)  # offset 16 × 8 bytes
    records += [(T0 + 720, 0, bytes(first)), (T0 + 720, 1000, bytes(later))]
    # Ping and IGMP (ports 0), an ARP request and a runt frame (ignored).
    ping = frames.icmp_echo_frame(DEV_MAC, GW_MAC, DEV_IP, GW_IP, reply=False, ident=1, seq=1)
    pong = frames.icmp_echo_frame(GW_MAC, DEV_MAC, GW_IP, DEV_IP, reply=True, ident=1, seq=1)
    records += [(T0 + 730, 0, ping), (T0 + 730, 10, pong)]
    records.append((T0 + 740, 0, frames.igmp_report_frame(DEV_MAC, DEV_IP, "239.255.255.250")))
    arp = frames.mac_bytes("ff:ff:ff:ff:ff:ff") + frames.mac_bytes(DEV_MAC) + b"\x08\x06" + bytes(28)
    records += [(T0 + 750, 0, arp), (T0 + 750, 1, arp[:20])]
    # Active timeout: one packet a minute; the one exactly 1800 s after the first starts a new flow.
    for minute in range(32):
        udp(T0 + 1000 + 60 * minute, 500, 50000, 6000, forward=minute % 2 == 0)
    return records


def test_flow_rules_match_nfstream_on_edge_cases(tmp_path):
    """Timeout boundaries, VLANs, IPv6 (+ extension header), fragments, truncation and late packets."""
    path = tmp_path / "edges.pcap"
    write_pcap(path, edge_case_records())
    table = read_pcap_flows(path)
    labels = FlowTableLabels(table)
    read = read_reference([path], label_of=labels)
    run = window_reference(read, ALL_DAY)
    fingerprints = fingerprint_flows(table, ALL_DAY)
    assert read.stats.dropped == Counter(
        {"not IP": 1, "short frame": 1, "IPv6 cut by snap length": 1, "IPv4 non-first fragment": 1}
    )
    assert read.stats.restamped == 1
    by_ports = Counter((f.key.client_port, f.key.server_port, f.key.vlan) for f in read.flows)
    assert by_ports[(40001, 53, 0)] == 2  # cut by the 120 s idle timeout
    assert by_ports[(50000, 6000, 0)] == 2  # cut by the 1800 s active timeout
    assert by_ports[(123, 40002, 0)] == 1  # the server spoke first
    assert by_ports[(40003, 5353, 10)] == by_ports[(40003, 5353, 20)] == 1
    sizes6 = sorted(s for f in read.flows if ":" in f.key.client_ip for s in f.sizes)
    assert sizes6 == [40 + 20, 40 + 8 + 8 + len(frames.dns_query("a.example", 1))]
    assert [f.sizes for f in read.flows if f.key.client_port == 40006] == [[20 + 8 + 900]]
    assert assert_agreement(table, fingerprints, run, "edge cases") > 0




def test_reference_columns_match_the_documented_table():
    """The reference's column order is the one in docs/features.md (the spec both sides implement)."""
    text = (REPO / "docs/features.md").read_text()
    documented = re.findall(r"^\| (\d+) \| `([a-z_A-Z]+)` \|", text, flags=re.MULTILINE)
    assert [int(i) for i, _ in documented] == list(range(53))
    assert tuple(name for _, name in documented) == COLUMN_NAMES


def test_port_labels_cover_the_well_known_services():
    def key(protocol: int, client_port: int, server_port: int) -> FlowKey:
        return FlowKey("x.pcap", protocol, "192.168.1.20", client_port, "192.0.2.1", server_port)

    assert port_label(key(17, 40000, 53), 0) == "DNS"
    assert port_label(key(6, 40000, 53), 0) == "DNS"
    assert port_label(key(17, 123, 123), 0) == "NTP"
    assert port_label(key(17, 5353, 5353), 0) == "MDNS"
    assert port_label(key(17, 40000, 1900), 0) == "SSDP"
    assert port_label(key(17, 5060, 5060), 0) == "SIP"
    assert port_label(key(6, 40000, 80), 0) == "HTTP"
    assert port_label(key(6, 40000, 443), 0) == "TLS"
    assert port_label(key(6, 40000, 8883), 0) == "TLS"
    assert port_label(key(17, 40000, 443), 0) == "QUIC"
    assert port_label(key(6, 40000, 8080), 0) == "HTTP"
    assert port_label(key(6, 40000, 8443), 0) == "Unknown"
    assert port_label(key(1, 0, 0), 0) == "Unknown"


@pytest.mark.slow
@pytest.mark.parametrize(("days", "snaplen"), [(2, 65535), (1, 64)], ids=["full", "cut-to-headers"])
def test_lab_production_equals_reference(tmp_path, days, snaplen):
    """Simulated days, six devices (devices.csv), the default quiet period and one that crosses midnight.

    The second case cuts every frame to 64 bytes: nDPI then sees little payload (labels mostly come from
    the port fallback) and sizes must still be the IP total lengths.
    """
    config = LabConfig(days=days, change_day=2, devices=LAB_DEVICES, snaplen=snaplen)
    started = time.perf_counter()
    manifest = build_lab(config, tmp_path)
    logger.info("lab: built %d packets in %.1f s", manifest.packets, time.perf_counter() - started)
    known = read_devices_file(tmp_path / "devices.csv")
    macs = [device.mac for device in known]
    table = read_flows(manifest.pcaps, workers=WORKERS)
    labels = FlowTableLabels(table)
    assert labels.ambiguous == 0
    read = read_reference(manifest.pcaps, label_of=labels, workers=WORKERS)
    compared = 0
    for spec in (WindowSpec(tz=config.tz), WindowSpec.from_strings(tz=config.tz, quiet="22:00-04:00")):
        started = time.perf_counter()
        fingerprints = fingerprint_flows(table, spec, known_devices=known)
        run = window_reference(read, spec, macs=macs)
        logger.info("lab %s: windows on both sides in %.1f s", spec.period_start,
                    time.perf_counter() - started)
        assert sorted(run.devices) == sorted(macs)
        compared += assert_agreement(table, fingerprints, run, f"lab quiet from {spec.period_start}")
    assert compared > 0


@pytest.mark.slow
@pytest.mark.real_data
def test_iot_sentinel_production_equals_reference():
    """All 550 IoT Sentinel setup captures, windows all day long (UTC), devices found by each side."""
    if not SENTINEL.is_dir():
        pytest.skip(f"real captures not present: {SENTINEL} is absent")
    pcaps = sorted(SENTINEL.rglob("*.pcap"))
    assert len(pcaps) == 550
    assert run_both(pcaps, ALL_DAY, "iot_sentinel") > 0


@pytest.mark.slow
@pytest.mark.real_data
def test_lifecycle_demo_production_equals_reference():
    """The lifecycle demo captures (a plug and a camera, one afternoon), windows all day long (UTC)."""
    if not LIFECYCLE.is_dir():
        pytest.skip(f"real captures not present: {LIFECYCLE} is absent")
    pcaps = ethernet_pcaps(LIFECYCLE)
    if not pcaps:
        pytest.skip(f"no Ethernet pcaps under {LIFECYCLE}")
    assert run_both(pcaps, ALL_DAY, "lifecycle_demo") > 0


@pytest.mark.parametrize(
    ("tz", "moments"),
    [
        ("UTC", ["2026-01-11T23:58:00+00:00", "2026-01-12T00:01:00+00:00"]),
        ("Europe/Berlin", ["2026-03-29T12:00:00+02:00", "2026-03-30T00:30:00+02:00"]),  # 29 March has 23 h
    ],
    ids=["utc-midnight", "berlin-dst"],
)
def test_all_day_last_window_overhangs_into_the_next_day(tmp_path, tz, moments):
    """With a 24-hour quiet period a day's last window (23:48-00:03) holds the next day's first minutes."""
    records = []
    for moment in moments:
        sec = int(dt.datetime.fromisoformat(moment).timestamp())
        records.append((sec, 0, frames.udp_frame(DEV_MAC, GW_MAC, DEV_IP, GW_IP, 40001, 53, b"x" * 30)))
        records.append((sec, 5000, frames.udp_frame(GW_MAC, DEV_MAC, GW_IP, DEV_IP, 53, 40001, b"y" * 60)))
    path = tmp_path / "midnight.pcap"
    write_pcap(path, records)
    spec = WindowSpec.from_strings(tz=tz, quiet="00:00-00:00")
    table = read_pcap_flows(path)
    run = reference_run([path], spec, label_of=FlowTableLabels(table))
    assert assert_agreement(table, fingerprint_flows(table, spec), run, f"overhang {tz}") > 0
