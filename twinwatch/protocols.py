"""The 13 protocol rows of a fingerprint and how a flow maps onto them."""

from __future__ import annotations

PROTOCOL_ROWS: tuple[str, ...] = (
    "TCP", "HTTP", "OCSP", "TLS", "UDP", "DNS", "NTP", "mDNS", "SSDP", "SIP", "QUIC", "ICMP", "IGMP",
)
ROW_INDEX: dict[str, int] = {name: index for index, name in enumerate(PROTOCOL_ROWS)}

IP_PROTOCOL_TCP = 6
IP_PROTOCOL_UDP = 17
IP_PROTOCOL_ICMP = 1
IP_PROTOCOL_IGMP = 2

_TRANSPORT_ROWS = {
    IP_PROTOCOL_TCP: "TCP",
    IP_PROTOCOL_UDP: "UDP",
    IP_PROTOCOL_ICMP: "ICMP",
    IP_PROTOCOL_IGMP: "IGMP",
}
# nDPI protocol names (upper-cased) that name an application row.
_APPLICATION_ROWS = {
    "HTTP": "HTTP",
    "HTTP_PROXY": "HTTP",
    "HTTP_CONNECT": "HTTP",
    "OCSP": "OCSP",
    "TLS": "TLS",
    "DNS": "DNS",
    "NTP": "NTP",
    "MDNS": "mDNS",
    "SSDP": "SSDP",
    "SIP": "SIP",
    "QUIC": "QUIC",
    "ICMP": "ICMP",
    "IGMP": "IGMP",
}


def protocol_rows(ip_protocol: int, application_name: str) -> tuple[str, ...]:
    """Rows a flow counts in: its transport row plus the rows its nDPI label names.

    nDPI labels are `master.application` (``TLS.Google``, ``HTTP.OCSP``, ``DNS.AmazonAWS``); every
    part that names a row counts, so ``HTTP.OCSP`` lands in HTTP and OCSP, ``TLS.Google`` in TLS.
    Protocols outside the 13 rows (MQTT, DHCP, …) still count in TCP or UDP.
    """
    rows: list[str] = []
    transport = _TRANSPORT_ROWS.get(ip_protocol)
    if transport:
        rows.append(transport)
    for part in (application_name or "").split("."):
        row = _APPLICATION_ROWS.get(part.upper())
        if row and row not in rows:
            rows.append(row)
    return tuple(rows)


def row_mask(ip_protocol: int, application_name: str) -> int:
    """Bit mask over PROTOCOL_ROWS (bit i set ⇔ the flow counts in row i)."""
    mask = 0
    for row in protocol_rows(ip_protocol, application_name):
        mask |= 1 << ROW_INDEX[row]
    return mask


_WELL_KNOWN_PORTS = {
    (IP_PROTOCOL_UDP, 53): "DNS",
    (IP_PROTOCOL_TCP, 53): "DNS",
    (IP_PROTOCOL_UDP, 123): "NTP",
    (IP_PROTOCOL_UDP, 5353): "MDNS",
    (IP_PROTOCOL_UDP, 1900): "SSDP",
    (IP_PROTOCOL_UDP, 5060): "SIP",
    (IP_PROTOCOL_TCP, 5060): "SIP",
    (IP_PROTOCOL_TCP, 80): "HTTP",
    (IP_PROTOCOL_TCP, 8080): "HTTP",
    (IP_PROTOCOL_TCP, 443): "TLS",
    (IP_PROTOCOL_TCP, 8883): "TLS",
    (IP_PROTOCOL_UDP, 443): "QUIC",
}


def label_with_port_fallback(application_name: str, ip_protocol: int, client_port: int, server_port: int) -> str:
    """nDPI's label, or — where nDPI saw too little payload to say (``Unknown``, e.g. captures cut to
    headers) — the well-known server port's protocol, so truncated captures keep their rows."""
    if application_name and application_name != "Unknown":
        return application_name
    guess = _WELL_KNOWN_PORTS.get((ip_protocol, server_port)) or _WELL_KNOWN_PORTS.get((ip_protocol, client_port))
    return guess or application_name or "Unknown"
