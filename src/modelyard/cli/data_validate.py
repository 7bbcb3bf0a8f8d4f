"""``modelyard data infer-suite`` and ``modelyard data validate``: validation suites.

``infer-suite DATA > suite.yaml`` writes a suite that DATA passes (review and edit
it); ``validate --suite suite.yaml DATA`` checks new data against it and prints one
row per check (``--json``: one JSON document; ``--report out.html``: an HTML report
and its JSON twin). The work is in `modelyard.datasets.validation`.

Exit codes, so a pipeline or CI can tell bad data from a broken setup:

- 0: every check passed;
- 1: a check failed (the data is not as the suite says);
- 2: nothing was validated: the suite is not valid, or the data or the reference
  cannot be read (``error: ...`` on stderr says why).

2 for "could not run" follows click's usage errors, grep (1 no match, 2 trouble) and
pytest (1 tests failed, 2 and up: could not run them). ``infer-suite`` uses 2 for
its errors too, so both commands read alike.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table
from rich.text import Text

from modelyard.cli import JsonFlag, render
from modelyard.core.errors import ModelyardError

if TYPE_CHECKING:  # pragma: no cover - the validation stack loads when a command runs
    from modelyard.datasets.validation import Suite, ValidationResult

__all__ = ["EXIT_ERROR", "EXIT_FAILED", "infer_suite", "validate", "validation_table"]

EXIT_FAILED = 1
EXIT_ERROR = 2
T = TypeVar("T")

DataArg = Annotated[
    str,
    typer.Argument(
        help="A Parquet or CSV file, a folder of them, or a registered dataset (NAME@VERSION)."
    ),
]


def _data(ctx: typer.Context, data: str) -> Any:
    """A path as given; otherwise a dataset reference, read from the registry (pulled
    from its remote when the cache lacks it)."""
    if Path(data).exists() or "@" not in data:
        return data
    from modelyard.cli import Services
    from modelyard.core.config import load_settings
    from modelyard.datasets.backends import open_data
    from modelyard.datasets.entities import parse_ref

    try:
        parse_ref(data)
    except ModelyardError:
        return data  # not a reference either: the reader names the missing path
    services = ctx.ensure_object(Services)
    return open_data(load_settings(), lambda: services.tracking).read(data)


def _or_exit(action: Callable[[], T]) -> T:
    """``action()``; a `ModelyardError` (or a file that cannot be written) ends the
    command with ``error: ...`` and code 2."""
    try:
        return action()
    except ModelyardError as exc:
        render.print_error(exc.message)
    except OSError as exc:
        render.print_error(f"{exc.strerror or exc}: {exc.filename}")
    raise typer.Exit(EXIT_ERROR)


def infer_suite(
    ctx: typer.Context,
    data: DataArg,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the suite here, not to stdout.")
    ] = None,
    profile_out: Annotated[
        Path | None,
        typer.Option(
            help="Save the reference profile to this JSON file and point the suite at it "
            "(relative to --out's folder, else absolute) instead of inlining it."
        ),
    ] = None,
    row_tolerance: Annotated[
        float,
        typer.Option(min=0, help="Row-count bounds: the reference's count ± this share."),
    ] = 0.5,
    max_categories: Annotated[
        int, typer.Option(min=1, help="Text with at most this many values gets an allowed list.")
    ] = 20,
    categorical: Annotated[
        str | None, typer.Option(help="Columns to treat as categories (comma-separated).")
    ] = None,
    distribution: Annotated[
        bool, typer.Option(help="Add distribution checks against DATA's profile.")
    ] = True,
) -> None:
    """Write a validation suite that DATA (the reference) passes, to review and edit."""
    names = [c.strip() for c in (categorical or "").split(",") if c.strip()]

    from modelyard.datasets import validation as service

    def build() -> Suite:
        suite = service.infer_suite(
            _data(ctx, data),
            row_tolerance=row_tolerance,
            max_categories=max_categories,
            categorical=names,
            distribution=distribution,
        )
        if profile_out is not None and suite.distribution is not None:
            suite.reference_profile().save(profile_out)
            target = profile_out.resolve()
            suite.distribution.reference = (
                os.path.relpath(target, out.resolve().parent) if out else str(target)
            )
        if out is not None:
            suite.save(out)
        return suite

    suite = _or_exit(build)
    if out is None:
        sys.stdout.write(suite.dumps())
    else:
        render.stderr_console().print(
            f"Wrote a suite for {len(suite.columns)} columns to {out}", soft_wrap=True
        )


def validate(
    ctx: typer.Context,
    data: DataArg,
    suite: Annotated[
        Path, typer.Option("--suite", help="The suite (YAML), e.g. from infer-suite.")
    ],
    report: Annotated[
        Path | None,
        typer.Option(
            help="Also write an HTML report (and its .json twin); a .json path: JSON only."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check DATA against a suite. Exit code 0: all passed, 1: a check failed, 2: error."""

    from modelyard.datasets import validation as service

    def run() -> tuple[ValidationResult, list[Path]]:
        result = service.validate(_data(ctx, data), suite, name=data)
        return result, (service.write_report(result, report) if report is not None else [])

    result, written = _or_exit(run)
    if as_json:
        render.print_json(result.to_dict())
    else:
        render.stdout_console().print(validation_table(result))
    if written:
        names = " and ".join(str(p) for p in written)
        render.stderr_console().print(f"Wrote the report to {names}", soft_wrap=True)
    if not result.passed:
        raise typer.Exit(EXIT_FAILED)


def validation_table(result: ValidationResult) -> Table:
    """One row per check; failures in red, skipped checks dimmed, the verdict below."""
    from modelyard.datasets.validation.report import fmt
    from modelyard.datasets.validation.result import FAIL, SKIP

    style = "green" if result.passed else "red"
    table = Table(
        title=Text(f"Validation of {result.data}: {result.rows:,} rows"),
        caption=Text(f"{result.summary()} ({render.fmt_seconds(result.seconds)})", style=style),
        title_justify="left",
    )
    table.add_column("column", style="bold")
    table.add_column("check")
    table.add_column("status", no_wrap=True)
    table.add_column("expected", overflow="fold")
    table.add_column("observed", overflow="fold")
    table.add_column("failing", justify="right")
    table.add_column("examples / message", overflow="fold")
    for c in result.checks:
        status = {FAIL: Text("FAIL", "bold red"), SKIP: Text("skip", "dim")}.get(
            c.status, Text("ok", "green")
        )
        method = c.details.get("method")
        note = ", ".join(fmt(v) for v in c.examples)
        if c.message:
            note = c.message + (f" (e.g. {note})" if note else "")
        cells = [
            c.column or "(rows)",
            f"{c.check} ({method})" if method else c.check,
            fmt(c.expected),
            fmt(c.observed),
            "" if c.failing is None else f"{c.failing:,}",
        ]
        texts = [Text(cell) for cell in cells]  # Text: data never reads as rich markup
        texts.insert(2, status)
        table.add_row(*texts, Text(note, style="red" if c.failed else ""))
    return table
