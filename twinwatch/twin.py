"""The twin (Siamese) network: one CNN arm applied to both images, scored by embedding distance.

Training follows the paper (section 4.3, Table 2): contrastive loss with margin 1, batch 50, up to
50 epochs, early stopping on validation loss. The score of a pair is the Euclidean distance between
the two embeddings: near 0 for the same device, pushed to ≥ 1 (the margin) for different devices,
0.5 the default threshold.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from twinwatch.images import IMAGE_SHAPE, IMAGE_SPEC_VERSION

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "twin_weights.pth"
ARM_TORCHSCRIPT_FILE = "twin_arm.torchscript"
METADATA_FILE = "metadata.json"


class TwinArm(nn.Module):
    """One arm: a 13 × 53 fingerprint → a 32-dimensional embedding.

    Why this shape fits the input: the image is tiny (13 protocol rows × 53 feature columns) and its
    neighbourhoods mean something — adjacent columns are the C/S/B variants of one statistic and
    adjacent rows are related protocols (TCP·HTTP·OCSP·TLS, UDP·DNS·NTP·mDNS·SSDP·SIP·QUIC) — so
    3 × 3 convolutions with batch normalisation read local patterns, a single 2 × 2 pooling keeps
    most of the resolution (6 × 26), and the dense layers see the whole image, since a protocol row
    and a feature group far apart (the port block, the ratio column) still belong together. Batch
    normalisation (paper Fig. 5) steadies training on images whose grey levels differ by device.
    The pooling comes before the second convolution, which then costs a quarter: the whole arm is
    ~0.3 M multiply-adds, so an epoch of 20k pairs at batch 50 takes seconds on two CPU cores.
    """

    def __init__(self, embedding: int = 32) -> None:
        super().__init__()
        rows, columns = IMAGE_SHAPE
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, kernel_size=3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
        )
        flat = 16 * (rows // 2) * (columns // 2)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 64),
            nn.BatchNorm1d(64),
            nn.ReLU(),
            nn.Linear(64, embedding),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(n, 13, 53) uint8 or float in 0–255 → (n, embedding)."""
        x = images.float().unsqueeze(1) / 255.0
        return self.head(self.features(x))


class TwinNetwork(nn.Module):
    def __init__(self, embedding: int = 32) -> None:
        super().__init__()
        self.arm = TwinArm(embedding)

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """Pair scores: distance between the two embeddings (both sides in one arm pass)."""
        embeddings = self.arm(torch.cat([left, right]))
        return pairwise_distance(embeddings[: len(left)], embeddings[len(left):])


def pairwise_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(((a - b) ** 2).sum(dim=1) + 1e-12)


def contrastive_loss(distance: torch.Tensor, label: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Hadsell et al. 2006: label 0 (same) pulls together, label 1 (different) pushes past the margin."""
    same = (1.0 - label) * distance.pow(2)
    different = label * torch.clamp(margin - distance, min=0.0).pow(2)
    return 0.5 * (same + different).mean()


@dataclass
class PairSet:
    """Pairs as indices into an image bank; label 0 = same device, 1 = different devices."""

    bank: np.ndarray
    left: np.ndarray
    right: np.ndarray
    label: np.ndarray
    left_device: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))

    def __len__(self) -> int:
        return int(self.left.size)

    @property
    def positives(self) -> int:
        return int((self.label == 0).sum())


def make_pairs(
    baseline: dict[str, np.ndarray], other_day: dict[str, np.ndarray], rng: np.random.Generator
) -> PairSet:
    """The paper's pairs (section 4.3, Fig. 6) between the baseline day and another day.

    Similar: every baseline image of a device with every image of the same device on the other day.
    Dissimilar: for each similar pair, its baseline image with a random image of a random *other*
    device on the other day — so the set is balanced and the negatives vary across devices.
    Devices missing on either day contribute no pairs.
    """
    devices = sorted(d for d in baseline if d in other_day and len(baseline[d]) and len(other_day[d]))
    if len(devices) < 2:
        raise ValueError(f"pairs need at least 2 devices with images on both days, got {len(devices)}")
    bank_parts, offsets_base, offsets_other = [], {}, {}
    cursor = 0
    for device in devices:
        offsets_base[device] = cursor
        bank_parts.append(baseline[device])
        cursor += len(baseline[device])
    for device in devices:
        offsets_other[device] = cursor
        bank_parts.append(other_day[device])
        cursor += len(other_day[device])
    left, right, label, left_device = [], [], [], []
    for position, device in enumerate(devices):
        n_base, n_other = len(baseline[device]), len(other_day[device])
        base_index = offsets_base[device] + np.repeat(np.arange(n_base), n_other)
        same_index = offsets_other[device] + np.tile(np.arange(n_other), n_base)
        others = [d for d in devices if d != device]
        chosen = rng.integers(0, len(others), size=base_index.size)
        different_index = np.array(
            [offsets_other[others[c]] + rng.integers(0, len(other_day[others[c]])) for c in chosen], dtype=np.int64
        )
        left += [base_index, base_index]
        right += [same_index, different_index]
        label += [np.zeros(base_index.size, np.float32), np.ones(base_index.size, np.float32)]
        left_device += [np.full(2 * base_index.size, position)]
    names = np.array(devices, dtype=object)
    return PairSet(
        bank=np.concatenate(bank_parts).astype(np.uint8),
        left=np.concatenate(left).astype(np.int64),
        right=np.concatenate(right).astype(np.int64),
        label=np.concatenate(label),
        left_device=names[np.concatenate(left_device)],
    )


@dataclass(frozen=True)
class TrainConfig:
    """Paper Table 2 defaults; ``init_seed`` fixes the weights, ``pair_seed`` the dissimilar pairs."""

    epochs: int = 50
    batch_size: int = 50
    margin: float = 1.0
    learning_rate: float = 1e-3
    patience: int = 5
    init_seed: int = 0
    pair_seed: int = 0
    threshold: float = 0.5
    embedding: int = 32


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    train_accuracy: float
    val_accuracy: float
    seconds: float


@dataclass
class TrainedTwin:
    model: TwinNetwork
    config: TrainConfig
    history: list[EpochRecord]
    best_epoch: int
    metadata: dict

    @property
    def best(self) -> EpochRecord:
        return self.history[self.best_epoch - 1]

    def save(self, directory: str | os.PathLike) -> Path:
        """Weights, metadata and the arm as TorchScript (what Triton serves)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        torch.save(self.model.state_dict(), out / WEIGHTS_FILE)
        self.model.eval()
        scripted = torch.jit.script(self.model.arm)
        scripted.save(str(out / ARM_TORCHSCRIPT_FILE))
        metadata = dict(self.metadata)
        metadata.update(
            config=asdict(self.config),
            best_epoch=self.best_epoch,
            history=[asdict(h) for h in self.history],
        )
        (out / METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str))
        return out

    @classmethod
    def load(cls, directory: str | os.PathLike) -> TrainedTwin:
        path = Path(directory)
        if not (path / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(f"{path}: no {WEIGHTS_FILE} (not a trained twinwatch model)")
        metadata = json.loads((path / METADATA_FILE).read_text())
        if metadata.get("image_spec_version") != IMAGE_SPEC_VERSION:
            raise ValueError(
                f"{path}: model built for image spec {metadata.get('image_spec_version')}, "
                f"this twinwatch makes spec {IMAGE_SPEC_VERSION}"
            )
        config = TrainConfig(**metadata.pop("config"))
        history = [EpochRecord(**h) for h in metadata.pop("history")]
        best_epoch = metadata.pop("best_epoch")
        model = TwinNetwork(config.embedding)
        model.load_state_dict(torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True))
        model.eval()
        return cls(model, config, history, best_epoch, metadata)


def _evaluate(model: TwinNetwork, pairs: PairSet, margin: float, threshold: float) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        embeddings = embed(model, pairs.bank)
        distance = pairwise_distance(embeddings[pairs.left], embeddings[pairs.right])
        label = torch.from_numpy(pairs.label)
        loss = float(contrastive_loss(distance, label, margin))
        accuracy = float(((distance >= threshold).float() == label).float().mean())
    return loss, accuracy


def train_twin(
    train: PairSet,
    validation: PairSet,
    config: TrainConfig = TrainConfig(),
    metadata: dict | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainedTwin:
    """Train on ``train`` pairs with early stopping on ``validation`` loss; keeps the best epoch's weights."""
    torch.manual_seed(config.init_seed)
    model = TwinNetwork(config.embedding)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    bank = torch.from_numpy(train.bank)
    left, right = torch.from_numpy(train.left), torch.from_numpy(train.right)
    label = torch.from_numpy(train.label)
    shuffle = torch.Generator().manual_seed(config.pair_seed)
    history: list[EpochRecord] = []
    best_loss, best_state, best_epoch, waited = float("inf"), None, 0, 0
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(train), generator=shuffle)
        for start in range(0, len(train), config.batch_size):
            batch = order[start:start + config.batch_size]
            if batch.numel() < 2:
                continue  # batch normalisation needs two samples
            distance = model(bank[left[batch]], bank[right[batch]])
            loss = contrastive_loss(distance, label[batch], config.margin)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        train_loss, train_accuracy = _evaluate(model, train, config.margin, config.threshold)
        val_loss, val_accuracy = _evaluate(model, validation, config.margin, config.threshold)
        record = EpochRecord(epoch, train_loss, val_loss, train_accuracy, val_accuracy,
                             time.perf_counter() - started)
        history.append(record)
        if on_epoch:
            on_epoch(record)
        if val_loss < best_loss - 1e-6:
            best_loss, best_epoch, waited = val_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            waited += 1
            if waited >= config.patience:
                break
    assert best_state is not None
    model.load_state_dict(best_state)
    model.eval()
    meta = {"image_spec_version": IMAGE_SPEC_VERSION, "image_shape": list(IMAGE_SHAPE),
            "train_pairs": len(train), "validation_pairs": len(validation), **(metadata or {})}
    return TrainedTwin(model, config, history, best_epoch, meta)


def embed(model: TwinNetwork | TwinArm, images: np.ndarray, batch_size: int = 1024) -> torch.Tensor:
    """Embeddings of many images (eval mode, no gradients)."""
    arm = model.arm if isinstance(model, TwinNetwork) else model
    arm.eval()
    parts = []
    with torch.no_grad():
        tensor = torch.from_numpy(np.ascontiguousarray(images))
        for start in range(0, len(tensor), batch_size):
            parts.append(arm(tensor[start:start + batch_size]))
    return torch.cat(parts) if parts else torch.zeros((0, arm.head[-1].out_features))


def score_matrix(model: TwinNetwork, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Scores of every (first[i], second[j]) pair: one arm pass per image, then a distance matrix.

    Equal to scoring each pair through the twin (both arms share their weights), at n + m arm
    passes instead of 2 · n · m.
    """
    return distance_matrix(embed(model, first), embed(model, second))


def distance_matrix(first: torch.Tensor | np.ndarray, second: torch.Tensor | np.ndarray) -> np.ndarray:
    """Pair scores from embeddings (in-process or served by Triton): the twin's distance, all pairs."""
    a, b = torch.as_tensor(first, dtype=torch.float32), torch.as_tensor(second, dtype=torch.float32)
    differences = a[:, None, :] - b[None, :, :]
    return torch.sqrt((differences ** 2).sum(dim=2) + 1e-12).numpy()
