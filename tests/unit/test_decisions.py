import datetime as dt

import numpy as np

from twinwatch.decisions import CHANGED, INSUFFICIENT, STABLE, DecisionRules, decide_day, drivers
from twinwatch.protocols import ROW_INDEX

DAY = dt.date(2026, 1, 20)
RULES = DecisionRules()


def imgs(n, value=50):
    return np.full((n, 13, 53), value, np.uint8)


def test_too_few_windows_is_insufficient_with_the_reason():
    d = decide_day("m", DAY, imgs(10), imgs(3), np.zeros((10, 3)), np.zeros(100), RULES, reference_windows=10)
    assert d.verdict == INSUFFICIENT and "this day has 3 fingerprint(s)" in d.reason and "≥ 4" in d.reason
    d = decide_day("m", DAY, imgs(2), imgs(30), None, None, RULES)
    assert d.verdict == INSUFFICIENT and "baseline day has 2" in d.reason
    d = decide_day("m", DAY, imgs(30), imgs(30), None, None, RULES, reference_windows=1)
    assert d.verdict == INSUFFICIENT and "validation day has 1" in d.reason


def test_changed_needs_a_large_effect_and_a_real_shift():
    rng = np.random.default_rng(0)
    reference = rng.normal(0.05, 0.01, 900).clip(0)
    moved = rng.normal(0.60, 0.10, (30, 30)).clip(0)
    d = decide_day("m", DAY, imgs(30), imgs(30), moved, reference, RULES, reference_windows=30)
    assert d.verdict == CHANGED and d.metrics.hedges_g > 0.5 and d.metrics.effect_size == "huge"
    assert d.metrics.mean_above_threshold and d.metrics.majority_dissimilar
    # A drift of 0.01 on very tight reference scores is a "large" g but no change of substance.
    drift = rng.normal(0.06, 0.01, (30, 30)).clip(0)
    d = decide_day("m", DAY, imgs(30), imgs(30), drift, reference, RULES, reference_windows=30)
    assert d.metrics.hedges_g > 0.5 and d.verdict == STABLE and "moved only" in d.reason
    paper = decide_day("m", DAY, imgs(30), imgs(30), drift, reference, DecisionRules.paper(), reference_windows=30)
    assert paper.verdict == CHANGED  # the paper's rule: g alone
    same = rng.normal(0.05, 0.01, (30, 30)).clip(0)
    d = decide_day("m", DAY, imgs(30), imgs(30), same, reference, RULES, reference_windows=30)
    assert d.verdict == STABLE and abs(d.metrics.hedges_g) < 0.5


def test_subtle_change_below_threshold_is_caught_by_g_not_by_threshold_metrics():
    rng = np.random.default_rng(1)
    reference = rng.normal(0.05, 0.02, 900).clip(0)
    subtle = rng.normal(0.25, 0.05, (30, 30)).clip(0)  # every pair still "similar" (< 0.5)
    d = decide_day("m", DAY, imgs(30), imgs(30), subtle, reference, RULES, reference_windows=30)
    assert d.verdict == CHANGED
    assert not d.metrics.changed_by("all", RULES) and not d.metrics.changed_by("mean", RULES)
    assert not d.metrics.changed_by("majority", RULES) and d.metrics.changed_by("hedges", RULES)


def test_drivers_name_a_protocol_that_disappeared():
    base, now = imgs(5, 0), imgs(5, 0)
    base[:, ROW_INDEX["ICMP"], :20] = 200
    base[:, ROW_INDEX["TLS"], :] = 100
    now[:, ROW_INDEX["TLS"], :] = 100
    moved = drivers(base, now)
    assert moved[0].kind == "row" and moved[0].name == "ICMP"
    assert moved[0].describe() == "ICMP traffic disappeared"
