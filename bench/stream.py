"""Throughput through the real stack, against the in-process core measured in the same run.

    python bench/stream.py [--devices plug,bulb,speaker,camera] [--device-days 200] [--concurrency 8]

Starts a local stack (Kafka + Triton, as processes; stopped at the end) unless ``--bootstrap`` and
``--triton`` point at a running one, then measures:
- pairs/s: device-days of 30 baseline × 30 day images (900 pairs) scored through Triton's served
  arm (gRPC, ``--concurrency`` evaluators at once so the dynamic batcher can group them) and through
  the same TorchScript arm in-process; ratio target ≥ 0.5.
- flows/s and images/s: one simulated lab day replayed by capture through Kafka and the Faust
  windower until every fingerprint is on ``twinwatch.images.v1``, against the embedded pcap →
  fingerprints path on the same file.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.capture.main import CaptureSettings, run  # noqa: E402
from services.common.kafka import KafkaSettings  # noqa: E402
from services.common.triton import TritonEmbedder, TritonSettings  # noqa: E402
from tests.integration.kafka_helpers import consume  # noqa: E402
from tests.integration.processes import start_service, stop, wait_until_ready  # noqa: E402
from twinwatch.fingerprint import fingerprint_flows  # noqa: E402
from twinwatch.flows import read_pcap_flows  # noqa: E402
from twinwatch.simulator.lab import GATEWAY, LabConfig, simulate_day  # noqa: E402
from twinwatch.stack import LocalStack, StackSettings  # noqa: E402
from twinwatch.twin import distance_matrix  # noqa: E402
from twinwatch.windows import WindowSpec  # noqa: E402


def scoring(triton: TritonSettings, arm_file: Path, device_days: int, concurrency: int) -> dict[str, float]:
    """Pairs/s of the evaluator's work (embed 30 + 30 images, 30 × 30 distances) both ways."""
    rng = np.random.default_rng(0)
    days = [rng.integers(0, 256, (60, 13, 53), dtype=np.uint8) for _ in range(device_days)]
    arm = torch.jit.load(str(arm_file)).eval()

    def local(images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            embedded = arm(torch.from_numpy(images))
        return distance_matrix(embedded[:30], embedded[30:])

    embedders = [TritonEmbedder(triton, 1) for _ in range(concurrency)]
    np.testing.assert_allclose(local(days[0]), distance_matrix(*np.split(embedders[0](days[0]), 2)), atol=1e-4)

    def served(index: int) -> np.ndarray:
        embedded = embedders[index % concurrency](days[index])
        return distance_matrix(embedded[:30], embedded[30:])

    for index in range(concurrency):  # warm up every client
        served(index)
    start = time.perf_counter()
    for images in days:
        local(images)
    in_process = 900 * device_days / (time.perf_counter() - start)
    start = time.perf_counter()
    for index in range(device_days):
        embedders[0](days[index])
    serial = 900 * device_days / (time.perf_counter() - start)
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(served, range(device_days)))
    concurrent = 900 * device_days / (time.perf_counter() - start)
    for embedder in embedders:
        embedder.close()
    return {"in_process": in_process, "serial": serial, "concurrent": concurrent}


def windowing(bootstrap: str, devices: tuple[str, ...], tmp: Path) -> dict[str, float]:
    """One lab day through capture → Kafka → windower → images, and the embedded path on the same pcap."""
    config = LabConfig(days=1, devices=devices)
    pcap = tmp / "day.pcap"
    simulate_day(config, 1, pcap)
    spec = WindowSpec(tz=config.tz)
    start = time.perf_counter()
    flows = read_pcap_flows(pcap)
    embedded = fingerprint_flows(flows, spec)
    embedded_seconds = time.perf_counter() - start
    expected = sum(d.n_images for d in embedded.device_days)
    prefix = f"bench-{uuid.uuid4().hex[:6]}."
    env = os.environ | {"TWINWATCH_KAFKA_BOOTSTRAP_SERVERS": bootstrap, "TWINWATCH_KAFKA_TOPIC_PREFIX": prefix,
                        "TWINWATCH_WINDOWER_TZ": config.tz, "TWINWATCH_WINDOWER_IDLE_FLUSH_SECONDS": "3",
                        "TWINWATCH_WINDOWER_APP_ID": f"bench-windower-{prefix}".rstrip(".")}
    worker, log = start_service("windower", env, tmp)
    try:
        wait_until_ready(worker, log)
        kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix)
        start = time.perf_counter()
        stats = run(CaptureSettings(source=str(pcap), gateways=[GATEWAY.mac]), kafka)
        capture_seconds = time.perf_counter() - start
        images = consume(bootstrap, kafka.topic("twinwatch.images.v1"), expected, timeout=600)
        stream_seconds = time.perf_counter() - start
    finally:
        stop(worker)
    if len(images) != expected:
        raise RuntimeError(f"{len(images)} of {expected} images came through the windower")
    return {"flows": stats.flows, "records": stats.records, "images": expected, "capture_s": capture_seconds,
            "stream_s": stream_seconds, "embedded_s": embedded_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="plug,bulb,speaker,camera")
    parser.add_argument("--device-days", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--bootstrap", help="a running broker (with --triton): no stack is started")
    parser.add_argument("--triton", help="gRPC address of a running Triton serving model tnn version 1")
    parser.add_argument("--model-repository", type=Path, help="the running Triton's repository (for the arm file)")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        stack = None
        if args.bootstrap and args.triton and args.model_repository:
            bootstrap, grpc, repository = args.bootstrap, args.triton, args.model_repository
        else:
            stack = LocalStack(StackSettings(run_dir=tmp / "stack", services=False))  # the bench runs its own windower
            with console.status("starting the local stack (Kafka + Triton)"):
                status = stack.up()
            bootstrap, grpc, repository = status.bootstrap_servers, status.triton_grpc_url, status.model_repository
        try:
            with console.status("scoring device-days in-process and through Triton"):
                pairs = scoring(TritonSettings(grpc_url=grpc), repository / "tnn" / "1" / "twin_arm.torchscript",
                                args.device_days, args.concurrency)
            with console.status("one lab day through capture → Kafka → windower"):
                stream = windowing(bootstrap, tuple(args.devices.split(",")), tmp)
        finally:
            if stack:
                stack.down()
    table = Table(title=f"Pair scoring: {args.device_days} device-days of 30 × 30 pairs")
    for column in ("path", "pairs/s", "× in-process"):
        table.add_column(column, justify="right" if column != "path" else "left")
    table.add_row("in-process TorchScript arm (baseline)", f"{pairs['in_process']:,.0f}", "1.00")
    serial, concurrent = pairs["serial"] / pairs["in_process"], pairs["concurrent"] / pairs["in_process"]
    table.add_row("Triton gRPC, one evaluator", f"{pairs['serial']:,.0f}", f"{serial:.2f}")
    table.add_row(f"Triton gRPC, {args.concurrency} evaluators (dynamic batching)", f"{pairs['concurrent']:,.0f}",
                  f"{concurrent:.2f}")
    console.print(table)
    table = Table(title=f"One lab day ({args.devices}) through the stack")
    for column in ("path", "seconds", "flows/s", "images/s", "× embedded"):
        table.add_column(column, justify="right" if column != "path" else "left")
    table.add_row("embedded: pcap → fingerprints (baseline)", f"{stream['embedded_s']:.1f}",
                  f"{stream['flows'] / stream['embedded_s']:,.0f}", f"{stream['images'] / stream['embedded_s']:,.1f}",
                  "1.00")
    table.add_row("capture → Kafka (flows acknowledged)", f"{stream['capture_s']:.1f}",
                  f"{stream['flows'] / stream['capture_s']:,.0f}", "",
                  f"{stream['embedded_s'] / stream['capture_s']:.2f}")
    table.add_row(f"capture → Kafka → windower → {stream['images']} images", f"{stream['stream_s']:.1f}",
                  f"{stream['flows'] / stream['stream_s']:,.0f}", f"{stream['images'] / stream['stream_s']:,.1f}",
                  f"{stream['embedded_s'] / stream['stream_s']:.2f}")
    console.print(table)
    console.print(f"Triton/in-process pairs/s with dynamic batching = [bold]{concurrent:.2f}[/bold] (target ≥ 0.5); "
                  f"{stream['records']:,} flow records for {stream['flows']:,} flows")


if __name__ == "__main__":
    main()
