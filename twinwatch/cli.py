"""The ``twinwatch`` command line: simulate a lab, fingerprint captures, run the embedded demo."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from twinwatch.devices import read_devices_file
from twinwatch.fingerprint import FingerprintSet, coverage, expand_captures, fingerprint_flows
from twinwatch.flows import FlowSettings, FlowTable, read_pcap_flows
from twinwatch.protocols import PROTOCOL_ROWS
from twinwatch.simulator.lab import LabConfig, build_lab
from twinwatch.simulator.profiles import CHANGE_KINDS, HOUSEHOLD
from twinwatch.windows import WindowSpec

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Firmware change detection from passive IoT traffic (twin-network fingerprints).")
console = Console(emoji=False, highlight=False)
if not console.is_terminal:  # logs and CI: wide enough for the protocol tables
    console.width = 170


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug detail.")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False)])


@app.command()
def simulate(
    out: Path = typer.Argument(Path("lab"), help="Folder for pcaps/, manifest.csv, devices.csv, lab.json."),
    seed: int = typer.Option(7, help="Everything random follows from this."),
    days: int = typer.Option(11, help="Days to simulate."),
    change_day: int = typer.Option(8, help="First day (1-based) on the new firmware."),
    devices: str = typer.Option(",".join(p.key for p in HOUSEHOLD), help="Comma-separated device profiles."),
    changes: str = typer.Option(",".join(CHANGE_KINDS), help="Kinds of firmware change to apply; others stay."),
    difficulty: float = typer.Option(1.0, help="Scales jitter and size noise; >1 adds stray lookups."),
    tz: str = typer.Option("Europe/Berlin", help="The household's time zone."),
    start_date: str = typer.Option("2026-01-12", help="Local date of day 1."),
    snaplen: int = typer.Option(65535, help="Capture snap length (e.g. 96 for header-only captures)."),
) -> None:
    """Write a simulated household's traffic: one pcap per day and the ground truth."""
    try:
        config = LabConfig(seed=seed, days=days, change_day=change_day, tz=tz,
                           start_date=dt.date.fromisoformat(start_date),
                           devices=tuple(d.strip() for d in devices.split(",") if d.strip()),
                           change_kinds=tuple(c.strip() for c in changes.split(",") if c.strip()),
                           difficulty=difficulty, snaplen=snaplen)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    manifest = _simulate(config, out)
    table = Table(title=f"Lab {out} — seed {seed}, {days} days, change on day {change_day}")
    for column in ("device", "model", "MAC", "IP", "firmware day 1 → last", "change", "trait"):
        table.add_column(column)
    for device in manifest.devices:
        trait = "noisy" if device.noisy else "sparse" if device.sparse else ""
        table.add_row(device.key, device.model, device.mac, device.ip,
                      f"{manifest.firmware(device, 1)} → {manifest.firmware(device, days)}",
                      device.change or "—", trait)
    console.print(table)
    console.print(f"{manifest.packets:,} packets in {len(manifest.pcaps)} pcaps under {out / 'pcaps'}")


def _simulate(config: LabConfig, out: Path):
    with _progress() as progress:
        task = progress.add_task("simulating days", total=config.days)
        return build_lab(config, out, on_day_done=lambda day, count: progress.advance(task))


def _read_with_progress(files: list[Path], settings: FlowSettings) -> tuple[FlowTable, list[tuple[Path, str]]]:
    """Flows of every file; a file that cannot be read is reported and skipped, never fatal."""
    import os
    from concurrent.futures import ProcessPoolExecutor

    tables, failures = [], []
    with _progress() as progress, ProcessPoolExecutor(max_workers=min(len(files), os.cpu_count() or 1)) as pool:
        task = progress.add_task("reading captures (nfstream)", total=len(files))
        futures = [(path, pool.submit(read_pcap_flows, path, settings)) for path in files]
        for path, future in futures:
            try:
                tables.append(future.result())
            except (ValueError, OSError) as error:
                failures.append((path, str(error)))
            progress.advance(task)
    return FlowTable.concat(tables), failures


@app.command()
def fingerprint(
    pcaps: list[Path] = typer.Argument(..., help="Capture files or folders (searched recursively)."),
    out: Path = typer.Option(Path("fingerprints"), "--out", help="Folder for <mac>/<date>.npz and .png."),
    devices_file: Path | None = typer.Option(
        None, "--devices", help="CSV with mac[,name,model]: names and restricts devices."
    ),
    tz: str = typer.Option("UTC", help="Site time zone of the quiet period (timestamps in pcaps are UTC)."),
    quiet: str = typer.Option("00:00-06:00", help="Daily quiet period, local time; 00:00-24:00 for all day."),
    gateway: list[str] = typer.Option([], help="Gateway MAC(s); found from public-IP traffic when not given."),
    sheets: bool = typer.Option(True, help="Draw a contact-sheet PNG per device-day."),
) -> None:
    """Build the 13 × 53 greyscale fingerprints of every device window in the captures."""
    spec = _window_spec(tz, quiet)
    known = read_devices_file(devices_file) if devices_file else None
    files = expand_captures(pcaps)
    if not files:
        raise typer.BadParameter(f"no .pcap/.pcapng/.cap files under {[str(p) for p in pcaps]}")
    flows, failures = _read_with_progress(files, FlowSettings())
    fingerprints = _fingerprint(flows, spec, known, set(g.lower() for g in gateway) or None)
    _save(fingerprints, out, sheets)
    _print_coverage(fingerprints, f"{len(files) - len(failures)} captures, {flows.n_packets:,} packets")
    if failures:
        table = Table(title="captures that could not be read (skipped)", style="red")
        table.add_column("file")
        table.add_column("reason")
        for path, reason in failures:
            table.add_row(str(path), reason)
        console.print(table)
        raise typer.Exit(code=1)


def _window_spec(tz: str, quiet: str) -> WindowSpec:
    try:
        return WindowSpec.from_strings(tz=tz, quiet=quiet)
    except Exception as error:  # unknown zone or malformed period
        raise typer.BadParameter(f"{error}") from error


def _fingerprint(flows: FlowTable, spec: WindowSpec, known, gateways) -> FingerprintSet:
    with _progress() as progress:
        from twinwatch.devices import find_devices

        task = progress.add_task("fingerprinting devices", total=len(find_devices(flows, known, gateways)))
        return fingerprint_flows(flows, spec, known, gateways, on_device_done=lambda d: progress.advance(task))


def _save(fingerprints: FingerprintSet, out: Path, sheets: bool) -> None:
    with _progress() as progress:
        task = progress.add_task("writing images" + (" and contact sheets" if sheets else ""),
                                 total=len(fingerprints.device_days))
        fingerprints.save(out, sheets=sheets, on_saved=lambda _: progress.advance(task))


def _print_coverage(fingerprints: FingerprintSet, source: str) -> None:
    table = Table(title=f"Fingerprints per device ({source})")
    for column in ("device", "MAC", "days", "images", "per day (mean/min/max)", "blank dropped"):
        table.add_column(column, justify="right" if column not in ("device", "MAC") else "left")
    rows = coverage(fingerprints)
    for row in rows:
        table.add_row(row.device.label, row.device.mac, str(row.days), str(row.images),
                      f"{row.per_day_mean:.1f} / {row.per_day_min} / {row.per_day_max}", str(row.blank_dropped))
    console.print(table)
    shares = Table(title="Share of non-empty pixels per protocol row (%)")
    shares.add_column("device")
    for protocol in PROTOCOL_ROWS:
        shares.add_column(protocol, justify="right")
    for row in rows:
        shares.add_row(row.device.label, *[f"{100 * row.row_pixel_share[p]:.0f}" for p in PROTOCOL_ROWS])
    console.print(shares)


@app.command()
def demo(
    lab: Path = typer.Option(Path("lab"), help="Where the default lab is written."),
    seed: int = typer.Option(7),
) -> None:
    """The embedded main job on the default lab: simulate it, then fingerprint every device-day."""
    config = LabConfig(seed=seed)
    _simulate(config, lab)
    files = expand_captures([lab / "pcaps"])
    flows, failures = _read_with_progress(files, FlowSettings())
    if failures:
        raise typer.Exit(code=1)
    known = read_devices_file(lab / "devices.csv")
    fingerprints = _fingerprint(flows, WindowSpec(tz=config.tz), known, None)
    _save(fingerprints, lab / "fingerprints", sheets=True)
    _print_coverage(fingerprints, f"lab seed {seed}: {len(files)} days, {flows.n_packets:,} packets")
    console.print(f"fingerprints and contact sheets under {lab / 'fingerprints'}")


def run() -> None:
    """Entry point: bad input ends in one clear line naming the file and the reason, not a traceback."""
    try:
        app()
    except (ValueError, FileNotFoundError) as error:
        console.print(f"[bold red]error:[/bold red] {error}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    run()
