"""Which hosts are the IoT devices: local hosts by MAC, the gateway left out."""

from __future__ import annotations

import csv
import ipaddress
import os
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from twinwatch.flows import FlowTable


@dataclass(frozen=True)
class Device:
    mac: str
    ip: str = ""
    name: str = ""
    model: str = ""

    @property
    def label(self) -> str:
        return self.name or self.mac


@lru_cache(maxsize=65536)
def _address_kind(address: str) -> str:
    """'local' (private unicast), 'global', or 'other' (multicast, broadcast, unspecified, bad)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "other"
    if ip.is_multicast or ip.is_unspecified or ip.is_loopback or str(ip) == "255.255.255.255":
        return "other"
    if ip.version == 4 and address.endswith(".255"):
        return "other"  # a /24 directed broadcast; good enough for home segments
    if ip.is_private or ip.is_link_local:
        return "local"
    return "global"


def _unicast_mac(mac: str) -> bool:
    try:
        return bool(mac) and int(mac.split(":")[0], 16) & 1 == 0 and mac != "00:00:00:00:00:00"
    except ValueError:
        return False


def read_devices_file(path: str | os.PathLike) -> list[Device]:
    """A CSV with a header holding ``mac`` and optionally ``name`` (or ``device_dir``), ``model``, ``ip``.

    A MAC listed twice (two names for one box, as in IoT Sentinel's hub and door sensor) is one
    device whose names are joined.
    """
    devices: dict[str, Device] = {}
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "mac" not in [f.strip().lower() for f in reader.fieldnames]:
            raise ValueError(f"{path}: a devices file needs a header with a 'mac' column")
        for line_number, raw in enumerate(reader, start=2):
            row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
            mac = row.get("mac", "").lower()
            if not _unicast_mac(mac) or len(mac.split(":")) != 6:
                raise ValueError(f"{path}:{line_number}: {mac!r} is not a unicast MAC address")
            name = row.get("name") or row.get("device_dir", "")
            if mac in devices:
                seen = devices[mac]
                devices[mac] = Device(mac, seen.ip, "/".join(filter(None, (seen.name, name))),
                                      " / ".join(filter(None, (seen.model, row.get("model", "")))))
            else:
                devices[mac] = Device(mac=mac, ip=row.get("ip", ""), name=name, model=row.get("model", ""))
    return list(devices.values())


def find_routers(flows: FlowTable) -> set[str]:
    """MACs that carry global (public) IP addresses: the gateway(s) between the segment and the Internet."""
    routers: Counter[str] = Counter()
    for macs, ips in ((flows.client_mac, flows.client_ip), (flows.server_mac, flows.server_ip)):
        for mac, ip in zip(macs, ips, strict=True):
            if _address_kind(ip) == "global" and _unicast_mac(mac):
                routers[mac] += 1
    return set(routers)


def find_devices(
    flows: FlowTable, known: list[Device] | None = None, gateways: set[str] | None = None
) -> list[Device]:
    """Local hosts (unicast MAC with a private IP), minus the gateways; ``known`` names and restricts them."""
    gateways = {g.lower() for g in gateways} if gateways else find_routers(flows)
    seen: dict[str, Counter[str]] = {}
    for macs, ips in ((flows.client_mac, flows.client_ip), (flows.server_mac, flows.server_ip)):
        for mac, ip in zip(macs, ips, strict=True):
            if _unicast_mac(mac) and mac not in gateways and _address_kind(ip) == "local":
                seen.setdefault(mac, Counter())[ip] += 1
    ip_of = {mac: counts.most_common(1)[0][0] for mac, counts in seen.items()}
    if known is not None:
        return [
            Device(mac=d.mac, ip=d.ip or ip_of.get(d.mac, ""), name=d.name, model=d.model)
            for d in known
            if d.mac in seen or d.mac in set(flows.client_mac) | set(flows.server_mac)
        ]
    return [Device(mac=mac, ip=ip_of[mac]) for mac in sorted(seen)]


def device_flow_index(flows: FlowTable, mac: str) -> np.ndarray:
    """Flows in which the device is either end (traffic between two devices counts for both)."""
    return np.nonzero((flows.client_mac == mac) | (flows.server_mac == mac))[0]
