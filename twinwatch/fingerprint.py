"""The embedded pipeline from captures to fingerprints: pcaps → flows → device windows → images."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from twinwatch.devices import Device, device_flow_index, find_devices
from twinwatch.features import DevicePackets, window_features
from twinwatch.flows import FlowSettings, FlowTable, read_flows
from twinwatch.images import IMAGE_SPEC_VERSION, blank_images, contact_sheet, to_images
from twinwatch.protocols import PROTOCOL_ROWS, row_mask
from twinwatch.windows import WindowSpec, assign_windows

logger = logging.getLogger(__name__)

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")


def expand_captures(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Capture files named directly or found (recursively) under named directories, sorted."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in CAPTURE_SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such capture file or directory")
    return found


@dataclass
class DeviceDay:
    """The fingerprints of one device on one day (the day its quiet period starts, local time)."""

    device: Device
    day: dt.date
    window_index: np.ndarray
    window_start_ms: np.ndarray
    features: np.ndarray
    images: np.ndarray
    blank_dropped: int = 0

    @property
    def n_images(self) -> int:
        return int(self.images.shape[0])


@dataclass
class FingerprintSet:
    spec: WindowSpec
    devices: list[Device]
    device_days: list[DeviceDay] = field(default_factory=list)

    def for_device(self, mac: str) -> list[DeviceDay]:
        return [d for d in self.device_days if d.device.mac == mac]

    def days(self) -> list[dt.date]:
        return sorted({d.day for d in self.device_days})

    def save(self, out_dir: str | os.PathLike, sheets: bool = True,
             on_saved: Callable[[DeviceDay], None] | None = None) -> Path:
        """Write ``<mac>/<date>.npz`` (+ ``.png`` contact sheet) per device-day and an ``index.json``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        index = {
            "image_spec_version": IMAGE_SPEC_VERSION,
            "protocol_rows": list(PROTOCOL_ROWS),
            "window_spec": {
                "tz": self.spec.tz,
                "period_start": self.spec.period_start.isoformat(timespec="minutes"),
                "period_minutes": self.spec.period_minutes,
                "window_minutes": self.spec.window_minutes,
                "step_minutes": self.spec.step_minutes,
            },
            "devices": [vars(d) for d in self.devices],
            "device_days": [],
        }
        for device_day in self.device_days:
            folder = out / device_day.device.mac.replace(":", "-")
            folder.mkdir(exist_ok=True)
            stem = folder / device_day.day.isoformat()
            np.savez_compressed(
                stem.with_suffix(".npz"),
                images=device_day.images,
                features=device_day.features.astype(np.float32),
                window_index=device_day.window_index,
                window_start_ms=device_day.window_start_ms,
            )
            if sheets:
                contact_sheet(
                    device_day.images,
                    [f"w{w:02d} {_clock(ms, self.spec)}" for w, ms in
                     zip(device_day.window_index, device_day.window_start_ms, strict=True)],
                    f"{device_day.device.label} ({device_day.device.mac}) {device_day.day}: "
                    f"{device_day.n_images} fingerprints, {device_day.blank_dropped} blank dropped",
                    stem.with_suffix(".png"),
                )
            index["device_days"].append(
                {
                    "mac": device_day.device.mac,
                    "day": device_day.day.isoformat(),
                    "images": device_day.n_images,
                    "blank_dropped": device_day.blank_dropped,
                    "file": str(stem.with_suffix(".npz").relative_to(out)),
                }
            )
            if on_saved:
                on_saved(device_day)
        (out / "index.json").write_text(json.dumps(index, indent=2))
        return out


def load_fingerprints(directory: str | os.PathLike) -> FingerprintSet:
    """Read what ``FingerprintSet.save`` wrote (``index.json`` and the npz files)."""
    folder = Path(directory)
    index_path = folder / "index.json"
    if not index_path.is_file():
        raise FileNotFoundError(f"{folder}: no index.json (not a twinwatch fingerprint folder)")
    index = json.loads(index_path.read_text())
    if index.get("image_spec_version") != IMAGE_SPEC_VERSION:
        raise ValueError(f"{index_path}: image spec {index.get('image_spec_version')}, expected {IMAGE_SPEC_VERSION}")
    ws = index["window_spec"]
    spec = WindowSpec(tz=ws["tz"], period_start=dt.time.fromisoformat(ws["period_start"]),
                      period_minutes=ws["period_minutes"], window_minutes=ws["window_minutes"],
                      step_minutes=ws["step_minutes"])
    devices = {d["mac"]: Device(**d) for d in index["devices"]}
    result = FingerprintSet(spec=spec, devices=list(devices.values()))
    for entry in index["device_days"]:
        with np.load(folder / entry["file"]) as data:
            result.device_days.append(DeviceDay(
                device=devices[entry["mac"]], day=dt.date.fromisoformat(entry["day"]),
                window_index=data["window_index"], window_start_ms=data["window_start_ms"],
                features=data["features"].astype(np.float64), images=data["images"],
                blank_dropped=entry["blank_dropped"]))
    return result


def _clock(epoch_ms: int, spec: WindowSpec) -> str:
    from zoneinfo import ZoneInfo

    return dt.datetime.fromtimestamp(epoch_ms / 1000, ZoneInfo(spec.tz)).strftime("%H:%M")


def device_packets(flows: FlowTable) -> DevicePackets:
    """Columnar packets of a (device's) flow table, with each flow's protocol-row mask."""
    masks = np.array(
        [row_mask(int(p), str(a)) for p, a in zip(flows.ip_protocol, flows.application_name, strict=True)],
        dtype=np.int64,
    )
    return DevicePackets(
        time_ms=flows.packet_time_ms,
        direction=flows.packet_direction,
        size=flows.packet_size,
        flow=flows.packet_flow,
        flow_row_mask=masks,
        flow_client_port=flows.client_port,
        flow_server_port=flows.server_port,
    )


def fingerprint_device(flows: FlowTable, device: Device, spec: WindowSpec) -> list[DeviceDay]:
    """All non-blank fingerprints of one device, grouped by day."""
    own = flows.subset(device_flow_index(flows, device.mac))
    packets = device_packets(own)
    assignment = assign_windows(packets.time_ms, spec)
    windows, matrices = window_features(packets, assignment, spec.window_minutes * 60.0)
    images = to_images(matrices) if len(matrices) else np.zeros((0, *matrices.shape[1:]), np.uint8)
    blank = blank_images(images) if len(images) else np.zeros(0, dtype=bool)
    result = []
    for day_number in np.unique(windows[:, 0]):
        on_day = windows[:, 0] == day_number
        keep = on_day & ~blank
        day = assignment.days[int(day_number)]
        window_index = windows[keep, 1]
        result.append(
            DeviceDay(
                device=device,
                day=day,
                window_index=window_index,
                window_start_ms=np.array([spec.window_start_ms(day, int(w)) for w in window_index], dtype=np.int64),
                features=matrices[keep],
                images=images[keep],
                blank_dropped=int((on_day & blank).sum()),
            )
        )
    return result


def fingerprint_flows(
    flows: FlowTable,
    spec: WindowSpec,
    known_devices: list[Device] | None = None,
    gateways: set[str] | None = None,
    on_device_done: Callable[[Device], None] | None = None,
    devices: list[Device] | None = None,
) -> FingerprintSet:
    """Fingerprints of every device of the flows (``devices``: already found, not searched again)."""
    devices = devices if devices is not None else find_devices(flows, known=known_devices, gateways=gateways)
    result = FingerprintSet(spec=spec, devices=devices)
    for device in devices:
        result.device_days.extend(fingerprint_device(flows, device, spec))
        if on_device_done:
            on_device_done(device)
    return result


def fingerprint_pcaps(
    paths: Sequence[str | os.PathLike],
    spec: WindowSpec,
    known_devices: list[Device] | None = None,
    gateways: set[str] | None = None,
    settings: FlowSettings = FlowSettings(),
    workers: int | None = None,
) -> FingerprintSet:
    """Fingerprints of every device in the given captures (files or directories)."""
    files = expand_captures(paths)
    if not files:
        raise FileNotFoundError(f"no capture files ({', '.join(CAPTURE_SUFFIXES)}) under {list(map(str, paths))}")
    flows = read_flows(files, settings, workers=workers)
    return fingerprint_flows(flows, spec, known_devices, gateways)


@dataclass(frozen=True)
class DeviceCoverage:
    """How much a device's fingerprints hold: images per day and non-empty pixels per protocol row."""

    device: Device
    days: int
    images: int
    per_day_mean: float
    per_day_min: int
    per_day_max: int
    blank_dropped: int
    row_pixel_share: dict[str, float]


def coverage(fingerprints: FingerprintSet) -> list[DeviceCoverage]:
    out = []
    for device in fingerprints.devices:
        days = fingerprints.for_device(device.mac)
        counts = [d.n_images for d in days]
        stacked = np.concatenate([d.images for d in days]) if days else np.zeros((0, 13, 53), np.uint8)
        share = (stacked > 0).mean(axis=(0, 2)) if len(stacked) else np.zeros(len(PROTOCOL_ROWS))
        out.append(
            DeviceCoverage(
                device=device,
                days=len(days),
                images=int(sum(counts)),
                per_day_mean=float(np.mean(counts)) if counts else 0.0,
                per_day_min=int(min(counts)) if counts else 0,
                per_day_max=int(max(counts)) if counts else 0,
                blank_dropped=int(sum(d.blank_dropped for d in days)),
                row_pixel_share={row: float(v) for row, v in zip(PROTOCOL_ROWS, share, strict=True)},
            )
        )
    return out
