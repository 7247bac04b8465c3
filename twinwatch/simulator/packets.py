"""Fast pure-Python builders of real, well-formed Ethernet/IPv4 frames and application payloads.

Everything here returns ``bytes`` that a real stack (and nDPI) would accept: correct IPv4 header,
TCP/UDP/ICMP/IGMP checksums, and genuine protocol messages (DNS, mDNS, NTP, SSDP, HTTP, OCSP, TLS,
QUIC v1 Initial with RFC 9001 protection, SIP).  ``PcapWriter`` writes classic libpcap files.

Checksums use the RFC 1071 identity "one's-complement sum of 16-bit words == value mod 0xFFFF", so
they are computed from cached per-address residues plus one ``int.from_bytes`` of the payload.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import struct
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from http import HTTPStatus
from types import TracebackType

BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
MDNS_GROUP = "224.0.0.251"
SSDP_GROUP = "239.255.255.250"
IGMPV3_GROUP = "224.0.0.22"

_ETH_IPV4 = b"\x08\x00"
_IP_HDR = struct.Struct("!BBHHHBBH4s4s")
_UDP_HDR = struct.Struct("!HHHH")
_TCP_HDR = struct.Struct("!HHIIBBHHH")
_ICMP_HDR = struct.Struct("!BBHHH")
_PCAP_GLOBAL = struct.Struct("<IHHiIII")
_PCAP_RECORD = struct.Struct("<IIII")

_PROTO_ICMP = 1
_PROTO_IGMP = 2
_PROTO_TCP = 6
_PROTO_UDP = 17
_IP_DF = 0x4000
_ROUTER_ALERT = b"\x94\x04\x00\x00"
# MSS 1460, NOP, window scale 7, NOP, NOP, SACK permitted (a Linux SYN / SYN-ACK minus timestamps).
_SYN_OPTIONS = b"\x02\x04\x05\xb4\x01\x03\x03\x07\x01\x01\x04\x02"
_TCP_FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20, "E": 0x40, "C": 0x80}

# Deterministic high-entropy filler for ciphertext-like bodies (TLS records, DER blobs, QUIC 1-RTT).
_NOISE = hashlib.shake_256(b"twinwatch.simulator.packets").digest(1 << 16)


# --------------------------------------------------------------------------------------------------------
# Address / checksum helpers
# --------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def mac_bytes(mac: str) -> bytes:
    """Six bytes of a MAC written "aa:bb:cc:dd:ee:ff" (also accepts '-' separators)."""
    raw = bytes.fromhex(mac.replace(":", "").replace("-", ""))
    if len(raw) != 6:
        raise ValueError(f"bad MAC address: {mac!r}")
    return raw


@lru_cache(maxsize=65536)
def _ipv4(ip: str) -> tuple[bytes, int]:
    """Four bytes of a dotted IPv4 address and their one's-complement residue."""
    try:
        raw = socket.inet_aton(ip)
    except OSError:
        raw = b""
    if len(raw) != 4 or ip.count(".") != 3:
        raise ValueError(f"bad IPv4 address: {ip!r}")
    return raw, int.from_bytes(raw, "big") % 0xFFFF


def ip_bytes(ip: str) -> bytes:
    """Four bytes of a dotted IPv4 address."""
    return _ipv4(ip)[0]


@lru_cache(maxsize=4096)
def multicast_mac(group_ip: str) -> str:
    """Ethernet multicast MAC 01:00:5e:xx:xx:xx for an IPv4 group (low 23 bits of the address)."""
    raw = ip_bytes(group_ip)
    return f"01:00:5e:{raw[1] & 0x7F:02x}:{raw[2]:02x}:{raw[3]:02x}"


@lru_cache(maxsize=65536)
def _eth_header(src_mac: str, dst_mac: str) -> bytes:
    return mac_bytes(dst_mac) + mac_bytes(src_mac) + _ETH_IPV4


def _residue(data: bytes) -> int:
    """One's-complement sum of ``data`` as 16-bit big-endian words, reduced mod 0xFFFF."""
    if len(data) & 1:
        data += b"\x00"
    return int.from_bytes(data, "big") % 0xFFFF


def internet_checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum of ``data`` (exactly what a stack would put in the field)."""
    if len(data) & 1:
        data += b"\x00"
    value = int.from_bytes(data, "big")
    folded = value % 0xFFFF
    if folded:
        return 0xFFFF - folded
    return 0 if value else 0xFFFF


def _ip_header(
    src: bytes, src_res: int, dst: bytes, dst_res: int, proto: int, payload_len: int,
    ttl: int, ip_id: int, tos: int = 0, frag: int = _IP_DF, options: bytes = b"",
) -> bytes:
    ihl = 5 + (len(options) >> 2)
    total = (ihl << 2) + payload_len
    res = (((0x40 | ihl) << 8 | tos) + total + ip_id + frag + (ttl << 8 | proto) + src_res + dst_res) % 0xFFFF
    if options:
        res = (res + _residue(options)) % 0xFFFF
    return _IP_HDR.pack(0x40 | ihl, tos, total, ip_id, frag, ttl, proto, 0xFFFF - res if res else 0,
                        src, dst) + options


@lru_cache(maxsize=256)
def _tcp_flag_bits(flags: str) -> int:
    bits = 0
    for char in flags.upper():
        try:
            bits |= _TCP_FLAG_BITS[char]
        except KeyError:
            raise ValueError(f"unknown TCP flag {char!r} in {flags!r}") from None
    return bits


def _filler(size: int, offset: int = 0) -> bytes:
    """``size`` deterministic pseudo-random bytes (ciphertext stand-in)."""
    start = offset % len(_NOISE)
    if start + size <= len(_NOISE):
        return _NOISE[start:start + size]
    reps = (start + size) // len(_NOISE) + 1
    return (_NOISE * reps)[start:start + size]


# --------------------------------------------------------------------------------------------------------
# Frame builders
# --------------------------------------------------------------------------------------------------------


def udp_frame(
    src_mac: str, dst_mac: str, src_ip: str, dst_ip: str, sport: int, dport: int, payload: bytes,
    *, ttl: int = 64, ip_id: int = 0,
) -> bytes:
    """Ethernet/IPv4/UDP frame with correct IP and UDP (pseudo-header) checksums."""
    src, src_res = _ipv4(src_ip)
    dst, dst_res = _ipv4(dst_ip)
    udp_len = 8 + len(payload)
    res = (src_res + dst_res + _PROTO_UDP + udp_len + udp_len + sport + dport + _residue(payload)) % 0xFFFF
    # UDP transmits a computed 0 as 0xFFFF, which is exactly 0xFFFF - res for res == 0.
    udp = _UDP_HDR.pack(sport, dport, udp_len, 0xFFFF - res)
    ip = _ip_header(src, src_res, dst, dst_res, _PROTO_UDP, udp_len, ttl, ip_id)
    return _eth_header(src_mac, dst_mac) + ip + udp + payload


def tcp_frame(
    src_mac: str, dst_mac: str, src_ip: str, dst_ip: str, sport: int, dport: int, payload: bytes = b"",
    *, seq: int, ack: int, flags: str | int, window: int = 64240, ttl: int = 64, ip_id: int = 0,
    options: bytes | None = None,
) -> bytes:
    """Ethernet/IPv4/TCP segment; SYNs get MSS/WS/SACK options unless ``options`` is given."""
    bits = flags if isinstance(flags, int) else _tcp_flag_bits(flags)
    if options is None:
        options = _SYN_OPTIONS if bits & 0x02 else b""
    if len(options) & 3:
        raise ValueError("TCP options must be padded to a multiple of 4 bytes")
    src, src_res = _ipv4(src_ip)
    dst, dst_res = _ipv4(dst_ip)
    seq &= 0xFFFFFFFF
    ack &= 0xFFFFFFFF
    hdr_len = 20 + len(options)
    tcp_len = hdr_len + len(payload)
    offset_byte = (hdr_len >> 2) << 4
    res = (src_res + dst_res + _PROTO_TCP + tcp_len + sport + dport + (seq >> 16) + (seq & 0xFFFF)
           + (ack >> 16) + (ack & 0xFFFF) + (offset_byte << 8 | bits) + window
           + _residue(options) + _residue(payload)) % 0xFFFF
    tcp = _TCP_HDR.pack(sport, dport, seq, ack, offset_byte, bits, window, 0xFFFF - res if res else 0, 0)
    ip = _ip_header(src, src_res, dst, dst_res, _PROTO_TCP, tcp_len, ttl, ip_id)
    return _eth_header(src_mac, dst_mac) + ip + tcp + options + payload


@lru_cache(maxsize=64)
def _ping_payload(size: int) -> bytes:
    """Linux ping(8) style body: 8 timestamp-ish bytes then the 0x08, 0x09, ... byte pattern."""
    return bytes((i & 0xFF) if i >= 8 else 0 for i in range(size))


def icmp_echo_frame(
    src_mac: str, dst_mac: str, src_ip: str, dst_ip: str,
    *, reply: bool, ident: int, seq: int, payload_size: int = 56, ttl: int = 64, ip_id: int = 0,
) -> bytes:
    """Ethernet/IPv4/ICMP echo request (type 8) or reply (type 0) with a correct ICMP checksum."""
    src, src_res = _ipv4(src_ip)
    dst, dst_res = _ipv4(dst_ip)
    body = _ping_payload(payload_size)
    icmp_type = 0 if reply else 8
    res = ((icmp_type << 8) + ident + seq + _residue(body)) % 0xFFFF
    icmp = _ICMP_HDR.pack(icmp_type, 0, 0xFFFF - res if res else 0, ident, seq) + body
    ip = _ip_header(src, src_res, dst, dst_res, _PROTO_ICMP, len(icmp), ttl, ip_id)
    return _eth_header(src_mac, dst_mac) + ip + icmp


def igmp_report_frame(src_mac: str, src_ip: str, group_ip: str, *, version: int = 2, ip_id: int = 0) -> bytes:
    """IGMPv2 membership report to the group, or IGMPv3 report (join, EXCLUDE {}) to 224.0.0.22; TTL 1."""
    group = ip_bytes(group_ip)
    if version == 2:
        msg = b"\x16\x00\x00\x00" + group
        dst_ip = group_ip
    elif version == 3:
        # type 0x22, reserved, checksum, reserved, 1 group record: CHANGE_TO_EXCLUDE_MODE, 0 sources.
        msg = b"\x22\x00\x00\x00\x00\x00\x00\x01\x04\x00\x00\x00" + group
        dst_ip = IGMPV3_GROUP
    else:
        raise ValueError("IGMP version must be 2 or 3")
    csum = internet_checksum(msg)
    msg = msg[:2] + csum.to_bytes(2, "big") + msg[4:]
    src, src_res = _ipv4(src_ip)
    dst, dst_res = _ipv4(dst_ip)
    ip = _ip_header(src, src_res, dst, dst_res, _PROTO_IGMP, len(msg), 1, ip_id, tos=0xC0,
                    options=_ROUTER_ALERT)
    return _eth_header(src_mac, multicast_mac(dst_ip)) + ip + msg


# --------------------------------------------------------------------------------------------------------
# DNS / mDNS
# --------------------------------------------------------------------------------------------------------

_DNS_TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "SRV": 33,
              "HTTPS": 65, "ANY": 255}
_DNS_NAME_RDATA = {"NS", "CNAME", "PTR"}


@lru_cache(maxsize=8192)
def dns_name(name: str) -> bytes:
    """Uncompressed DNS wire encoding of a domain name (``"a.b."`` and ``"a.b"`` are equal)."""
    out = bytearray()
    for label in name.rstrip(".").split(".") if name.strip(".") else ():
        raw = label.encode("idna") if not label.isascii() else label.encode()
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad DNS label in {name!r}")
        out.append(len(raw))
        out += raw
    out.append(0)
    return bytes(out)


def _dns_qtype(qtype: str) -> int:
    try:
        return _DNS_TYPES[qtype.upper()]
    except KeyError:
        raise ValueError(f"unsupported DNS type {qtype!r}") from None


def _dns_rdata(qtype: str, value: str) -> bytes:
    kind = qtype.upper()
    if kind == "A":
        return socket.inet_aton(value)
    if kind == "AAAA":
        return socket.inet_pton(socket.AF_INET6, value)
    if kind in _DNS_NAME_RDATA:
        return dns_name(value)
    if kind == "TXT":
        raw = value.encode()
        chunks = [raw[i:i + 255] for i in range(0, max(len(raw), 1), 255)]
        return b"".join(bytes([len(chunk)]) + chunk for chunk in chunks)
    raise ValueError(f"no rdata encoder for DNS type {qtype!r}")


def dns_query(name: str, txid: int, qtype: str = "A") -> bytes:
    """Standard recursive DNS query (RD set) for one name."""
    return struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0) + dns_name(name) + struct.pack(
        "!HH", _dns_qtype(qtype), 1)


def dns_response(name: str, txid: int, answers: Sequence[str], ttl: int = 300, qtype: str = "A") -> bytes:
    """DNS response (QR/RD/RA, NOERROR, NXDOMAIN if no answers) echoing the question; answers compressed."""
    code = _dns_qtype(qtype)
    rcode = 0 if answers else 3
    head = struct.pack("!HHHHHH", txid, 0x8180 | rcode, 1, len(answers), 0, 0)
    question = dns_name(name) + struct.pack("!HH", code, 1)
    records = []
    for value in answers:
        rdata = _dns_rdata(qtype, value)
        records.append(struct.pack("!HHHIH", 0xC00C, code, 1, ttl, len(rdata)) + rdata)
    return head + question + b"".join(records)


def mdns_query(names: Sequence[str], qtype: str = "PTR", *, unicast_response: bool = False) -> bytes:
    """mDNS query (id 0) with one question per name; send to 224.0.0.251:5353."""
    qclass = 0x8001 if unicast_response else 0x0001
    code = _dns_qtype(qtype)
    questions = b"".join(dns_name(n) + struct.pack("!HH", code, qclass) for n in names)
    return struct.pack("!HHHHHH", 0, 0, len(names), 0, 0, 0) + questions


def mdns_response(name: str, target: str, *, qtype: str = "PTR", ttl: int = 4500) -> bytes:
    """Authoritative mDNS response with one answer (PTR/CNAME -> name, A/AAAA -> address, TXT -> text)."""
    code = _dns_qtype(qtype)
    rdata = _dns_rdata(qtype, target)
    # Unique records set the cache-flush bit; shared ones (PTR) do not.
    rclass = 0x0001 if qtype.upper() == "PTR" else 0x8001
    answer = dns_name(name) + struct.pack("!HHIH", code, rclass, ttl, len(rdata)) + rdata
    return struct.pack("!HHHHHH", 0, 0x8400, 0, 1, 0, 0) + answer


# --------------------------------------------------------------------------------------------------------
# NTP
# --------------------------------------------------------------------------------------------------------

_NTP_UNIX_OFFSET = 2208988800


def _ntp_timestamp(unix_time: float) -> bytes:
    seconds = int(unix_time)
    fraction = int((unix_time - seconds) * 4294967296.0) & 0xFFFFFFFF
    return struct.pack("!II", (seconds + _NTP_UNIX_OFFSET) & 0xFFFFFFFF, fraction)


def ntp_request(transmit_time: float) -> bytes:
    """48-byte NTPv4 client request (mode 3) carrying only the transmit timestamp."""
    return b"\x23\x00\x06\xe9" + bytes(36) + _ntp_timestamp(transmit_time)


def ntp_response(
    origin_time: float, receive_time: float, transmit_time: float,
    *, stratum: int = 2, reference_id: str = "0.0.0.0", reference_time: float | None = None,
) -> bytes:
    """48-byte NTPv4 server response (mode 4); ``origin_time`` is the client's transmit time."""
    ref = receive_time - 64.0 if reference_time is None else reference_time
    return (struct.pack("!BBbbII", 0x24, stratum, 6, -23, 0x00000120, 0x00000240) + ip_bytes(reference_id)
            + _ntp_timestamp(ref) + _ntp_timestamp(origin_time) + _ntp_timestamp(receive_time)
            + _ntp_timestamp(transmit_time))


# --------------------------------------------------------------------------------------------------------
# SSDP / HTTP / OCSP
# --------------------------------------------------------------------------------------------------------


def _header_block(start_line: str, headers: Iterable[tuple[str, str]]) -> bytes:
    lines = [start_line, *(f"{k}: {v}" for k, v in headers), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def ssdp_msearch(st: str = "ssdp:all", *, mx: int = 3, user_agent: str | None = None) -> bytes:
    """SSDP M-SEARCH discovery request (to 239.255.255.250:1900)."""
    headers = [("HOST", "239.255.255.250:1900"), ("MAN", '"ssdp:discover"'), ("MX", str(mx)), ("ST", st)]
    if user_agent:
        headers.append(("USER-AGENT", user_agent))
    return _header_block("M-SEARCH * HTTP/1.1", headers)


def ssdp_notify(location: str, nt: str, usn: str, server: str, *, max_age: int = 1800,
                nts: str = "ssdp:alive") -> bytes:
    """SSDP NOTIFY advertisement (ssdp:alive by default) to 239.255.255.250:1900."""
    headers = [("HOST", "239.255.255.250:1900"), ("CACHE-CONTROL", f"max-age={max_age}"),
               ("LOCATION", location), ("NT", nt), ("NTS", nts), ("SERVER", server), ("USN", usn)]
    return _header_block("NOTIFY * HTTP/1.1", headers)


def ssdp_response(location: str, st: str, usn: str, server: str, *, max_age: int = 1800) -> bytes:
    """Unicast SSDP answer (HTTP/1.1 200 OK) to an M-SEARCH."""
    headers = [("CACHE-CONTROL", f"max-age={max_age}"), ("EXT", ""), ("LOCATION", location),
               ("SERVER", server), ("ST", st), ("USN", usn)]
    return _header_block("HTTP/1.1 200 OK", headers)


_DEFAULT_REQUEST_HEADERS = (("User-Agent", "twinwatch-lab/1.0"), ("Accept", "*/*"))


def http_request(method: str, host: str, path: str = "/", headers: Mapping[str, str] | None = None,
                 body: bytes = b"") -> bytes:
    """HTTP/1.1 request with Host (plus User-Agent/Accept unless headers given) and Content-Length."""
    items = list(_DEFAULT_REQUEST_HEADERS if headers is None else headers.items())
    if body or method.upper() in ("POST", "PUT", "PATCH"):
        if not any(k.lower() == "content-length" for k, _ in items):
            items.append(("Content-Length", str(len(body))))
    return _header_block(f"{method} {path} HTTP/1.1", [("Host", host), *items]) + body


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def http_response(status: int = 200, headers: Mapping[str, str] | None = None, body: bytes = b"") -> bytes:
    """HTTP/1.1 response with reason phrase and Content-Length."""
    reason = _reason(status)
    items = list((headers or {}).items())
    if not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in items):
        items.append(("Content-Length", str(len(body))))
    return _header_block(f"HTTP/1.1 {status} {reason}", items) + body


def der_blob(size: int, offset: int = 0) -> bytes:
    """A DER SEQUENCE of exactly ``size`` bytes (correct length encoding, pseudo-random contents)."""
    if size < 2:
        raise ValueError("a DER SEQUENCE needs at least 2 bytes")
    if size - 2 < 0x80:
        return bytes([0x30, size - 2]) + _filler(size - 2, offset)
    for n in (1, 2, 3):
        body = size - 2 - n
        if body < 1 << (8 * n):
            return bytes([0x30, 0x80 | n]) + body.to_bytes(n, "big") + _filler(body, offset)
    raise ValueError("DER blob too large")


def ocsp_request_http(host: str, der_size: int = 83, *, path: str = "/",
                      user_agent: str = "twinwatch-lab/1.0") -> bytes:
    """OCSP request over HTTP: POST with Content-Type application/ocsp-request and a DER body."""
    headers = {"User-Agent": user_agent, "Accept": "*/*", "Content-Type": "application/ocsp-request"}
    return http_request("POST", host, path, headers, der_blob(der_size))


def ocsp_response_http(der_size: int = 471) -> bytes:
    """OCSP response over HTTP: 200 OK with Content-Type application/ocsp-response and a DER body."""
    headers = {"Content-Type": "application/ocsp-response", "Cache-Control": "max-age=86400, public"}
    return http_response(200, headers, der_blob(der_size, offset=4096))


# --------------------------------------------------------------------------------------------------------
# TLS
# --------------------------------------------------------------------------------------------------------

DEFAULT_TLS_CIPHERS: tuple[int, ...] = (
    0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013, 0xC014,
    0x009C, 0x009D, 0x002F, 0x0035,
)
_TLS13_CIPHERS = (0x1301, 0x1302, 0x1303)
_SIG_ALGS = (0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601)
_GROUPS = (0x001D, 0x0017, 0x0018)


def _u16_list(values: Iterable[int]) -> bytes:
    raw = b"".join(v.to_bytes(2, "big") for v in values)
    return len(raw).to_bytes(2, "big") + raw


def _ext(ext_type: int, data: bytes) -> bytes:
    return struct.pack("!HH", ext_type, len(data)) + data


def _alpn_ext(alpn: Sequence[str]) -> bytes:
    protos = b"".join(bytes([len(p)]) + p.encode() for p in alpn)
    return _ext(0x0010, len(protos).to_bytes(2, "big") + protos)


def _handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def _record(content_type: int, body: bytes, version: int = 0x0303) -> bytes:
    return struct.pack("!BHH", content_type, version, len(body)) + body


def _client_hello_message(
    sni: str | None, random_bytes: bytes, session_id: bytes, ciphers: Sequence[int],
    alpn: Sequence[str] | None, quic_transport_params: bytes | None,
) -> bytes:
    if len(random_bytes) != 32:
        raise ValueError("TLS random must be 32 bytes")
    key_share = hashlib.sha256(b"x25519" + random_bytes).digest()
    exts = []
    if sni:
        host = sni.encode("idna")
        entry = b"\x00" + len(host).to_bytes(2, "big") + host
        exts.append(_ext(0x0000, len(entry).to_bytes(2, "big") + entry))
    if quic_transport_params is None:
        exts += [_ext(0x0017, b""), _ext(0xFF01, b"\x00"), _ext(0x000B, b"\x01\x00"), _ext(0x0023, b"")]
    exts.append(_ext(0x000A, _u16_list(_GROUPS)))
    if alpn:
        exts.append(_alpn_ext(alpn))
    exts.append(_ext(0x0005, b"\x01\x00\x00\x00\x00"))
    exts.append(_ext(0x000D, _u16_list(_SIG_ALGS)))
    share = struct.pack("!HH", 0x001D, 32) + key_share
    exts.append(_ext(0x0033, len(share).to_bytes(2, "big") + share))
    exts.append(_ext(0x002D, b"\x01\x01"))
    versions = b"\x02\x03\x04" if quic_transport_params is not None else b"\x04\x03\x04\x03\x03"
    exts.append(_ext(0x002B, versions))
    if quic_transport_params is not None:
        exts.append(_ext(0x0039, quic_transport_params))
    ext_block = b"".join(exts)
    body = (b"\x03\x03" + random_bytes + bytes([len(session_id)]) + session_id + _u16_list(ciphers)
            + b"\x01\x00" + len(ext_block).to_bytes(2, "big") + ext_block)
    return _handshake(0x01, body)


def tls_client_hello(sni: str | None, random_bytes: bytes, session_id: bytes = b"",
                     ciphers: Sequence[int] | None = None, alpn: Sequence[str] | None = None) -> bytes:
    """TLS record holding a TLS 1.3-capable ClientHello (SNI, supported_versions, key_share, ...)."""
    msg = _client_hello_message(sni, random_bytes, session_id, ciphers or DEFAULT_TLS_CIPHERS, alpn, None)
    return _record(0x16, msg, version=0x0301)


def tls_server_hello(random_bytes: bytes, *, session_id: bytes = b"", cipher: int | None = None,
                     tls13: bool = False, alpn: str | None = None) -> bytes:
    """TLS record holding a ServerHello: TLS 1.2 (ECDHE-RSA-AES128-GCM) or, with ``tls13``, TLS 1.3."""
    if len(random_bytes) != 32:
        raise ValueError("TLS random must be 32 bytes")
    if tls13:
        share = struct.pack("!HH", 0x001D, 32) + hashlib.sha256(b"x25519s" + random_bytes).digest()
        exts = [_ext(0x002B, b"\x03\x04"), _ext(0x0033, share)]
        chosen = 0x1301 if cipher is None else cipher
    else:
        exts = [_ext(0xFF01, b"\x00"), _ext(0x000B, b"\x01\x00"), _ext(0x0017, b"")]
        if alpn:
            exts.append(_alpn_ext([alpn]))
        chosen = 0xC02F if cipher is None else cipher
    ext_block = b"".join(exts)
    body = (b"\x03\x03" + random_bytes + bytes([len(session_id)]) + session_id + chosen.to_bytes(2, "big")
            + b"\x00" + len(ext_block).to_bytes(2, "big") + ext_block)
    return _record(0x16, _handshake(0x02, body))


def tls_certificate_record(size: int) -> bytes:
    """TLS 1.2 Certificate handshake record whose body is ``size`` bytes (one DER-shaped certificate)."""
    if size < 14:
        raise ValueError("certificate record body must be at least 14 bytes")
    cert = der_blob(size - 10, offset=8192)
    chain = len(cert).to_bytes(3, "big") + cert
    return _record(0x16, _handshake(0x0B, len(chain).to_bytes(3, "big") + chain))


def tls_server_hello_done() -> bytes:
    """TLS 1.2 ServerHelloDone handshake record."""
    return _record(0x16, _handshake(0x0E, b""))


def tls_client_key_exchange(random_bytes: bytes = b"") -> bytes:
    """TLS 1.2 ClientKeyExchange record carrying a 32-byte (x25519-sized) ECDHE public key."""
    public = hashlib.sha256(b"cke" + random_bytes).digest()
    return _record(0x16, _handshake(0x10, b"\x20" + public))


def tls_encrypted_handshake(size: int = 40) -> bytes:
    """Encrypted handshake record (e.g. Finished after ChangeCipherSpec) with a ``size``-byte body."""
    return _record(0x16, _filler(size, offset=12288))


def tls_change_cipher_spec() -> bytes:
    """TLS ChangeCipherSpec record."""
    return b"\x14\x03\x03\x00\x01\x01"


def tls_application_data(size: int, *, offset: int = 0) -> bytes:
    """TLS application_data record (0x17 0x03 0x03 + length) with a ``size``-byte ciphertext-like body."""
    if not 0 < size <= 0xFFFF:
        raise ValueError("TLS record body must be 1..65535 bytes")
    return struct.pack("!BHH", 0x17, 0x0303, size) + _filler(size, offset)


def tls_alert(level: int = 1, description: int = 0, *, encrypted: bool = False) -> bytes:
    """TLS alert record: plaintext (default close_notify warning) or a 26-byte encrypted alert."""
    if encrypted:
        return _record(0x15, _filler(26, offset=20480))
    return _record(0x15, bytes([level, description]))


# --------------------------------------------------------------------------------------------------------
# QUIC v1 (RFC 9000 / RFC 9001)
# --------------------------------------------------------------------------------------------------------

_QUIC_V1_SALT = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")


def _quic_varint(value: int) -> bytes:
    if value < 0x40:
        return bytes([value])
    if value < 0x4000:
        return (0x4000 | value).to_bytes(2, "big")
    if value < 0x40000000:
        return (0x80000000 | value).to_bytes(4, "big")
    return (0xC000000000000000 | value).to_bytes(8, "big")


def _hkdf_expand_label(secret: bytes, label: str, length: int) -> bytes:
    full = b"tls13 " + label.encode()
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(secret, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


@lru_cache(maxsize=1024)
def quic_client_initial_keys(dcid: bytes) -> tuple[bytes, bytes, bytes]:
    """(key, iv, hp) protecting a QUIC v1 client Initial for a given original DCID (RFC 9001 §5.2)."""
    initial_secret = hmac.new(_QUIC_V1_SALT, dcid, hashlib.sha256).digest()
    client_secret = _hkdf_expand_label(initial_secret, "client in", 32)
    key = _hkdf_expand_label(client_secret, "quic key", 16)
    iv = _hkdf_expand_label(client_secret, "quic iv", 12)
    return key, iv, _hkdf_expand_label(client_secret, "quic hp", 16)


def _quic_transport_params(scid: bytes) -> bytes:
    params = (
        (0x01, _quic_varint(30000)),      # max_idle_timeout
        (0x03, _quic_varint(1472)),       # max_udp_payload_size
        (0x04, _quic_varint(15728640)),   # initial_max_data
        (0x05, _quic_varint(6291456)),    # initial_max_stream_data_bidi_local
        (0x06, _quic_varint(6291456)),    # initial_max_stream_data_bidi_remote
        (0x07, _quic_varint(6291456)),    # initial_max_stream_data_uni
        (0x08, _quic_varint(100)),        # initial_max_streams_bidi
        (0x09, _quic_varint(103)),        # initial_max_streams_uni
        (0x0F, scid),                     # initial_source_connection_id
    )
    return b"".join(_quic_varint(k) + _quic_varint(len(v)) + v for k, v in params)


def quic_initial(dcid: bytes, scid: bytes, sni: str | None, pad_to: int = 1200, *, packet_number: int = 0,
                 random_bytes: bytes | None = None, alpn: Sequence[str] = ("h3",)) -> bytes:
    """Client QUIC v1 Initial (UDP payload) with a ClientHello CRYPTO frame, AEAD + header protected.

    Needs the ``cryptography`` package (AES-128-GCM and AES-ECB); padded with PADDING frames to ``pad_to``.
    """
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not 8 <= len(dcid) <= 20 or len(scid) > 20:
        raise ValueError("QUIC client DCID must be 8..20 bytes and SCID at most 20")
    rnd = random_bytes if random_bytes is not None else hashlib.sha256(b"quic" + dcid + scid).digest()
    hello = _client_hello_message(sni, rnd, b"", _TLS13_CIPHERS, list(alpn), _quic_transport_params(scid))
    crypto_frame = b"\x06" + _quic_varint(0) + _quic_varint(len(hello)) + hello
    pn_len = 4
    # Long header, Initial, 4-byte packet number; version 1; token length 0.
    header_wo_length = b"\xc3\x00\x00\x00\x01" + bytes([len(dcid)]) + dcid + bytes([len(scid)]) + scid
    header_wo_length += b"\x00"
    plain_len = max(len(crypto_frame), pad_to - len(header_wo_length) - 2 - pn_len - 16)
    length = pn_len + plain_len + 16
    if length >= 0x4000:
        raise ValueError("QUIC Initial too large")
    header = header_wo_length + (0x4000 | length).to_bytes(2, "big") + packet_number.to_bytes(pn_len, "big")
    plaintext = crypto_frame + bytes(plain_len - len(crypto_frame))
    key, iv, hp = quic_client_initial_keys(bytes(dcid))
    nonce = (int.from_bytes(iv, "big") ^ packet_number).to_bytes(12, "big")
    payload = AESGCM(key).encrypt(nonce, plaintext, header)
    pn_offset = len(header) - pn_len
    sample = payload[4 - pn_len:20 - pn_len]
    encryptor = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
    mask = encryptor.update(sample) + encryptor.finalize()
    first = bytes([header[0] ^ (mask[0] & 0x0F)])
    pn = bytes(b ^ m for b, m in zip(header[pn_offset:], mask[1:1 + pn_len], strict=True))
    return first + header[1:pn_offset] + pn + payload


def quic_short_header(dcid: bytes, size: int, *, offset: int = 0) -> bytes:
    """QUIC 1-RTT short-header packet of ``size`` bytes (protected contents are pseudo-random)."""
    if size < 1 + len(dcid) + 20:
        raise ValueError("QUIC short packet too small")
    body = _filler(size - 1 - len(dcid), offset)
    return bytes([0x40 | (body[0] & 0x3F)]) + dcid + body[1:] + body[:1]


# --------------------------------------------------------------------------------------------------------
# SIP
# --------------------------------------------------------------------------------------------------------


def _sip_token(*parts: object) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:16]


def _sip_common(
    method: str, user: str, domain: str, call_id: str, cseq: int, local_ip: str, local_port: int,
    to_uri: str, user_agent: str,
) -> list[tuple[str, str]]:
    return [
        ("Via", f"SIP/2.0/UDP {local_ip}:{local_port};rport;branch=z9hG4bK{_sip_token(call_id, cseq)}"),
        ("Max-Forwards", "70"),
        ("From", f"<sip:{user}@{domain}>;tag={_sip_token(call_id)[:10]}"),
        ("To", f"<{to_uri}>"),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {method}"),
        ("Contact", f"<sip:{user}@{local_ip}:{local_port};transport=udp>"),
        ("User-Agent", user_agent),
    ]


def sip_register(user: str, domain: str, call_id: str, cseq: int, *, local_ip: str = "0.0.0.0",
                 local_port: int = 5060, expires: int = 3600, user_agent: str = "twinwatch-sip/1.0") -> bytes:
    """SIP REGISTER request (UDP transport) binding ``user@domain`` to the local contact."""
    headers = _sip_common("REGISTER", user, domain, call_id, cseq, local_ip, local_port,
                          f"sip:{user}@{domain}", user_agent)
    headers += [("Expires", str(expires)), ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS"),
                ("Content-Length", "0")]
    return _header_block(f"REGISTER sip:{domain} SIP/2.0", headers)


def sip_options(user: str, domain: str, call_id: str, cseq: int, *, local_ip: str = "0.0.0.0",
                local_port: int = 5060, user_agent: str = "twinwatch-sip/1.0") -> bytes:
    """SIP OPTIONS keep-alive / capability query to the domain."""
    headers = _sip_common("OPTIONS", user, domain, call_id, cseq, local_ip, local_port, f"sip:{domain}",
                          user_agent)
    headers += [("Accept", "application/sdp"), ("Content-Length", "0")]
    return _header_block(f"OPTIONS sip:{domain} SIP/2.0", headers)


def sip_response(status: int, user: str, domain: str, call_id: str, cseq: int, method: str = "REGISTER",
                 *, local_ip: str = "0.0.0.0", local_port: int = 5060, server: str = "twinwatch-pbx/1.0",
                 expires: int | None = 3600) -> bytes:
    """SIP response (e.g. 200 OK / 401 Unauthorized) to a request built by this module."""
    reasons = {100: "Trying", 180: "Ringing", 200: "OK", 401: "Unauthorized", 403: "Forbidden",
               404: "Not Found", 407: "Proxy Authentication Required", 486: "Busy Here"}
    reason = reasons.get(status) or _reason(status)
    to_uri = f"sip:{user}@{domain}" if method == "REGISTER" else f"sip:{domain}"
    common = dict(_sip_common(method, user, domain, call_id, cseq, local_ip, local_port, to_uri, server))
    headers = [
        ("Via", f"{common['Via'].replace(';rport', f';rport={local_port}')};received={local_ip}"),
        ("From", common["From"]),
        ("To", f"<{to_uri}>;tag={_sip_token('to', call_id)[:10]}"),
        ("Call-ID", call_id),
        ("CSeq", common["CSeq"]),
    ]
    if status == 401:
        nonce = _sip_token("n", call_id, cseq)
        challenge = f'Digest realm="{domain}", nonce="{nonce}", algorithm=MD5, qop="auth"'
        headers.append(("WWW-Authenticate", challenge))
    elif status == 200 and method == "REGISTER" and expires is not None:
        headers.append(("Contact", f"{common['Contact']};expires={expires}"))
    headers += [("Server", server), ("Content-Length", "0")]
    return _header_block(f"SIP/2.0 {status} {reason}", headers)


# --------------------------------------------------------------------------------------------------------
# pcap writer
# --------------------------------------------------------------------------------------------------------


class PcapWriter:
    """Classic libpcap writer (magic 0xa1b2c3d4, microsecond timestamps, LINKTYPE_ETHERNET).

    Frames longer than ``snaplen`` are stored truncated (caplen = snaplen, origlen = full length).
    """

    def __init__(
        self, path: str | os.PathLike[str], snaplen: int = 65535, *, buffer_size: int = 1 << 20,
    ) -> None:
        if snaplen <= 0:
            raise ValueError("snaplen must be positive")
        self.path = path
        self.snaplen = snaplen
        self.count = 0
        self._file = open(path, "wb", buffering=buffer_size)  # noqa: SIM115 - closed by close()/__exit__
        self._file.write(_PCAP_GLOBAL.pack(0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1))

    def write(self, ts: float, frame: bytes) -> None:
        """Append one frame captured at unix time ``ts``."""
        sec = int(ts // 1)
        usec = int(round((ts - sec) * 1_000_000))
        if usec >= 1_000_000:
            sec += 1
            usec -= 1_000_000
        size = len(frame)
        if size > self.snaplen:
            self._file.write(_PCAP_RECORD.pack(sec, usec, self.snaplen, size))
            self._file.write(frame[:self.snaplen])
        else:
            self._file.write(_PCAP_RECORD.pack(sec, usec, size, size))
            self._file.write(frame)
        self.count += 1

    def write_many(self, records: Iterable[tuple[float, bytes]]) -> int:
        """Append many ``(ts, frame)`` pairs; returns how many were written."""
        before = self.count
        write = self.write
        for ts, frame in records:
            write(ts, frame)
        return self.count - before

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
