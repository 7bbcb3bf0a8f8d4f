"""Rich views for ``modelyard agent`` and ``modelyard pipelines runs``: pipeline runs
with the reason each ran, and the events one agent pass handled. Nothing here
reads a store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from modelyard.cli import render

if TYPE_CHECKING:  # pragma: no cover
    from modelyard.pipelines.agent_history import PipelineRunView
    from modelyard.pipelines.agent_store import EventRecord

__all__ = ["events_table", "runs_table"]

_STYLE = {
    "FINISHED": "green",
    "finished": "green",
    "RUNNING": "blue",
    "running": "blue",
    "CLAIMED": "blue",
    "claimed": "blue",
    "PENDING": "cyan",
    "pending": "cyan",
    "FAILED": "red",
    "failed": "red",
    "KILLED": "yellow",
    "SKIPPED": "dim",
    "skipped": "dim",
}


def _status(status: str) -> Text:
    return Text(status, style=_STYLE.get(status, ""))


def runs_table(rows: Sequence[PipelineRunView], title: str = "Pipeline runs") -> Table:
    """One row per run (or run-less event): pipeline, status, why, when, how long."""
    table = Table(title=title, title_justify="left")
    table.add_column("run id", no_wrap=True, style="dim")
    table.add_column("pipeline", style="bold")
    table.add_column("status", no_wrap=True)
    table.add_column("why")
    table.add_column("start", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("error")
    for r in rows:
        table.add_row(
            (r.run_id or "")[:8],
            r.pipeline,
            _status(r.status),
            r.reason,
            render.fmt_time(r.start_ms),
            render.fmt_duration(r.start_ms, r.end_ms) if r.start_ms else "",
            r.error or "",
        )
    if not rows:
        table.caption = "no pipeline runs yet"
    return table


def events_table(records: Sequence[EventRecord], title: str) -> Table:
    """The events an agent pass started or took over, with how each ended."""
    table = Table(title=title, title_justify="left")
    for name in ("pipeline", "trigger", "event", "status", "run id", "error"):
        table.add_column(name, no_wrap=name in ("status", "run id"))
    for r in records:
        table.add_row(
            r.pipeline,
            r.trigger,
            r.event_key,
            _status(r.status),
            (r.run_id or "")[:8],
            r.error or "",
        )
    if not records:
        table.caption = "nothing was due"
    return table
