"""Frame/payload builders produce well-formed packets that dpkt parses and nDPI (nfstream) labels right."""

from __future__ import annotations

import os
import random
import struct
import time
from pathlib import Path

import dpkt
import pytest

from twinwatch.simulator import packets as P

DEV_MAC, GW_MAC, PEER_MAC = "02:00:00:00:00:10", "02:00:00:00:00:01", "02:00:00:00:00:20"
DEV, GW, PEER = "192.168.1.10", "192.168.1.1", "192.168.1.20"
T0 = 1_700_000_000.0


def naive_ones_sum(data: bytes) -> int:
    """One's-complement sum with end-around carry, word by word (independent of the module's trick)."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for (word,) in struct.iter_unpack("!H", data):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    return total


def pseudo_header(ip: dpkt.ip.IP) -> bytes:
    return ip.src + ip.dst + struct.pack("!BBH", 0, ip.p, len(ip.data))


def assert_ip_checksums(frame: bytes) -> dpkt.ip.IP:
    """The IPv4 header and its transport checksum verify; dpkt recomputes the same values."""
    eth = dpkt.ethernet.Ethernet(frame)
    assert eth.type == dpkt.ethernet.ETH_TYPE_IP
    ip = eth.data
    assert isinstance(ip, dpkt.ip.IP)
    raw_ip = frame[14:]
    assert ip.len == len(raw_ip)
    assert naive_ones_sum(raw_ip[: ip.hl * 4]) == 0xFFFF
    segment = raw_ip[ip.hl * 4 :]
    if ip.p in (dpkt.ip.IP_PROTO_TCP, dpkt.ip.IP_PROTO_UDP):
        assert naive_ones_sum(pseudo_header(ip) + segment) == 0xFFFF
    else:
        assert naive_ones_sum(segment) == 0xFFFF
    # dpkt recomputes checksums that are zeroed before serialising.
    sent_ip_sum, sent_l4_sum = ip.sum, ip.data.sum
    again = dpkt.ip.IP(raw_ip)
    again.sum = 0
    again.data.sum = 0
    recomputed = dpkt.ip.IP(bytes(again))
    assert recomputed.sum == sent_ip_sum
    assert recomputed.data.sum == sent_l4_sum
    return ip


# ---------------------------------------------------------------------------------------------- checksums


def test_internet_checksum_matches_naive_rfc1071() -> None:
    rng = random.Random(7)
    cases = [b"", b"\x00", b"\x00\x00", b"\xff\xff", b"\xff\xff\xff\xff", b"\x01", b"\xab\xcd\xef"]
    cases += [rng.randbytes(rng.randrange(1, 300)) for _ in range(500)]
    for data in cases:
        assert P.internet_checksum(data) == (~naive_ones_sum(data)) & 0xFFFF


def test_udp_frame_fields_and_checksums() -> None:
    payload = bytes(range(100))
    frame = P.udp_frame(DEV_MAC, GW_MAC, DEV, "8.8.8.8", 40000, 53, payload, ttl=63, ip_id=0x1234)
    assert len(frame) == 14 + 20 + 8 + 100
    eth = dpkt.ethernet.Ethernet(frame)
    assert eth.src == bytes.fromhex("020000000010") and eth.dst == bytes.fromhex("020000000001")
    ip = assert_ip_checksums(frame)
    assert (ip.v, ip.hl, ip.ttl, ip.id, ip.p) == (4, 5, 63, 0x1234, 17)
    assert (ip.src, ip.dst) == (bytes([192, 168, 1, 10]), bytes([8, 8, 8, 8]))
    udp = ip.data
    assert (udp.sport, udp.dport, udp.ulen, udp.data) == (40000, 53, 108, payload)


@pytest.mark.parametrize("size", [0, 1, 2, 3, 99, 1472])
def test_udp_checksum_many_payload_sizes(size: int) -> None:
    rng = random.Random(size)
    for _ in range(50):
        payload = rng.randbytes(size)
        sport, dport = rng.randrange(1, 65536), rng.randrange(1, 65536)
        dst = f"10.{rng.randrange(256)}.0.{rng.randrange(256)}"
        frame = P.udp_frame(DEV_MAC, GW_MAC, DEV, dst, sport, dport, payload, ip_id=rng.randrange(65536))
        udp = assert_ip_checksums(frame).data
        assert udp.sum != 0  # 0 would mean "no checksum"


@pytest.mark.parametrize("flags,bits", [("S", 0x02), ("SA", 0x12), ("A", 0x10), ("PA", 0x18), ("FA", 0x11),
                                         ("R", 0x04), ("RA", 0x14), (0x18, 0x18)])
def test_tcp_frame_flags_and_checksums(flags: str | int, bits: int) -> None:
    payload = b"" if "S" in str(flags) else b"hello world!"
    frame = P.tcp_frame(DEV_MAC, GW_MAC, DEV, "93.184.216.34", 51000, 80, payload,
                        seq=0xFFFFFFF0, ack=123456789, flags=flags, window=501, ip_id=9)
    ip = assert_ip_checksums(frame)
    tcp = ip.data
    assert ip.p == 6
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.ack, tcp.flags, tcp.win) == (51000, 80, 0xFFFFFFF0, 123456789,
                                                                            bits, 501)
    assert tcp.data == payload
    if bits & 0x02:
        opts = dict(dpkt.tcp.parse_opts(tcp.opts))
        assert opts[dpkt.tcp.TCP_OPT_MSS] == b"\x05\xb4"
        assert dpkt.tcp.TCP_OPT_SACKOK in opts
    else:
        assert tcp.opts == b""


def test_tcp_rejects_unknown_flag_and_wraps_sequence() -> None:
    with pytest.raises(ValueError):
        P.tcp_frame(DEV_MAC, GW_MAC, DEV, GW, 1, 2, seq=0, ack=0, flags="SX")
    frame = P.tcp_frame(DEV_MAC, GW_MAC, DEV, GW, 1, 2, b"x", seq=(1 << 32) + 5, ack=0, flags="PA")
    assert assert_ip_checksums(frame).data.seq == 5


@pytest.mark.parametrize("reply", [False, True])
def test_icmp_echo(reply: bool) -> None:
    frame = P.icmp_echo_frame(DEV_MAC, GW_MAC, DEV, "8.8.8.8", reply=reply, ident=0x77, seq=3)
    ip = assert_ip_checksums(frame)
    assert ip.p == 1 and ip.len == 20 + 8 + 56
    icmp = ip.data
    assert icmp.type == (dpkt.icmp.ICMP_ECHOREPLY if reply else dpkt.icmp.ICMP_ECHO)
    assert (icmp.data.id, icmp.data.seq, len(icmp.data.data)) == (0x77, 3, 56)


def test_igmp_v2_and_v3_reports() -> None:
    frame = P.igmp_report_frame(DEV_MAC, DEV, "239.255.255.250")
    eth = dpkt.ethernet.Ethernet(frame)
    assert eth.dst == bytes.fromhex("01005e7ffffa")
    ip = assert_ip_checksums(frame)
    assert (ip.p, ip.ttl, ip.hl, ip.opts) == (2, 1, 6, b"\x94\x04\x00\x00")
    assert ip.dst == bytes([239, 255, 255, 250])
    igmp = ip.data
    assert (igmp.type, igmp.group) == (0x16, bytes([239, 255, 255, 250]))

    frame3 = P.igmp_report_frame(DEV_MAC, DEV, "224.0.0.251", version=3)
    eth3 = dpkt.ethernet.Ethernet(frame3)
    assert eth3.dst == bytes.fromhex("01005e000016")
    ip3 = assert_ip_checksums(frame3)
    assert ip3.dst == bytes([224, 0, 0, 22]) and ip3.data.type == 0x22
    assert bytes(ip3.data)[-4:] == bytes([224, 0, 0, 251])
    with pytest.raises(ValueError):
        P.igmp_report_frame(DEV_MAC, DEV, "224.0.0.251", version=1)


def test_address_helpers() -> None:
    assert P.multicast_mac("224.0.0.251") == "01:00:5e:00:00:fb"
    assert P.multicast_mac("239.255.255.250") == "01:00:5e:7f:ff:fa"
    assert P.mac_bytes("AA-bb-cc-dd-ee-ff") == bytes.fromhex("aabbccddeeff")
    with pytest.raises(ValueError):
        P.mac_bytes("aa:bb")
    for bad in ("300.1.1.1", "10.1", "not-an-ip"):
        with pytest.raises(ValueError):
            P.ip_bytes(bad)


# ---------------------------------------------------------------------------------------------- payloads


def test_dns_and_mdns_parse() -> None:
    q = dpkt.dns.DNS(P.dns_query("www.example.com", 0xBEEF, "AAAA"))
    assert (q.id, q.qr, q.rd) == (0xBEEF, 0, 1)
    assert (q.qd[0].name, q.qd[0].type) == ("www.example.com", dpkt.dns.DNS_AAAA)
    r = dpkt.dns.DNS(P.dns_response("www.example.com", 0xBEEF, ["1.2.3.4", "5.6.7.8"], ttl=60))
    assert (r.qr, r.rcode, len(r.an)) == (1, 0, 2)
    assert [a.ip for a in r.an] == [bytes([1, 2, 3, 4]), bytes([5, 6, 7, 8])] and r.an[0].ttl == 60
    nx = dpkt.dns.DNS(P.dns_response("nope.example", 1, []))
    assert nx.rcode == dpkt.dns.DNS_RCODE_NXDOMAIN
    m = dpkt.dns.DNS(P.mdns_query(["_googlecast._tcp.local", "_hap._tcp.local"]))
    assert [qd.name for qd in m.qd] == ["_googlecast._tcp.local", "_hap._tcp.local"] and m.id == 0
    mr = dpkt.dns.DNS(P.mdns_response("_hap._tcp.local", "Lamp._hap._tcp.local"))
    assert mr.qr == 1 and mr.aa == 1 and mr.an[0].ptrname == "Lamp._hap._tcp.local"
    ma = dpkt.dns.DNS(P.mdns_response("lamp.local", "192.168.1.77", qtype="A", ttl=120))
    assert ma.an[0].ip == bytes([192, 168, 1, 77]) and ma.an[0].cls == 0x8001


def test_ntp_parse() -> None:
    req = P.ntp_request(T0 + 0.25)
    assert len(req) == 48
    n = dpkt.ntp.NTP(req)
    assert (n.v, n.mode) == (4, dpkt.ntp.CLIENT)
    assert struct.unpack("!II", req[40:]) == (int(T0) + 2208988800, 1 << 30)
    resp = P.ntp_response(T0 + 0.25, T0 + 0.3, T0 + 0.31, stratum=1)
    r = dpkt.ntp.NTP(resp)
    assert len(resp) == 48 and (r.v, r.mode, r.stratum) == (4, dpkt.ntp.SERVER, 1)
    assert resp[24:32] == req[40:48]  # origin timestamp echoes the request's transmit timestamp


def test_http_ssdp_ocsp_sip_text_messages() -> None:
    req = dpkt.http.Request(P.http_request("POST", "api.example.com", "/v1/x", {"X-A": "1"}, b"{}"))
    assert (req.method, req.uri, req.headers["host"], req.headers["content-length"], req.body) == (
        "POST", "/v1/x", "api.example.com", "2", b"{}")
    resp = dpkt.http.Response(P.http_response(404, {"Content-Type": "text/plain"}, b"nope"))
    assert (resp.status, resp.reason, resp.body) == ("404", "Not Found", b"nope")

    ocsp = dpkt.http.Request(P.ocsp_request_http("ocsp.digicert.com", 83))
    assert ocsp.headers["content-type"] == "application/ocsp-request" and len(ocsp.body) == 83
    assert ocsp.body[:2] == bytes([0x30, 81])
    ocsp_r = dpkt.http.Response(P.ocsp_response_http(1500))
    assert ocsp_r.headers["content-type"] == "application/ocsp-response" and len(ocsp_r.body) == 1500
    assert ocsp_r.body[:4] == b"\x30\x82" + (1496).to_bytes(2, "big")

    msearch = P.ssdp_msearch("ssdp:all")
    assert msearch.startswith(b"M-SEARCH * HTTP/1.1\r\n") and msearch.endswith(b"\r\n\r\n")
    assert b'MAN: "ssdp:discover"' in msearch and b"ST: ssdp:all" in msearch
    location = "http://192.168.1.10/d.xml"
    notify = P.ssdp_notify(location, "upnp:rootdevice", "uuid:1::upnp:rootdevice", "Linux/5")
    assert notify.startswith(b"NOTIFY * HTTP/1.1\r\n") and b"NTS: ssdp:alive" in notify
    answer = dpkt.http.Response(P.ssdp_response(location, "ssdp:all", "uuid:1", "Linux/5"))
    assert answer.status == "200" and answer.headers["st"] == "ssdp:all"

    reg = P.sip_register("1001", "sip.example.com", "abc@host", 2, local_ip=DEV)
    assert reg.startswith(b"REGISTER sip:sip.example.com SIP/2.0\r\n") and b"CSeq: 2 REGISTER" in reg
    opt = P.sip_options("1001", "sip.example.com", "abc@host", 3, local_ip=DEV)
    assert opt.startswith(b"OPTIONS sip:sip.example.com SIP/2.0\r\n")
    ok = P.sip_response(401, "1001", "sip.example.com", "abc@host", 2, local_ip=DEV)
    assert ok.startswith(b"SIP/2.0 401 Unauthorized\r\n") and b"WWW-Authenticate: Digest" in ok
    branch = [line for line in reg.split(b"\r\n") if line.startswith(b"Via:")][0].split(b"branch=")[1]
    assert branch in ok  # the response matches its request's transaction


def test_tls_records_parse_with_dpkt() -> None:
    rnd = bytes(range(32))
    rec = dpkt.ssl.TLSRecord(P.tls_client_hello("device.example.com", rnd, session_id=bytes(32), alpn=["h2"]))
    assert (rec.type, rec.length) == (22, len(rec.data))
    hello = dpkt.ssl.TLSHandshake(rec.data).data
    assert isinstance(hello, dpkt.ssl.TLSClientHello) and hello.random == rnd
    exts = dict(hello.extensions)
    assert exts[0] == b"\x00\x15\x00\x00\x12device.example.com"
    assert exts[43] == b"\x04\x03\x04\x03\x03" and 51 in exts and 16 in exts

    flight = (P.tls_server_hello(rnd[::-1], session_id=bytes(32)) + P.tls_certificate_record(900)
              + P.tls_server_hello_done() + P.tls_change_cipher_spec() + P.tls_encrypted_handshake()
              + P.tls_application_data(300) + P.tls_alert() + P.tls_alert(encrypted=True))
    records, used = dpkt.ssl.tls_multi_factory(flight)
    assert used == len(flight)
    assert [(r.type, r.length) for r in records] == [
        (22, 91), (22, 900), (22, 4), (20, 1), (22, 40), (23, 300), (21, 2), (21, 26),
    ]
    assert isinstance(dpkt.ssl.TLSHandshake(records[0].data).data, dpkt.ssl.TLSServerHello)
    cert = dpkt.ssl.TLSHandshake(records[1].data).data
    assert isinstance(cert, dpkt.ssl.TLSCertificate) and [len(c) for c in cert.certificates] == [890]
    assert P.tls_application_data(10)[:5] == b"\x17\x03\x03\x00\x0a"
    tls13 = dpkt.ssl.TLSHandshake(dpkt.ssl.TLSRecord(P.tls_server_hello(rnd, tls13=True)).data).data
    assert dict(tls13.extensions)[43] == b"\x03\x04"


def test_quic_initial_keys_rfc9001_vectors() -> None:
    key, iv, hp = P.quic_client_initial_keys(bytes.fromhex("8394c8f03e515708"))
    assert key.hex() == "1f369613dd76d5467730efcbe3b1a22d"
    assert iv.hex() == "fa044b2f42a3fd3b46fb255c"
    assert hp.hex() == "9f50449e04a0e810283a1e9933adedd2"


def test_quic_initial_decrypts_to_client_hello() -> None:
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    dcid, scid = bytes.fromhex("0011223344556677"), bytes.fromhex("a1a2a3a4")
    pkt = P.quic_initial(dcid, scid, "www.example.com", pad_to=1200, packet_number=2)
    assert len(pkt) == 1200
    assert pkt[0] & 0xF0 == 0xC0 and pkt[1:5] == b"\x00\x00\x00\x01"
    pos = 5
    assert pkt[pos] == 8 and pkt[pos + 1 : pos + 9] == dcid
    pos += 9
    assert pkt[pos] == 4 and pkt[pos + 1 : pos + 5] == scid
    pos += 5
    assert pkt[pos] == 0  # token length
    length = int.from_bytes(pkt[pos + 1 : pos + 3], "big") & 0x3FFF
    pn_offset = pos + 3
    assert pn_offset + length == len(pkt)
    key, iv, hp = P.quic_client_initial_keys(dcid)
    enc = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
    mask = enc.update(pkt[pn_offset + 4 : pn_offset + 20]) + enc.finalize()
    first = pkt[0] ^ (mask[0] & 0x0F)
    pn_len = (first & 0x03) + 1
    pn = bytes(b ^ m for b, m in zip(pkt[pn_offset : pn_offset + pn_len], mask[1:], strict=False))
    header = bytes([first]) + pkt[1:pn_offset] + pn
    nonce = (int.from_bytes(iv, "big") ^ int.from_bytes(pn, "big")).to_bytes(12, "big")
    plain = AESGCM(key).decrypt(nonce, pkt[pn_offset + pn_len :], header)
    assert int.from_bytes(pn, "big") == 2
    assert plain[0] == 0x06 and plain[1] == 0x00  # CRYPTO frame at offset 0
    crypto_len = int.from_bytes(plain[2:4], "big") & 0x3FFF
    hello = dpkt.ssl.TLSHandshake(plain[4 : 4 + crypto_len]).data
    assert isinstance(hello, dpkt.ssl.TLSClientHello)
    exts = dict(hello.extensions)
    assert b"www.example.com" in exts[0] and 0x39 in exts and exts[43] == b"\x02\x03\x04"
    assert set(plain[4 + crypto_len :]) == {0}  # PADDING frames


def test_quic_short_header_and_der_sizes() -> None:
    dcid = bytes(8)
    pkt = P.quic_short_header(dcid, 1200)
    assert len(pkt) == 1200 and pkt[0] & 0xC0 == 0x40 and pkt[1:9] == dcid
    for size in (2, 10, 129, 131, 255, 300, 4000, 70000):
        blob = P.der_blob(size)
        assert len(blob) == size and blob[0] == 0x30


# ---------------------------------------------------------------------------------------------- pcap


def test_pcap_round_trip_with_truncation(tmp_path: Path) -> None:
    path = tmp_path / "t.pcap"
    small = P.udp_frame(DEV_MAC, GW_MAC, DEV, GW, 1, 2, b"abc")
    big = P.udp_frame(DEV_MAC, GW_MAC, DEV, GW, 1, 2, bytes(1000 - 28))
    with P.PcapWriter(path, snaplen=96) as writer:
        writer.write(T0 + 0.5, small)
        writer.write(T0 + 1.9999996, big)  # rounds up into the next second
        assert writer.write_many([(T0 + 3.000001, small), (T0 + 4, big)]) == 2
        assert writer.count == 4
    with open(path, "rb") as fh:
        head = fh.read(24)
        assert struct.unpack("<IHHiIII", head) == (0xA1B2C3D4, 2, 4, 0, 0, 96, 1)
        fh.seek(24)
        rec_headers = []
        for _ in range(4):
            sec, usec, caplen, origlen = struct.unpack("<IIII", fh.read(16))
            rec_headers.append((sec, usec, caplen, origlen))
            fh.seek(caplen, os.SEEK_CUR)
    assert rec_headers == [(int(T0), 500000, 45, 45), (int(T0) + 2, 0, 96, 1014), (int(T0) + 3, 1, 45, 45),
                           (int(T0) + 4, 0, 96, 1014)]
    with open(path, "rb") as fh:
        reader = dpkt.pcap.Reader(fh)
        assert reader.snaplen == 96 and reader.datalink() == dpkt.pcap.DLT_EN10MB
        got = list(reader)
    assert [buf for _, buf in got] == [small, big[:96], small, big[:96]]
    assert got[0][0] == pytest.approx(T0 + 0.5)


def test_udp_builder_is_fast() -> None:
    payload = bytes(100)
    start = time.perf_counter()
    for i in range(50_000):
        P.udp_frame(DEV_MAC, GW_MAC, DEV, "8.8.8.8", 40000 + (i & 1023), 53, payload, ip_id=i & 0xFFFF)
    assert time.perf_counter() - start < 2.5


# ---------------------------------------------------------------------------------------------- nDPI


class _Lab:
    """Collects timestamped frames for a small capture with one flow per protocol."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, bytes]] = []
        self.t = T0
        self.next_port = 40000

    def add(self, frame: bytes, dt: float = 0.01) -> None:
        self.t += dt
        self.frames.append((self.t, frame))

    def udp(self, src: str, dst: str, sport: int, dport: int, payload: bytes,
            src_mac: str = DEV_MAC, dst_mac: str = GW_MAC) -> None:
        self.add(P.udp_frame(src_mac, dst_mac, src, dst, sport, dport, payload))

    def tcp_session(self, server: str, dport: int, exchanges: list[tuple[str, bytes]]) -> int:
        """Handshake, payloads ('c' client->server / 's' server->client, each ACKed), FIN/FIN/ACK."""
        sport = self.next_port
        self.next_port += 1
        seq = {"c": 1000, "s": 500000}

        def seg(side: str, payload: bytes, flags: str) -> None:
            if side == "c":
                frame = P.tcp_frame(DEV_MAC, GW_MAC, DEV, server, sport, dport, payload,
                                    seq=seq["c"], ack=seq["s"], flags=flags)
            else:
                frame = P.tcp_frame(GW_MAC, DEV_MAC, server, DEV, dport, sport, payload,
                                    seq=seq["s"], ack=seq["c"], flags=flags)
            self.add(frame)
            seq[side] += len(payload) + (1 if set(flags) & {"S", "F"} else 0)

        self.add(P.tcp_frame(DEV_MAC, GW_MAC, DEV, server, sport, dport, seq=seq["c"], ack=0, flags="S"))
        seq["c"] += 1
        seg("s", b"", "SA")
        seg("c", b"", "A")
        for side, payload in exchanges:
            seg(side, payload, "PA")
            seg("s" if side == "c" else "c", b"", "A")
        seg("c", b"", "FA")
        seg("s", b"", "FA")
        seg("c", b"", "A")
        return sport


def _build_protocol_lab(path: Path) -> dict[tuple[int, str, str], str]:
    """One flow per protocol; returns {(ip proto, src ip, dst ip): expected nDPI master protocol}."""
    lab = _Lab()
    rnd = bytes(range(32))
    expected: dict[tuple[int, str, str], str] = {}

    lab.tcp_session("93.184.216.34", 80, [
        ("c", P.http_request("GET", "example.com", "/status")),
        ("s", P.http_response(200, {"Content-Type": "application/json"}, b'{"ok": true}')),
    ])
    expected[(6, DEV, "93.184.216.34")] = "HTTP"

    lab.tcp_session("72.21.91.29", 80, [
        ("c", P.ocsp_request_http("ocsp.digicert.com", 83)),
        ("s", P.ocsp_response_http(471)),
    ])
    expected[(6, DEV, "72.21.91.29")] = "OCSP"

    lab.tcp_session("142.250.185.78", 443, [
        ("c", P.tls_client_hello("www.google.com", rnd, session_id=bytes(32), alpn=["h2", "http/1.1"])),
        ("s", P.tls_server_hello(rnd[::-1], session_id=bytes(32)) + P.tls_certificate_record(1200)
         + P.tls_server_hello_done()),
        ("c", P.tls_client_key_exchange(rnd) + P.tls_change_cipher_spec() + P.tls_encrypted_handshake()),
        ("s", P.tls_change_cipher_spec() + P.tls_encrypted_handshake()),
        ("c", P.tls_application_data(350)),
        ("s", P.tls_application_data(1300, offset=99)),
        ("c", P.tls_alert(encrypted=True)),
    ])
    expected[(6, DEV, "142.250.185.78")] = "TLS"

    lab.udp(DEV, GW, 53001, 53, P.dns_query("www.google.com", 0x4242))
    lab.udp(GW, DEV, 53, 53001, P.dns_response("www.google.com", 0x4242, ["142.250.185.78"]), GW_MAC, DEV_MAC)
    expected[(17, DEV, GW)] = "DNS"

    lab.udp(DEV, "162.159.200.1", 123, 123, P.ntp_request(lab.t))
    ntp_answer = P.ntp_response(lab.t, lab.t + 0.01, lab.t + 0.0101)
    lab.udp("162.159.200.1", DEV, 123, 123, ntp_answer, GW_MAC, DEV_MAC)
    expected[(17, DEV, "162.159.200.1")] = "NTP"

    mdns_mac = P.multicast_mac(P.MDNS_GROUP)
    lab.udp(DEV, P.MDNS_GROUP, 5353, 5353, P.mdns_query(["_googlecast._tcp.local"]), DEV_MAC, mdns_mac)
    mdns_answer = P.mdns_response("_googlecast._tcp.local", "tv._googlecast._tcp.local")
    lab.udp(DEV, P.MDNS_GROUP, 5353, 5353, mdns_answer, DEV_MAC, mdns_mac)
    expected[(17, DEV, P.MDNS_GROUP)] = "MDNS"

    ssdp_mac = P.multicast_mac(P.SSDP_GROUP)
    lab.udp(DEV, P.SSDP_GROUP, 50123, 1900, P.ssdp_msearch("urn:dial-multiscreen-org:service:dial:1"),
            DEV_MAC, ssdp_mac)
    expected[(17, DEV, P.SSDP_GROUP)] = "SSDP"

    register = P.sip_register("1001", "sip.example.com", "c1@lab", 1, local_ip=DEV)
    lab.udp(DEV, "203.0.113.60", 5060, 5060, register)
    lab.udp("203.0.113.60", DEV, 5060, 5060,
            P.sip_response(200, "1001", "sip.example.com", "c1@lab", 1, local_ip=DEV), GW_MAC, DEV_MAC)
    expected[(17, DEV, "203.0.113.60")] = "SIP"

    dcid, scid = bytes.fromhex("8394c8f03e515708"), bytes.fromhex("c0ffee00")
    lab.udp(DEV, "142.250.186.46", 51515, 443, P.quic_initial(dcid, scid, "www.youtube.com"))
    lab.udp("142.250.186.46", DEV, 443, 51515, P.quic_short_header(scid, 1200), GW_MAC, DEV_MAC)
    lab.udp(DEV, "142.250.186.46", 51515, 443, P.quic_short_header(dcid, 50))
    expected[(17, DEV, "142.250.186.46")] = "QUIC"

    lab.add(P.icmp_echo_frame(DEV_MAC, GW_MAC, DEV, "8.8.8.8", reply=False, ident=1, seq=1))
    lab.add(P.icmp_echo_frame(GW_MAC, DEV_MAC, "8.8.8.8", DEV, reply=True, ident=1, seq=1))
    expected[(1, DEV, "8.8.8.8")] = "ICMP"

    lab.add(P.igmp_report_frame(DEV_MAC, DEV, "239.255.255.250"))
    expected[(2, DEV, "239.255.255.250")] = "IGMP"

    with P.PcapWriter(path) as writer:
        writer.write_many(lab.frames)
    return expected


def test_ndpi_labels_every_protocol(tmp_path: Path) -> None:
    nfstream = pytest.importorskip("nfstream")
    path = tmp_path / "lab.pcap"
    expected = _build_protocol_lab(path)
    flows = list(nfstream.NFStreamer(source=str(path), n_dissections=20, statistical_analysis=False))
    got = {(f.protocol, f.src_ip, f.dst_ip): f for f in flows}
    assert set(got) == set(expected)
    for key, master in expected.items():
        flow = got[key]
        label = flow.application_name
        # OCSP comes out as "HTTP.OCSP"; everything else has the protocol as its master part.
        assert (label.split(".")[-1] if master == "OCSP" else label.split(".")[0]) == master, (key, label)
        assert flow.application_is_guessed == 0, (key, label)
    assert got[(6, DEV, "142.250.185.78")].application_name == "TLS.Google"
    assert got[(6, DEV, "142.250.185.78")].requested_server_name == "www.google.com"
    assert got[(17, DEV, "142.250.186.46")].application_name == "QUIC.YouTube"
    assert got[(17, DEV, "142.250.186.46")].requested_server_name == "www.youtube.com"
    assert got[(6, DEV, "72.21.91.29")].application_name == "HTTP.OCSP"
    assert got[(17, DEV, GW)].application_name == "DNS.Google"
    tls = got[(6, DEV, "142.250.185.78")]
    assert tls.bidirectional_packets == 20 and tls.src2dst_packets == 11


def test_nfstream_raw_size_is_origlen_and_ip_size_is_header_total_length(tmp_path: Path) -> None:
    nfstream = pytest.importorskip("nfstream")

    class Sizes(nfstream.NFPlugin):
        def on_init(self, packet, flow):
            flow.udps.sizes = [(packet.raw_size, packet.ip_size, packet.payload_size)]

        def on_update(self, packet, flow):
            flow.udps.sizes.append((packet.raw_size, packet.ip_size, packet.payload_size))

    frame = P.udp_frame(DEV_MAC, GW_MAC, DEV, "203.0.113.5", 40000, 9999, bytes(1000 - 28))
    padded = P.udp_frame(DEV_MAC, GW_MAC, DEV, "203.0.113.5", 40000, 9999, bytes(10)) + bytes(8)
    path = tmp_path / "trunc.pcap"
    with P.PcapWriter(path, snaplen=96) as writer:
        writer.write(T0, frame)  # caplen 96, origlen 1014, IP total length 1000
        writer.write(T0 + 0.1, padded)  # Ethernet padding: origlen 60, IP total length 38
    (flow,) = list(nfstream.NFStreamer(source=str(path), udps=Sizes(), n_dissections=0))
    assert flow.udps.sizes == [(1014, 1000, 972), (60, 38, 10)]
    assert flow.bidirectional_bytes == 1014 + 60
