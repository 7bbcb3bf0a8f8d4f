"""`modelyard check`: evaluate a candidate (and the champion) on a dataset and apply
gates; a table of verdicts, exit code 1 when any gate fails (for CI pipelines)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from modelyard.cli import render
from modelyard.core.errors import InvalidParameter

__all__ = ["check"]


def _pairs(values: list[str] | None, option: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in values or []:
        key, sep, number = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[key.strip()] = float(number)
        except ValueError:
            raise InvalidParameter(
                f"{option} takes METRIC=NUMBER (e.g. accuracy=0.8), got {item!r}"
            ) from None
    return out


def check(
    candidate: Annotated[str, typer.Option(help="Model URI of the candidate (models:/churn/7).")],
    data: Annotated[str, typer.Option(help="Evaluation data: a .parquet or .csv file.")],
    target: Annotated[str, typer.Option(help="The label column in the data.")],
    champion: Annotated[
        str | None, typer.Option(help="Model URI to compare with (models:/churn@champion).")
    ] = None,
    task: Annotated[str, typer.Option(help="classification or regression.")] = "classification",
    minimum: Annotated[
        list[str] | None, typer.Option("--min", help="METRIC=FLOOR the candidate must reach.")
    ] = None,
    maximum: Annotated[
        list[str] | None, typer.Option("--max", help="METRIC=CEILING it must stay under.")
    ] = None,
    max_regression: Annotated[
        list[str] | None,
        typer.Option("--max-regression", help="METRIC=DELTA it may lose against the champion."),
    ] = None,
    allow_pickle: Annotated[
        bool, typer.Option(help="Allow loading pickled models (runs their code).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Evaluate CANDIDATE (and CHAMPION) on DATA and apply the gates; exit 1 on failure."""
    from modelyard.evaluation import check as run_check

    verdict = run_check(
        candidate,
        data,
        target,
        champion=champion,
        task=task,
        min_values=_pairs(minimum, "--min"),
        max_values=_pairs(maximum, "--max"),
        max_regression=_pairs(max_regression, "--max-regression"),
        allow_pickle=allow_pickle,
    )
    if as_json:
        render.print_json(verdict.to_dict())
    else:
        render.stdout_console().print(_verdict_table(verdict, candidate, champion))
    if not verdict.passed:
        raise typer.Exit(1)


def _verdict_table(verdict, candidate: str, champion: str | None) -> Table:
    table = Table(
        title=f"Gates for {candidate}" + (f" against {champion}" if champion else ""),
        caption="PASSED: every gate holds" if verdict.passed else "FAILED: see the red rows",
    )
    for column in ("metric", "rule", "threshold", "candidate", "champion", "verdict"):
        table.add_column(column, justify="right" if column in ("threshold",) else "left")
    for g in verdict.gates:
        table.add_row(
            g.metric,
            g.rule.replace("_", " "),
            f"{g.threshold:g}",
            render.fmt_value(g.candidate),
            render.fmt_value(g.champion) if verdict.champion is not None else "",
            f"[green]pass[/green] {g.detail}" if g.passed else f"[red]FAIL[/red] {g.detail}",
        )
    return table
