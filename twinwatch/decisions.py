"""Per device-day decisions: the paper's four metrics, Hedges' g, a verdict and why.

The scores of a day are every baseline image × day image pair of the device (≤ 900); the
reference scores are the device's baseline × training-day pairs (paper section 4.4).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from twinwatch.features import GROUP_SLICES
from twinwatch.protocols import PROTOCOL_ROWS
from twinwatch.statistics import hedges_g, sawilowsky_label

STABLE, CHANGED, INSUFFICIENT = "stable", "changed", "insufficient-data"
GROUP_NAMES = {1: "across-protocol", 2: "packets", 3: "timings", 4: "ports"}


REFERENCE_DAYS = ("training", "validation")


@dataclass(frozen=True)
class DecisionRules:
    """How a day's scores become a verdict.

    ``min_windows``: a baseline, reference or evaluated day with fewer fingerprints gives
    insufficient-data. ``reference``: which day's pairs with the baseline the day's scores are
    compared with — ``training`` is the paper's (baseline × training-day pairs, which the twin was
    fitted on, so their scores are optimistically tight and later days drift above them);
    ``validation`` (our default) uses the baseline × validation-day pairs, which the twin never
    trained on, so an unchanged device scores alike on the reference and on later days.
    ``min_shift``: the day's mean score must also exceed the reference mean by this much (in score
    units, where the margin is 1). Hedges' g divides by the pooled spread, and a device the twin knows
    well has reference scores a few thousandths apart, so a drift of 0.01 — nothing, next to the
    0.5 threshold — can read as a "medium" effect; the floor keeps g about changes of substance.
    """

    threshold: float = 0.5
    effect_size: float = 0.5
    min_windows: int = 4
    reference: str = "validation"
    min_shift: float = 0.05

    @classmethod
    def paper(cls) -> DecisionRules:
        """The paper's rule exactly: training-day reference, g > 0.5 alone."""
        return cls(reference="training", min_shift=0.0)

    def __post_init__(self) -> None:
        if self.reference not in REFERENCE_DAYS:
            raise ValueError(f"reference must be one of {REFERENCE_DAYS}, got {self.reference!r}")


@dataclass(frozen=True)
class DayMetrics:
    """The paper's four indicators for one device-day, plus what they were computed from."""

    scores: int
    baseline_scores: int
    dissimilar_share: float  # all samples: share of pairs scored ≥ threshold
    majority_dissimilar: bool  # majority samples: more pairs dissimilar than similar
    day_mean: float
    baseline_mean: float
    mean_above_threshold: bool  # mean threshold
    hedges_g: float
    effect_size: str  # Sawilowsky's label of |g|

    def changed_by(self, metric: str, rules: DecisionRules) -> bool:
        """Whether one indicator says "changed": all, majority, mean or hedges."""
        return {
            "all": self.dissimilar_share >= 0.5,
            "majority": self.majority_dissimilar,
            "mean": self.mean_above_threshold,
            "hedges": self.hedges_g > rules.effect_size,
        }[metric]


@dataclass(frozen=True)
class Driver:
    """What moved: a protocol row or a feature group, its mean grey level before and now."""

    kind: str  # "row" or "group"
    name: str
    baseline: float
    day: float

    @property
    def delta(self) -> float:
        return self.day - self.baseline

    def describe(self) -> str:
        if self.kind == "row" and self.baseline < 1.0 <= self.day:
            return f"{self.name} traffic appeared"
        if self.kind == "row" and self.day < 1.0 <= self.baseline:
            return f"{self.name} traffic disappeared"
        label = f"{self.name} row" if self.kind == "row" else f"{self.name} features"
        return f"{label} {'rose' if self.delta > 0 else 'fell'} by {abs(self.delta):.0f} grey levels"


@dataclass
class DayDecision:
    mac: str
    day: dt.date
    verdict: str
    reason: str
    day_windows: int
    baseline_windows: int
    metrics: DayMetrics | None = None
    drivers: list[Driver] = field(default_factory=list)
    scores: np.ndarray | None = None


def day_metrics(scores: np.ndarray, baseline_scores: np.ndarray, rules: DecisionRules) -> DayMetrics:
    """The four indicators of a day's pair scores against the baseline's."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    baseline_scores = np.asarray(baseline_scores, dtype=np.float64).ravel()
    dissimilar = scores >= rules.threshold
    g = hedges_g(scores, baseline_scores)
    return DayMetrics(
        scores=int(scores.size),
        baseline_scores=int(baseline_scores.size),
        dissimilar_share=float(dissimilar.mean()),
        majority_dissimilar=bool(dissimilar.sum() > (~dissimilar).sum()),
        day_mean=float(scores.mean()),
        baseline_mean=float(baseline_scores.mean()),
        mean_above_threshold=bool(scores.mean() >= rules.threshold),
        hedges_g=g,
        effect_size=sawilowsky_label(g),
    )


def drivers(baseline_images: np.ndarray, day_images: np.ndarray, top: int = 3) -> list[Driver]:
    """Protocol rows and feature groups whose mean grey level moved most against the baseline."""
    base = baseline_images.astype(np.float64).mean(axis=0)
    now = day_images.astype(np.float64).mean(axis=0)
    candidates = [
        Driver("row", row, float(base[i].mean()), float(now[i].mean())) for i, row in enumerate(PROTOCOL_ROWS)
    ]
    candidates += [
        Driver("group", GROUP_NAMES[g], float(base[:, GROUP_SLICES[g]].mean()), float(now[:, GROUP_SLICES[g]].mean()))
        for g in GROUP_SLICES
    ]
    candidates.sort(key=lambda d: abs(d.delta), reverse=True)
    return [d for d in candidates[:top] if abs(d.delta) >= 0.5]


def decide_day(
    mac: str,
    day: dt.date,
    baseline_images: np.ndarray,
    day_images: np.ndarray,
    scores: np.ndarray | None,
    baseline_scores: np.ndarray | None,
    rules: DecisionRules,
    reference_windows: int | None = None,
) -> DayDecision:
    """Verdict for one device-day: changed when Hedges' g > effect size (positive), else stable.

    insufficient-data when the baseline day, the reference day (whose pairs with the baseline give
    the reference scores) or this day holds fewer than ``rules.min_windows`` fingerprints: with so
    few windows one 15-minute burst decides the day, and the effect size means little.
    """
    n_base, n_day = len(baseline_images), len(day_images)
    short = []
    if n_base < rules.min_windows:
        short.append(f"baseline day has {n_base} fingerprint(s)")
    if reference_windows is not None and reference_windows < rules.min_windows:
        short.append(f"{rules.reference} day has {reference_windows} fingerprint(s)")
    if n_day < rules.min_windows:
        short.append(f"this day has {n_day} fingerprint(s)")
    if short or scores is None or baseline_scores is None:
        reason = "; ".join(short) or "no reference scores"
        return DayDecision(mac, day, INSUFFICIENT, f"{reason} (needs ≥ {rules.min_windows})", n_day, n_base)
    metrics = day_metrics(scores, baseline_scores, rules)
    moved = drivers(baseline_images, day_images)
    shift = metrics.day_mean - metrics.baseline_mean
    if metrics.hedges_g > rules.effect_size and shift >= rules.min_shift:
        verdict = CHANGED
        reason = (f"Hedges' g {metrics.hedges_g:.2f} ({metrics.effect_size}) > {rules.effect_size}: scores rose "
                  f"from {metrics.baseline_mean:.2f} to {metrics.day_mean:.2f}")
    elif metrics.hedges_g > rules.effect_size:
        verdict = STABLE
        reason = (f"Hedges' g {metrics.hedges_g:.2f} ({metrics.effect_size}) but the mean score moved only "
                  f"{shift:+.3f} (< {rules.min_shift})")
    else:
        verdict = STABLE
        reason = f"Hedges' g {metrics.hedges_g:.2f} ({metrics.effect_size}) ≤ {rules.effect_size}"
    return DayDecision(mac, day, verdict, reason, n_day, n_base, metrics, moved, np.asarray(scores))
