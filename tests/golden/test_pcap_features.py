"""A hand-built pcap through the whole nfstream path: exact feature values at the far end."""

import datetime as dt

import numpy as np
import pytest

from twinwatch.features import FEATURE_COLUMNS
from twinwatch.fingerprint import fingerprint_pcaps
from twinwatch.flows import read_pcap_flows
from twinwatch.protocols import ROW_INDEX
from twinwatch.simulator import packets as p
from twinwatch.windows import WindowSpec

COL = {c.name: c.index for c in FEATURE_COLUMNS}
GW_MAC, GW_IP = "f4:f2:6d:00:00:01", "192.168.1.1"
DEV_MAC, DEV_IP = "50:c7:bf:1a:2b:01", "192.168.1.20"
CLOUD = "52.10.20.30"
T0 = dt.datetime(2026, 1, 12, tzinfo=dt.UTC).timestamp()


@pytest.fixture(scope="module")
def pcap(tmp_path_factory):
    path = tmp_path_factory.mktemp("hand") / "hand.pcap"
    query = p.dns_query("devs.tplinkcloud.com", 0x1234)
    answer = p.dns_response("devs.tplinkcloud.com", 0x1234, [CLOUD])
    frames = [
        (T0 + 60.000, p.udp_frame(DEV_MAC, GW_MAC, DEV_IP, GW_IP, 40001, 53, query)),
        (T0 + 60.025, p.udp_frame(GW_MAC, DEV_MAC, GW_IP, DEV_IP, 53, 40001, answer)),
        (T0 + 61.000, p.icmp_echo_frame(DEV_MAC, GW_MAC, DEV_IP, GW_IP, reply=False, ident=7, seq=0)),
        (T0 + 61.004, p.icmp_echo_frame(GW_MAC, DEV_MAC, GW_IP, DEV_IP, reply=True, ident=7, seq=0)),
        (T0 + 62.000, p.icmp_echo_frame(DEV_MAC, GW_MAC, DEV_IP, GW_IP, reply=False, ident=7, seq=1)),
        (T0 + 62.0049, p.icmp_echo_frame(GW_MAC, DEV_MAC, GW_IP, DEV_IP, reply=True, ident=7, seq=1)),
        # NTP to the cloud: the only thing that makes the gateway visible as a router.
        (T0 + 63.0, p.udp_frame(DEV_MAC, GW_MAC, DEV_IP, CLOUD, 40002, 123, p.ntp_request(T0 + 63))),
        (T0 + 63.03, p.udp_frame(GW_MAC, DEV_MAC, CLOUD, DEV_IP, 123, 40002,
                                 p.ntp_response(T0 + 63, T0 + 63.02, T0 + 63.03))),
    ]
    with p.PcapWriter(path, snaplen=64) as writer:  # truncated to headers: sizes must survive
        writer.write_many(frames)
    return path, len(query), len(answer)


def test_flows_keep_every_packet(pcap):
    path, _, _ = pcap
    flows = read_pcap_flows(path)
    assert flows.n_packets == 8
    assert sorted(flows.application_name.tolist()) == ["DNS", "ICMP", "NTP"]


def test_exact_features_from_a_truncated_capture(pcap):
    path, query_len, answer_len = pcap
    result = fingerprint_pcaps([path], WindowSpec())
    assert [d.mac for d in result.devices] == [DEV_MAC]  # the gateway is not a device
    (day,) = result.device_days
    assert day.day == dt.date(2026, 1, 12) and day.window_index.tolist() == [0]
    m = day.features[0]
    dns = m[ROW_INDEX["DNS"]]
    assert dns[COL["packet_count_B"]] == 2
    assert dns[COL["max_packet_size_C"]] == 20 + 8 + query_len  # IP total length, not the 64-byte snap
    assert dns[COL["max_packet_size_S"]] == 20 + 8 + answer_len
    assert dns[COL["sum_inter_arrival_B"]] == pytest.approx(0.025)
    assert dns[COL["max_port_C"]] == 40001 and dns[COL["min_port_S"]] == 53
    icmp = m[ROW_INDEX["ICMP"]]
    assert icmp[COL["packet_count_C"]] == 2 and icmp[COL["packet_count_S"]] == 2
    assert icmp[COL["mean_packet_size_B"]] == 84
    # Gaps in integer milliseconds as nfstream sees them: 61.004 → 62.000 → 62.004 (62.0049 truncates).
    assert icmp[COL["max_inter_arrival_B"]] == pytest.approx(0.996)
    assert icmp[COL["min_inter_arrival_B"]] == pytest.approx(0.004)
    udp = m[ROW_INDEX["UDP"]]
    assert udp[COL["packet_count_B"]] == 4  # DNS and NTP
    assert udp[COL["range_port_S"]] == 123 - 53
    assert not m[ROW_INDEX["TCP"]].any()
    assert np.all(day.images[0][ROW_INDEX["TLS"]] == 0)


def test_full_capture_is_labelled_by_ndpi_not_ports(tmp_path, pcap):
    """With whole packets nDPI itself names DNS; the port fallback only fills in Unknown."""
    import dpkt

    from twinwatch.flows import FlowSettings, _streamer

    path, _, _ = pcap
    with open(path, "rb") as handle:
        assert all(len(buf) <= 64 for _, buf in dpkt.pcap.Reader(handle))  # the fixture really is cut
    query = p.dns_query("devs.tplinkcloud.com", 0x1234)
    with p.PcapWriter(tmp_path / "full.pcap") as writer:
        writer.write(T0 + 1, p.udp_frame(DEV_MAC, GW_MAC, DEV_IP, GW_IP, 40001, 53, query))
    names = [flow.application_name for flow in _streamer(str(tmp_path / "full.pcap"), FlowSettings(), False)]
    assert names == ["DNS"]
