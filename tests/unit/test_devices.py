import numpy as np
import pytest

from twinwatch.devices import find_devices, find_routers, read_devices_file
from twinwatch.flows import FlowTable

GATEWAY = "00:b5:6d:06:08:ba"
PLUG = "50:c7:bf:1a:2b:01"
BULB = "d0:73:d5:3c:4d:02"


def table(rows):
    return FlowTable(
        client_mac=np.array([r[0] for r in rows], dtype=object),
        server_mac=np.array([r[1] for r in rows], dtype=object),
        client_ip=np.array([r[2] for r in rows], dtype=object),
        server_ip=np.array([r[3] for r in rows], dtype=object),
        client_port=np.zeros(len(rows), dtype=np.int64),
        server_port=np.zeros(len(rows), dtype=np.int64),
        ip_protocol=np.full(len(rows), 17),
        application_name=np.array(["DNS"] * len(rows), dtype=object),
        first_seen_ms=np.zeros(len(rows), dtype=np.int64),
        source=np.array(["x"] * len(rows), dtype=object),
    )


FLOWS = table([
    (PLUG, GATEWAY, "10.10.10.6", "52.1.2.3"),  # to the cloud through the gateway
    (BULB, GATEWAY, "10.10.10.7", "10.10.10.1"),  # DNS to the gateway itself
    (GATEWAY, BULB, "10.10.10.1", "10.10.10.7"),  # the gateway pings the bulb
    (PLUG, "01:00:5e:00:00:fb", "10.10.10.6", "224.0.0.251"),  # mDNS
    (BULB, PLUG, "10.10.10.7", "10.10.10.6"),  # device to device
    ("aa:bb:cc:00:00:01", "ff:ff:ff:ff:ff:ff", "0.0.0.0", "255.255.255.255"),  # DHCP discover only
])


def test_gateway_found_from_public_addresses():
    assert find_routers(FLOWS) == {GATEWAY}


def test_devices_are_local_unicast_hosts_without_the_gateway():
    devices = find_devices(FLOWS)
    assert [(d.mac, d.ip) for d in devices] == [(PLUG, "10.10.10.6"), (BULB, "10.10.10.7")][::-1] or [
        (d.mac, d.ip) for d in devices] == sorted([(PLUG, "10.10.10.6"), (BULB, "10.10.10.7")])


def test_devices_file_names_and_restricts(tmp_path):
    path = tmp_path / "devices.csv"
    path.write_text(f"mac,name,model\n{PLUG.upper()},Plug,HS110\n")
    known = read_devices_file(path)
    devices = find_devices(FLOWS, known=known)
    assert [(d.mac, d.name, d.model, d.ip) for d in devices] == [(PLUG, "Plug", "HS110", "10.10.10.6")]


def test_devices_file_errors_name_the_line(tmp_path):
    path = tmp_path / "devices.csv"
    path.write_text("mac,name\nnot-a-mac,x\n")
    with pytest.raises(ValueError, match=r"devices.csv:2: 'not-a-mac'"):
        read_devices_file(path)
    path.write_text("address,name\n")
    with pytest.raises(ValueError, match="'mac' column"):
        read_devices_file(path)


def test_one_mac_listed_twice_is_one_device(tmp_path):
    path = tmp_path / "devices.csv"
    path.write_text(f"device_dir,mac,model\nHubA,{PLUG},Hub\nSensorB,{PLUG},Sensor via hub\n")
    (device,) = read_devices_file(path)
    assert device.name == "HubA/SensorB" and device.model == "Hub / Sensor via hub"
