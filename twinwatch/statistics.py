"""Effect sizes for comparing a day's pair scores with the baseline's (paper section 3.3)."""

from __future__ import annotations

import math

import numpy as np

# Sawilowsky (2009) rules of thumb, extending Cohen's: lower bounds of |g| for each label.
SAWILOWSKY_LABELS: tuple[tuple[float, str], ...] = (
    (2.0, "huge"),
    (1.2, "very large"),
    (0.8, "large"),
    (0.5, "medium"),
    (0.2, "small"),
    (0.01, "very small"),
)


def hedges_g(sample: np.ndarray, reference: np.ndarray) -> float:
    """Hedges' g of ``sample`` against ``reference``: (mean difference / pooled SD) × J.

    The pooled SD uses n − 1 in each group; J = 1 − 3 / (4 (n1 + n2) − 9) is the small-sample
    correction that makes g unbiased where Cohen's d is not (it matters when a sparse device gives
    only a few windows). Positive g means the sample scores higher (less similar) than the reference.
    Needs at least two values in each group; two constant groups give ±inf (or 0 when equal).
    """
    a = np.asarray(sample, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    n1, n2 = a.size, b.size
    if n1 < 2 or n2 < 2:
        raise ValueError(f"Hedges' g needs at least 2 values per group, got {n1} and {n2}")
    difference = a.mean() - b.mean()
    pooled = math.sqrt(((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2))
    if pooled == 0.0:
        return 0.0 if difference == 0.0 else math.copysign(math.inf, difference)
    correction = 1.0 - 3.0 / (4.0 * (n1 + n2) - 9.0)
    return float(difference / pooled * correction)


def sawilowsky_label(g: float) -> str:
    """The size of an effect by |g|: very small, small, medium, large, very large, huge (or negligible)."""
    size = abs(g)
    for bound, label in SAWILOWSKY_LABELS:
        if size >= bound:
            return label
    return "negligible"
