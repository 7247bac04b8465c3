"""pcap → fingerprints throughput against nfstream alone (flows only), measured in the same run.

    python bench/features.py [--rounds 3] [--pcap FILE]

Without ``--pcap`` it simulates one default lab day (~230k packets). Rounds alternate the two
paths and keep each one's best time, so a noisy shared machine hurts both alike. Target ratio ≥ 0.5.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from twinwatch.fingerprint import fingerprint_flows
from twinwatch.flows import count_flows_only, read_pcap_flows
from twinwatch.simulator.lab import LabConfig, simulate_day
from twinwatch.windows import WindowSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pcap", type=Path)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        pcap = args.pcap
        config = LabConfig(days=1)
        if pcap is None:
            pcap = Path(tmp) / "day.pcap"
            simulate_day(config, 1, pcap)
        spec = WindowSpec(tz=config.tz)
        best_baseline = best_full = float("inf")
        packets = images = 0
        for _ in range(args.rounds):
            start = time.perf_counter()
            _, packets = count_flows_only(pcap)
            best_baseline = min(best_baseline, time.perf_counter() - start)
            start = time.perf_counter()
            flows = read_pcap_flows(pcap)
            fingerprints = fingerprint_flows(flows, spec)
            best_full = min(best_full, time.perf_counter() - start)
            images = sum(d.n_images for d in fingerprints.device_days)
    table = Table(title=f"pcap → fingerprints vs nfstream alone ({packets:,} packets, best of {args.rounds})")
    for column in ("path", "seconds", "packets/s"):
        table.add_column(column, justify="right" if column != "path" else "left")
    table.add_row("nfstream flows only (baseline)", f"{best_baseline:.2f}", f"{packets / best_baseline:,.0f}")
    table.add_row(f"pcap → {images} fingerprints", f"{best_full:.2f}", f"{packets / best_full:,.0f}")
    console.print(table)
    ratio = best_baseline / best_full
    console.print(f"ratio fingerprints/baseline = [bold]{ratio:.2f}[/bold] (target ≥ 0.5)")


if __name__ == "__main__":
    main()
