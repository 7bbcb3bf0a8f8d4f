"""The ``modelyard`` command: experiments, runs, models, the server and the demo.

``main()`` is the console entry point; ``python -m modelyard.cli.main`` runs it too.
A `ModelyardError` from any command ends as ``error: <message>`` on stderr with exit
code 1 — never a traceback: `_Group` prints it and exits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from modelyard._version import __version__
from modelyard.cli import (
    Services,
    data,
    deploy,
    experiments,
    models,
    monitor,
    pipelines,
    render,
    runs,
)
from modelyard.cli.agent import agent, pipelines_runs
from modelyard.cli.build import build
from modelyard.cli.check import check
from modelyard.cli.gateway import gateway
from modelyard.cli.listening import base_url, run_listening, warn_if_exposed
from modelyard.cli.predict import predict
from modelyard.cli.serve import serve
from modelyard.core.errors import ModelyardError

__all__ = ["app", "fail", "main"]


def fail(message: str) -> typer.Exit:
    """Print ``error: <message>`` in red on stderr; returns the exit (code 1) to raise."""
    render.print_error(message)
    return typer.Exit(1)


class _Group(TyperGroup):
    """The root command group: a `ModelyardError` from any command ends the program
    with its message and exit code 1 (works under typer's CliRunner too)."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModelyardError as exc:
            raise fail(exc.message) from None


app = typer.Typer(
    name="modelyard",
    cls=_Group,
    help="modelyard: track experiments, register models, serve them and run batch predictions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(models.app, name="models")
app.add_typer(deploy.app, name="deploy")
app.add_typer(monitor.app, name="monitor")
app.add_typer(data.app, name="data")
app.add_typer(pipelines.app, name="pipelines")
pipelines.app.command("runs")(pipelines_runs)
app.command("agent")(agent)
app.command("check")(check)
app.command("serve")(serve)
app.command("gateway")(gateway)
app.command("predict")(predict)
app.command("build")(build)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"modelyard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Settings come from MODELYARD_* variables and ./modelyard.toml (MODELYARD_HOME
    defaults to ./.modelyard)."""
    ctx.ensure_object(Services)


@app.command()
def server(
    host: Annotated[
        str, typer.Option(help="Address to bind; loopback unless you mean to expose it.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 5000,
    log_level: Annotated[
        str, typer.Option(help="uvicorn log level: critical, error, warning, info, debug.")
    ] = "warning",
) -> None:
    """Serve the tracking API (native + MLflow-compatible) until Ctrl+C."""
    from modelyard.core.config import load_settings
    from modelyard.server.run import serve

    settings = load_settings()
    warn_if_exposed(
        host,
        port,
        "the server has no authentication; anyone who can reach port {port} can read "
        "and write every experiment, run and artifact.",
    )
    url = base_url(host, port)
    render.stderr_console().print(
        f"modelyard server on [bold]{url}[/bold] (Ctrl+C stops it)\n"
        f"  API docs        {url}/docs\n"
        f"  mlflow clients  export MLFLOW_TRACKING_URI={url}",
        soft_wrap=True,
    )
    run_listening(lambda: serve(settings, host, port, log_level=log_level), host, port)


@app.command()
def demo(
    fast: Annotated[
        bool, typer.Option("--fast", help="Smaller data and shorter canary steps (tests).")
    ] = False,
    quickstart: Annotated[
        bool, typer.Option("--quickstart", help="Only the tracking quickstart (four runs).")
    ] = False,
    out: Annotated[
        Path, typer.Option(help="Where the data, suite, report and model card go.")
    ] = Path("demo-output"),
) -> None:
    """Run the closed loop: data -> train -> serve -> drift -> retrain -> canary -> rollback.

    On the embedded default, unattended, with a timeline of every event and its
    figures. --quickstart runs the tracking quickstart instead.
    """
    console = render.stdout_console()
    if quickstart:
        from modelyard.demo.quickstart import run_quickstart

        run_quickstart(console)
        return
    from modelyard.demo.closed_loop import print_end, run_closed_loop

    timeline = run_closed_loop(console, fast=fast, out=out)
    print_end(console, timeline, out.absolute())


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="The new project's folder.")] = Path("."),
    data: Annotated[
        Path | None, typer.Option(help="A Parquet or CSV sample (default: a churn sample).")
    ] = None,
    target: Annotated[str, typer.Option(help="The label column.")] = "churned",
    model: Annotated[str, typer.Option(help="The registered model's name.")] = "churn",
    dataset: Annotated[str, typer.Option(help="The dataset's name in the registry.")] = "churn",
) -> None:
    """Create a project: pipeline, validation suite, agent config and a CI workflow."""
    from modelyard.scaffold.project import create_project

    project = create_project(folder, data=data, target=target, model=model, dataset=dataset)
    console = render.stdout_console()
    console.print(f"Created a modelyard project in {project.root}:")
    for path in project.files:
        console.print(f"  {path.relative_to(project.root)}")
    console.print("Next: read README.md there; CI runs .github/workflows/modelyard.yml.")


def main() -> None:
    """Console entry point of ``modelyard``."""
    app(prog_name="modelyard")


if __name__ == "__main__":
    main()
