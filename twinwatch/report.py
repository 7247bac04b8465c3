"""A self-contained HTML report a person would forward: verdicts, Hedges' g per day, fingerprints."""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from twinwatch.analysis import Analysis
from twinwatch.decisions import CHANGED, INSUFFICIENT, STABLE, DecisionRules
from twinwatch.features import GROUP_SLICES
from twinwatch.protocols import PROTOCOL_ROWS
from twinwatch.twin import TrainedTwin

COLOURS = {STABLE: "#2e7d32", CHANGED: "#c62828", INSUFFICIENT: "#9e9e9e"}
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 6px;text-align:center}
td.name{text-align:left}.chip{color:#fff;border-radius:3px;padding:1px 5px;font-size:12px}
.why{font-size:13px;color:#444}.muted{color:#777;font-size:12px}img{max-width:100%}
"""


def _png(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _plots():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _g_plot(days: list[dt.date], values: list[float | None], verdicts: list[str], rules: DecisionRules) -> str:
    plt = _plots()
    figure, axis = plt.subplots(figsize=(6.2, 2.4))
    shown = [(d, v, c) for d, v, c in zip(days, values, verdicts, strict=True) if v is not None and np.isfinite(v)]
    if shown:
        axis.bar([d.isoformat()[5:] for d, _, _ in shown], [v for _, v, _ in shown],
                 color=[COLOURS[c] for _, _, c in shown])
    axis.axhline(rules.effect_size, color="black", linestyle="--", linewidth=1, label=f"g = {rules.effect_size}")
    axis.set_yscale("symlog", linthresh=1.0)  # small g near the 0.5 line and huge changes both visible
    axis.set_ylabel("Hedges' g (symlog)")
    axis.set_title("Hedges' g per day against the baseline", fontsize=10)
    axis.tick_params(axis="x", labelsize=7, rotation=45)
    axis.legend(fontsize=7)
    return _png(figure)


def _histogram(reference: np.ndarray, scores: np.ndarray, day: dt.date, rules: DecisionRules) -> str:
    plt = _plots()
    figure, axis = plt.subplots(figsize=(4.6, 2.4))
    top = max(float(np.max(reference)), float(np.max(scores)), rules.threshold * 1.2)
    bins = np.linspace(0, top, 40)
    axis.hist(reference, bins=bins, alpha=0.6, density=True, label=f"reference ({rules.reference} day)")
    axis.hist(scores.ravel(), bins=bins, alpha=0.6, density=True, label=f"{day}")
    axis.axvline(rules.threshold, color="black", linestyle="--", linewidth=1)
    axis.set_xlabel("pair score (0 same … ≥1 different)")
    axis.set_title("Score distributions", fontsize=10)
    axis.legend(fontsize=7)
    return _png(figure)


def _fingerprints(baseline: np.ndarray, day_images: np.ndarray, day: dt.date) -> str:
    plt = _plots()
    base = baseline.astype(float).mean(axis=0)
    now = day_images.astype(float).mean(axis=0) if len(day_images) else np.zeros_like(base)
    figure, axes = plt.subplots(1, 3, figsize=(12, 2.6))
    panels = [(base, "baseline (mean)", "gray", 0, 255), (now, f"{day} (mean)", "gray", 0, 255),
              (now - base, "difference", "RdBu_r", -128, 128)]
    for axis, (image, title, cmap, low, high) in zip(axes, panels, strict=True):
        axis.imshow(image, cmap=cmap, vmin=low, vmax=high, aspect="auto", interpolation="nearest")
        for boundary in (GROUP_SLICES[2].start, GROUP_SLICES[3].start, GROUP_SLICES[4].start):
            axis.axvline(boundary - 0.5, color="red", linestyle="--", linewidth=0.7)
        axis.set_yticks(range(len(PROTOCOL_ROWS)))
        axis.set_yticklabels(PROTOCOL_ROWS, fontsize=6)
        axis.set_xticks([])
        axis.set_title(title, fontsize=9)
    return _png(figure)


def _training_plot(model: TrainedTwin) -> str:
    plt = _plots()
    figure, axis = plt.subplots(figsize=(5, 2.4))
    epochs = [h.epoch for h in model.history]
    axis.plot(epochs, [h.train_loss for h in model.history], label="training loss")
    axis.plot(epochs, [h.val_loss for h in model.history], label="validation loss")
    axis.axvline(model.best_epoch, color="grey", linestyle=":", label=f"kept: epoch {model.best_epoch}")
    axis.set_yscale("log")
    axis.set_xlabel("epoch")
    axis.legend(fontsize=7)
    axis.set_title("Twin training (contrastive loss)", fontsize=10)
    return _png(figure)


def _verdict_table(devices: list[tuple[str, str]], days: list[dt.date],
                   cell: Callable[[str, dt.date], tuple[str, float | None, str] | None]) -> str:
    """Devices × days, each cell a coloured verdict and its Hedges' g (the reason on hover)."""
    rows = []
    for mac, label in devices:
        cells = []
        for day in days:
            found = cell(mac, day)
            if found is None:
                cells.append("<td></td>")
                continue
            verdict, g, reason = found
            cells.append(f'<td title="{html.escape(reason)}"><span class="chip" style="background:{COLOURS[verdict]}">'
                         f'{verdict[:7]}</span> {"–" if g is None else f"{g:.1f}"}</td>')
        rows.append(f'<tr><td class="name"><a href="#{mac}">{html.escape(label)}</a></td>' + "".join(cells) + "</tr>")
    header = "".join(f"<th>{d.isoformat()}</th>" for d in days)
    return f"<table><tr><th>device</th>{header}</tr>{''.join(rows)}</table>"


def _page(title: str, parts: list[str], path: str | os.PathLike) -> Path:
    head = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>")
    foot = f"<p class='muted'>made by twinwatch on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC</p></body></html>"
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join([head, *parts, foot]))
    return out


def write_events_report(events: list, path: str | os.PathLike, title: str = "twinwatch — change events",
                        rules: DecisionRules = DecisionRules()) -> Path:
    """The streaming path's report, from ChangeEvents alone (what the SIEM got): verdicts per device and
    day, Hedges' g per day, and why, for each device."""
    days = sorted({e.day for e in events})
    by_key = {(e.device.mac, e.day): e for e in events}
    devices = {e.device.mac: e.device.name or e.device.mac for e in sorted(events, key=lambda e: e.device.mac)}

    def cell(mac: str, day: dt.date) -> tuple[str, float | None, str] | None:
        event = by_key.get((mac, day))
        return None if event is None else (event.verdict, event.metrics.hedges_g if event.metrics else None,
                                           event.reason)

    changed = sum(e.verdict == CHANGED for e in events)
    models = sorted({f"{e.model_version} (Triton v{e.served_version})" if e.served_version else e.model_version
                     for e in events})
    parts = [f"<p>{len(devices)} devices, {len(days)} days, <b>{changed}</b> device-day(s) changed; "
             f"scored by {html.escape(', '.join(models))}.</p>", _verdict_table(list(devices.items()), days, cell)]
    for mac, label in devices.items():
        mine = sorted((e for e in events if e.device.mac == mac), key=lambda e: e.day)
        parts.append(f"<h2 id='{mac}'>{html.escape(label)} <span class='muted'>{mac} "
                     f"{html.escape(mine[-1].device.ip)} {html.escape(mine[-1].device.model)}</span></h2>")
        if any(e.metrics for e in mine):
            g_values = [e.metrics.hedges_g if e.metrics else None for e in mine]
            parts.append(f"<img src='{_g_plot([e.day for e in mine], g_values, [e.verdict for e in mine], rules)}'>")
        for event in mine:
            if event.verdict != STABLE:
                why = "; ".join(d.text for d in event.why)
                parts.append(f"<p class='why'><b>{event.day}</b> {event.verdict}: {html.escape(event.reason)}"
                             + (f". Moved most: {html.escape(why)}" if why else "") + "</p>")
    return _page(title, parts, path)


def write_report(analysis: Analysis, model: TrainedTwin, rules: DecisionRules, path: str | os.PathLike,
                 title: str = "twinwatch report") -> Path:
    """One HTML file with every picture inlined, so it can be mailed or attached to a ticket."""
    days = sorted({d.day for d in analysis.decisions})
    plan = analysis.shared_plan()
    days_text = (f"Baseline {plan.baseline}, training {plan.training}, validation {plan.validation}" if plan
                 else "Baseline, training and validation days per device (their first three usable days)")
    def cell(mac: str, day: dt.date) -> tuple[str, float | None, str] | None:
        decision = analysis.decision(mac, day)
        if decision is None:
            return None
        return decision.verdict, decision.metrics.hedges_g if decision.metrics else None, decision.reason

    table = _verdict_table([(d.mac, d.label) for d in analysis.devices], days, cell)
    changed = sum(d.verdict == CHANGED for d in analysis.decisions)
    best = model.best
    parts = [
        f"<p>{len(analysis.devices)} devices, {len(days)} judged days, <b>{changed}</b> device-day(s) changed. "
        f"{days_text}; "
        f"reference scores from the {rules.reference} day; changed when Hedges' g &gt; {rules.effect_size} "
        f"and the mean score rose by ≥ {rules.min_shift}. Model <code>{analysis.model_version}</code> "
        f"(validation accuracy {best.val_accuracy:.3f}, epoch {best.epoch}).</p>",
        table,
        f"<h2>The twin</h2><img src='{_training_plot(model)}'>",
    ]
    for device in analysis.devices:
        decisions = [analysis.decision(device.mac, day) for day in days]
        decisions = [d for d in decisions if d is not None]
        reference = analysis.baselines.get(device.mac)
        parts.append(f"<h2 id='{device.mac}'>{html.escape(device.label)} <span class='muted'>{device.mac} "
                     f"{html.escape(device.ip)} {html.escape(device.model)}</span></h2>")
        judged = [d for d in decisions if d.metrics is not None]
        if not judged or reference is None or reference.baseline_scores is None:
            reasons = "; ".join(sorted({d.reason for d in decisions})) or "no decisions"
            parts.append(f"<p class='why'>insufficient data: {html.escape(reasons)}</p>")
            continue
        g_values = [d.metrics.hedges_g if d.metrics else None for d in decisions]
        plot = _g_plot([d.day for d in decisions], g_values, [d.verdict for d in decisions], rules)
        parts.append(f"<img src='{plot}'>")
        focus = max(judged, key=lambda d: d.metrics.hedges_g)
        parts.append(f"<img src='{_histogram(reference.baseline_scores, focus.scores, focus.day, rules)}'>")
        images = analysis.day_images.get((device.mac, focus.day), np.zeros((0, 13, 53)))
        parts.append(f"<p class='why'><b>{focus.day}</b> (largest g): {html.escape(focus.reason)}"
                     + (". Moved most: " + html.escape("; ".join(d.describe() for d in focus.drivers))
                        if focus.drivers else "") + "</p>")
        parts.append(f"<img src='{_fingerprints(reference.baseline_images, images, focus.day)}'>")
    return _page(title, parts, path)
