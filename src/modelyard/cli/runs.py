"""``modelyard runs list|show|compare``: find runs, look into one, set several side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from modelyard.cli import JsonFlag, Services, View, render
from modelyard.core.errors import ModelyardError

if TYPE_CHECKING:  # pragma: no cover
    from modelyard.core.artifacts import FileInfo
    from modelyard.tracking.entities import Run
    from modelyard.tracking.service import TrackingService

__all__ = ["app"]

app = typer.Typer(help="Runs: list, show and compare them.", no_args_is_help=True)

# Metric/param columns `runs list` shows when --columns does not choose them.
DEFAULT_MAX_COLUMNS = 8
# Files `runs show` lists at most (a run may hold thousands of artifacts).
MAX_LISTED_ARTIFACTS = 200
_COLUMN_KINDS = ("metrics", "params", "tags")


def _tracking(ctx: typer.Context) -> TrackingService:
    return ctx.ensure_object(Services).tracking


def _parse_columns(value: str | None) -> list[str] | None:
    if value is None:
        return None
    columns = [c.strip() for c in value.split(",") if c.strip()]
    for col in columns:
        kind, _, key = col.partition(".")
        if kind not in _COLUMN_KINDS or not key:
            raise typer.BadParameter(
                f"{col!r} is not a column; expected metrics.<key>, params.<key> or tags.<key> "
                "(for example --columns metrics.accuracy,params.C)",
                param_hint="--columns",
            )
    return columns


def _order_columns(order_by: list[str]) -> list[str]:
    """The metric/param columns named in --order-by ('metrics.acc DESC' -> metrics.acc)."""
    out = []
    for clause in order_by:
        name = clause.strip().split(" ", 1)[0].replace("`", "").replace('"', "")
        if name.startswith(("metrics.", "params.")):
            out.append(name)
    return out


@app.command("list")
def list_runs(
    ctx: typer.Context,
    experiment: Annotated[
        list[str] | None,
        typer.Option(
            "--experiment",
            "-e",
            help="Experiment name or id; repeat for several. Default: every active experiment.",
        ),
    ] = None,
    filter_string: Annotated[
        str,
        typer.Option(
            "--filter",
            "-f",
            help="Filter in MLflow syntax plus OR, parentheses, IN, BETWEEN, LIKE, e.g. "
            "\"metrics.acc > 0.9 and params.model = 'rf'\".",
        ),
    ] = "",
    order_by: Annotated[
        list[str] | None,
        typer.Option(
            "--order-by", "-o", help="Sort key, e.g. 'metrics.acc DESC'; repeat for several."
        ),
    ] = None,
    max_results: Annotated[
        int, typer.Option("--max-results", "-n", min=1, help="Show at most this many runs.")
    ] = 100,
    view: Annotated[
        View, typer.Option("--view", help="Which runs: active, deleted or all.")
    ] = View.active,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            "-c",
            help="Comma-separated columns to show, e.g. metrics.acc,params.C,tags.team. "
            f"Default: up to {DEFAULT_MAX_COLUMNS} metrics, then params.",
        ),
    ] = None,
    full_ids: Annotated[bool, typer.Option("--full-ids", help="Show whole run ids.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """List runs, newest first unless --order-by says otherwise."""
    chosen = _parse_columns(columns)
    svc = _tracking(ctx)
    if experiment:
        experiments = [svc.require_experiment(e) for e in experiment]
    else:
        experiments = svc.all_experiments()
    names = {e.experiment_id: e.name for e in experiments}
    runs: list[Run] = []
    if names:  # one run more than shown tells whether more exist
        runs = svc.find_runs(list(names), filter_string, view.value, max_results + 1, order_by)
    more = len(runs) > max_results
    runs = runs[:max_results]

    if as_json:
        render.print_json({"runs": [render.run_to_dict(r) for r in runs]})
        return
    console = render.stdout_console()
    if not runs:
        console.print("No runs match." if filter_string else "No runs.")
        return
    hidden = 0
    if chosen is None:
        chosen, hidden = render.data_columns(
            runs, _order_columns(order_by or []), DEFAULT_MAX_COLUMNS
        )
    table = render.runs_table(
        runs,
        chosen,
        experiment_names=names if len(names) > 1 else None,
        full_ids=full_ids,
        title=f"Runs of {experiments[0].name}" if len(names) == 1 else "Runs",
    )
    notes = []
    if more:
        notes.append(f"first {len(runs)} runs shown (--max-results shows more)")
    if hidden:
        notes.append(f"{hidden} more metric/param columns (choose with --columns)")
    if not full_ids:
        notes.append("show/compare take these short ids; whole ids: --full-ids or --json")
    table.caption = "; ".join(notes)
    console.print(table)


def _artifact_files(svc: TrackingService, run_id: str) -> tuple[list[FileInfo], bool]:
    """The run's artifact files, walking folders; and whether the listing was cut."""
    files: list[FileInfo] = []
    folders = [""]
    while folders:
        for info in svc.list_artifacts(run_id, folders.pop()):
            if info.is_dir:
                folders.append(info.path)
            else:
                files.append(info)
        if len(files) >= MAX_LISTED_ARTIFACTS:
            return sorted(files, key=lambda f: f.path)[:MAX_LISTED_ARTIFACTS], True
    return sorted(files, key=lambda f: f.path), False


@app.command("show")
def show_run(
    ctx: typer.Context,
    run_id: Annotated[
        str, typer.Argument(help="The run id, or a unique prefix of it (as listed).")
    ],
    all_tags: Annotated[
        bool, typer.Option("--all-tags", help="Also show system tags (mlflow.*, modelyard.*).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Show a run: its info, params, latest metrics, tags and artifacts."""
    svc = _tracking(ctx)
    run = svc.get_run(svc.resolve_run_id(run_id))
    try:
        experiment_name: str | None = svc.get_experiment(run.info.experiment_id).name
    except ModelyardError:
        experiment_name = None
    files, cut = _artifact_files(svc, run.info.run_id)
    if as_json:
        doc = render.run_to_dict(run, all_tags)
        doc["experiment_name"] = experiment_name
        doc["artifacts"] = [{"path": f.path, "file_size": f.file_size} for f in files]
        doc["artifacts_truncated"] = cut
        render.print_json(doc)
        return
    console = render.stdout_console()
    for table in render.run_detail(run, experiment_name, files, all_tags):
        console.print(table)
    if cut:
        console.print(f"[dim]Only the first {MAX_LISTED_ARTIFACTS} artifacts are listed.[/dim]")


@app.command("compare")
def compare_runs(
    ctx: typer.Context,
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids.")],
    diff_only: Annotated[
        bool, typer.Option("--diff-only", "-d", help="Only the rows whose values differ.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Set runs side by side: attributes, params, metrics and tags, one column per run."""
    svc = _tracking(ctx)
    ids = list(dict.fromkeys(svc.resolve_run_id(r) for r in run_ids))
    if len(ids) < 2:
        raise typer.BadParameter("give at least two different run ids", param_hint="RUN_IDS")
    frame = svc.compare_runs(ids, diff_only=diff_only)
    if as_json:
        render.print_json(render.compare_to_dict(frame))
        return
    console = render.stdout_console()
    if frame.empty:
        console.print("The runs do not differ." if diff_only else "Nothing to compare.")
        return
    console.print(render.compare_table(frame, "Differences" if diff_only else "Run comparison"))
