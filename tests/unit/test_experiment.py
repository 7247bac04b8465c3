import datetime as dt

from twinwatch.decisions import CHANGED, STABLE, DayDecision, DayMetrics, DecisionRules
from twinwatch.experiment import LabDeviceTruth, LabTruth, tally

START = dt.date(2026, 1, 12)
TRUTH = LabTruth(START, 11, 8, {
    "aa": LabDeviceTruth("aa", "plug", "Plug", "large"),
    "bb": LabDeviceTruth("bb", "speaker", "Speaker", None),
    "cc": LabDeviceTruth("cc", "tapo", "Tapo", "invisible"),
})


def decision(mac, day, g, mean, verdict):
    metrics = DayMetrics(scores=10, baseline_scores=10, dissimilar_share=0.3 if mean < 0.5 else 0.8,
                         majority_dissimilar=mean >= 0.5, day_mean=mean, baseline_mean=0.05,
                         mean_above_threshold=mean >= 0.5, hedges_g=g, effect_size="large")
    return DayDecision(mac, START + dt.timedelta(days=day - 1), verdict, "", 30, 30, metrics)


def test_experiments_split_and_score_like_the_paper():
    decisions = [
        decision("aa", 4, 0.1, 0.05, STABLE),  # exp 1, right on every metric
        decision("aa", 5, 0.9, 0.10, CHANGED),  # exp 1, a false alarm by g and verdict only
        decision("aa", 8, 3.0, 0.30, CHANGED),  # exp 2, subtle: g sees it, thresholds do not
        decision("aa", 9, 9.0, 0.90, CHANGED),  # exp 2, large: everything sees it
        decision("bb", 9, 0.0, 0.05, STABLE),  # control
        decision("cc", 9, 0.0, 0.05, STABLE),  # invisible: reported apart
        decision("aa", 3, 0.0, 0.05, STABLE),  # validation day: never counted
    ]
    overall, per_device = tally(TRUTH, decisions, DecisionRules())
    one, two = overall["experiment 1"], overall["experiment 2"]
    assert one["hedges"] == 0.5 and one["verdict"] == 0.5 and one["mean"] == 1.0 and one["majority"] == 1.0
    assert one["all"] == (7 + 7) / 20  # 3 of 10 dissimilar each day
    assert two["hedges"] == 1.0 and two["mean"] == 0.5 and two["majority"] == 0.5
    assert two["all"] == (3 + 8) / 20
    assert overall["controls"]["verdict"] == 1.0
    assert overall["invisible"]["hedges"] == 0.0 and list(per_device["invisible"]) == ["cc"]
