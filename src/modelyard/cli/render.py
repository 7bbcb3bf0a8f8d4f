"""Output of the CLI: rich tables for a terminal, one JSON document for scripts.

Everything here turns service results (entities, DataFrames) into text; nothing
here talks to a store. Formatting rules, in one place:

- times are local ``YYYY-MM-DD HH:MM:SS`` in tables, UTC milliseconds in JSON;
- floats show 4 significant digits in tables, full precision in JSON;
- NaN and infinities are the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` in
  JSON (as in MLflow's REST API), since JSON has no such numbers.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # pragma: no cover
    from modelyard.core.artifacts import FileInfo
    from modelyard.tracking.entities import Experiment, Run

__all__ = [
    "SYSTEM_TAG_PREFIXES",
    "compare_table",
    "compare_to_dict",
    "data_columns",
    "experiments_table",
    "fmt_duration",
    "fmt_seconds",
    "fmt_time",
    "fmt_value",
    "jsonable",
    "print_error",
    "print_json",
    "print_warning",
    "run_detail",
    "run_to_dict",
    "runs_table",
    "stderr_console",
    "stdout_console",
    "user_tags",
]

# Tags modelyard and MLflow clients set by themselves (source, git commit, versions).
SYSTEM_TAG_PREFIXES = ("mlflow.", "modelyard.")

_STATUS_STYLE = {
    "FINISHED": "green",
    "RUNNING": "blue",
    "SCHEDULED": "blue",
    "FAILED": "red",
    "KILLED": "yellow",
}


# -- consoles and plain output -------------------------------------------------------
# Width for output that is not a terminal (a pipe, a CI log): wide enough that tables
# keep their cells whole instead of rich's 80-column fallback. COLUMNS still wins.
PIPE_WIDTH = 200


def stdout_console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH
    return console


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def print_error(message: str) -> None:
    """``error: <message>`` in red on stderr (the message is printed verbatim)."""
    stderr_console().print(Text(f"error: {message}", style="bold red"), soft_wrap=True)


def print_warning(message: str) -> None:
    stderr_console().print(Text(f"warning: {message}", style="yellow"), soft_wrap=True)


def jsonable(value: Any) -> Any:
    """``value`` with numpy/pandas scalars made plain and non-finite floats as strings."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        if math.isnan(value):
            return "NaN"
        return "Infinity" if value > 0 else "-Infinity"
    return value


def print_json(document: Any) -> None:
    """One JSON document on stdout (no colours, no wrapping)."""
    sys.stdout.write(json.dumps(jsonable(document), indent=2, allow_nan=False, default=str))
    sys.stdout.write("\n")


# -- cell formatting ----------------------------------------------------------------
def fmt_time(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def fmt_duration(start_ms: int, end_ms: int | None) -> str:
    """``12.3s``, ``4m 05s``, ``2h 07m``; empty while the run has no end time."""
    return "" if end_ms is None else fmt_seconds((end_ms - start_ms) / 1000)


def fmt_value(value: Any) -> str:
    """A metric, param or tag value for a table cell (empty for a missing value)."""
    if value is None:
        return ""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _status(status: str) -> Text:
    return Text(status, style=_STATUS_STYLE.get(status, ""))


def user_tags(tags: Mapping[str, str], all_tags: bool = False) -> dict[str, str]:
    """The tags to show: without system tags (``mlflow.*``, ``modelyard.*``) unless asked."""
    if all_tags:
        return dict(sorted(tags.items()))
    return {k: v for k, v in sorted(tags.items()) if not k.startswith(SYSTEM_TAG_PREFIXES)}


# -- experiments --------------------------------------------------------------------
def experiments_table(experiments: Sequence[Experiment], show_stage: bool) -> Table:
    table = Table(title="Experiments", title_justify="left")
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("name", style="bold")
    if show_stage:
        table.add_column("stage")
    table.add_column("created", no_wrap=True)
    table.add_column("updated", no_wrap=True)
    table.add_column("artifact location", overflow="fold")
    table.add_column("tags", overflow="fold")
    for exp in experiments:
        row = [exp.experiment_id, exp.name]
        if show_stage:
            row.append(exp.lifecycle_stage)
        row += [
            fmt_time(exp.creation_time),
            fmt_time(exp.last_update_time),
            exp.artifact_location,
            ", ".join(f"{k}={v}" for k, v in sorted(exp.tags.items())),
        ]
        table.add_row(*row)
    return table


# -- runs ---------------------------------------------------------------------------
def run_to_dict(run: Run, all_tags: bool = True) -> dict[str, Any]:
    """A run as one flat JSON object: its info, then latest metrics, params and tags."""
    info = run.info
    return {
        **info.to_dict(),
        "duration_s": None if info.end_time is None else (info.end_time - info.start_time) / 1000,
        "metrics": dict(sorted(run.data.metrics.items())),
        "params": dict(sorted(run.data.params.items())),
        "tags": user_tags(run.data.tags, all_tags),
    }


def runs_table(
    runs: Sequence[Run],
    columns: Sequence[str],
    *,
    experiment_names: Mapping[str, str] | None = None,
    full_ids: bool = False,
    title: str = "Runs",
) -> Table:
    """One row per run: id, name, status, start, duration, then ``columns``
    (``metrics.<key>``, ``params.<key>`` or ``tags.<key>``)."""
    table = Table(title=title, title_justify="left")
    table.add_column("run id", no_wrap=True, style="dim" if not full_ids else "")
    if experiment_names:
        table.add_column("experiment")
    table.add_column("name", style="bold")
    table.add_column("status", no_wrap=True)
    table.add_column("start", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    bare = [c.split(".", 1)[1] for c in columns]
    for col, key in zip(columns, bare, strict=True):
        kind = col.split(".", 1)[0]
        header = key if bare.count(key) == 1 else col
        table.add_column(
            header,
            justify="right" if kind == "metrics" else "left",
            header_style={"metrics": "bold cyan", "params": "bold magenta"}.get(kind, "bold"),
        )
    for run in runs:
        info = run.info
        row: list[Any] = [info.run_id if full_ids else info.run_id[:8]]
        if experiment_names:
            row.append(experiment_names.get(info.experiment_id, info.experiment_id))
        row += [
            info.run_name,
            _status(info.status),
            fmt_time(info.start_time),
            fmt_duration(info.start_time, info.end_time),
        ]
        row += [fmt_value(_cell(run, col)) for col in columns]
        table.add_row(*row)
    return table


def _cell(run: Run, column: str) -> Any:
    kind, key = column.split(".", 1)
    source = {"metrics": run.data.metrics, "params": run.data.params, "tags": run.data.tags}
    return source[kind].get(key)


def data_columns(
    runs: Iterable[Run], first: Sequence[str] = (), limit: int = 8
) -> tuple[list[str], int]:
    """The metric and param columns to show by default, at most ``limit``: ``first``
    (those named in the ordering), then metrics and params, each sorted, about two
    thirds metrics when there are more of both than fit. Returns the columns and how
    many were left out."""
    metric_keys: set[str] = set()
    param_keys: set[str] = set()
    for run in runs:
        metric_keys.update(run.data.metrics)
        param_keys.update(run.data.params)
    named = [
        c
        for c in dict.fromkeys(first)
        if c.split(".", 1)[1] in (metric_keys if c.startswith("metrics.") else param_keys)
    ][:limit]
    metrics = [c for c in (f"metrics.{k}" for k in sorted(metric_keys)) if c not in named]
    params = [c for c in (f"params.{k}" for k in sorted(param_keys)) if c not in named]
    room = limit - len(named)
    n_metrics = min(len(metrics), max(room - len(params), -(-room * 2 // 3)))
    shown = named + metrics[:n_metrics] + params[: room - n_metrics]
    return shown, len(named) + len(metrics) + len(params) - len(shown)


def run_detail(
    run: Run,
    experiment_name: str | None,
    artifacts: Sequence[FileInfo],
    all_tags: bool = False,
) -> list[Table | Text]:
    """What ``runs show`` prints: overview, params, metrics, tags, artifacts."""
    info = run.info
    overview = Table.grid(padding=(0, 2))
    overview.add_column(style="bold")
    overview.add_column(overflow="fold")
    experiment = f"{experiment_name} ({info.experiment_id})" if experiment_name else None
    for label, value in (
        ("run id", info.run_id),
        ("name", info.run_name),
        ("experiment", experiment or info.experiment_id),
        ("status", _status(info.status)),
        ("lifecycle", info.lifecycle_stage),
        ("user", info.user_id),
        ("start", fmt_time(info.start_time)),
        ("end", fmt_time(info.end_time)),
        ("duration", fmt_duration(info.start_time, info.end_time)),
        ("parent run", info.parent_run_id or ""),
        ("artifact uri", info.artifact_uri),
    ):
        if value:
            overview.add_row(label, value)
    parts: list[Table | Text] = [overview]

    params = Table(title="Params", title_justify="left")
    params.add_column("key", style="magenta")
    params.add_column("value", overflow="fold")
    for key, value in sorted(run.data.params.items()):
        params.add_row(key, value)

    metrics = Table(title="Metrics (latest)", title_justify="left")
    metrics.add_column("key", style="cyan")
    metrics.add_column("value", justify="right")
    metrics.add_column("step", justify="right")
    metrics.add_column("logged", no_wrap=True)
    latest = {m.key: m for m in run.data.metric_points}
    for key, value in sorted(run.data.metrics.items()):
        point = latest.get(key)
        metrics.add_row(
            key,
            fmt_value(value),
            "" if point is None else str(point.step),
            "" if point is None else fmt_time(point.timestamp),
        )

    tags = Table(title="Tags", title_justify="left")
    tags.add_column("key")
    tags.add_column("value", overflow="fold")
    shown = user_tags(run.data.tags, all_tags)
    for key, value in shown.items():
        tags.add_row(key, value)
    hidden = len(run.data.tags) - len(shown)

    files = Table(title="Artifacts", title_justify="left")
    files.add_column("path", overflow="fold")
    files.add_column("size", justify="right")
    for f in artifacts:
        if not f.is_dir:
            files.add_row(f.path, _size(f.file_size))

    for table in (params, metrics, tags, files):
        if table.row_count:
            parts.append(table)
        if table is tags and hidden:
            parts.append(Text(f"{hidden} system tags hidden (--all-tags shows them)", style="dim"))
    return parts


def _size(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)  # pragma: no cover - the loop always returns


# -- compare ------------------------------------------------------------------------
def compare_table(frame: Any, title: str = "Run comparison") -> Table:
    """The service's compare DataFrame (rows = attributes/params/metrics/tags,
    columns = runs) as a table."""
    table = Table(title=title, title_justify="left")
    table.add_column("", style="bold", no_wrap=True)
    for col in frame.columns:
        table.add_column(str(col), overflow="fold")
    for key, row in frame.iterrows():
        kind = str(key).split(".", 1)[0]
        label = Text(str(key), style={"metrics": "cyan", "params": "magenta"}.get(kind, ""))
        table.add_row(label, *(_compare_cell(str(key), v) for v in row.tolist()))
    return table


def _compare_cell(key: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if key == "attributes.start_time":
        return fmt_time(int(value))
    if key == "attributes.duration_s":
        return fmt_seconds(float(value))
    return fmt_value(value)


def compare_to_dict(frame: Any) -> dict[str, Any]:
    """``{"columns": [run labels], "rows": {key: {run label: value or null}}}``."""
    rows: dict[str, dict[str, Any]] = {}
    for key, row in frame.iterrows():
        rows[str(key)] = {
            str(col): None if _missing(v) else v
            for col, v in zip(frame.columns, row.tolist(), strict=True)
        }
    return {"columns": [str(c) for c in frame.columns], "rows": rows}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
