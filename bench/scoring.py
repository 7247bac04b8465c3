"""Pair-scoring throughput in-process, and seconds per training epoch.

    python bench/scoring.py

Pairs/s through the twin at batch 1 and batch 256 (two arm passes a pair), the embed-once path
(one arm pass an image, then a distance matrix: how a device-day's ≤ 900 pairs are really
scored), and seconds per epoch for 20k pairs at the paper's batch 50. Ratios are within this run.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from twinwatch.twin import PairSet, TrainConfig, TwinNetwork, score_matrix, train_twin


def pairs_per_second(model: TwinNetwork, bank: torch.Tensor, batch: int, pairs: int) -> float:
    with torch.no_grad():
        start = time.perf_counter()
        done = 0
        while done < pairs:
            left = bank[torch.randint(0, len(bank), (batch,))]
            right = bank[torch.randint(0, len(bank), (batch,))]
            model(left, right)
            done += batch
    return done / (time.perf_counter() - start)


def main() -> None:
    console = Console()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(720, 13, 53), dtype=np.uint8)
    torch.manual_seed(0)
    model = TwinNetwork().eval()
    bank = torch.from_numpy(images)
    batch1 = pairs_per_second(model, bank, 1, 2000)
    batch256 = pairs_per_second(model, bank, 256, 51200)
    start = time.perf_counter()
    repeats = 20
    for _ in range(repeats):
        score_matrix(model, images[:30], images[30:60])
    embed_once = repeats * 900 / (time.perf_counter() - start)
    n = 20_000
    pairs = PairSet(images, rng.integers(0, 720, n), rng.integers(0, 720, n), (rng.random(n) < 0.5).astype(np.float32))
    trained = train_twin(pairs, pairs, TrainConfig(epochs=2, patience=5))
    epoch = min(h.seconds for h in trained.history)
    table = Table(title=f"Twin scoring on the CPU ({torch.get_num_threads()} threads)")
    for column in ("path", "pairs/s", "× batch 1"):
        table.add_column(column, justify="right" if column != "path" else "left")
    table.add_row("twin, batch 1", f"{batch1:,.0f}", "1.0")
    table.add_row("twin, batch 256", f"{batch256:,.0f}", f"{batch256 / batch1:.1f}")
    table.add_row("embed once + 30×30 distance matrix", f"{embed_once:,.0f}", f"{embed_once / batch1:.1f}")
    console.print(table)
    console.print(f"training: {epoch:.1f} s per epoch for {n:,} pairs at batch 50 (best of 2 epochs, incl. evaluation)")


if __name__ == "__main__":
    main()
