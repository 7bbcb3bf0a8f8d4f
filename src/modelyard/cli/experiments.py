"""``modelyard experiments ...``: list the experiments of the store."""

from __future__ import annotations

from typing import Annotated

import typer

from modelyard.cli import JsonFlag, Services, View, render

__all__ = ["app"]

app = typer.Typer(help="Experiments: list them.", no_args_is_help=True)


@app.command("list")
def list_experiments(
    ctx: typer.Context,
    view: Annotated[
        View, typer.Option("--view", help="Which experiments: active, deleted or all.")
    ] = View.active,
    as_json: JsonFlag = False,
) -> None:
    """List experiments (the active ones unless --view says otherwise)."""
    svc = ctx.ensure_object(Services).tracking
    experiments = svc.all_experiments(view.value)
    if as_json:
        render.print_json({"experiments": [e.to_dict() for e in experiments]})
        return
    console = render.stdout_console()
    if not experiments:
        console.print("No experiments." if view == View.all else f"No {view.value} experiments.")
        return
    console.print(render.experiments_table(experiments, show_stage=view != View.active))
