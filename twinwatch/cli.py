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
from twinwatch.flows import FlowSettings, FlowTable, read_flows
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
    # the Kafka client's retries while a broker starts ("coordinator load in progress") are not news here
    logging.getLogger("twinwatch.librdkafka").setLevel(logging.DEBUG if verbose else logging.ERROR)


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
    failures: list[tuple[Path, str]] = []
    with _progress() as progress:
        task = progress.add_task("reading captures (nfstream)", total=len(files))
        flows = read_flows(files, settings, on_file_done=lambda _: progress.advance(task),
                           on_file_error=lambda path, reason: failures.append((Path(path), reason)))
    return flows, failures


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
    fingerprints, files, flows, failures = _captures_to_fingerprints(pcaps, devices_file, tz, quiet, gateway)
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


def _captures_to_fingerprints(pcaps: list[Path], devices_file: Path | None, tz: str, quiet: str,
                              gateway: list[str]):
    """Captures → flows (bad files reported, not fatal) → fingerprints, with progress bars."""
    spec = _window_spec(tz, quiet)
    known = read_devices_file(devices_file) if devices_file else None
    files = expand_captures(pcaps)
    if not files:
        raise typer.BadParameter(f"no .pcap/.pcapng/.cap files under {[str(p) for p in pcaps]}")
    flows, failures = _read_with_progress(files, FlowSettings())
    fingerprints = _fingerprint(flows, spec, known, {g.lower() for g in gateway} or None)
    return fingerprints, files, flows, failures


def _window_spec(tz: str, quiet: str) -> WindowSpec:
    try:
        return WindowSpec.from_strings(tz=tz, quiet=quiet)
    except Exception as error:  # unknown zone or malformed period
        raise typer.BadParameter(f"{error}") from error


def _fingerprint(flows: FlowTable, spec: WindowSpec, known, gateways) -> FingerprintSet:
    with _progress() as progress:
        from twinwatch.devices import find_devices

        devices = find_devices(flows, known, gateways)
        task = progress.add_task("fingerprinting devices", total=len(devices))
        return fingerprint_flows(flows, spec, on_device_done=lambda d: progress.advance(task), devices=devices)


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


def _train(fingerprints: FingerprintSet, plans, config):
    from twinwatch.analysis import train_from_fingerprints

    with _progress() as progress:
        task = progress.add_task("training the twin (epochs, early stop)", total=config.epochs)

        def epoch_done(record) -> None:
            progress.update(task, completed=record.epoch, description=(
                f"training the twin: val loss {record.val_loss:.4f} acc {record.val_accuracy:.3f}"))

        model = train_from_fingerprints(fingerprints, plans, config, on_epoch=epoch_done)
        progress.update(task, total=len(model.history), completed=len(model.history))
    return model


def _analyse_and_report(fingerprints: FingerprintSet, model_dir: Path | None, save_model: Path | None,
                        baseline_day: str | None, rules, seed: int, events_path: Path | None,
                        report_path: Path | None, title: str):
    from twinwatch.analysis import analyse, plan_devices, untrainable
    from twinwatch.report import write_report
    from twinwatch.twin import TrainConfig, TrainedTwin

    baseline = dt.date.fromisoformat(baseline_day) if baseline_day else None
    plans, skipped = plan_devices(fingerprints, rules, baseline)
    for mac, reason in skipped.items():
        console.print(f"[yellow]{mac}[/yellow]: insufficient data — {reason}")
    if model_dir:
        model = TrainedTwin.load(model_dir)
    elif len(plans) < 2:
        reason = (f"no twin trained: {len(plans)} device(s) have a baseline, training and validation day "
                  f"(at least 2 are needed)")
        console.print(f"[yellow]{reason}[/yellow]")
        analysis = untrainable(fingerprints, skipped, reason)
        _print_verdicts(analysis)
        _write_events(analysis, events_path)
        return analysis
    else:
        model = _train(fingerprints, plans, TrainConfig(init_seed=seed, pair_seed=seed))
    if save_model:
        model.save(save_model)
        console.print(f"model saved to {save_model} (weights, metadata, TorchScript arm)")
    with _progress() as progress:
        task = progress.add_task("judging device-days", total=len(fingerprints.devices))
        analysis = analyse(fingerprints, model, plans, rules, on_device_done=lambda d: progress.advance(task),
                           skipped=skipped)
    _print_verdicts(analysis)
    _write_events(analysis, events_path)
    if report_path:
        with console.status("writing the HTML report"):
            write_report(analysis, model, rules, report_path, title)
        console.print(f"HTML report written to {report_path}")
    return analysis


def _write_events(analysis, events_path: Path | None) -> None:
    from twinwatch.analysis import change_events

    if events_path:
        events_path.parent.mkdir(parents=True, exist_ok=True)
        with open(events_path, "w") as handle:
            for event in change_events(analysis):
                handle.write(event.model_dump_json() + "\n")
        console.print(f"ChangeEvents (JSON lines) written to {events_path}")


def _print_verdicts(analysis) -> None:
    from twinwatch.decisions import CHANGED, INSUFFICIENT

    days = sorted({d.day for d in analysis.decisions})
    table = Table(title=f"Verdicts per device and day (model {analysis.model_version}; cell: verdict, Hedges' g)")
    table.add_column("device")
    for day in days:
        table.add_column(day.isoformat()[5:], justify="center")
    style = {CHANGED: "bold red", INSUFFICIENT: "dim"}
    for device in analysis.devices:
        cells = []
        plan = analysis.plans.get(device.mac)
        for day in days:
            decision = analysis.decision(device.mac, day)
            if decision is None:
                role = ""
                if plan:
                    role = {plan.baseline: "base", plan.training: "train", plan.validation: "valid"}.get(day, "")
                cells.append(f"[dim]{role}[/dim]")
                continue
            g = f" {decision.metrics.hedges_g:+.1f}" if decision.metrics else ""
            text = {CHANGED: "CHANGED", INSUFFICIENT: "n/a"}.get(decision.verdict, "stable")
            cells.append(f"[{style.get(decision.verdict, 'green')}]{text}{g}[/]")
        table.add_row(device.label, *cells)
    console.print(table)


def _rules(reference: str, min_windows: int):
    from twinwatch.decisions import DecisionRules

    return DecisionRules(reference=reference, min_windows=min_windows)


@app.command()
def analyze(
    pcaps: list[Path] = typer.Argument(..., help="Capture files or folders (searched recursively)."),
    devices_file: Path | None = typer.Option(None, "--devices", help="CSV with mac[,name,model]."),
    baseline_day: str | None = typer.Option(None, help="Baseline date (YYYY-MM-DD); default: each device's first."),
    model: Path | None = typer.Option(None, "--model", help="A trained model folder to use instead of training."),
    save_model: Path | None = typer.Option(None, help="Where to save the trained model."),
    json_path: Path | None = typer.Option(Path("twinwatch-events.jsonl"), "--json", help="ChangeEvents as JSON lines."),
    report: Path | None = typer.Option(Path("twinwatch-report.html"), help="The HTML report."),
    tz: str = typer.Option("UTC", help="Site time zone of the quiet period."),
    quiet: str = typer.Option("00:00-06:00", help="Daily quiet period, local time."),
    reference: str = typer.Option("validation", help="Reference scores: validation (twinwatch) or training (paper)."),
    min_windows: int = typer.Option(4, help="Fewer fingerprints on a day ⇒ insufficient-data."),
    seed: int = typer.Option(0, help="Seed of the twin's weights and pairs."),
    gateway: list[str] = typer.Option([], help="Gateway MAC(s); found from public-IP traffic when not given."),
) -> None:
    """The main job: captures → fingerprints → twin → a verdict per device and day, events and a report."""
    fingerprints, files, _, failures = _captures_to_fingerprints(pcaps, devices_file, tz, quiet, gateway)
    for path, reason in failures:
        console.print(f"[red]skipped[/red] {path}: {reason}")
    _analyse_and_report(fingerprints, model, save_model, baseline_day, _rules(reference, min_windows), seed,
                        json_path, report, f"twinwatch — {len(files)} captures")


@app.command()
def experiment(
    lab: Path = typer.Argument(Path("lab"), help="A lab written by 'twinwatch simulate'."),
    runs: int = typer.Option(10, help="Training runs (they differ only in their dissimilar pairs)."),
    json_path: Path | None = typer.Option(None, "--json", help="Write every table as JSON."),
    patience: int = typer.Option(5, help="Early-stopping patience (epochs without a better validation loss)."),
) -> None:
    """Reproduce the paper's Experiments 1 and 2 (Tables 3–7) on a lab with ground truth."""
    import json as json_module

    from twinwatch.experiment import read_lab_truth, run_experiment
    from twinwatch.twin import TrainConfig

    truth = read_lab_truth(lab)
    spec = WindowSpec(tz=json_module.loads((lab / "lab.json").read_text())["config"]["tz"])
    files = expand_captures([lab / "pcaps"])
    flows, failures = _read_with_progress(files, FlowSettings())
    if failures:
        raise ValueError(f"{len(failures)} lab capture(s) unreadable: {failures[0][0]}: {failures[0][1]}")
    fingerprints = _fingerprint(flows, spec, read_devices_file(lab / "devices.csv"), None)
    with _progress() as progress:
        task = progress.add_task("training runs", total=runs)
        result = run_experiment(fingerprints, truth, runs, TrainConfig(patience=patience),
                                on_run_done=lambda r: progress.advance(task))
    _print_experiment(result, {d.mac: d.label for d in fingerprints.devices})
    if json_path:
        json_path.write_text(json_module.dumps(result.to_json(), indent=2, default=str))
        console.print(f"tables written to {json_path}")


def _print_experiment(result, names: dict[str, str]) -> None:
    from twinwatch.experiment import METRIC_NAMES, METRICS

    runs = result.runs["twinwatch"]
    training = Table(title="Training per run (paper Table 3)")
    for column in ("run", "best epoch", "epochs", "train loss", "val loss", "train acc", "val acc", "seconds"):
        training.add_column(column, justify="right")
    for r in runs:
        training.add_row(str(r.run), str(r.best.epoch), str(r.epochs), f"{r.best.train_loss:.4f}",
                         f"{r.best.val_loss:.4f}", f"{r.best.train_accuracy:.3f}", f"{r.best.val_accuracy:.3f}",
                         f"{r.seconds:.0f}")
    console.print(training)
    titles = {"experiment 1": "Experiment 1 — same version, days 4…{} (paper Table 4)",
              "experiment 2": "Experiment 2 — new version, days {}…end (paper Table 6)",
              "controls": "Controls — devices that kept their version, days {}…end",
              "invisible": "Invisible changes — not counted above (flow statistics cannot see them)"}
    for rule_set, rule_runs in result.runs.items():
        for experiment_name, title in titles.items():
            label = title.format(result.truth.change_day - 1 if "1" in experiment_name else result.truth.change_day)
            table = Table(title=f"{label} — {rule_set} rules (% correct)")
            table.add_column("metric")
            for r in rule_runs:
                table.add_column(str(r.run), justify="right")
            table.add_column("average", justify="right", style="bold")
            average = result.average(rule_set)[experiment_name]
            for metric in METRICS:
                values = [r.experiments[experiment_name][metric] for r in rule_runs]
                table.add_row(METRIC_NAMES[metric], *[_pct(v) for v in values], _pct(average[metric]))
            console.print(table)
        for experiment_name in ("experiment 1", "experiment 2", "invisible"):
            per_device = result.device_average(rule_set, experiment_name)
            table = Table(title=f"Per device, {experiment_name} — {rule_set} rules (paper Tables 5 and 7, % correct)")
            table.add_column("device")
            for metric in METRICS:
                table.add_column(METRIC_NAMES[metric], justify="right")
            for mac, values in per_device.items():
                kind = result.truth.devices[mac].change if mac in result.truth.devices else None
                note = f" ({kind} change)" if kind and experiment_name != "experiment 1" else ""
                table.add_row(names.get(mac, mac) + note, *[_pct(values[m]) for m in METRICS])
            console.print(table)


def _pct(value: float) -> str:
    return "–" if value != value else f"{100 * value:.1f}"


@app.command()
def demo(
    lab: Path = typer.Option(Path("lab"), help="Where the default lab is written."),
    seed: int = typer.Option(7),
) -> None:
    """The embedded main job on the default lab: simulate it, fingerprint it, train, decide, report."""
    config = LabConfig(seed=seed)
    _simulate(config, lab)
    files = expand_captures([lab / "pcaps"])
    flows, failures = _read_with_progress(files, FlowSettings())
    if failures:
        raise ValueError(f"{failures[0][0]}: {failures[0][1]}")
    known = read_devices_file(lab / "devices.csv")
    fingerprints = _fingerprint(flows, WindowSpec(tz=config.tz), known, None)
    _save(fingerprints, lab / "fingerprints", sheets=True)
    _print_coverage(fingerprints, f"lab seed {seed}: {len(files)} days, {flows.n_packets:,} packets")
    _analyse_and_report(fingerprints, None, lab / "model", None, _rules("validation", 4), 0,
                        lab / "events.jsonl", lab / "report.html", f"twinwatch — simulated lab (seed {seed})")
    console.print(f"fingerprints and contact sheets under {lab / 'fingerprints'}; report {lab / 'report.html'}")


stack_app = typer.Typer(no_args_is_help=True,
                        help="The local streaming stack (Kafka, Triton, windower, trainer, evaluator) as processes.")
app.add_typer(stack_app, name="stack")
RUN_DIR_HELP = "Logs, pids, data and the served models."


def _stack(run_dir: Path, **settings):
    from twinwatch.stack import LocalStack, StackSettings

    return LocalStack(StackSettings(run_dir=run_dir, **settings))


def _print_stack(status) -> None:
    table = Table(title=f"twinwatch stack in {status.run_dir}")
    for column in ("service", "pid", "state", "ports", "log"):
        table.add_column(column)
    for service in status.services.values():
        state = ("[green]running[/green]" if service.running else
                 "[dim]done[/dim]" if service.job and not service.note else "[red]stopped[/red]")
        if service.note:
            state += f"\n[dim]{service.note[:160]}[/dim]"
        ports = ", ".join(f"{k} {v}" for k, v in service.ports.items())
        table.add_row(service.name, str(service.pid or ""), state, ports, str(service.log))
    console.print(table)
    if status.bootstrap_servers:
        console.print(f"Kafka bootstrap servers  [bold]{status.bootstrap_servers}[/bold]")
    if status.triton_grpc_url:
        console.print(f"Triton gRPC / HTTP       [bold]{status.triton_grpc_url}[/bold] / {status.triton_http_url}")
        console.print(f"served model repository  {status.model_repository}")


@stack_app.command("up")
def stack_up(
    run_dir: Path = typer.Option(Path("runs/stack"), help=RUN_DIR_HELP),
    tz: str = typer.Option("UTC", help="Site time zone of the quiet period (for the services)."),
    quiet: str = typer.Option("00:00-06:00", help="Daily quiet period, local time."),
    services: bool = typer.Option(True, help="Also start the windower, trainer and evaluator."),
    topic_prefix: str = typer.Option("", help="Prefix of every topic (one broker, several sites)."),
    devices_file: Path | None = typer.Option(None, "--devices", help="CSV with mac[,name,model] for the events."),
) -> None:
    """Start Kafka, Triton and the services (or find them running) and wait until they really answer."""
    from twinwatch.stack import StackError

    try:
        with console.status("starting the stack (the first start fetches Kafka's jars and the Triton wheel)"):
            status = _stack(run_dir, tz=tz, quiet=quiet, services=services, topic_prefix=topic_prefix,
                            devices_file=devices_file).up()
    except StackError as error:
        console.print(f"[bold red]stack failed:[/bold red] {error}")
        raise typer.Exit(code=1) from error
    _print_stack(status)


@stack_app.command("down")
def stack_down(run_dir: Path = typer.Option(Path("runs/stack"), help=RUN_DIR_HELP),
               purge: bool = typer.Option(False, help="Also delete the run folder.")) -> None:
    """Stop every process of the stack."""
    _print_stack(_stack(run_dir).down(purge=purge))


@stack_app.command("status")
def stack_status(run_dir: Path = typer.Option(Path("runs/stack"), help=RUN_DIR_HELP),
                 as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """What runs, on which ports, with which logs."""
    import json as json_module

    status = _stack(run_dir).status()
    if as_json:
        console.print_json(json_module.dumps(status.as_dict(), default=str))
    else:
        _print_stack(status)


@stack_app.command("prepare-models")
def stack_prepare_models(target: Path = typer.Argument(..., help="Where Triton will read its model repository."),
                         source: Path = typer.Option(Path("model_repository"), help="The repository to copy.")) -> None:
    """Copy the model repository for serving (an untrained arm until the trainer publishes): containers' init step."""
    from twinwatch.stack import prepare_model_repository

    prepare_model_repository(source, target)
    console.print(f"model repository ready in {target}")


@stack_app.command("capture")
def stack_capture(
    source: str = typer.Argument(..., help="A pcap, a folder of pcaps (name order) or a live interface (eth1)."),
    run_dir: Path = typer.Option(Path("runs/stack"), help=RUN_DIR_HELP),
    speed: float = typer.Option(0.0, help="Replay speed (1.0 = real time); 0: as fast as possible."),
    gateway: list[str] = typer.Option([], help="Gateway/router MAC(s): their flows are not devices."),
    topic_prefix: str = typer.Option("", help="The prefix the stack was started with."),
) -> None:
    """Run the capture service against the running stack's broker until the source ends (Ctrl-C for a live one)."""
    from services.capture.main import CaptureSettings
    from services.capture.main import run as capture
    from services.common.kafka import KafkaSettings

    status = _stack(run_dir).status()
    if not status.bootstrap_servers or not status.services.get("kafka") or not status.services["kafka"].running:
        raise ValueError(f"no running stack in {run_dir}: start it with 'twinwatch stack up'")
    with console.status(f"capturing {source} → {topic_prefix}twinwatch.flows.v1"):
        stats = capture(CaptureSettings(source=source, speed=speed, gateways=gateway),
                        KafkaSettings(bootstrap_servers=status.bootstrap_servers, topic_prefix=topic_prefix))
    console.print(f"{stats.flows:,} flows → {stats.records:,} flow records, {stats.delivered:,} acknowledged, "
                  f"{stats.failed} failed")
    if stats.failed:
        raise typer.Exit(code=1)


def _read_events(run_dir: Path, topic_prefix: str, wait: float) -> list:
    from schemas.events import ChangeEvent
    from schemas.topics import EVENTS
    from services.common.kafka import KafkaSettings, read_all

    status = _stack(run_dir).status()
    if not status.bootstrap_servers:
        raise ValueError(f"no stack in {run_dir}: start it with 'twinwatch stack up'")
    kafka = KafkaSettings(bootstrap_servers=status.bootstrap_servers, topic_prefix=topic_prefix)
    return [ChangeEvent.model_validate_json(v) for _, v in read_all(kafka, kafka.topic(EVENTS), timeout=wait) if v]


def _print_events(events: list, topic: str) -> None:
    table = Table(title=f"{len(events)} ChangeEvent(s) on {topic}")
    for column in ("device", "day", "verdict", "Hedges' g", "model", "why"):
        table.add_column(column)
    for event in sorted(events, key=lambda e: (e.device.mac, e.day)):
        style = {"changed": "bold red", "insufficient-data": "dim"}.get(event.verdict, "green")
        g = f"{event.metrics.hedges_g:+.2f}" if event.metrics else ""
        table.add_row(event.device.name or event.device.mac, event.day.isoformat(), f"[{style}]{event.verdict}[/]", g,
                      f"{event.model_version} (v{event.served_version})", "; ".join(w.text for w in event.why[:2]))
    console.print(table)


@stack_app.command("events")
def stack_events(
    run_dir: Path = typer.Option(Path("runs/stack"), help=RUN_DIR_HELP),
    topic_prefix: str = typer.Option("", help="The prefix the stack was started with."),
    wait: float = typer.Option(5.0, help="Seconds to wait for more events."),
    report: Path | None = typer.Option(None, help="Also write them as an HTML report (g per day, why)."),
) -> None:
    """The ChangeEvents published so far, as a table (what the SIEM receives), and optionally a report."""
    from twinwatch.report import write_events_report

    events = _read_events(run_dir, topic_prefix, wait)
    _print_events(events, f"{topic_prefix}twinwatch.events.v1")
    if report:
        write_events_report(events, report)
        console.print(f"HTML report written to {report}")


STREAM_DEMO_DEVICES = ("plug", "bulb", "tapo", "doorbell", "fan", "speaker")  # one per kind of change, one without


@stack_app.command("demo")
def stack_demo(
    lab: Path = typer.Option(Path("lab-stream"), help="Where the demo lab, the events and the report go."),
    run_dir: Path = typer.Option(Path("runs/stack-demo"), help="The demo stack's run folder (wiped first)."),
    seed: int = typer.Option(7),
    timeout: float = typer.Option(1200.0, help="Seconds to wait for every verdict."),
    keep_running: bool = typer.Option(False, help="Leave the stack up afterwards (twinwatch stack down to stop)."),
) -> None:
    """The streaming path in one command: a 6-device, 6-day lab (every kind of firmware change, the new
    firmware from day 5) replayed through capture → Kafka → windower → trainer → Triton → evaluator;
    the ChangeEvents as a table, JSON lines and an HTML report."""
    import time

    from services.capture.main import CaptureSettings
    from services.capture.main import run as capture
    from services.common.kafka import KafkaSettings
    from twinwatch.report import write_events_report
    from twinwatch.stack import StackError

    config = LabConfig(seed=seed, days=6, change_day=5, devices=STREAM_DEMO_DEVICES)
    _simulate(config, lab)
    stack = _stack(run_dir, tz=config.tz, devices_file=lab / "devices.csv")
    stack.down(purge=True)  # a fresh broker: no topics, models or state from an earlier demo
    try:
        with console.status("starting Kafka, Triton, windower, trainer and evaluator"):
            status = stack.up()
        _print_stack(status)
        with console.status(f"capture: replaying {lab / 'pcaps'} into Kafka"):
            stats = capture(CaptureSettings(source=str(lab / "pcaps")),
                            KafkaSettings(bootstrap_servers=status.bootstrap_servers))
        console.print(f"capture: {stats.flows:,} flows → {stats.records:,} flow records acknowledged by the broker")
        expected = len(config.devices) * (config.days - 3)
        events: list = []
        with _progress() as progress:
            task = progress.add_task("verdicts (the trainer trains on days 1–3 first)", total=expected)
            deadline = time.monotonic() + timeout
            while len(events) < expected:
                if time.monotonic() > deadline:
                    raise StackError(f"{len(events)} of {expected} verdicts after {timeout:.0f} s; read the logs "
                                     f"in {status.logs_dir}")
                time.sleep(5)
                events = _read_events(run_dir, "", 30)
                progress.update(task, completed=len(events))
        _print_events(events, "twinwatch.events.v1")
        with open(lab / "events.jsonl", "w") as handle:
            handle.writelines(event.model_dump_json() + "\n" for event in events)
        write_events_report(events, lab / "stream-report.html", "twinwatch — streaming demo")
        console.print(f"ChangeEvents in {lab / 'events.jsonl'}, report {lab / 'stream-report.html'}, "
                      f"logs in {status.logs_dir}")
    except StackError as error:
        console.print(f"[bold red]stack failed:[/bold red] {error}")
        raise typer.Exit(code=1) from error
    finally:
        if not keep_running:
            with console.status("stopping the stack"):
                stack.down()


def run() -> None:
    """Entry point: bad input ends in one clear line naming the file and the reason, not a traceback."""
    try:
        app()
    except (ValueError, FileNotFoundError) as error:
        console.print(f"[bold red]error:[/bold red] {error}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    run()
