import numpy as np
import pytest
import torch

from twinwatch.twin import (
    TrainConfig,
    TrainedTwin,
    TwinNetwork,
    contrastive_loss,
    distance_matrix,
    embed,
    make_pairs,
    score_matrix,
    train_twin,
)


def images(rng, n, level):
    return np.clip(rng.normal(level, 20, size=(n, 13, 53)), 0, 255).astype(np.uint8)


@pytest.fixture
def days():
    rng = np.random.default_rng(0)
    baseline = {"a": images(rng, 5, 40), "b": images(rng, 3, 120), "c": images(rng, 4, 200)}
    other = {"a": images(rng, 6, 40), "b": images(rng, 2, 120), "c": images(rng, 4, 200), "d": images(rng, 9, 90)}
    return baseline, other


def test_pairs_follow_the_paper(days):
    baseline, other = days
    pairs = make_pairs(baseline, other, np.random.default_rng(1))
    positives = 5 * 6 + 3 * 2 + 4 * 4  # every baseline image × every same-device image; 'd' has no baseline
    assert pairs.positives == positives and len(pairs) == 2 * positives  # balanced
    owner = np.concatenate([np.full(len(baseline[d]), d) for d in "abc"] + [np.full(len(other[d]), d) for d in "abc"])
    day = np.array([0] * 12 + [1] * 12)
    assert (day[pairs.left] == 0).all() and (day[pairs.right] == 1).all()  # baseline × other day
    same = pairs.label == 0
    assert (owner[pairs.left][same] == owner[pairs.right][same]).all()
    assert (owner[pairs.left][~same] != owner[pairs.right][~same]).all()  # a *different* device
    assert set(owner[pairs.right][~same]) == {"a", "b", "c"}  # negatives vary across devices
    # Each positive has a negative with the same baseline image.
    assert sorted(pairs.left[same].tolist()) == sorted(pairs.left[~same].tolist())


def test_pairs_need_two_devices():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="at least 2 devices"):
        make_pairs({"a": images(rng, 2, 1)}, {"a": images(rng, 2, 1)}, rng)


def test_contrastive_loss_by_hand():
    distance = torch.tensor([0.2, 0.3, 1.5])
    label = torch.tensor([0.0, 1.0, 1.0])
    expected = 0.5 * (0.2**2 + (1 - 0.3) ** 2 + 0.0) / 3
    assert float(contrastive_loss(distance, label, margin=1.0)) == pytest.approx(expected)


def test_score_matrix_equals_pairwise_twin(days):
    baseline, other = days
    torch.manual_seed(0)
    model = TwinNetwork().eval()
    a, b = baseline["a"], other["c"]
    matrix = score_matrix(model, a, b)
    with torch.no_grad():
        left = torch.from_numpy(np.repeat(a, len(b), axis=0))
        right = torch.from_numpy(np.tile(b, (len(a), 1, 1)))
        pairwise = model(left, right).numpy().reshape(len(a), len(b))
    np.testing.assert_allclose(matrix, pairwise, rtol=1e-5, atol=1e-6)


def test_training_learns_and_round_trips(days, tmp_path):
    baseline, other = days
    rng = np.random.default_rng(2)
    train = make_pairs(baseline, other, rng)
    model = train_twin(train, train, TrainConfig(epochs=8, patience=3))
    assert model.best.val_accuracy >= 0.95
    assert model.history[0].epoch == 1 and model.best_epoch <= len(model.history)
    model.save(tmp_path / "m")
    loaded = TrainedTwin.load(tmp_path / "m")
    np.testing.assert_allclose(score_matrix(loaded.model, baseline["a"], other["b"]),
                               score_matrix(model.model, baseline["a"], other["b"]), rtol=1e-6)
    arm = torch.jit.load(str(tmp_path / "m" / "twin_arm.torchscript"))
    with torch.no_grad():
        np.testing.assert_allclose(arm(torch.from_numpy(other["d"])).numpy(),
                                   loaded.model.arm(torch.from_numpy(other["d"])).numpy(), rtol=1e-5, atol=1e-6)
    assert loaded.metadata["image_shape"] == [13, 53] and loaded.config.margin == 1.0


def test_loading_a_folder_without_weights_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="twin_weights.pth"):
        TrainedTwin.load(tmp_path)


def test_distances_from_served_embeddings_equal_in_process_scores(days):
    """The evaluator takes distances of Triton's embeddings with the same function as score_matrix."""
    baseline, other = days
    torch.manual_seed(1)
    model = TwinNetwork().eval()
    served_a = embed(model, baseline["a"]).numpy()  # what Triton returns: float32 arrays
    served_b = embed(model, other["b"]).numpy()
    np.testing.assert_array_equal(distance_matrix(served_a, served_b), score_matrix(model, baseline["a"], other["b"]))
