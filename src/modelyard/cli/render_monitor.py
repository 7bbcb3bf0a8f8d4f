"""Rich views of monitoring results for ``modelyard monitor ...``.

Turns a `DriftReport` into a table with a verdict caption; nothing here computes
or loads data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from modelyard.cli import render

if TYPE_CHECKING:  # pragma: no cover
    from modelyard.monitor.drift import ColumnDrift, DriftReport

__all__ = ["drift_table"]


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
