"""Device profiles of the lab household, modelled on the paper's lab and on real IoT captures.

Each profile lists the device's behaviours on its old and its new firmware. A behaviour is one
periodic (or random, for noisy devices and daytime use) exchange with a mean interval and jitter.
The firmware change of each device is of one kind:

- ``large``     a protocol appears and message sizes change (like the TP-Link HS110)
- ``subtle``    one periodic ping to the gateway stops (like the LIFX A19)
- ``invisible`` only hostnames (same length) and random ports differ (like the Tapo L530e)
- ``timing``    a periodic exchange runs at another interval
- ``sizes``     the same exchanges carry messages of other sizes
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

CHANGE_KINDS = ("large", "subtle", "invisible", "timing", "sizes")
DAYTIME = (7.0, 23.0)
ALL_DAY = (0.0, 24.0)


@dataclass(frozen=True)
class Behaviour:
    """One recurring exchange: ``session`` names a builder in ``sessions.SESSIONS``."""

    session: str
    every_s: float
    params: Mapping[str, object] = field(default_factory=dict)
    jitter_s: float = 1.0
    poisson: bool = False
    hours: tuple[float, float] = ALL_DAY
    size_noise: float = 0.0


@dataclass(frozen=True)
class DeviceProfile:
    key: str
    name: str
    model: str
    mac: str
    change: str | None
    versions: tuple[str, str]
    behaviours: Callable[[bool], list[Behaviour]]
    noisy: bool = False
    sparse: bool = False


def _tls(host: str, every: float, requests: list[int], responses: list[int], jitter: float = 2.0,
         **extra: object) -> Behaviour:
    return Behaviour("tls", every, {"hostname": host, "requests": requests, "responses": responses,
                                    "lookup": False, **extra}, jitter_s=jitter)


def _dns(host: str, every: float) -> Behaviour:
    return Behaviour("dns", every, {"hostname": host}, jitter_s=every * 0.05)


def _ntp(host: str, every: float) -> Behaviour:
    return Behaviour("ntp", every, {"hostname": host}, jitter_s=5.0)


def _igmp(groups: list[str]) -> Behaviour:
    return Behaviour("igmp", 125.0, {"groups": groups}, jitter_s=4.0)


def _daytime_use(host: str, responses: list[int], every: float = 1500.0) -> Behaviour:
    return Behaviour("tls", every, {"hostname": host, "requests": [180, 96], "responses": responses},
                     poisson=True, hours=DAYTIME, size_noise=0.2)


def hs110_plug(new: bool) -> list[Behaviour]:
    cloud = "devs.tplinkcloud.com"
    out = [
        _tls(cloud, 120.0, [245, 117] if new else [117], [85, 310] if new else [85]),
        _dns(cloud, 600.0),
        _ntp("pool.ntp.org", 3600.0),
        _daytime_use(cloud, [412, 220]),
    ]
    if new:  # the new firmware advertises itself over UPnP and polls an HTTP entry point
        out += [
            Behaviour("ssdp_notify", 300.0, {"kinds": ["upnp:rootdevice", "urn:Belkin:device:controllee:1"],
                                             "server": "Linux/3.14 UPnP/1.0 KasaPlug/2.0",
                                             "uuid": "3c1f2a7e-hs110"}, jitter_s=3.0),
            Behaviour("http", 900.0, {"hostname": "n-deventry.tplinkcloud.com", "path": "/api/v2/entry",
                                      "response_body": 540}, jitter_s=10.0),
            _igmp(["239.255.255.250"]),
        ]
    return out


def lifx_bulb(new: bool) -> list[Behaviour]:
    cloud = "v2.broker.lifx.co"
    out = [
        _tls(cloud, 90.0, [64], [64]),
        _dns(cloud, 900.0),
        _ntp("time.lifx.co", 3600.0),
        _daytime_use(cloud, [150]),
    ]
    if not new:  # the old firmware pings its gateway every 4 minutes; the new one stops
        out.append(Behaviour("ping", 240.0, {"count": 2}, jitter_s=1.0))
    return out


def tapo_bulb(new: bool) -> list[Behaviour]:
    # The new firmware talks to another regional endpoint of the same length: nothing a flow sees.
    cloud = "euw2-device.tplinkcloud.com" if new else "euw1-device.tplinkcloud.com"
    return [
        _tls(cloud, 150.0, [133, 96], [96, 133]),
        _dns(cloud, 600.0),
        _ntp("pool.ntp.org", 3600.0),
        _daytime_use(cloud, [300]),
    ]


def nanoleaf_panels(new: bool) -> list[Behaviour]:
    cloud = "api.nanoleaf.me"
    return [
        # The new firmware polls the cloud four times as often and announces itself five times as often.
        Behaviour("tls", 60.0 if new else 240.0, {"hostname": cloud, "requests": [140, 90], "responses": [260],
                                                  "lookup": True}, poisson=True, size_noise=0.5),
        Behaviour("mdns_announce", 60.0 if new else 300.0,
                  {"service": "_nanoleafapi._tcp.local", "instance": "Shapes 4F2A", "repeats": 2}, poisson=True),
        Behaviour("mdns_query", 400.0, {"services": ["_hap._tcp.local", "_nanoleafms._tcp.local"]}, poisson=True),
        Behaviour("ssdp_search", 900.0, {"target": "ssdp:all"}, poisson=True),
        Behaviour("ping", 700.0, {"count": 3}, poisson=True),
        _igmp(["224.0.0.251", "239.255.255.250"]),
        _ntp("pool.ntp.org", 3600.0),
        _daytime_use(cloud, [500, 300], every=900.0),
    ]


def hoze_sensor(new: bool) -> list[Behaviour]:
    cloud = "iot.hoze-home.com"
    return [
        Behaviour("tls", 1800.0, {"hostname": cloud, "requests": [640] if new else [512],
                                  "responses": [210] if new else [160], "lookup": True,
                                  "certificate": 3100 if new else 2400}, jitter_s=420.0),
        _ntp("pool.ntp.org", 21600.0),
    ]


def ring_doorbell(new: bool) -> list[Behaviour]:
    cloud = "fw.ring.com"
    return [
        Behaviour("sip", 300.0 if new else 600.0, {"domain": "sip.ring.com", "user": "doorbell-7f3a"},
                  jitter_s=2.0),
        _tls(cloud, 150.0 if new else 90.0, [96], [96, 48]),
        _dns(cloud, 600.0),
        _ntp("time.ring.com", 3600.0),
        Behaviour("tls", 2400.0, {"hostname": "es.ring.com", "requests": [1400] * 40, "responses": [120],
                                  "think": 0.01}, poisson=True, hours=DAYTIME, size_noise=0.1),
    ]


def nest_speaker(new: bool) -> list[Behaviour]:
    return [
        Behaviour("quic", 180.0, {"hostname": "www.googleapis.com", "requests": [120, 80], "responses": [300, 90],
                                  "lookup": False}, jitter_s=3.0),
        _dns("www.googleapis.com", 300.0),
        _tls("clients4.google.com", 300.0, [220], [510]),
        Behaviour("mdns_announce", 120.0, {"service": "_googlecast._tcp.local", "instance": "Nest-Mini-5b1"},
                  jitter_s=1.0),
        Behaviour("mdns_query", 600.0, {"services": ["_googlecast._tcp.local", "_googlezone._tcp.local"]},
                  jitter_s=30.0),
        _igmp(["224.0.0.251"]),
        _ntp("time.google.com", 3600.0),
        Behaviour("quic", 600.0, {"hostname": "www.youtube.com", "requests": [200] * 6, "responses": [1200] * 30},
                  poisson=True, hours=DAYTIME),
    ]


def hue_bridge(new: bool) -> list[Behaviour]:
    return [
        _tls("ws.meethue.com", 60.0, [90], [90]),
        _dns("ws.meethue.com", 300.0),
        Behaviour("ssdp_notify", 180.0, {"kinds": ["upnp:rootdevice", "urn:schemas-upnp-org:device:basic:1"],
                                         "server": "Hue/1.0 UPnP/1.0 IpBridge/1.60.0",
                                         "uuid": "2f402f80-da50-11e1-9b23-001788"}, jitter_s=2.0),
        Behaviour("mdns_announce", 300.0, {"service": "_hue._tcp.local", "instance": "Philips Hue - 2476FF"},
                  jitter_s=2.0),
        _igmp(["224.0.0.251", "239.255.255.250"]),
        _ntp("time.meethue.com", 3600.0),
        Behaviour("http", 7200.0, {"hostname": "www.ecdn.cpp.philips.com", "path": "/swupdate2/",
                                   "response_body": 900}, jitter_s=60.0),
        _daytime_use("ws.meethue.com", [180]),
    ]


def wemo_switch(new: bool) -> list[Behaviour]:
    return [
        Behaviour("ssdp_notify", 180.0, {"kinds": ["upnp:rootdevice", "urn:Belkin:device:controllee:1",
                                                   "urn:Belkin:service:basicevent:1"],
                                         "server": "Unspecified, UPnP/1.0, Unspecified",
                                         "uuid": "Socket-1_0-221517K0101769"}, jitter_s=2.0),
        Behaviour("http", 300.0, {"hostname": "api.xbcs.net", "path": "/apis/http/plugin/heartBeat",
                                  "method": "POST", "request_body": 180, "response_body": 60}, jitter_s=3.0),
        _tls("nat.xbcs.net", 600.0, [310], [190]),
        _dns("api.xbcs.net", 600.0),
        _ntp("time.windows.com", 1800.0),
        _igmp(["239.255.255.250"]),
        _daytime_use("nat.xbcs.net", [260]),
    ]


def dyson_fan(new: bool) -> list[Behaviour]:
    cloud = "mqtt.cp.dyson.com"
    return [
        # The new firmware moves to a broker with a longer certificate chain and sends richer telemetry.
        _tls(cloud, 60.0, [420, 64, 64] if new else [180, 64], [64, 610] if new else [64, 290], jitter=1.0,
             port=8883, certificate=4400 if new else 2600),
        _dns(cloud, 900.0),
        _ntp("pool.ntp.org", 3600.0),
        _daytime_use(cloud, [700, 180]),
    ]


def wyze_camera(new: bool) -> list[Behaviour]:
    cloud = "iot.wyzecam.com"
    out = [
        _tls(cloud, 60.0, [180, 140] if new else [150], [120, 96] if new else [120]),
        _dns(cloud, 300.0),
        Behaviour("ping", 30.0, {"count": 1, "from_gateway": False}, jitter_s=0.5),
        _ntp("pool.ntp.org", 1800.0),
        Behaviour("tls", 1800.0, {"hostname": "upload.wyzecam.com", "requests": [1400] * 80, "responses": [90],
                                  "think": 0.005}, poisson=True, hours=DAYTIME, size_noise=0.05),
    ]
    if new:  # the new firmware checks its server certificate's status
        out.append(Behaviour("ocsp", 600.0, {"hostname": "ocsp.digicert.com"}, jitter_s=20.0))
    return out


def ecobee_thermostat(new: bool) -> list[Behaviour]:
    return [
        _tls("home.ecobee.com", 300.0, [760, 120], [1420, 96]),
        _dns("home.ecobee.com", 900.0),
        _ntp("pool.ntp.org", 3600.0),
        Behaviour("http", 3600.0, {"hostname": "weather.ecobee.com", "path": "/v1/forecast",
                                   "response_body": 1200}, jitter_s=30.0),
        _daytime_use("home.ecobee.com", [900]),
    ]


HOUSEHOLD: tuple[DeviceProfile, ...] = (
    DeviceProfile("plug", "Living-room plug", "TP-Link Kasa HS110", "50:c7:bf:1a:2b:01", "large",
                  ("1.5.4", "1.5.6"), hs110_plug),
    DeviceProfile("bulb", "Hall bulb", "LIFX A19", "d0:73:d5:3c:4d:02", "subtle", ("3.70", "3.90"), lifx_bulb),
    DeviceProfile("tapo", "Bedroom bulb", "TP-Link Tapo L530E", "98:25:4a:5e:6f:03", "invisible",
                  ("1.1.0", "1.1.9"), tapo_bulb),
    DeviceProfile("panels", "Light panels", "Nanoleaf Shapes", "00:55:da:7a:8b:04", "timing", ("7.1.3", "8.5.2"),
                  nanoleaf_panels, noisy=True),
    DeviceProfile("leak", "Leak sensor", "Hoze water sensor", "24:0a:c4:9c:ad:05", "sizes", ("2.0.1", "2.1.0"),
                  hoze_sensor, sparse=True),
    DeviceProfile("doorbell", "Front doorbell", "Ring Video Doorbell 3", "34:3e:a4:be:cf:06", "timing",
                  ("1.4.26", "1.4.30"), ring_doorbell),
    DeviceProfile("speaker", "Kitchen speaker", "Google Nest Mini", "f4:f5:d8:d0:e1:07", None, ("1.56", "1.56"),
                  nest_speaker),
    DeviceProfile("hub", "Hue bridge", "Philips Hue Bridge v2", "00:17:88:f2:03:08", None,
                  ("1.60.0", "1.60.0"), hue_bridge),
    DeviceProfile("switch", "Porch switch", "Belkin WeMo Switch", "ec:1a:59:14:25:09", None,
                  ("2.00.11", "2.00.11"), wemo_switch),
    DeviceProfile("fan", "Office fan", "Dyson Pure Cool Link", "c8:ff:77:36:47:0a", "sizes",
                  ("21.03.08", "21.04.03"), dyson_fan),
    DeviceProfile("camera", "Garden camera", "Wyze Cam v3", "2c:aa:8e:58:69:0b", "large",
                  ("4.36.9", "4.36.11"), wyze_camera),
    DeviceProfile("thermostat", "Thermostat", "ecobee3 lite", "44:61:32:7a:8b:0c", None, ("4.8.7", "4.8.7"),
                  ecobee_thermostat),
)
PROFILES: dict[str, DeviceProfile] = {profile.key: profile for profile in HOUSEHOLD}
