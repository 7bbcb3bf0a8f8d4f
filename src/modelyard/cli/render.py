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
    from modelyard.registry.entities import (
        Approval,
        ApprovalPolicy,
        Assignment,
        ModelVersion,
        RegisteredModel,
    )
    from modelyard.tracking.entities import Experiment, Run

__all__ = [
    "SYSTEM_TAG_PREFIXES",
    "approvals_table",
    "compare_table",
    "compare_to_dict",
    "data_columns",
    "experiments_table",
    "fmt_duration",
    "fmt_metrics",
    "fmt_seconds",
    "fmt_time",
    "fmt_value",
    "history_table",
    "jsonable",
    "model_overview",
    "model_versions_table",
    "models_table",
    "policy_detail",
    "print_error",
    "print_json",
    "print_warning",
    "run_detail",
    "run_to_dict",
    "runs_table",
    "stderr_console",
    "stdout_console",
    "user_tags",
    "version_detail",
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


# -- models -------------------------------------------------------------------------
_DECISION_STYLE = {"approved": "green", "rejected": "red"}
_STAGE_STYLE = {"Production": "green", "Staging": "blue", "Archived": "dim"}


def fmt_metrics(metrics: Mapping[str, Any], limit: int = 4) -> str:
    """``accuracy=0.91, f1=0.88 (+3)``: a metrics snapshot in one cell."""
    items = sorted(metrics.items())
    text = ", ".join(f"{k}={fmt_value(v)}" for k, v in items[:limit])
    return text + (f" (+{len(items) - limit})" if len(items) > limit else "")


def _stage(stage: str) -> Text:
    return Text(stage, style=_STAGE_STYLE.get(stage, ""))


def models_table(models: Sequence[RegisteredModel]) -> Table:
    """One row per registered model: newest version, aliases, stages, description."""
    table = Table(title="Registered models", title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("latest", justify="right", no_wrap=True)
    table.add_column("aliases", overflow="fold")
    table.add_column("stages", overflow="fold")
    table.add_column("updated", no_wrap=True)
    table.add_column("description", overflow="fold")
    for m in models:
        latest = max((v.version for v in m.latest_versions), default=None)
        stages = [f"{v.stage}: v{v.version}" for v in m.latest_versions if v.stage != "None"]
        table.add_row(
            m.name,
            "" if latest is None else str(latest),
            ", ".join(f"{a}: v{v}" for a, v in sorted(m.aliases.items())),
            ", ".join(stages),
            fmt_time(m.updated_at),
            m.description or "",
        )
    return table


def model_overview(model: RegisteredModel) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("model", model.name)
    for label, value in (
        ("description", model.description or ""),
        ("aliases", ", ".join(f"{a} -> v{v}" for a, v in sorted(model.aliases.items()))),
        ("tags", ", ".join(f"{k}={v}" for k, v in sorted(model.tags.items()))),
        ("created", fmt_time(model.created_at)),
        ("updated", fmt_time(model.updated_at)),
    ):
        if value:
            grid.add_row(label, value)
    return grid


def model_versions_table(versions: Sequence[ModelVersion], title: str = "Versions") -> Table:
    """One row per version: stage, aliases, source, run, metrics snapshot, who and when."""
    table = Table(title=title, title_justify="left")
    table.add_column("version", justify="right", no_wrap=True)
    table.add_column("stage", no_wrap=True)
    table.add_column("aliases", style="bold")
    table.add_column("source", overflow="fold")
    table.add_column("run", no_wrap=True, style="dim")
    table.add_column("metrics", overflow="fold")
    table.add_column("created", no_wrap=True)
    table.add_column("by")
    for v in versions:
        table.add_row(
            str(v.version),
            _stage(v.stage),
            ", ".join(v.aliases),
            v.source,
            (v.run_id or "")[:8],
            fmt_metrics(v.metrics),
            fmt_time(v.created_at),
            v.user_id,
        )
    return table


def version_detail(version: ModelVersion) -> list[Table | Text]:
    """What ``models show NAME --version N`` prints: overview, metrics, data, signature."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for label, value in (
        ("model", f"{version.name} version {version.version}"),
        ("uri", version.uri),
        ("stage", _stage(version.stage)),
        ("aliases", ", ".join(version.aliases)),
        ("description", version.description or ""),
        ("flavor", version.flavor or ""),
        ("source", version.source),
        ("artifact uri", version.artifact_uri),
        ("run", version.run_id or ""),
        ("created", f"{fmt_time(version.created_at)} by {version.user_id}"),
        ("tags", ", ".join(f"{k}={v}" for k, v in sorted(version.tags.items()))),
    ):
        if value:
            grid.add_row(label, value)
    parts: list[Table | Text] = [grid]

    metrics = Table(title="Metrics (snapshot)", title_justify="left")
    metrics.add_column("key", style="cyan")
    metrics.add_column("value", justify="right")
    for key, value in sorted(version.metrics.items()):
        metrics.add_row(key, fmt_value(value))

    data = Table(title="Training data (lineage)", title_justify="left")
    data.add_column("dataset")
    data.add_column("digest", no_wrap=True)
    data.add_column("context")
    data.add_column("uri", overflow="fold")
    for item in version.lineage:
        data.add_row(
            *(str(item.get(k) or "") for k in ("dataset_name", "dataset_digest", "context")),
            str(item.get("dataset_uri") or ""),
        )

    signature = Table(title="Signature", title_justify="left")
    signature.add_column("role")
    signature.add_column("name", style="bold")
    signature.add_column("dtype")
    signature.add_column("shape")
    for role, key in (("input", "inputs"), ("output", "outputs")):
        for spec in (version.signature or {}).get(key) or []:
            if isinstance(spec, Mapping):
                shape = spec.get("shape")
                signature.add_row(
                    role,
                    str(spec.get("name", "")),
                    str(spec.get("dtype", "")),
                    "" if shape is None else str(shape),
                )
    for table in (metrics, data, signature):
        if table.row_count:
            parts.append(table)
    return parts


def policy_detail(policy: ApprovalPolicy | None, name: str) -> Table | Text:
    """A model's approval policy, or a line saying it has none."""
    if policy is None:
        return Text(f"{name} has no approval policy: any version may take any alias or stage.")
    grid = Table(title="Approval policy", title_justify="left", show_header=False)
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    floors = ", ".join(f"{k} >= {v:g}" for k, v in sorted(policy.metric_floors.items()))
    grid.add_row("approvals required", str(policy.required_approvals))
    grid.add_row("metric floors", floors or "none")
    grid.add_row("protects", ", ".join(policy.protected) or "nothing")
    if policy.updated_at:
        grid.add_row("updated", f"{fmt_time(policy.updated_at)} by {policy.updated_by}")
    return grid


def approvals_table(approvals: Sequence[Approval]) -> Table:
    table = Table(title="Approvals", title_justify="left")
    table.add_column("version", justify="right", no_wrap=True)
    table.add_column("decision", no_wrap=True)
    table.add_column("by")
    table.add_column("reason", overflow="fold")
    table.add_column("when", no_wrap=True)
    for a in approvals:
        table.add_row(
            str(a.version),
            Text(a.decision, style=_DECISION_STYLE.get(a.decision, "")),
            a.actor,
            a.reason or "",
            fmt_time(a.created_at),
        )
    return table


def history_table(periods: Sequence[Assignment], title: str, show_label: bool) -> Table:
    """One row per period a version held an alias or stage: from, to (or "now"), by, why."""
    table = Table(title=title, title_justify="left")
    if show_label:
        table.add_column("alias/stage", style="bold")
    table.add_column("version", justify="right", no_wrap=True)
    table.add_column("from", no_wrap=True)
    table.add_column("to", no_wrap=True)
    table.add_column("by")
    table.add_column("reason", overflow="fold")
    for p in periods:
        row: list[Any] = [f"{p.label} ({p.kind})"] if show_label else []
        row += [
            str(p.version),
            fmt_time(p.started_at),
            Text("now", style="green") if p.ended_at is None else fmt_time(p.ended_at),
            p.started_by,
            p.reason or "",
        ]
        table.add_row(*row)
    return table
