"""Writes a simulated household: one pcap per local day plus the ground-truth manifest."""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from twinwatch.simulator.packets import PcapWriter
from twinwatch.simulator.profiles import CHANGE_KINDS, HOUSEHOLD, PROFILES, Behaviour, DeviceProfile
from twinwatch.simulator.sessions import SESSIONS, Host, Network

logger = logging.getLogger(__name__)

GATEWAY = Host("f4:f2:6d:00:00:01", "192.168.1.1")
SUBNET = "192.168.1."


@dataclass(frozen=True)
class LabConfig:
    """What to simulate. ``change_day`` is the first day (1-based) on the new firmware."""

    seed: int = 7
    days: int = 11
    change_day: int = 8
    start_date: dt.date = dt.date(2026, 1, 12)
    tz: str = "Europe/Berlin"
    devices: tuple[str, ...] = tuple(profile.key for profile in HOUSEHOLD)
    change_kinds: tuple[str, ...] = CHANGE_KINDS
    difficulty: float = 1.0
    snaplen: int = 65535

    def __post_init__(self) -> None:
        unknown = [d for d in self.devices if d not in PROFILES]
        if unknown:
            raise ValueError(f"unknown device profile(s) {unknown}; known: {sorted(PROFILES)}")
        bad = [k for k in self.change_kinds if k not in CHANGE_KINDS]
        if bad:
            raise ValueError(f"unknown change kind(s) {bad}; known: {list(CHANGE_KINDS)}")
        if self.days < 1 or not 1 <= self.change_day:
            raise ValueError("days must be ≥ 1 and change_day ≥ 1")
        if self.difficulty <= 0:
            raise ValueError("difficulty must be positive")
        ZoneInfo(self.tz)

    def changes(self, profile: DeviceProfile) -> bool:
        return profile.change is not None and profile.change in self.change_kinds


@dataclass(frozen=True)
class LabDevice:
    key: str
    name: str
    model: str
    mac: str
    ip: str
    change: str | None
    noisy: bool
    sparse: bool


@dataclass
class LabManifest:
    config: LabConfig
    devices: list[LabDevice]
    pcaps: list[Path] = field(default_factory=list)
    packets: int = 0

    def firmware(self, device: LabDevice, day: int) -> str:
        profile = PROFILES[device.key]
        new = self.config.changes(profile) and day >= self.config.change_day
        return profile.versions[1] if new else profile.versions[0]

    def date_of(self, day: int) -> dt.date:
        return self.config.start_date + dt.timedelta(days=day - 1)


def lab_devices(config: LabConfig) -> list[LabDevice]:
    out = []
    for index, key in enumerate(config.devices):
        profile = PROFILES[key]
        out.append(LabDevice(profile.key, profile.name, profile.model, profile.mac, f"{SUBNET}{20 + index}",
                             profile.change if config.changes(profile) else None, profile.noisy, profile.sparse))
    return out


def _occurrences(behaviour: Behaviour, rng: np.random.Generator, phase: float, drift: float,
                 difficulty: float) -> np.ndarray:
    """Seconds after local midnight at which the behaviour runs on one day."""
    start_h, end_h = behaviour.hours
    begin, end = start_h * 3600.0, end_h * 3600.0
    if behaviour.poisson:
        count = rng.poisson((end - begin) / behaviour.every_s)
        return np.sort(rng.uniform(begin, end, size=count))
    first = begin + (phase + drift) % behaviour.every_s
    times = np.arange(first, end, behaviour.every_s)
    times = times + rng.normal(0.0, behaviour.jitter_s * difficulty, size=times.size)
    return np.sort(times[(times >= begin) & (times < end)])


def _vary_sizes(params: dict, rng: np.random.Generator, noise: float) -> dict:
    if noise <= 0:
        return params
    varied = dict(params)
    for key in ("requests", "responses"):
        if key in varied:
            varied[key] = [max(24, int(round(s * (1 + rng.normal(0, noise))))) for s in varied[key]]
    for key in ("response_body", "request_body"):
        if key in varied and varied[key]:
            varied[key] = max(8, int(round(varied[key] * (1 + rng.normal(0, noise)))))
    return varied


def simulate_day(config: LabConfig, day: int, path: Path) -> int:
    """Write day ``day`` (1-based) of the lab to ``path``; returns the number of packets."""
    date = config.start_date + dt.timedelta(days=day - 1)
    zone = ZoneInfo(config.tz)
    midnight = dt.datetime.combine(date, dt.time(0), tzinfo=zone).timestamp()
    next_midnight = dt.datetime.combine(date + dt.timedelta(days=1), dt.time(0), tzinfo=zone).timestamp()
    network = Network(GATEWAY)
    frames: list[tuple[float, bytes]] = []
    for device_index, device in enumerate(lab_devices(config)):
        profile = PROFILES[device.key]
        new = config.changes(profile) and day >= config.change_day
        host = Host(device.mac, device.ip)
        device_rng = np.random.default_rng([config.seed, device_index])
        drift_per_day = float(device_rng.uniform(-20.0, 20.0))
        behaviours = profile.behaviours(new)
        for behaviour_index, behaviour in enumerate(behaviours):
            phase = float(np.random.default_rng([config.seed, device_index, behaviour_index]).uniform(0, 1e6))
            rng = np.random.default_rng([config.seed, device_index, behaviour_index, day, int(new)])
            session = SESSIONS[behaviour.session]
            noise = behaviour.size_noise + 0.03 * (config.difficulty - 1.0)
            for offset in _occurrences(behaviour, rng, phase, drift_per_day * day, config.difficulty):
                params = _vary_sizes(dict(behaviour.params), rng, noise)
                frames.extend(session(midnight + float(offset), host, network, rng, **params))
        if config.difficulty > 1.0:  # stray lookups of random names at random moments
            stray_rng = np.random.default_rng([config.seed, device_index, 999, day])
            for offset in np.sort(stray_rng.uniform(0, 86400, size=int(12 * (config.difficulty - 1.0) * 24))):
                name = f"x{stray_rng.integers(0, 10**6)}.{profile.key}.example"
                frames.extend(SESSIONS["dns"](midnight + float(offset), host, network, stray_rng, hostname=name))
    frames = [f for f in frames if midnight <= f[0] < next_midnight]
    frames.sort(key=lambda item: item[0])
    with PcapWriter(path, snaplen=config.snaplen) as writer:
        writer.write_many(frames)
    return len(frames)


def build_lab(config: LabConfig, out_dir: str | os.PathLike, workers: int | None = None,
              on_day_done: Callable[[int, int], None] | None = None) -> LabManifest:
    """Simulate every day (in parallel), write pcaps, ``manifest.csv``, ``devices.csv`` and ``lab.json``."""
    out = Path(out_dir)
    (out / "pcaps").mkdir(parents=True, exist_ok=True)
    devices = lab_devices(config)
    manifest = LabManifest(config=config, devices=devices)
    paths = [out / "pcaps" / f"day{day:02d}_{manifest.date_of(day).isoformat()}.pcap"
             for day in range(1, config.days + 1)]
    workers = workers or min(config.days, os.cpu_count() or 1)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {day: pool.submit(simulate_day, config, day, path)
                   for day, path in zip(range(1, config.days + 1), paths, strict=True)}
        for day, future in futures.items():
            count = future.result()
            manifest.packets += count
            if on_day_done:
                on_day_done(day, count)
    manifest.pcaps = paths
    with open(out / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["device", "name", "model", "mac", "ip", "day", "date", "firmware_version",
                         "changed", "change_kind", "noisy", "sparse"])
        for device in devices:
            base = manifest.firmware(device, 1)
            for day in range(1, config.days + 1):
                version = manifest.firmware(device, day)
                writer.writerow([device.key, device.name, device.model, device.mac, device.ip, day,
                                 manifest.date_of(day).isoformat(), version, int(version != base),
                                 device.change or "", int(device.noisy), int(device.sparse)])
    with open(out / "devices.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["mac", "name", "model"])
        for device in devices:
            writer.writerow([device.mac, device.name, device.model])
    settings = asdict(config)
    settings["start_date"] = config.start_date.isoformat()
    (out / "lab.json").write_text(json.dumps({"config": settings, "packets": manifest.packets,
                                              "gateway": asdict(GATEWAY)}, indent=2))
    return manifest
