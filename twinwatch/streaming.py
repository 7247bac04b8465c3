"""The streaming path's domain logic: flows split per device, windows closed in event time.

The services are thin adapters over these classes; they call the same feature, image and decision
functions as the embedded run, so both reach the same fingerprints and verdicts.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from twinwatch.analysis import (
    EMPTY,
    DayPlan,
    DeviceBaseline,
    Embedder,
    device_baseline,
    judge_day,
    judged_days,
    plan_device,
    reference_day,
)
from twinwatch.decisions import DayDecision, DecisionRules
from twinwatch.devices import Device, _address_kind, _unicast_mac
from twinwatch.features import DevicePackets, window_features
from twinwatch.fingerprint import DeviceDay, FingerprintSet, device_packets
from twinwatch.flows import FlowSettings, FlowTable
from twinwatch.images import IMAGE_SHAPE, blank_images, to_images
from twinwatch.windows import WindowSpec, assign_windows

logger = logging.getLogger(__name__)


def records_of_row(row: dict, source: str, gateways: set[str] | None = None) -> list[dict]:
    """FlowRecords of one flow: one per local end (a unicast MAC with a private address).

    A flow between two local devices gives two records; an end in ``gateways`` gives none
    (without the list, consumers drop router MACs they learn from public traffic).
    """
    gateways = gateways or set()
    base = {
        "schema_version": 1,
        "source": source,
        "client_mac": str(row["client_mac"]),
        "server_mac": str(row["server_mac"]),
        "client_ip": str(row["client_ip"]),
        "server_ip": str(row["server_ip"]),
        "client_port": int(row["client_port"]),
        "server_port": int(row["server_port"]),
        "ip_protocol": int(row["ip_protocol"]),
        "application_name": str(row["application_name"]),
        "first_seen_ms": int(row["first_seen_ms"]),
        "times_ms": [int(t) for t in row["times"]],
        "directions": [int(d) for d in row["directions"]],
        "sizes": [int(v) for v in row["sizes"]],
    }
    out, seen = [], set()
    for mac, ip in ((base["client_mac"], base["client_ip"]), (base["server_mac"], base["server_ip"])):
        if mac in seen or mac in gateways or not _unicast_mac(mac) or _address_kind(ip) != "local":
            continue
        seen.add(mac)
        out.append(base | {"device_mac": mac})
    return out


class DeviceSplitter:
    """FlowRecords of flows as they pass (``records_of_row``), without the gateways' own traffic.

    Gateways given are dropped; without them, routers are learnt as the embedded run finds them over
    a whole capture (``devices.find_routers``: a MAC that carries a public address) and dropped from
    the moment they are known, so only a router's first few local flows go out as a device's.
    """

    def __init__(self, gateways: set[str] | None = None) -> None:
        self.gateways = {g.lower() for g in gateways or ()}
        self.learn = not self.gateways
        self.routers: set[str] = set()

    def records(self, row: dict, source: str) -> list[dict]:
        if self.learn:
            for mac, ip in ((row["client_mac"], row["client_ip"]), (row["server_mac"], row["server_ip"])):
                if _address_kind(str(ip)) == "global" and _unicast_mac(str(mac)) and mac not in self.routers:
                    logger.info("router %s learnt (it carries the public address %s)", mac, ip)
                    self.routers.add(str(mac))
        return records_of_row(row, source, self.gateways | self.routers)


def flow_records(flows: FlowTable, gateways: set[str] | None = None) -> Iterator[dict]:
    """FlowRecords of every flow of a table (see ``records_of_row``)."""
    starts = np.searchsorted(flows.packet_flow, np.arange(flows.n_flows), side="left")
    ends = np.searchsorted(flows.packet_flow, np.arange(flows.n_flows), side="right")
    for index in range(flows.n_flows):
        packets = slice(starts[index], ends[index])
        row = {name: getattr(flows, name)[index] for name in (
            "client_mac", "server_mac", "client_ip", "server_ip", "client_port", "server_port", "ip_protocol",
            "application_name", "first_seen_ms")}
        row |= {"times": flows.packet_time_ms[packets], "directions": flows.packet_direction[packets],
                "sizes": flows.packet_size[packets]}
        yield from records_of_row(row, str(flows.source[index]), gateways)


@dataclass
class ClosedWindow:
    device_mac: str
    device_ip: str
    day: dt.date
    window_index: int
    window_start_ms: int
    window_end_ms: int
    image: np.ndarray | None  # None: the window was blank (all black or white) and is dropped


@dataclass
class WindowBuilder:
    """Per-device flows held until their quiet-period windows close in event time.

    A window closes once the watermark (the latest packet time seen, over all devices of this
    builder) passes its end by ``grace_ms``; ``flush()`` closes every window (end of a replay,
    or the wall-clock fallback when a quiet link sends nothing). A flow record arrives when its
    flow expires, up to the active timeout (1800 s) after its first packet, so the default grace is
    that timeout plus a minute: no packet of a closed window can still be on its way. Its state is
    plain data, so a Faust table can keep it and recover it from the changelog.
    """

    spec: WindowSpec
    grace_ms: int = (FlowSettings.active_timeout_s + 60) * 1000
    flows: dict[str, list[dict]] = field(default_factory=dict)
    closed: dict[str, set[tuple[str, int]]] = field(default_factory=dict)
    watermark_ms: int = 0
    device_ips: dict[str, str] = field(default_factory=dict)
    forgotten: list[tuple[str, str]] = field(default_factory=list)  # (mac, record "_id") pruned since drained
    next_close_ms: int = 0  # no window ends before this: closing earlier finds nothing
    held_ids: set[tuple[str, str]] = field(default_factory=set)

    def add(self, record: dict) -> bool:
        """Hold one FlowRecord; an optional ``_id`` names it (in ``forgotten`` once pruned), and a record
        whose id is held already (re-read after a restart) is not counted twice: False."""
        mac = record["device_mac"]
        if "_id" in record:
            if (mac, record["_id"]) in self.held_ids:
                return False
            self.held_ids.add((mac, record["_id"]))
        self.flows.setdefault(mac, []).append(record)
        self.watermark_ms = max(self.watermark_ms, max(record["times_ms"]))
        ip = record["client_ip"] if record["client_mac"] == mac else record["server_ip"]
        if _address_kind(ip) == "local":
            self.device_ips[mac] = ip
        return True

    def advance_to(self, now_ms: int) -> None:
        """Move the watermark on by the wall clock (live links that went quiet)."""
        self.watermark_ms = max(self.watermark_ms, now_ms)

    def close_ready(self) -> list[ClosedWindow]:
        """Windows over by the watermark less the grace; cheap until the next window end is passed."""
        until = self.watermark_ms - self.grace_ms
        if until < self.next_close_ms:
            return []
        closed = self._close(until)
        self.next_close_ms = self.spec.next_window_end_ms(until)
        return closed

    def flush(self) -> list[ClosedWindow]:
        return self._close(None)

    def _close(self, until_ms: int | None) -> list[ClosedWindow]:
        out: list[ClosedWindow] = []
        for mac in sorted(self.flows):
            out.extend(self._close_device(mac, until_ms))
        return out

    def _close_device(self, mac: str, until_ms: int | None) -> list[ClosedWindow]:
        records = self.flows[mac]
        if not records:
            return []
        packets = _device_packets(records)
        assignment = assign_windows(packets.time_ms, self.spec)
        windows, matrices = window_features(packets, assignment, self.spec.window_minutes * 60.0)
        done = self.closed.setdefault(mac, set())
        ready, keys = [], []
        for row, (day_number, window) in enumerate(windows):
            day = assignment.days[int(day_number)]
            start = self.spec.window_start_ms(day, int(window))
            end = start + self.spec.window_ms
            key = (day.isoformat(), int(window))
            if key in done or (until_ms is not None and end > until_ms):
                continue
            ready.append(row)
            keys.append((day, int(window), start, end))
        out = []
        if ready:
            images = to_images(matrices[ready])
            blank = blank_images(images)
            for (day, window, start, end), image, is_blank in zip(keys, images, blank, strict=True):
                done.add((day.isoformat(), window))
                out.append(ClosedWindow(mac, self.device_ips.get(mac, ""), day, window, start, end,
                                        None if is_blank else image))
        # Forget flows that can no longer reach an open window.
        horizon = None if until_ms is None else until_ms - self.spec.window_ms
        keep, drop = [], []
        for record in records:
            (keep if horizon is not None and max(record["times_ms"]) >= horizon else drop).append(record)
        dropped = [(mac, record["_id"]) for record in drop if "_id" in record]
        self.forgotten.extend(dropped)
        self.held_ids.difference_update(dropped)
        self.flows[mac] = keep
        return out


def _device_packets(records: list[dict]) -> DevicePackets:
    """The same columnar packets the embedded run builds, from FlowRecords instead of nfstream rows."""
    rows = [record | {"times": record["times_ms"]} for record in records]
    return device_packets(FlowTable.from_rows(rows, source="stream"))


@dataclass
class DayCollector:
    """Each device's fingerprints gathered by day, until the day's quiet period is over.

    A device-day is complete once the watermark passes the end of the period's last window plus
    ``grace_ms``; an image seen twice (a window re-sent after a restart) counts once.
    """

    spec: WindowSpec
    grace_ms: int = 0
    images: dict[tuple[str, dt.date], dict[int, np.ndarray]] = field(default_factory=dict)
    done: set[tuple[str, dt.date]] = field(default_factory=set)
    watermark_ms: int = 0

    def add(self, mac: str, day: dt.date, window_index: int, image: np.ndarray, window_end_ms: int) -> bool:
        """Keep one image; False when its day was already handed out (a late image: logged, not lost)."""
        self.watermark_ms = max(self.watermark_ms, window_end_ms)
        if (mac, day) in self.done:
            logger.warning("late fingerprint for %s %s window %d: its day was already judged", mac, day, window_index)
            return False
        self.images.setdefault((mac, day), {})[window_index] = np.asarray(image, dtype=np.uint8)
        return True

    def day_end_ms(self, day: dt.date) -> int:
        last = self.spec.windows_per_day - 1
        return self.spec.window_start_ms(day, last) + self.spec.window_ms

    def complete(self, until_ms: int | None = None) -> list[tuple[str, dt.date, np.ndarray]]:
        """Device-days whose period is over by ``until_ms`` (default: the watermark), images in window order."""
        limit = self.watermark_ms if until_ms is None else until_ms
        return self._hand_out(sorted(k for k in self.images if self.day_end_ms(k[1]) + self.grace_ms <= limit))

    def flush(self) -> list[tuple[str, dt.date, np.ndarray]]:
        """Every device-day still held (end of a replay)."""
        return self._hand_out(sorted(self.images))

    def _hand_out(self, keys: list[tuple[str, dt.date]]) -> list[tuple[str, dt.date, np.ndarray]]:
        out = []
        for mac, day in keys:
            windows = self.images.pop((mac, day))
            self.done.add((mac, day))
            out.append((mac, day, np.stack([windows[w] for w in sorted(windows)])))
        return out


@dataclass
class DeviceTrack:
    """What the evaluator keeps of one device: fingerprints per complete day, the images it still
    needs (learning days until its plan exists, then the baseline and reference days, and days waiting
    for a verdict), its plan and the days already judged."""

    mac: str
    ip: str = ""
    counts: dict[dt.date, int] = field(default_factory=dict)
    held: dict[dt.date, np.ndarray] = field(default_factory=dict)
    plan: DayPlan | None = None
    waiting: list[dt.date] = field(default_factory=list)
    judged: set[dt.date] = field(default_factory=set)


class StreamEvaluator:
    """The evaluator's domain logic: fingerprints in, one decision per device-day out.

    Images are gathered per device-day until the day's quiet period is over (``DayCollector``); each
    device is planned from its complete days with the embedded run's ``plan_device`` and judged with
    its ``device_baseline`` / ``judge_day``, so the verdicts equal ``analyze``'s on the same images. The
    scoring goes through an ``Embedder``: Triton in the service, the in-process arm in tests. Its
    state is plain data per device (``state_of`` / ``restore``), so a service can keep it in a
    compacted topic and recover it after a restart.
    """

    def __init__(self, spec: WindowSpec, rules: DecisionRules = DecisionRules(), grace_ms: int = 3_600_000) -> None:
        self.spec = spec
        self.rules = rules
        self.collector = DayCollector(spec, grace_ms)
        self.tracks: dict[str, DeviceTrack] = {}
        self._baselines: dict[tuple[str, str], DeviceBaseline] = {}

    # -- input ------------------------------------------------------------------------------------
    def add_image(self, mac: str, ip: str, day: dt.date, window_index: int, image: np.ndarray,
                  window_end_ms: int) -> bool:
        """Keep one window's fingerprint; False for a late one (its day was already complete)."""
        track = self.tracks.setdefault(mac, DeviceTrack(mac))
        track.ip = ip or track.ip
        return self.collector.add(mac, day, window_index, image, window_end_ms)

    def complete(self, until_ms: int | None = None) -> set[str]:
        """Close the device-days that are over (by the watermark, or by ``until_ms``: the wall clock);
        returns the devices whose state changed."""
        return self._take(self.collector.complete(until_ms))

    def flush(self) -> set[str]:
        """Close every device-day still open (the end of a replay)."""
        return self._take(self.collector.flush())

    def _take(self, days: list[tuple[str, dt.date, np.ndarray]]) -> set[str]:
        for mac, day, images in days:
            track = self.tracks.setdefault(mac, DeviceTrack(mac))
            track.counts[day] = len(images)
            track.held[day] = images
            if track.plan is None:
                plan = plan_device(track.counts, self.rules)
                if isinstance(plan, DayPlan):
                    track.plan = plan
                    track.waiting = [d for d in judged_days(plan, self.rules) if d in track.counts]
                    keep = {plan.baseline, reference_day(plan, self.rules), *track.waiting}
                    track.held = {d: i for d, i in track.held.items() if d in keep}
            elif day > track.plan.validation and day not in track.judged:
                track.waiting.append(day)
        return {mac for mac, _, _ in days}

    # -- output -----------------------------------------------------------------------------------
    def due(self) -> list[tuple[str, dt.date]]:
        """Device-days ready for a verdict, oldest first."""
        return sorted(((mac, day) for mac, track in self.tracks.items() for day in track.waiting),
                      key=lambda k: (k[1], k[0]))

    def judge(self, mac: str, day: dt.date, embedder: Embedder, model_key: str) -> DayDecision:
        """The verdict of a due device-day, scored through ``embedder`` (the model named ``model_key``)."""
        track = self.tracks[mac]
        plan = track.plan
        assert plan is not None and day in track.waiting, f"{mac} {day} is not due"
        reference = self._baselines.get((mac, model_key))
        if reference is None:
            device = Device(mac, track.ip)
            reference = device_baseline(embedder, device, track.held[plan.baseline],
                                        track.held[reference_day(plan, self.rules)], self.rules)
            self._baselines[(mac, model_key)] = reference
        return judge_day(embedder, reference, day, track.held.get(day, EMPTY), self.rules)

    def judged(self, mac: str, day: dt.date) -> None:
        """The day's verdict is published: forget its images."""
        track = self.tracks[mac]
        track.waiting.remove(day)
        track.judged.add(day)
        if track.plan and day not in (track.plan.baseline, reference_day(track.plan, self.rules)):
            track.held.pop(day, None)

    def device(self, mac: str) -> Device:
        return Device(mac, self.tracks[mac].ip)

    # -- state ------------------------------------------------------------------------------------
    def state_of(self, mac: str) -> dict:
        """One device's state as plain JSON data (images as base64 of their bytes)."""
        track = self.tracks[mac]
        open_days = {day.isoformat(): {str(w): _b64(image) for w, image in windows.items()}
                     for (m, day), windows in self.collector.images.items() if m == mac}
        plan = track.plan
        return {
            "ip": track.ip,
            "counts": {d.isoformat(): n for d, n in track.counts.items()},
            "held": {d.isoformat(): _b64(images) for d, images in track.held.items()},
            "plan": None if plan is None else {"baseline": plan.baseline.isoformat(),
                                               "training": plan.training.isoformat(),
                                               "validation": plan.validation.isoformat()},
            "waiting": [d.isoformat() for d in track.waiting],
            "judged": sorted(d.isoformat() for d in track.judged),
            "open": open_days,
            "watermark_ms": self.collector.watermark_ms,
        }

    def restore(self, mac: str, state: dict) -> None:
        """Take one device's state back (after a restart), as ``state_of`` wrote it."""
        day = dt.date.fromisoformat
        counts = {day(d): int(n) for d, n in state["counts"].items()}
        plan = state["plan"]
        track = DeviceTrack(
            mac, state.get("ip", ""), counts,
            {day(d): _unb64(text) for d, text in state["held"].items()},
            None if plan is None else DayPlan(day(plan["baseline"]), day(plan["training"]), day(plan["validation"]),
                                              tuple(d for d in sorted(counts) if d > day(plan["validation"]))),
            [day(d) for d in state["waiting"]],
            {day(d) for d in state["judged"]},
        )
        self.tracks[mac] = track
        for iso, windows in state["open"].items():
            self.collector.images[(mac, day(iso))] = {int(w): _unb64(text)[0] for w, text in windows.items()}
        self.collector.done |= {(mac, d) for d in counts} | {(mac, d) for d in track.judged}
        self.collector.watermark_ms = max(self.collector.watermark_ms, int(state.get("watermark_ms", 0)))


def _b64(images: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(images, dtype=np.uint8).tobytes()).decode()


def _unb64(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.uint8).reshape(-1, *IMAGE_SHAPE).copy()


def training_fingerprints(spec: WindowSpec, days: dict[tuple[str, dt.date], np.ndarray],
                          ips: dict[str, str] | None = None) -> FingerprintSet:
    """Complete device-days from the stream as the FingerprintSet the embedded trainer takes."""
    ips = ips or {}
    devices = [Device(mac, ips.get(mac, "")) for mac in sorted({mac for mac, _ in days})]
    by_mac = {d.mac: d for d in devices}
    device_days = []
    for (mac, day), images in sorted(days.items()):
        n = len(images)
        device_days.append(DeviceDay(by_mac[mac], day, np.arange(n), np.zeros(n, dtype=np.int64),
                                     np.zeros((n, 0)), np.asarray(images, dtype=np.uint8)))
    return FingerprintSet(spec, devices, device_days)
