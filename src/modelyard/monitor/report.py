"""The monitoring report: one self-contained HTML file (Plotly, its script inlined
once, so it opens offline) and its JSON twin.

Sections: the verdict (rows, dataset drift, prediction drift, alerts), drift score
per feature against its threshold, reference-vs-current distributions of the most
drifted features, drift share and performance over the window's slices, and the
data-quality table.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from modelyard.monitor.columns import CATEGORICAL
from modelyard.monitor.drift import ColumnDrift, drift
from modelyard.monitor.profile import ColumnProfile
from modelyard.monitor.service import MonitorCheck

__all__ = ["MonitorReport", "build_report", "render_html"]

TOP_FEATURES = 12
SLICES = 12


@dataclass
class MonitorReport:
    check: MonitorCheck
    timeline: list[dict[str, Any]] = field(default_factory=list)  # per slice of the window

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check.to_dict(), "timeline": self.timeline}


def build_report(check: MonitorCheck, frame: pd.DataFrame | None, baseline: Any) -> MonitorReport:
    """``check`` plus drift share per slice of its window (``frame`` is the window's
    predictions, ``baseline`` the version's `Baseline`)."""
    report = MonitorReport(check)
    if frame is None or not len(frame) or baseline is None:
        return report
    ref = baseline.profile
    features = [c for c in baseline.features if c in ref.columns and c in frame.columns]
    width = max((check.end_ms - check.start_ms) // SLICES, 1)
    index = (frame["timestamp_ms"].to_numpy(dtype=np.int64) - check.start_ms) // width
    for k in np.unique(index):
        part = frame[index == k]
        point: dict[str, Any] = {
            "start_ms": int(check.start_ms + k * width),
            "end_ms": int(check.start_ms + (k + 1) * width),
            "rows": len(part),
        }
        if features:
            result = drift(ref, ref.profile(part[features]), columns=features)
            point["drift_share"] = result.share_drifted
        report.timeline.append(point)
    return report


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _figure_html(fig: Any, first: bool) -> str:
    fig.update_layout(
        margin={"l": 50, "r": 20, "t": 50, "b": 40}, height=360, template="plotly_white"
    )
    return fig.to_html(full_html=False, include_plotlyjs=first, config={"displaylogo": False})


def _bars(prof: ColumnProfile, edges: list[float] | None) -> tuple[list[str], np.ndarray]:
    """A profile's shares on about 20 bins (numerical) or per category."""
    if prof.kind == CATEGORICAL:
        cats = prof.categories or {}
        keys = list(cats)
        counts = np.array([cats[k] for k in keys], dtype=float)
        return keys, counts / max(counts.sum(), 1)
    counts = np.asarray(prof.counts or [], dtype=float)
    step = max(len(counts) // 20, 1)
    groups = np.add.reduceat(counts, np.arange(0, len(counts), step)) if len(counts) else counts
    cuts = (edges or [])[step - 1 :: step]
    labels = [f"≤ {c:.3g}" for c in cuts[: len(groups) - 1]] + ["above"]
    return labels[: len(groups)], groups / max(groups.sum(), 1)


def _distribution(c: ColumnDrift, first: bool) -> str:
    import plotly.graph_objects as go

    ref_labels, ref_shares = _bars(c.reference, c.reference.edges)
    fig = go.Figure()
    fig.add_bar(x=ref_labels, y=ref_shares, name="reference", marker_color="#8da0cb")
    if c.kind == CATEGORICAL:
        cats = c.current.categories or {}
        total = max(sum(cats.values()), 1)
        keys = ref_labels + [k for k in cats if k not in ref_labels]
        fig.add_bar(
            x=keys, y=[cats.get(k, 0) / total for k in keys], name="current", marker_color="#fc8d62"
        )
    else:
        cur_labels, cur_shares = _bars(c.current, c.reference.edges)
        fig.add_bar(x=cur_labels, y=cur_shares, name="current", marker_color="#fc8d62")
    verdict = "drift" if c.drifted else "no drift"
    fig.update_layout(
        title=f"{c.name}: {c.method} {c.statistic:.3g} ({verdict})",
        barmode="group",
        yaxis_title="share",
    )
    return _figure_html(fig, first)


def render_html(report: MonitorReport) -> str:
    """The report as one HTML document."""
    import plotly.graph_objects as go

    check = report.check
    parts: list[str] = []
    first = True

    def add(fig_html: str) -> None:
        nonlocal first
        parts.append(f'<div class="figure">{fig_html}</div>')
        first = False

    summary = [
        ("model", f"{check.model} v{check.version}" if check.version else check.model),
        ("window", f"{_when(check.start_ms)} → {_when(check.end_ms)}"),
        ("predictions", f"{check.rows:,}"),
    ]
    if check.drift is not None:
        d = check.drift
        summary.append(
            (
                "dataset drift",
                f"{'YES' if d.dataset_drift else 'no'}: {len(d.drifted_columns)} of "
                f"{len(d.evaluated)} features ({d.share_drifted:.0%}; "
                f"threshold {d.drift_share:.0%})",
            )
        )
    if check.prediction_drift is not None and check.prediction_drift.method:
        p = check.prediction_drift
        summary.append(
            ("prediction drift", f"{'YES' if p.drifted else 'no'} ({p.method} {p.statistic:.3g})")
        )
    if check.alerts:
        summary.append(
            ("alerts fired", ", ".join(f"{a.rule} ({a.severity})" for a in check.alerts))
        )
    if check.message:
        summary.append(("note", check.message))
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in summary
    )
    parts.append(f"<table class='summary'>{rows}</table>")

    if check.drift is not None and check.drift.evaluated:
        evaluated = sorted(check.drift.evaluated, key=lambda c: (not c.drifted, c.name))
        fig = go.Figure()
        fig.add_bar(
            x=[c.name for c in evaluated],
            y=[c.score for c in evaluated],
            marker_color=["#d62728" if c.drifted else "#2ca02c" for c in evaluated],
            text=[c.method for c in evaluated],
        )
        fig.update_layout(
            title="Drift score per feature (p-value for tests, distance otherwise)",
            yaxis_type="log" if any(c.p_value is not None for c in evaluated) else None,
        )
        add(_figure_html(fig, first))
        for c in evaluated[:TOP_FEATURES]:
            if c.reference is not None and c.current is not None:
                add(_distribution(c, first))
    if report.timeline:
        fig = go.Figure()
        times = [datetime.fromtimestamp(p["start_ms"] / 1000, UTC) for p in report.timeline]
        fig.add_scatter(
            x=times,
            y=[p.get("drift_share") for p in report.timeline],
            mode="lines+markers",
            name="share of drifted features",
        )
        fig.add_bar(
            x=times,
            y=[p["rows"] for p in report.timeline],
            name="predictions",
            yaxis="y2",
            opacity=0.3,
        )
        fig.update_layout(
            title="Drift over the window",
            yaxis={"title": "drift share"},
            yaxis2={"title": "predictions", "overlaying": "y", "side": "right"},
        )
        add(_figure_html(fig, first))
    perf = check.performance
    if perf is not None and any(p.metrics for p in perf.points):
        fig = go.Figure()
        times = [datetime.fromtimestamp(p.start_ms / 1000, UTC) for p in perf.points]
        for metric in ("accuracy", "f1", "roc_auc", "rmse", "mae"):
            values = [p.metrics.get(metric) for p in perf.points]
            if any(v is not None for v in values):
                fig.add_scatter(x=times, y=values, mode="lines+markers", name=metric)
                if metric in perf.baseline:
                    fig.add_hline(
                        y=perf.baseline[metric],
                        line_dash="dot",
                        annotation_text=f"baseline {metric}",
                        # alternate sides, so that two baselines close together stay legible
                        annotation_position="top left" if len(fig.data) % 2 else "bottom right",
                    )
        fig.update_layout(title=f"Performance from labels (delay {perf.label_delay_ms / 1000:g} s)")
        add(_figure_html(fig, first))
    if check.quality is not None:
        q = check.quality
        header = (
            "<tr><th>feature</th><th>missing</th><th>(reference)</th><th>out of range</th>"
            "<th>unseen categories</th><th>problem</th></tr>"
        )
        body = "".join(
            f"<tr><td>{html.escape(c.column)}</td><td>{c.missing_rate:.1%}</td>"
            f"<td>{c.reference_missing_rate:.1%}</td><td>{c.out_of_range_rate:.1%}</td>"
            f"<td>{c.unseen_rate:.1%} {html.escape(', '.join(c.unseen[:5]))}</td>"
            f"<td>{html.escape(c.problem or '')}</td></tr>"
            for c in q.columns
        )
        violations = "".join(f"<li>{html.escape(v)}</li>" for v in q.schema_violations)
        parts.append(
            f"<h2>Data quality</h2><ul>{violations}</ul>"
            f"<table class='quality'>{header}{body}</table>"
        )
    title = f"modelyard monitoring: {check.model}"
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{''.join(parts)}</body></html>"
    )


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ddd;padding:4px 10px;"
    "text-align:left}th{background:#f5f5f5}.figure{margin:1em 0}"
)
