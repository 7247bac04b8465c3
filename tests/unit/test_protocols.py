import pytest

from twinwatch.protocols import PROTOCOL_ROWS, protocol_rows


@pytest.mark.parametrize(
    ("ip_protocol", "label", "rows"),
    [
        (6, "TLS.Google", ("TCP", "TLS")),
        (6, "HTTP.OCSP", ("TCP", "HTTP", "OCSP")),
        (17, "DNS.AmazonAWS", ("UDP", "DNS")),
        (17, "QUIC.YouTube", ("UDP", "QUIC")),
        (17, "MDNS", ("UDP", "mDNS")),
        (17, "DHCP", ("UDP",)),
        (6, "MQTT", ("TCP",)),
        (6, "Unknown", ("TCP",)),
        (1, "ICMP", ("ICMP",)),
        (2, "IGMP", ("IGMP",)),
        (58, "ICMPV6", ()),
        (17, "", ("UDP",)),
    ],
)
def test_rows_of_a_flow(ip_protocol, label, rows):
    assert protocol_rows(ip_protocol, label) == rows


def test_thirteen_rows_in_paper_order():
    assert PROTOCOL_ROWS == ("TCP", "HTTP", "OCSP", "TLS", "UDP", "DNS", "NTP", "mDNS", "SSDP", "SIP", "QUIC",
                             "ICMP", "IGMP")
