"""``modelyard pipelines ...``: run a pipeline, resume a failed run, show a run.

A pipeline is named as ``package.module:attr`` (importable from the current folder).
Each command is one call on `modelyard.pipelines`; a step table shows what ran,
what came from the cache and what was skipped.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from modelyard.cli import JsonFlag, render
from modelyard.core.errors import InvalidParameter

if TYPE_CHECKING:  # pragma: no cover
    from modelyard.pipelines.runner import PipelineRun

__all__ = ["app", "parse_params", "steps_table"]

app = typer.Typer(help="Pipelines: run, resume and inspect pipeline runs.", no_args_is_help=True)

_STATE_STYLE = {
    "ran": "green",
    "cached": "cyan",
    "reused": "cyan",
    "failed": "bold red",
    "skipped": "yellow",
    "running": "magenta",
}


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs; values read as YAML scalars (numbers, booleans, strings)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InvalidParameter(f"--param takes KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out


def steps_table(run: PipelineRun) -> Table:
    table = Table(
        title=f"Pipeline {run.name}: {run.status} in {run.seconds:.2f} s (run {run.run_id})",
        title_justify="left",
    )
    for name in ("step", "state", "attempts", "seconds", "run", "output from", "error"):
        table.add_column(name, justify="right" if name in ("attempts", "seconds") else "left")
    for name, s in run.steps.items():
        table.add_row(
            name,
            Text(s.state, style=_STATE_STYLE.get(s.state, "")),
            str(s.attempts) if s.attempts else "",
            f"{s.seconds:.3f}" if s.seconds else "",
            (s.run_id or "")[:12],
            (s.output_run or "")[:12] if s.output_run != s.run_id else "",
            s.error or "",
        )
    return table


def _summary(run: PipelineRun) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "pipeline": run.name,
        "status": run.status,
        "error": run.error,
        "seconds": run.seconds,
        "steps": {k: {**v.__dict__} for k, v in run.steps.items()},
    }


def _show(run: PipelineRun, json: bool) -> None:
    if json:
        render.print_json(_summary(run))
    else:
        render.stdout_console().print(steps_table(run))
    if run.status != "FINISHED":
        if not json:
            render.print_error(run.error or f"pipeline run {run.run_id} {run.status}")
        raise typer.Exit(1)


Executor = Annotated[str, typer.Option(help="local or ray.")]


@app.command()
def run(
    target: Annotated[str, typer.Argument(help="The pipeline: package.module:attr.")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="KEY=VALUE (repeatable).")
    ] = None,
    executor: Executor = "local",
    workers: Annotated[
        int, typer.Option(min=1, help="local: worker processes for parallel branches.")
    ] = 1,
    ray_address: Annotated[
        str | None, typer.Option(help="ray: auto, ray://host:port (default: a local Ray).")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every step.")] = False,
    invalidate: Annotated[
        list[str] | None, typer.Option(help="Run this step even if cached (repeatable).")
    ] = None,
    json: JsonFlag = False,
) -> None:
    """Run a pipeline; exit code 1 when a step failed."""
    from modelyard.pipelines.runner import run_pipeline

    sys.path.insert(0, str(Path.cwd()))  # pipelines of the project, like `python -m`
    result = run_pipeline(
        target,
        parse_params(param),
        executor=executor,
        workers=workers,
        ray_address=ray_address,
        no_cache=no_cache,
        invalidate=invalidate or (),
    )
    _show(result, json)


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(help="A failed pipeline run.")],
    executor: Executor = "local",
    json: JsonFlag = False,
) -> None:
    """Rerun a failed pipeline run from its failed step (earlier steps are reused)."""
    from modelyard.pipelines.runner import resume_pipeline

    sys.path.insert(0, str(Path.cwd()))
    _show(resume_pipeline(run_id, executor=executor), json)
