"""The paper's two experiments on a lab with ground truth (sections 4.4 and 5, Tables 3–7).

Experiment 1: baseline × days 4 … change_day − 1, every device on its first firmware (correct =
"same"). Experiment 2: baseline × days change_day … last, devices whose firmware changed (correct =
"changed"). A device whose change is invisible to flow statistics is reported on its own, never
counted in either; devices that kept their firmware past the change day are the controls.
Runs differ only in their dissimilar pairs (``pair_seed``), as in the paper.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from twinwatch.analysis import DayPlan, analyse, plan_days, train_from_fingerprints
from twinwatch.decisions import CHANGED, DayDecision, DecisionRules
from twinwatch.fingerprint import FingerprintSet
from twinwatch.twin import EpochRecord, TrainConfig

METRICS = ("all", "majority", "mean", "hedges", "verdict")
METRIC_NAMES = {
    "all": "All samples",
    "majority": "Majority samples",
    "mean": "Mean threshold",
    "hedges": "Hedges' g",
    "verdict": "twinwatch verdict",
}
INVISIBLE = "invisible"


@dataclass(frozen=True)
class LabDeviceTruth:
    mac: str
    key: str
    name: str
    change: str | None


@dataclass(frozen=True)
class LabTruth:
    start_date: dt.date
    days: int
    change_day: int
    devices: dict[str, LabDeviceTruth]

    def date(self, day: int) -> dt.date:
        return self.start_date + dt.timedelta(days=day - 1)

    def day_number(self, date: dt.date) -> int:
        return (date - self.start_date).days + 1


def read_lab_truth(lab: str | os.PathLike) -> LabTruth:
    """Ground truth from a simulated lab's ``lab.json`` and ``manifest.csv``."""
    folder = Path(lab)
    for name in ("lab.json", "manifest.csv"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder}: no {name} (experiments need a lab written by 'twinwatch simulate')")
    config = json.loads((folder / "lab.json").read_text())["config"]
    devices: dict[str, LabDeviceTruth] = {}
    with open(folder / "manifest.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            devices[row["mac"]] = LabDeviceTruth(row["mac"], row["device"], row["name"], row["change_kind"] or None)
    return LabTruth(dt.date.fromisoformat(config["start_date"]), config["days"], config["change_day"], devices)


@dataclass
class Tally:
    """Correct counts per metric over the device-days of one experiment (or one device in it)."""

    device_days: int = 0
    samples: int = 0
    correct_samples: int = 0
    correct: dict[str, int] = field(default_factory=lambda: {m: 0 for m in METRICS if m != "all"})

    def add(self, decision: DayDecision, expect_change: bool, rules: DecisionRules) -> None:
        metrics = decision.metrics
        assert metrics is not None
        self.device_days += 1
        self.samples += metrics.scores
        dissimilar = int(round(metrics.dissimilar_share * metrics.scores))
        self.correct_samples += dissimilar if expect_change else metrics.scores - dissimilar
        for metric in ("majority", "mean", "hedges"):
            self.correct[metric] += metrics.changed_by(metric, rules) == expect_change
        self.correct["verdict"] += (decision.verdict == CHANGED) == expect_change

    def accuracy(self) -> dict[str, float]:
        if not self.device_days:
            return {m: float("nan") for m in METRICS}
        out = {"all": self.correct_samples / max(self.samples, 1)}
        out.update({m: c / self.device_days for m, c in self.correct.items()})
        return out


@dataclass
class RunResult:
    run: int
    best: EpochRecord
    epochs: int
    seconds: float
    experiments: dict[str, dict[str, float]]  # experiment → metric → accuracy
    per_device: dict[str, dict[str, dict[str, float]]]  # experiment → mac → metric → accuracy
    insufficient: int


def experiment_sets(truth: LabTruth, decisions: list[DayDecision]) -> dict[str, list[tuple[DayDecision, bool]]]:
    """Sort judged device-days into experiment 1, experiment 2, controls and invisible changes."""
    sets: dict[str, list[tuple[DayDecision, bool]]] = {"experiment 1": [], "experiment 2": [], "controls": [],
                                                       "invisible": []}
    for decision in decisions:
        device = truth.devices.get(decision.mac)
        number = truth.day_number(decision.day)
        if device is None or number < 4 or decision.metrics is None:
            continue
        if number < truth.change_day:
            sets["experiment 1"].append((decision, False))
        elif device.change is None:
            sets["controls"].append((decision, False))
        elif device.change == INVISIBLE:
            sets["invisible"].append((decision, True))
        else:
            sets["experiment 2"].append((decision, True))
    return sets


def tally(truth: LabTruth, decisions: list[DayDecision], rules: DecisionRules
          ) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, dict[str, float]]]]:
    overall: dict[str, dict[str, float]] = {}
    per_device: dict[str, dict[str, dict[str, float]]] = {}
    for name, items in experiment_sets(truth, decisions).items():
        total, by_device = Tally(), {}
        for decision, expect in items:
            total.add(decision, expect, rules)
            by_device.setdefault(decision.mac, Tally()).add(decision, expect, rules)
        overall[name] = total.accuracy()
        per_device[name] = {mac: t.accuracy() for mac, t in by_device.items()}
    return overall, per_device


@dataclass
class ExperimentResult:
    truth: LabTruth
    plan: DayPlan
    rules: dict[str, DecisionRules]
    runs: dict[str, list[RunResult]]  # rule set name → runs

    def average(self, rule_set: str) -> dict[str, dict[str, float]]:
        runs = self.runs[rule_set]
        names = runs[0].experiments.keys()
        return {e: {m: float(np.nanmean([r.experiments[e][m] for r in runs])) for m in METRICS} for e in names}

    def device_average(self, rule_set: str, experiment: str) -> dict[str, dict[str, float]]:
        runs = self.runs[rule_set]
        macs = sorted({mac for r in runs for mac in r.per_device[experiment]})
        return {mac: {m: float(np.nanmean([r.per_device[experiment][mac][m] for r in runs
                                            if mac in r.per_device[experiment]])) for m in METRICS}
                for mac in macs}

    def to_json(self) -> dict:
        return {
            "plan": {k: str(v) for k, v in vars(self.plan).items()},
            "change_day": self.truth.change_day,
            "invisible_devices": [d.name for d in self.truth.devices.values() if d.change == INVISIBLE],
            "rules": {name: vars(rules) for name, rules in self.rules.items()},
            "runs": {
                name: [{"run": r.run, "best_epoch": r.best.epoch, "epochs": r.epochs, "seconds": r.seconds,
                        "train_loss": r.best.train_loss, "val_loss": r.best.val_loss,
                        "train_accuracy": r.best.train_accuracy, "val_accuracy": r.best.val_accuracy,
                        "experiments": r.experiments, "per_device": r.per_device,
                        "insufficient": r.insufficient} for r in runs]
                for name, runs in self.runs.items()
            },
            "average": {name: self.average(name) for name in self.runs},
            "device_average": {
                name: {e: self.device_average(name, e) for e in self.runs[name][0].experiments}
                for name in self.runs
            },
        }


RULE_SETS = {"paper": DecisionRules.paper(), "twinwatch": DecisionRules()}


def run_experiment(
    fingerprints: FingerprintSet,
    truth: LabTruth,
    runs: int = 10,
    config: TrainConfig = TrainConfig(),
    on_run_done: Callable[[RunResult], None] | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> ExperimentResult:
    """Train ``runs`` twins (pair seeds 0 … runs−1) and score both experiments under both rule sets."""
    import time

    plan = plan_days(fingerprints.days(), baseline=truth.start_date)
    plans = {device.mac: plan for device in fingerprints.devices}
    result = ExperimentResult(truth, plan, dict(RULE_SETS), {name: [] for name in RULE_SETS})
    for run in range(runs):
        started = time.perf_counter()
        model = train_from_fingerprints(fingerprints, plans, replace(config, pair_seed=run), on_epoch=on_epoch)
        seconds = time.perf_counter() - started
        for name, rules in RULE_SETS.items():
            analysis = analyse(fingerprints, model, plans, rules)
            overall, per_device = tally(truth, analysis.decisions, rules)
            record = RunResult(run + 1, model.best, len(model.history), seconds, overall, per_device,
                               sum(d.metrics is None for d in analysis.decisions))
            result.runs[name].append(record)
        if on_run_done:
            on_run_done(result.runs["twinwatch"][-1])
    return result

