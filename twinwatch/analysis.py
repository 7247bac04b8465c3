"""The embedded main job: fingerprints → a trained twin → a decision per device and day."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twinwatch.decisions import INSUFFICIENT, DayDecision, DecisionRules, decide_day
from twinwatch.devices import Device
from twinwatch.fingerprint import FingerprintSet
from twinwatch.twin import EpochRecord, TrainConfig, TrainedTwin, distance_matrix, embed, make_pairs, train_twin

logger = logging.getLogger(__name__)

EMPTY = np.zeros((0, 13, 53), dtype=np.uint8)


@dataclass(frozen=True)
class DayPlan:
    """A device's days: its baseline, the day it trains on, the day it validates on, then the rest."""

    baseline: dt.date
    training: dt.date
    validation: dt.date
    evaluated: tuple[dt.date, ...]


def images_by_device_day(fingerprints: FingerprintSet) -> dict[tuple[str, dt.date], np.ndarray]:
    return {(d.device.mac, d.day): d.images for d in fingerprints.device_days}


def plan_device(days: dict[dt.date, int], rules: DecisionRules = DecisionRules(),
                baseline: dt.date | None = None) -> DayPlan | str:
    """One device's plan from its fingerprint count per day: its first three days with at least
    ``rules.min_windows`` fingerprints (from ``baseline`` on, when given), then every later day; or,
    when it has no such three days yet, why. The embedded run and the streaming evaluator both plan
    with this, so both judge the same days."""
    usable = sorted(d for d, n in days.items() if n >= rules.min_windows and (baseline is None or d >= baseline))
    if baseline is not None and baseline not in usable:
        return f"fewer than {rules.min_windows} fingerprints on the baseline day {baseline}"
    if len(usable) < 3:
        return (f"needs a baseline, a training and a validation day with ≥ {rules.min_windows} "
                f"fingerprints each; has {len(usable)} such day(s) of {len(days)}")
    return DayPlan(usable[0], usable[1], usable[2], tuple(d for d in sorted(days) if d > usable[2]))


def plan_devices(
    fingerprints: FingerprintSet, rules: DecisionRules = DecisionRules(), baseline: dt.date | None = None
) -> tuple[dict[str, DayPlan], dict[str, str]]:
    """Each device's baseline, training and validation day (see ``plan_device``). In a lab every device
    shares days 1, 2 and 3 as in the paper; on real captures devices join on different days. Returns the
    plans and, for devices without one, why."""
    plans: dict[str, DayPlan] = {}
    skipped: dict[str, str] = {}
    for device in fingerprints.devices:
        plan = plan_device({d.day: d.n_images for d in fingerprints.for_device(device.mac)}, rules, baseline)
        if isinstance(plan, DayPlan):
            plans[device.mac] = plan
        else:
            skipped[device.mac] = plan
    return plans, skipped


def plan_days(days: list[dt.date], baseline: dt.date | None = None) -> DayPlan:
    """The lab's shared plan: baseline (first day unless given), then training and validation days."""
    days = sorted(days)
    baseline = baseline or (days[0] if days else None)
    if baseline is None or baseline not in days:
        raise ValueError(f"baseline day {baseline} has no fingerprints; days with data: "
                         f"{', '.join(map(str, days)) or 'none'} (check --quiet and --tz)")
    later = [d for d in days if d > baseline]
    if len(later) < 2:
        raise ValueError(f"the twin needs a baseline, a training and a validation day; after {baseline} "
                         f"there are {len(later)} day(s) with fingerprints")
    return DayPlan(baseline, later[0], later[1], tuple(later[2:]))


def model_version(model: TrainedTwin) -> str:
    digest = hashlib.sha256()
    for tensor in model.model.state_dict().values():
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return "tnn-" + digest.hexdigest()[:12]


def train_from_fingerprints(
    fingerprints: FingerprintSet,
    plans: dict[str, DayPlan],
    config: TrainConfig = TrainConfig(),
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainedTwin:
    """Train on baseline × training-day pairs, validate on baseline × validation-day pairs (per device)."""
    images = images_by_device_day(fingerprints)
    baseline = {mac: images[(mac, plan.baseline)] for mac, plan in plans.items()}
    training = {mac: images[(mac, plan.training)] for mac, plan in plans.items()}
    validation = {mac: images[(mac, plan.validation)] for mac, plan in plans.items()}
    rng = np.random.default_rng(config.pair_seed)
    train = make_pairs(baseline, training, rng)
    validate = make_pairs(baseline, validation, rng)
    shared = {(p.baseline, p.training, p.validation) for p in plans.values()}
    metadata = {
        "days": ({"baseline": str(b), "training": str(t), "validation": str(v)} for b, t, v in shared).__next__()
        if len(shared) == 1 else "per device",
        "devices": {mac: {"baseline": str(p.baseline), "training": str(p.training), "validation": str(p.validation)}
                    for mac, p in plans.items()},
        "window_spec": vars(fingerprints.spec) | {"period_start": fingerprints.spec.period_start.isoformat()},
    }
    return train_twin(train, validate, config, metadata, on_epoch)


@dataclass
class DeviceBaseline:
    """What a device's later days are judged against: its baseline images and reference scores."""

    device: Device
    baseline_images: np.ndarray
    reference_images: np.ndarray
    baseline_scores: np.ndarray | None
    baseline_embeddings: Any = None  # embedded once with the reference scores, reused for every judged day


@dataclass
class Analysis:
    plans: dict[str, DayPlan]
    model_version: str
    devices: list[Device]
    decisions: list[DayDecision] = field(default_factory=list)
    baselines: dict[str, DeviceBaseline] = field(default_factory=dict)
    day_images: dict[tuple[str, dt.date], np.ndarray] = field(default_factory=dict)

    def decision(self, mac: str, day: dt.date) -> DayDecision | None:
        return next((d for d in self.decisions if d.mac == mac and d.day == day), None)

    def shared_plan(self) -> DayPlan | None:
        plans = set(self.plans.values())
        return plans.pop() if len(plans) == 1 else None


def reference_day(plan: DayPlan, rules: DecisionRules) -> dt.date:
    return plan.training if rules.reference == "training" else plan.validation


def judged_days(plan: DayPlan, rules: DecisionRules) -> tuple[dt.date, ...]:
    """The days that get a verdict: after the reference day (with the paper's training-day reference,
    the validation day is judged too)."""
    return (plan.validation, *plan.evaluated) if rules.reference == "training" else plan.evaluated


Embedder = Callable[[np.ndarray], Any]
"""Images (n, 13, 53) uint8 → the twin arm's embeddings (n, 32) as a tensor or array: in-process or from Triton."""


def in_process(model: TrainedTwin) -> Embedder:
    return lambda images: embed(model.model, images)


def device_baseline(embedder: Embedder, device: Device, baseline_images: np.ndarray,
                    reference_images: np.ndarray, rules: DecisionRules) -> DeviceBaseline:
    """Reference scores: every baseline × reference-day pair of the device (section 4.4)."""
    scores = embedded = None
    if len(baseline_images) >= rules.min_windows and len(reference_images) >= rules.min_windows:
        embedded = embedder(baseline_images)
        scores = distance_matrix(embedded, embedder(reference_images)).ravel()
    return DeviceBaseline(device, baseline_images, reference_images, scores, embedded)


def judge_day(embedder: Embedder, reference: DeviceBaseline, day: dt.date, images: np.ndarray,
              rules: DecisionRules) -> DayDecision:
    """One device-day: score every baseline × day pair (one embedding per image, then all distances)
    and decide. The embedded run and the streaming evaluator both judge with this."""
    scores = None
    if reference.baseline_scores is not None and len(images) >= rules.min_windows:
        scores = distance_matrix(reference.baseline_embeddings, embedder(images))
    return decide_day(reference.device.mac, day, reference.baseline_images, images, scores,
                      reference.baseline_scores, rules, reference_windows=len(reference.reference_images))


def analyse(
    fingerprints: FingerprintSet,
    model: TrainedTwin,
    plans: dict[str, DayPlan],
    rules: DecisionRules = DecisionRules(),
    on_device_done: Callable[[Device], None] | None = None,
    skipped: dict[str, str] | None = None,
) -> Analysis:
    """Decide every device on every day after its reference day; devices without a plan get
    insufficient-data on each of their days, with the reason."""
    images = images_by_device_day(fingerprints)
    result = Analysis(plans=plans, model_version=model_version(model), devices=list(fingerprints.devices))
    embedder = in_process(model)
    for device in fingerprints.devices:
        mac = device.mac
        plan = plans.get(mac)
        if plan is None:
            reason = (skipped or {}).get(mac, "no baseline plan")
            for device_day in fingerprints.for_device(mac):
                result.decisions.append(DayDecision(mac, device_day.day, INSUFFICIENT, reason,
                                                    device_day.n_images, 0))
            continue
        reference = device_baseline(embedder, device, images[(mac, plan.baseline)],
                                    images[(mac, reference_day(plan, rules))], rules)
        result.baselines[mac] = reference
        for day in judged_days(plan, rules):
            day_images = images.get((mac, day), EMPTY)
            result.day_images[(mac, day)] = day_images
            result.decisions.append(judge_day(embedder, reference, day, day_images, rules))
        if on_device_done:
            on_device_done(device)
    return result


def untrainable(fingerprints: FingerprintSet, skipped: dict[str, str], reason: str) -> Analysis:
    """When no twin can be trained (fewer than two devices with three usable days): every device-day
    is insufficient-data, with the device's own reason and why training was impossible."""
    result = Analysis(plans={}, model_version="none", devices=list(fingerprints.devices))
    for device in fingerprints.devices:
        why = "; ".join(filter(None, (skipped.get(device.mac), reason)))
        for device_day in fingerprints.for_device(device.mac):
            result.decisions.append(DayDecision(device.mac, device_day.day, INSUFFICIENT, why, device_day.n_images, 0))
    return result


def change_event(decision: DayDecision, device: Device, baseline_day: dt.date, model_version: str,
                 served_version: int | None = None):
    """One decision as a ChangeEvent (the SIEM contract in ``schemas``)."""
    from schemas.events import ChangeEvent, ChangeMetrics, DeviceRef, Driver

    metrics = decision.metrics
    return ChangeEvent(
        device=DeviceRef(mac=device.mac, ip=device.ip, name=device.name, model=device.model),
        day=decision.day,
        verdict=decision.verdict,
        reason=decision.reason,
        metrics=None if metrics is None else ChangeMetrics(
            all_samples_dissimilar_share=metrics.dissimilar_share,
            majority_samples_dissimilar=metrics.majority_dissimilar,
            mean_score=metrics.day_mean,
            mean_threshold_exceeded=metrics.mean_above_threshold,
            hedges_g=metrics.hedges_g,
            effect_size=metrics.effect_size,
            baseline_mean=metrics.baseline_mean,
            scores=metrics.scores,
            baseline_scores=metrics.baseline_scores,
        ),
        why=[Driver(kind=d.kind, name=d.name, baseline=d.baseline, day=d.day, text=d.describe())
             for d in decision.drivers],
        day_windows=decision.day_windows,
        baseline_windows=decision.baseline_windows,
        baseline_day=baseline_day,
        model_version=model_version,
        served_version=served_version,
    )


def change_events(analysis: Analysis) -> list:
    """The analysis as ChangeEvents, one per judged device-day."""
    devices = {d.mac: d for d in analysis.devices}
    return [change_event(decision, devices[decision.mac],
                         analysis.plans[decision.mac].baseline if decision.mac in analysis.plans else decision.day,
                         analysis.model_version)
            for decision in analysis.decisions]
