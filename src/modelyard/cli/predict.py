"""``modelyard predict``: batch prediction over Parquet data, in bounded memory.

A thin layer over `modelyard.serving.batch.predict_batch`: parse, call, render. On
a terminal a progress bar follows the rows; piped, only the summary line (or the
``--json`` document) is printed. pyarrow and the model stack load when the command
runs, not when the CLI starts.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from modelyard.cli import JsonFlag, render

if TYPE_CHECKING:  # pragma: no cover
    from modelyard.serving.batch import BatchReport

__all__ = ["predict"]

DEFAULT_BATCH_SIZE = 100_000  # modelyard.serving.batch.DEFAULT_BATCH_SIZE, without importing it


class Engine(StrEnum):
    local = "local"
    ray = "ray"


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} rows/s", style="cyan")


class _Rows(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{int(task.completed):,}/{int(task.total or 0):,} rows", style="green")


class BarProgress:
    """`BatchProgress` as a rich progress bar (on a terminal) plus warnings on stderr."""

    def __init__(self, console: Console, enabled: bool | None = None) -> None:
        self.console = console
        self.enabled = console.is_terminal if enabled is None else enabled
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def start(self, total_rows: int, done_rows: int) -> None:
        if not self.enabled:
            return
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            _Rows(),
            _Rate(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        label = "predicting" if not done_rows else "predicting (resumed)"
        self.task = self.bar.add_task(label, total=total_rows, completed=done_rows)
        self.bar.start()

    def advance(self, rows: int) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.advance(self.task, rows)

    def warn(self, message: str) -> None:
        render.print_warning(message)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def summary(r: BatchReport) -> str:
    """One line: rows, columns, files, output, time and rate (and what was reused)."""
    files = f"{r.files} file" + ("s" if r.files != 1 else "")
    line = (
        f"Wrote {r.rows:,} rows ({', '.join(r.columns)}) from {files} to {r.output} in "
        f"{r.seconds:.1f} s ({r.rows_per_second:,.0f} rows/s, engine {r.engine})"
    )
    if r.reused_chunks:
        line += (
            f"; resumed: {len(r.reused_chunks)} of {r.chunks} chunks reused, "
            f"{r.predicted_rows:,} rows predicted now"
        )
    return line


def predict(
    model_uri: Annotated[
        str,
        typer.Argument(
            help="The model: a folder, runs:/<run_id>/model, models:/name@alias, s3://."
        ),
    ],
    input: Annotated[
        str,
        typer.Option(
            "--input",
            "-i",
            help="Parquet input: a file, a folder (its *.parquet), a glob, or a URL (s3://...).",
        ),
    ],
    output: Annotated[
        str, typer.Option("--output", "-o", help="The Parquet file to write (a path or URL).")
    ],
    batch_size: Annotated[
        int, typer.Option("--batch-size", "-b", min=1, help="Rows per predict call.")
    ] = DEFAULT_BATCH_SIZE,
    id_column: Annotated[
        str | None,
        typer.Option(
            "--id-column", help="Column copied beside the predictions (default: 'id' if present)."
        ),
    ] = None,
    no_id: Annotated[bool, typer.Option("--no-id", help="Copy no id column.")] = False,
    proba: Annotated[
        bool, typer.Option("--proba", help="Write class probabilities (proba_<class>).")
    ] = False,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue an interrupted job into the same --output."),
    ] = False,
    engine: Annotated[
        Engine, typer.Option("--engine", help="local: this process; ray: Ray tasks.")
    ] = Engine.local,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address", help="With --engine ray: auto or ray://host:port (default: local Ray)."
        ),
    ] = None,
    allow_pickle: Annotated[
        bool,
        typer.Option("--allow-pickle", help="Load a pickled model (it can run arbitrary code)."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Predict every row of --input with MODEL_URI into the Parquet file --output."""
    from modelyard.serving.batch import predict_batch

    if no_id and id_column:
        raise typer.BadParameter("give --id-column or --no-id, not both", param_hint="--no-id")
    console = render.stdout_console()
    bar = BarProgress(console, enabled=console.is_terminal and not as_json)
    try:
        report = predict_batch(
            model_uri,
            input,
            output,
            batch_size=batch_size,
            id_column="" if no_id else id_column,
            proba=proba,
            resume=resume,
            engine=engine.value,
            ray_address=ray_address,
            allow_pickle=allow_pickle,
            progress=bar,
        )
    finally:
        bar.close()
    if as_json:
        render.print_json(report.to_dict())
    else:
        console.print(summary(report), soft_wrap=True, markup=False, highlight=False)
