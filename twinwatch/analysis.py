"""The embedded main job: fingerprints → a trained twin → a decision per device and day."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from twinwatch.decisions import INSUFFICIENT, DayDecision, DecisionRules, decide_day
from twinwatch.devices import Device
from twinwatch.fingerprint import FingerprintSet
from twinwatch.twin import EpochRecord, TrainConfig, TrainedTwin, make_pairs, score_matrix, train_twin

logger = logging.getLogger(__name__)

EMPTY = np.zeros((0, 13, 53), dtype=np.uint8)


@dataclass(frozen=True)
class DayPlan:
    """Which day is the baseline, which trains and which validates; every later day is evaluated."""

    baseline: dt.date
    training: dt.date
    validation: dt.date
    evaluated: tuple[dt.date, ...]


def images_by_day(fingerprints: FingerprintSet) -> dict[dt.date, dict[str, np.ndarray]]:
    by_day: dict[dt.date, dict[str, np.ndarray]] = {}
    for device_day in fingerprints.device_days:
        by_day.setdefault(device_day.day, {})[device_day.device.mac] = device_day.images
    return by_day


def plan_days(days: list[dt.date], baseline: dt.date | None = None) -> DayPlan:
    """Baseline (first day unless given), the next two days with data train and validate."""
    days = sorted(days)
    if baseline is None:
        if not days:
            raise ValueError("no day has any fingerprint: nothing to analyse (check --quiet and --tz)")
        baseline = days[0]
    later = [d for d in days if d > baseline]
    if baseline not in days:
        raise ValueError(f"baseline day {baseline} has no fingerprints; days with data: "
                         f"{', '.join(map(str, days)) or 'none'}")
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
    plan: DayPlan,
    config: TrainConfig = TrainConfig(),
    on_epoch: Callable[[EpochRecord], None] | None = None,
    rules: DecisionRules = DecisionRules(),
) -> TrainedTwin:
    """Train on baseline × training-day pairs, validate on baseline × validation-day pairs.

    Devices with fewer than ``rules.min_windows`` fingerprints on the baseline day are left out.
    """
    by_day = images_by_day(fingerprints)
    baseline = {mac: imgs for mac, imgs in by_day.get(plan.baseline, {}).items() if len(imgs) >= rules.min_windows}
    rng = np.random.default_rng(config.pair_seed)
    train = make_pairs(baseline, by_day.get(plan.training, {}), rng)
    validation = make_pairs(baseline, by_day.get(plan.validation, {}), rng)
    metadata = {
        "baseline_day": plan.baseline.isoformat(),
        "training_day": plan.training.isoformat(),
        "validation_day": plan.validation.isoformat(),
        "devices": sorted(set(train.left_device)),
        "window_spec": vars(fingerprints.spec) | {"period_start": fingerprints.spec.period_start.isoformat()},
    }
    return train_twin(train, validation, config, metadata, on_epoch)


@dataclass
class DeviceBaseline:
    """What a device's later days are judged against: its baseline images and reference scores."""

    device: Device
    baseline_images: np.ndarray
    reference_images: np.ndarray
    baseline_scores: np.ndarray | None


@dataclass
class Analysis:
    plan: DayPlan
    model_version: str
    devices: list[Device]
    decisions: list[DayDecision] = field(default_factory=list)
    baselines: dict[str, DeviceBaseline] = field(default_factory=dict)
    day_images: dict[tuple[str, dt.date], np.ndarray] = field(default_factory=dict)

    def decision(self, mac: str, day: dt.date) -> DayDecision | None:
        return next((d for d in self.decisions if d.mac == mac and d.day == day), None)


def reference_day(plan: DayPlan, rules: DecisionRules) -> dt.date:
    return plan.training if rules.reference == "training" else plan.validation


def device_baseline(model: TrainedTwin, device: Device, baseline_images: np.ndarray,
                    reference_images: np.ndarray, rules: DecisionRules) -> DeviceBaseline:
    """Reference scores: every baseline × reference-day pair of the device (section 4.4)."""
    scores = None
    if len(baseline_images) >= rules.min_windows and len(reference_images) >= rules.min_windows:
        scores = score_matrix(model.model, baseline_images, reference_images).ravel()
    return DeviceBaseline(device, baseline_images, reference_images, scores)


def judge_day(model: TrainedTwin, reference: DeviceBaseline, day: dt.date, images: np.ndarray,
              rules: DecisionRules) -> DayDecision:
    """One device-day: score every baseline × day pair and decide (the evaluator service does the same)."""
    scores = None
    if reference.baseline_scores is not None and len(images) >= rules.min_windows:
        scores = score_matrix(model.model, reference.baseline_images, images)
    return decide_day(reference.device.mac, day, reference.baseline_images, images, scores,
                      reference.baseline_scores, rules, reference_windows=len(reference.reference_images))


def analyse(
    fingerprints: FingerprintSet,
    model: TrainedTwin,
    plan: DayPlan,
    rules: DecisionRules = DecisionRules(),
    on_device_done: Callable[[Device], None] | None = None,
) -> Analysis:
    """Decide every device on every day after the reference day (with the paper's training-day
    reference, the validation day is judged too)."""
    by_day = images_by_day(fingerprints)
    result = Analysis(plan=plan, model_version=model_version(model), devices=list(fingerprints.devices))
    judged = (plan.validation, *plan.evaluated) if rules.reference == "training" else plan.evaluated
    for device in fingerprints.devices:
        mac = device.mac
        reference = device_baseline(model, device, by_day.get(plan.baseline, {}).get(mac, EMPTY),
                                    by_day.get(reference_day(plan, rules), {}).get(mac, EMPTY), rules)
        result.baselines[mac] = reference
        for day in judged:
            images = by_day.get(day, {}).get(mac, EMPTY)
            result.day_images[(mac, day)] = images
            decision = judge_day(model, reference, day, images, rules)
            if decision.verdict == INSUFFICIENT and not len(reference.baseline_images):
                decision.reason = f"not seen on the baseline day {plan.baseline}; " + decision.reason
            result.decisions.append(decision)
        if on_device_done:
            on_device_done(device)
    return result
