"""Features of hand-built packet sequences against values worked out by hand."""

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from twinwatch.features import (
    FEATURE_COLUMNS,
    GROUP_SLICES,
    DevicePackets,
    features_markdown,
    window_features,
)
from twinwatch.protocols import ROW_INDEX, row_mask
from twinwatch.windows import WindowSpec, assign_windows

T0 = int(dt.datetime(2026, 1, 12, tzinfo=dt.UTC).timestamp() * 1000)
COL = {c.name: c.index for c in FEATURE_COLUMNS}


def hand_built() -> DevicePackets:
    # flow 0: TLS over TCP 40000 → 443; flow 1: DNS 50000 → 53; flow 2: unlabelled TCP 41000 → 8080;
    # flow 3: an ICMP packet at 00:13, inside windows 0 and 1.
    packets = [  # (flow, ms after midnight, direction, size)
        (0, 1000, 0, 60), (0, 1500, 1, 60), (0, 2500, 0, 100), (0, 4500, 1, 1500),
        (1, 3000, 0, 80), (1, 3020, 1, 120),
        (2, 5000, 0, 52),
        (3, 780_000, 0, 84),
    ]
    flow, time, direction, size = (np.array(column) for column in zip(*packets, strict=True))
    return DevicePackets(
        time_ms=T0 + time.astype(np.int64),
        direction=direction.astype(np.int8),
        size=size.astype(np.int32),
        flow=flow.astype(np.int64),
        flow_row_mask=np.array([row_mask(6, "TLS.Google"), row_mask(17, "DNS"), row_mask(6, "Unknown"),
                                row_mask(1, "ICMP")]),
        flow_client_port=np.array([40000, 50000, 41000, 0]),
        flow_server_port=np.array([443, 53, 8080, 0]),
    )


@pytest.fixture(scope="module")
def computed():
    packets = hand_built()
    assignment = assign_windows(packets.time_ms, WindowSpec())
    windows, matrices = window_features(packets, assignment, 900.0)
    return windows, matrices


def row(matrices, window, protocol):
    return {name: matrices[window, ROW_INDEX[protocol], index] for name, index in COL.items()}


def test_windows_found(computed):
    windows, _ = computed
    assert windows.tolist() == [[0, 0], [0, 1]]


def test_tcp_row_two_flows(computed):
    _, m = computed
    r = row(m, 0, "TCP")
    expected = {
        "client_server_packet_ratio": 1.5,
        "packets_per_second_C": 3 / 900, "packets_per_second_S": 2 / 900, "packets_per_second_B": 5 / 900,
        "packet_count_C": 3, "packet_count_S": 2, "packet_count_B": 5,
        "mean_packet_size_C": 212 / 3, "mean_packet_size_S": 780, "mean_packet_size_B": 1772 / 5,
        "max_packet_size_C": 100, "max_packet_size_S": 1500, "max_packet_size_B": 1500,
        "min_packet_size_C": 52, "min_packet_size_S": 60, "min_packet_size_B": 52,
        "range_packet_size_C": 48, "range_packet_size_S": 1440, "range_packet_size_B": 1448,
        "median_packet_size_C": 60, "median_packet_size_S": 780, "median_packet_size_B": 60,
        "bytes_per_second_C": 212 / 900, "bytes_per_second_S": 1560 / 900, "bytes_per_second_B": 1772 / 900,
        "sum_inter_arrival_C": 4.0, "sum_inter_arrival_S": 3.0, "sum_inter_arrival_B": 4.0,
        "max_inter_arrival_C": 2.5, "max_inter_arrival_S": 3.0, "max_inter_arrival_B": 2.0,
        "min_inter_arrival_C": 1.5, "min_inter_arrival_S": 3.0, "min_inter_arrival_B": 0.5,
        "mean_inter_arrival_C": 2.0, "mean_inter_arrival_S": 3.0, "mean_inter_arrival_B": 1.0,
        "median_inter_arrival_C": 2.0, "median_inter_arrival_S": 3.0, "median_inter_arrival_B": 0.75,
        "range_inter_arrival_C": 1.0, "range_inter_arrival_S": 0.0, "range_inter_arrival_B": 1.5,
        "max_port_C": 41000, "max_port_S": 8080, "min_port_C": 40000, "min_port_S": 443,
        "range_port_C": 1000, "range_port_S": 7637, "mean_port_C": 40500, "mean_port_S": 4261.5,
        "median_port_C": 40500, "median_port_S": 4261.5,
    }
    assert set(expected) == set(COL)
    for name, value in expected.items():
        assert r[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name


def test_tls_row_only_the_labelled_flow(computed):
    _, m = computed
    r = row(m, 0, "TLS")
    assert r["packet_count_B"] == 4
    assert r["median_packet_size_B"] == 80  # (60 + 100) / 2
    assert r["mean_inter_arrival_B"] == pytest.approx(3.5 / 3)
    assert r["median_inter_arrival_B"] == 1.0
    assert r["range_port_C"] == 0 and r["max_port_S"] == 443


def test_udp_and_dns_rows(computed):
    _, m = computed
    for protocol in ("UDP", "DNS"):
        r = row(m, 0, protocol)
        assert r["packet_count_C"] == 1 and r["packet_count_S"] == 1
        assert r["mean_packet_size_B"] == 100
        assert r["sum_inter_arrival_C"] == 0  # one packet: no gap
        assert r["sum_inter_arrival_B"] == pytest.approx(0.02)
        assert r["median_port_S"] == 53


def test_unused_rows_are_zero_and_overlap_counts_twice(computed):
    _, m = computed
    for protocol in ("HTTP", "OCSP", "NTP", "mDNS", "SSDP", "SIP", "QUIC", "IGMP"):
        assert not m[0, ROW_INDEX[protocol]].any(), protocol
    # The ICMP packet at 00:13 is in window 0 (00:00–00:15) and window 1 (00:12–00:27).
    assert row(m, 0, "ICMP")["packet_count_C"] == 1
    assert row(m, 1, "ICMP")["packet_count_C"] == 1
    assert row(m, 1, "ICMP")["client_server_packet_ratio"] == 1.0  # 1 / max(0, 1)
    assert np.count_nonzero(m[1].sum(axis=1)) == 1


def test_column_layout_matches_table_1():
    sizes = [GROUP_SLICES[g].stop - GROUP_SLICES[g].start for g in (1, 2, 3, 4)]
    assert sizes == [4, 21, 18, 10]
    assert len({c.name for c in FEATURE_COLUMNS}) == 53
    assert [c.direction for c in FEATURE_COLUMNS if c.group == 4] == ["C", "S"] * 5


def test_docs_features_md_is_current():
    docs = Path(__file__).resolve().parents[2] / "docs" / "features.md"
    assert docs.read_text() == features_markdown(), "regenerate docs/features.md from features_markdown()"
