"""Rich views of monitoring results for ``modelyard monitor ...``.

Drift reports, checks of a production window and alert history as tables; nothing
here computes or loads data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import RenderableType
from rich.table import Table

from modelyard.cli import render

if TYPE_CHECKING:  # pragma: no cover
    from modelyard.monitor.alerts import Alert
    from modelyard.monitor.drift import ColumnDrift, DriftReport
    from modelyard.monitor.service import MonitorCheck

__all__ = ["alerts_table", "check_view", "drift_table"]


def _score(c: ColumnDrift) -> str:
    if c.method is None:
        return ""
    if c.p_value is not None:
        return f"p={c.p_value:.3g}"
    return f"{c.statistic:.4g}"


def _rule(c: ColumnDrift) -> str:
    if c.method is None:
        return ""
    return f"p < {c.threshold:g}" if c.p_value is not None else f"≥ {c.threshold:g}"


def _missing(c: ColumnDrift) -> str:
    if c.reference is None or c.current is None:
        return ""
    return f"{c.reference.missing_rate:.1%} → {c.current.missing_rate:.1%}"


def drift_table(report: DriftReport, title: str = "Drift") -> Table:
    """One row per column: method, score, rule, verdict, missing share, new categories."""
    verdict = (
        "[red]DATASET DRIFT[/red]" if report.dataset_drift else "[green]no dataset drift[/green]"
    )
    table = Table(
        title=f"{title}: {report.reference_rows:,} reference rows, {report.current_rows:,} current",
        caption=(
            f"{verdict}: {len(report.drifted_columns)} of {len(report.evaluated)} columns drifted "
            f"({report.share_drifted:.0%}; the dataset drifts at {report.drift_share:.0%}); "
            f"{render.fmt_seconds(report.seconds)}"
        ),
    )
    for name in (
        "column",
        "kind",
        "method",
        "score",
        "rule",
        "verdict",
        "missing",
        "new categories",
    ):
        table.add_column(name, justify="right" if name in ("score", "missing") else "left")
    for c in report.columns:
        if c.method is None:
            verdict_cell = f"[yellow]{c.message}[/yellow]"
        else:
            verdict_cell = "[red]drift[/red]" if c.drifted else "[green]ok[/green]"
        new = ", ".join(c.new_categories[:5]) + (" …" if len(c.new_categories) > 5 else "")
        table.add_row(
            c.name, c.kind, c.method or "", _score(c), _rule(c), verdict_cell, _missing(c), new
        )
    return table


def check_view(check: MonitorCheck) -> list[RenderableType]:
    """A monitoring check: its summary, the drift table, quality problems, performance."""
    summary = Table(title=f"Monitoring {check.model}", show_header=False)
    summary.add_column("what")
    summary.add_column("value")
    summary.add_row("version", check.version or "")
    summary.add_row(
        "window", f"{render.fmt_time(check.start_ms)} → {render.fmt_time(check.end_ms)}"
    )
    summary.add_row("predictions", f"{check.rows:,}")
    if check.message:
        summary.add_row("note", f"[yellow]{check.message}[/yellow]")
    p = check.prediction_drift
    if p is not None and p.method is not None:
        verdict = "[red]drift[/red]" if p.drifted else "[green]ok[/green]"
        summary.add_row("prediction drift", f"{verdict} ({p.method} {p.statistic:.4g})")
    perf = check.performance
    latest = perf.latest() if perf is not None else None
    if latest is not None:
        for metric in ("accuracy", "f1", "roc_auc", "rmse", "mae", "r2"):
            if metric in latest.metrics:
                change = perf.change(metric)
                delta = "" if change is None else f" ({change:+.4f} vs baseline)"
                summary.add_row(metric, f"{latest.metrics[metric]:.4f}{delta}")
        summary.add_row("label coverage", f"{latest.coverage:.0%} of {latest.rows:,}")
    if check.quality is not None:
        q = check.quality
        summary.add_row("schema", "; ".join(q.schema_violations) or "[green]ok[/green]")
        summary.add_row(
            "worst missing / out of range / unseen",
            f"{q.worst('missing_rate'):.1%} / {q.worst('out_of_range_rate'):.1%} / "
            f"{q.worst('unseen_rate'):.1%}",
        )
    for alert in check.alerts:
        summary.add_row(f"[red]alert[/red] {alert.rule}", f"{alert.severity}: {alert.message}")
    out: list[RenderableType] = [summary]
    if check.drift is not None:
        out.append(drift_table(check.drift, title="Feature drift"))
    return out


def alerts_table(alerts: Sequence[Alert]) -> Table:
    table = Table(title="Alerts (newest first)")
    for name in (
        "fired",
        "model",
        "rule",
        "severity",
        "value",
        "condition",
        "trigger",
        "deliveries",
    ):
        table.add_column(name)
    for a in alerts:
        style = {"critical": "red", "warning": "yellow"}.get(a.severity, "")
        table.add_row(
            render.fmt_time(a.fired_at),
            a.model,
            a.rule,
            f"[{style}]{a.severity}[/{style}]" if style else a.severity,
            render.fmt_value(a.value),
            a.condition,
            "yes" if a.trigger else "",
            ", ".join(f"{k.split(':')[0]}: {v}" for k, v in a.deliveries.items()),
        )
    return table
