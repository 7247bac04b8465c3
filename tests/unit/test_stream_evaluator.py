"""The streaming evaluator's core reaches the embedded run's verdicts on the same images, across a restart."""

import json

import numpy as np
import pytest
import torch

from tests.synthetic import DAYS, SPEC, lab_images
from twinwatch.analysis import analyse, in_process, plan_devices
from twinwatch.decisions import DecisionRules
from twinwatch.streaming import StreamEvaluator, training_fingerprints
from twinwatch.twin import EpochRecord, TrainConfig, TrainedTwin, TwinNetwork


@pytest.fixture(scope="module")
def model() -> TrainedTwin:
    torch.manual_seed(0)
    return TrainedTwin(TwinNetwork().eval(), TrainConfig(), [EpochRecord(1, 0, 0, 1, 1, 0)], 1, {})


def feed(evaluator: StreamEvaluator, images, days) -> None:
    for (mac, day), stack in sorted(images.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if day not in days:
            continue
        for window, image in enumerate(stack):
            end = SPEC.window_start_ms(day, window) + SPEC.window_ms
            assert evaluator.add_image(mac, "192.168.1.9", day, window, image, end)


def test_streamed_verdicts_equal_embedded_and_survive_a_restart(model):
    images = lab_images()
    rules = DecisionRules()
    fingerprints = training_fingerprints(SPEC, images)
    plans, skipped = plan_devices(fingerprints, rules)
    embedded = analyse(fingerprints, model, plans, rules, skipped=skipped)
    expected = {(d.mac, d.day): (d.verdict, d.metrics and round(d.metrics.hedges_g, 4)) for d in embedded.decisions
                if d.mac in plans}
    assert {v for v, _ in expected.values()} == {"stable", "changed", "insufficient-data"}

    first = StreamEvaluator(SPEC, rules)
    feed(first, images, DAYS[:4])
    first.complete()  # days 1–3 are over (day 4's images moved the watermark on); day 4 still open
    assert first.due() == []  # the plans exist, nothing after the validation day is complete
    assert all(first.tracks[m].plan for m in ("aa:00:00:00:00:01", "bb:00:00:00:00:01", "cc:00:00:00:00:01"))
    state = {mac: json.loads(json.dumps(first.state_of(mac))) for mac in first.tracks}  # through JSON

    second = StreamEvaluator(SPEC, rules)  # a restarted service
    for mac, saved in state.items():
        second.restore(mac, saved)
    feed(second, images, DAYS[4:])
    second.flush()
    got = {}
    for mac, day in second.due():
        decision = second.judge(mac, day, in_process(model), "m1")
        second.judged(mac, day)
        got[(mac, day)] = (decision.verdict, decision.metrics and round(decision.metrics.hedges_g, 4))
    assert got == expected
    assert second.due() == []
    assert "dd:00:00:00:00:01" not in {mac for mac, _ in got}  # no plan: nothing to say yet
    # after judging, only the baseline and reference days' images are kept
    track = second.tracks["aa:00:00:00:00:01"]
    assert sorted(track.held) == [DAYS[0], DAYS[2]] and track.judged == set(DAYS[3:])
    # a window re-sent for a judged day is refused, not judged twice
    assert not second.add_image("aa:00:00:00:00:01", "", DAYS[3], 0, images[("aa:00:00:00:00:01", DAYS[3])][0], 0)


def test_state_round_trip_keeps_open_days():
    images = lab_images()
    evaluator = StreamEvaluator(SPEC)
    feed(evaluator, images, DAYS[:1])
    mac = "aa:00:00:00:00:01"
    restored = StreamEvaluator(SPEC)
    restored.restore(mac, json.loads(json.dumps(evaluator.state_of(mac))))
    assert restored.collector.images.keys() == {(mac, DAYS[0])}
    np.testing.assert_array_equal(np.stack(list(restored.collector.images[(mac, DAYS[0])].values())),
                                  images[(mac, DAYS[0])])
