"""Realistic exchanges (a DNS lookup, a TLS session, an NTP sync, …) as timestamped frames.

Every builder takes a start time, the device and the lab's network, a random generator and the
exchange's own parameters, and returns ``[(timestamp, frame), …]``. Latencies, ports, transaction
ids and sequence numbers come from the generator, so a lab is deterministic for its seed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from twinwatch.simulator import packets as p

Frames = list[tuple[float, bytes]]
MSS = 1448
MDNS_GROUP = "224.0.0.251"
SSDP_GROUP = "239.255.255.250"


@dataclass(frozen=True)
class Host:
    mac: str
    ip: str


@dataclass(frozen=True)
class Network:
    """The segment: its gateway (router, DNS resolver) and a resolver of cloud names to addresses."""

    gateway: Host

    def resolve(self, hostname: str) -> str:
        """A stable public address per hostname (hash into 3.0.0.0–52.255.255.255, AWS/Google-like)."""
        digest = int.from_bytes(hashlib.sha256(hostname.encode()).digest()[:4], "big")
        first = (3, 13, 18, 34, 35, 44, 52)[digest % 7]
        return f"{first}.{(digest >> 8) & 0xFF}.{(digest >> 16) & 0xFF}.{max(1, (digest >> 24) & 0xFE)}"


def ephemeral_port(rng: np.random.Generator) -> int:
    return int(rng.integers(32768, 61000))


def _rtt(rng: np.random.Generator, base: float) -> float:
    return float(base * (0.7 + 0.6 * rng.random()))


class TcpConversation:
    """A TCP connection between a device and a server, tracking sequence numbers and time."""

    def __init__(self, t: float, device: Host, server_mac: str, server_ip: str, server_port: int,
                 rng: np.random.Generator, rtt: float, client_port: int | None = None) -> None:
        self.t = t
        self.device = device
        self.server_mac = server_mac
        self.server_ip = server_ip
        self.server_port = server_port
        self.client_port = client_port or ephemeral_port(rng)
        self.rng = rng
        self.rtt = rtt
        self.client_seq = int(rng.integers(0, 2**32))
        self.server_seq = int(rng.integers(0, 2**32))
        self.frames: Frames = []

    def _client(self, payload: bytes, flags: str) -> None:
        self.frames.append((self.t, p.tcp_frame(
            self.device.mac, self.server_mac, self.device.ip, self.server_ip, self.client_port,
            self.server_port, payload, seq=self.client_seq, ack=self.server_seq, flags=flags)))
        self.client_seq += len(payload) + (1 if ("S" in flags or "F" in flags) else 0)

    def _server(self, payload: bytes, flags: str) -> None:
        self.frames.append((self.t, p.tcp_frame(
            self.server_mac, self.device.mac, self.server_ip, self.device.ip, self.server_port,
            self.client_port, payload, seq=self.server_seq, ack=self.client_seq, flags=flags, ttl=52)))
        self.server_seq += len(payload) + (1 if ("S" in flags or "F" in flags) else 0)

    def wait(self, seconds: float) -> None:
        self.t += seconds

    def open(self) -> None:
        self._client(b"", "S")
        self.wait(_rtt(self.rng, self.rtt / 2))
        self._server(b"", "SA")
        self.wait(_rtt(self.rng, self.rtt / 2))
        self._client(b"", "A")

    def client_sends(self, data: bytes) -> None:
        """Client data in MSS-sized segments, acknowledged by the server."""
        for start in range(0, len(data), MSS):
            self._client(data[start:start + MSS], "PA")
            self.wait(0.0004)
        self.wait(_rtt(self.rng, self.rtt / 2))
        self._server(b"", "A")

    def server_sends(self, data: bytes) -> None:
        for start in range(0, len(data), MSS):
            self._server(data[start:start + MSS], "PA")
            self.wait(0.0004)
        self.wait(_rtt(self.rng, self.rtt / 2))
        self._client(b"", "A")

    def close(self) -> None:
        self._client(b"", "FA")
        self.wait(_rtt(self.rng, self.rtt / 2))
        self._server(b"", "FA")
        self.wait(_rtt(self.rng, self.rtt / 2))
        self._client(b"", "A")


def dns_lookup(t: float, device: Host, net: Network, rng: np.random.Generator, hostname: str,
               qtype: str = "A") -> Frames:
    """A query to the gateway's resolver and its answer."""
    port = ephemeral_port(rng)
    txid = int(rng.integers(0, 65536))
    gw = net.gateway
    answer = [net.resolve(hostname)] if qtype == "A" else []
    return [
        (t, p.udp_frame(device.mac, gw.mac, device.ip, gw.ip, port, 53, p.dns_query(hostname, txid, qtype))),
        (t + _rtt(rng, 0.018), p.udp_frame(gw.mac, device.mac, gw.ip, device.ip, 53, port,
                                           p.dns_response(hostname, txid, answer, qtype=qtype))),
    ]


def tls_session(t: float, device: Host, net: Network, rng: np.random.Generator, hostname: str,
                requests: list[int], responses: list[int], port: int = 443, certificate: int = 2600,
                rtt: float = 0.06, lookup: bool = True, think: float = 0.2) -> Frames:
    """Optional DNS lookup, TCP handshake, a TLS 1.2 handshake with SNI, request/response records, FIN."""
    frames: Frames = dns_lookup(t, device, net, rng, hostname) if lookup else []
    start = t + (0.04 if lookup else 0.0)
    conversation = TcpConversation(start, device, net.gateway.mac, net.resolve(hostname), port, rng, rtt)
    conversation.open()
    random_bytes = rng.bytes(32)
    conversation.client_sends(p.tls_client_hello(hostname, random_bytes))
    conversation.server_sends(p.tls_server_hello(rng.bytes(32)) + p.tls_certificate_record(certificate)
                              + p.tls_server_hello_done())
    conversation.client_sends(p.tls_client_key_exchange(random_bytes) + p.tls_change_cipher_spec()
                              + p.tls_encrypted_handshake())
    conversation.server_sends(p.tls_change_cipher_spec() + p.tls_encrypted_handshake())
    for index in range(max(len(requests), len(responses))):
        if index < len(requests):
            conversation.client_sends(p.tls_application_data(requests[index]))
        if index < len(responses):
            conversation.wait(_rtt(rng, 0.02))
            conversation.server_sends(p.tls_application_data(responses[index]))
        conversation.wait(think * rng.random())
    conversation.close()
    return frames + conversation.frames


def http_session(t: float, device: Host, net: Network, rng: np.random.Generator, hostname: str,
                 method: str = "GET", path: str = "/", request_body: int = 0, response_body: int = 300,
                 port: int = 80, lookup: bool = True, rtt: float = 0.05,
                 server: Host | None = None) -> Frames:
    """Plain HTTP/1.1 exchange to a cloud host (or to ``server`` on the segment)."""
    frames: Frames = dns_lookup(t, device, net, rng, hostname) if lookup and server is None else []
    server_mac = server.mac if server else net.gateway.mac
    server_ip = server.ip if server else net.resolve(hostname)
    conversation = TcpConversation(t + 0.04, device, server_mac, server_ip, port, rng, rtt)
    conversation.open()
    body = p.der_blob(request_body) if request_body >= 2 else b""
    conversation.client_sends(p.http_request(method, hostname, path, body=body))
    conversation.server_sends(p.http_response(200, {"Content-Type": "application/json"},
                                              p.der_blob(response_body) if response_body >= 2 else b""))
    conversation.close()
    return frames + conversation.frames


def ocsp_check(t: float, device: Host, net: Network, rng: np.random.Generator, hostname: str,
               request_size: int = 83, response_size: int = 1500) -> Frames:
    """An OCSP status request over HTTP (POST application/ocsp-request)."""
    frames = dns_lookup(t, device, net, rng, hostname)
    conversation = TcpConversation(t + 0.04, device, net.gateway.mac, net.resolve(hostname), 80, rng, 0.04)
    conversation.open()
    conversation.client_sends(p.ocsp_request_http(hostname, request_size))
    conversation.server_sends(p.ocsp_response_http(response_size))
    conversation.close()
    return frames + conversation.frames


def ntp_sync(t: float, device: Host, net: Network, rng: np.random.Generator, hostname: str,
             source_port: int | None = None, lookup: bool = True) -> Frames:
    frames = dns_lookup(t, device, net, rng, hostname) if lookup else []
    start = t + (0.03 if lookup else 0.0)
    port = source_port or ephemeral_port(rng)
    server = net.resolve(hostname)
    gw = net.gateway
    answer_at = start + _rtt(rng, 0.03)
    frames.append((start, p.udp_frame(device.mac, gw.mac, device.ip, server, port, 123, p.ntp_request(start))))
    frames.append((answer_at, p.udp_frame(gw.mac, device.mac, server, device.ip, 123, port,
                                          p.ntp_response(start, answer_at - 0.001, answer_at), ttl=55)))
    return frames


def gateway_ping(t: float, device: Host, net: Network, rng: np.random.Generator, count: int = 1,
                 payload_size: int = 56, from_gateway: bool = False) -> Frames:
    """ICMP echo between the device and its gateway (either side asking)."""
    gw = net.gateway
    asker, answerer = (gw, device) if from_gateway else (device, gw)
    ident = int(rng.integers(0, 65536))
    frames: Frames = []
    for seq in range(count):
        at = t + seq * 1.0
        frames.append((at, p.icmp_echo_frame(asker.mac, answerer.mac, asker.ip, answerer.ip, reply=False,
                                             ident=ident, seq=seq, payload_size=payload_size)))
        frames.append((at + _rtt(rng, 0.004), p.icmp_echo_frame(answerer.mac, asker.mac, answerer.ip, asker.ip,
                                                                reply=True, ident=ident, seq=seq,
                                                                payload_size=payload_size)))
    return frames


def mdns_announce(t: float, device: Host, net: Network, rng: np.random.Generator, service: str,
                  instance: str, repeats: int = 1) -> Frames:
    """Unsolicited mDNS responses announcing the device's service (to 224.0.0.251:5353)."""
    payload = p.mdns_response(service, f"{instance}.{service}")
    group_mac = p.multicast_mac(MDNS_GROUP)
    return [(t + 1.0 * k, p.udp_frame(device.mac, group_mac, device.ip, MDNS_GROUP, 5353, 5353, payload, ttl=255))
            for k in range(repeats)]


def mdns_query(t: float, device: Host, net: Network, rng: np.random.Generator, services: list[str]) -> Frames:
    payload = p.mdns_query(services)
    return [(t, p.udp_frame(device.mac, p.multicast_mac(MDNS_GROUP), device.ip, MDNS_GROUP, 5353, 5353,
                            payload, ttl=255))]


def ssdp_notify(t: float, device: Host, net: Network, rng: np.random.Generator, kinds: list[str],
                server: str, uuid: str, port: int = 49153) -> Frames:
    """SSDP ssdp:alive advertisements, one per notification type."""
    location = f"http://{device.ip}:{port}/setup.xml"
    frames: Frames = []
    source = ephemeral_port(rng)
    for k, kind in enumerate(kinds):
        payload = p.ssdp_notify(location, kind, f"uuid:{uuid}::{kind}", server)
        frames.append((t + 0.002 * k, p.udp_frame(device.mac, p.multicast_mac(SSDP_GROUP), device.ip, SSDP_GROUP,
                                                 source, 1900, payload, ttl=4)))
    return frames


def ssdp_search(t: float, device: Host, net: Network, rng: np.random.Generator, target: str,
                repeats: int = 2) -> Frames:
    source = ephemeral_port(rng)
    payload = p.ssdp_msearch(target)
    return [(t + 0.1 * k, p.udp_frame(device.mac, p.multicast_mac(SSDP_GROUP), device.ip, SSDP_GROUP, source, 1900,
                                      payload, ttl=4)) for k in range(repeats)]


def igmp_join(t: float, device: Host, net: Network, rng: np.random.Generator, groups: list[str],
              version: int = 2) -> Frames:
    """Membership reports for the multicast groups the device listens to."""
    return [(t + 0.01 * k, p.igmp_report_frame(device.mac, device.ip, group, version=version))
            for k, group in enumerate(groups)]


def quic_session(t: float, device: Host, net: Network, rng: np.random.Generator, hostname: str,
                 requests: list[int], responses: list[int], lookup: bool = True) -> Frames:
    """A QUIC v1 connection: protected Initial with SNI, server handshake, 1-RTT exchanges."""
    frames: Frames = dns_lookup(t, device, net, rng, hostname) if lookup else []
    start = t + (0.04 if lookup else 0.0)
    port = ephemeral_port(rng)
    server = net.resolve(hostname)
    gw = net.gateway
    dcid, scid = rng.bytes(8), rng.bytes(8)
    at = start
    frames.append((at, p.udp_frame(device.mac, gw.mac, device.ip, server, port, 443,
                                   p.quic_initial(dcid, scid, hostname, random_bytes=rng.bytes(32)))))
    at += _rtt(rng, 0.03)
    for size in (1200, 1200, 980):
        frames.append((at, p.udp_frame(gw.mac, device.mac, server, device.ip, 443, port,
                                       p.quic_short_header(scid, size), ttl=56)))
        at += 0.0005
    for index in range(max(len(requests), len(responses))):
        if index < len(requests):
            at += 0.01
            frames.append((at, p.udp_frame(device.mac, gw.mac, device.ip, server, port, 443,
                                           p.quic_short_header(dcid, max(requests[index], 40)))))
        if index < len(responses):
            at += _rtt(rng, 0.03)
            frames.append((at, p.udp_frame(gw.mac, device.mac, server, device.ip, 443, port,
                                           p.quic_short_header(scid, max(responses[index], 40)), ttl=56)))
    return frames


def sip_register(t: float, device: Host, net: Network, rng: np.random.Generator, domain: str, user: str,
                 challenge: bool = True) -> Frames:
    """SIP REGISTER over UDP 5060 (with a 401 challenge and the authenticated retry)."""
    server = net.resolve(domain)
    gw = net.gateway
    call_id = rng.bytes(8).hex()
    frames: Frames = []
    at = t
    cseq = 1
    if challenge:
        frames.append((at, p.udp_frame(device.mac, gw.mac, device.ip, server, 5060, 5060,
                                       p.sip_register(user, domain, call_id, cseq, local_ip=device.ip))))
        at += _rtt(rng, 0.05)
        frames.append((at, p.udp_frame(gw.mac, device.mac, server, device.ip, 5060, 5060,
                                       p.sip_response(401, user, domain, call_id, cseq, local_ip=device.ip))))
        at += 0.01
        cseq += 1
    frames.append((at, p.udp_frame(device.mac, gw.mac, device.ip, server, 5060, 5060,
                                   p.sip_register(user, domain, call_id, cseq, local_ip=device.ip))))
    at += _rtt(rng, 0.05)
    frames.append((at, p.udp_frame(gw.mac, device.mac, server, device.ip, 5060, 5060,
                                   p.sip_response(200, user, domain, call_id, cseq, local_ip=device.ip))))
    return frames


def local_http(t: float, device: Host, net: Network, rng: np.random.Generator, peer: Host, path: str,
               response_body: int = 200) -> Frames:
    """The device talks HTTP to another device on the segment (hub → bulb control, UPnP)."""
    return http_session(t, device, net, rng, peer.ip, "POST", path, request_body=120,
                        response_body=response_body, port=80, lookup=False, rtt=0.004, server=peer)


SESSIONS = {
    "dns": dns_lookup,
    "tls": tls_session,
    "http": http_session,
    "ocsp": ocsp_check,
    "ntp": ntp_sync,
    "ping": gateway_ping,
    "mdns_announce": mdns_announce,
    "mdns_query": mdns_query,
    "ssdp_notify": ssdp_notify,
    "ssdp_search": ssdp_search,
    "igmp": igmp_join,
    "quic": quic_session,
    "sip": sip_register,
    "local_http": local_http,
}
