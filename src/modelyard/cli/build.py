"""`modelyard build`: write a Dockerfile and Kubernetes manifests serving a model;
a table of the files written and the commands to run next."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from modelyard.cli import JsonFlag, render

if TYPE_CHECKING:  # pragma: no cover
    from modelyard.serving.build import BuildResult

__all__ = ["build"]


def build(
    model_uri: Annotated[
        str,
        typer.Argument(
            help="The model: a package path, runs:/<run_id>/model, models:/<name>/<version>, "
            "models:/<name>@<alias> or s3://...",
            metavar="MODEL_URI",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder to write: new or empty (--force replaces it).",
            show_default=False,
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option(help="Served model name (default: the registered name, else 'model')."),
    ] = None,
    image: Annotated[
        str | None,
        typer.Option(help="Image reference NAME:TAG (default: modelyard/<name>:<version>)."),
    ] = None,
    port: Annotated[int, typer.Option(help="Serving port inside the container.")] = 8080,
    workers: Annotated[int, typer.Option(help="Server processes per container.")] = 1,
    min_replicas: Annotated[int, typer.Option(help="Autoscaler minimum.")] = 1,
    max_replicas: Annotated[int, typer.Option(help="Autoscaler maximum.")] = 5,
    kserve: Annotated[
        bool, typer.Option("--kserve", help="Also write a KServe InferenceService.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a non-empty --out (deletes its content).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Write a Dockerfile and Kubernetes manifests (Deployment, Service, autoscaler) that
    serve MODEL_URI with `modelyard serve`; nothing is built or deployed."""
    # Imported here: the registry stack costs ~0.5 s, which --help must not pay.
    from modelyard.serving.build import build_deployment

    result = build_deployment(
        model_uri,
        out,
        name=name,
        image=image,
        port=port,
        workers=workers,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        kserve=kserve,
        force=force,
    )
    if as_json:
        render.print_json(result.to_dict())
        return
    for warning in result.warnings:
        render.print_warning(warning)
    console = render.stdout_console()
    console.print(_files_table(result))
    console.print(Text("Next:", style="bold"))
    for line in result.commands():
        console.print(
            Text(f"  {line}", style="dim" if line.startswith("#") else ""), soft_wrap=True
        )


def _files_table(result: BuildResult) -> Table:
    table = Table(
        title=f"Wrote {result.out} for {result.name} (version {result.version})",
        title_justify="left",
        caption=f"image {result.image}",
        caption_justify="left",
    )
    table.add_column("file", style="bold", no_wrap=True)
    table.add_column("what", overflow="fold")
    for path, what in result.entries.items():
        table.add_row(path, what)
    return table
