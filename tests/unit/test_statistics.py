import math

import numpy as np
import pytest
from scipy import stats

from twinwatch.statistics import hedges_g, sawilowsky_label


def test_hedges_g_by_hand():
    day = np.array([2.0, 4.0, 6.0])  # mean 4, var 4
    base = np.array([1.0, 2.0, 3.0, 4.0])  # mean 2.5, var 5/3
    pooled = math.sqrt((2 * 4 + 3 * 5 / 3) / 5)  # sqrt(13/5)
    correction = 1 - 3 / (4 * 7 - 9)
    assert hedges_g(day, base) == pytest.approx(1.5 / pooled * correction, rel=1e-12)


def test_hedges_g_against_scipy_t_statistic():
    rng = np.random.default_rng(3)
    day, base = rng.normal(0.3, 1.0, 40), rng.normal(0.0, 1.5, 25)
    t = stats.ttest_ind(day, base, equal_var=True).statistic
    cohens_d = t * math.sqrt(1 / 40 + 1 / 25)
    assert hedges_g(day, base) == pytest.approx(cohens_d * (1 - 3 / (4 * 65 - 9)), rel=1e-10)


def test_direction_and_degenerate_groups():
    assert hedges_g([0.9, 1.0, 1.1], [0.0, 0.1, 0.2]) > 0
    assert hedges_g([0.0, 0.1, 0.2], [0.9, 1.0, 1.1]) < 0
    assert hedges_g([1.0, 1.0], [1.0, 1.0]) == 0.0
    assert hedges_g([2.0, 2.0], [1.0, 1.0]) == math.inf
    with pytest.raises(ValueError, match="at least 2"):
        hedges_g([1.0], [1.0, 2.0])


@pytest.mark.parametrize(
    ("g", "label"),
    [(0.0, "negligible"), (0.05, "very small"), (0.3, "small"), (0.5, "medium"), (-0.9, "large"),
     (1.5, "very large"), (2.0, "huge")],
)
def test_sawilowsky_labels(g, label):
    assert sawilowsky_label(g) == label
