"""``modelyard data ...``: versioned data, the dataset registry, lineage, validation.

``add`` / ``status`` / ``checkout`` / ``diff`` work on pointer files (``PATH.yard``)
in the project; ``push`` / ``pull`` move content to and from a remote (a folder or
``s3://...``); ``register`` / ``list`` / ``show`` are the dataset registry
(``churn@3``); ``lineage`` walks model → run → data; ``gc`` frees the cache;
``infer-suite`` / ``validate`` gate data on a suite. Each command is one call on
the data service; the views are in `render_data`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelyard.cli import JsonFlag, Services, render
from modelyard.cli import render_data as view
from modelyard.cli.data_validate import infer_suite, validate

if TYPE_CHECKING:  # pragma: no cover
    from modelyard.datasets.service import DataService

__all__ = ["app"]

app = typer.Typer(
    help="Data: version files and folders, push/pull them, register datasets, lineage, validation.",
    no_args_is_help=True,
)
app.command("infer-suite")(infer_suite)
app.command("validate")(validate)

Targets = Annotated[
    list[str] | None,
    typer.Argument(
        help="Pointer files or data paths (PATH or PATH.yard), or datasets (NAME@VERSION); "
        "none: every pointer in the project.",
        show_default=False,
    ),
]
RemoteOpt = Annotated[
    str | None,
    typer.Option(
        "--remote", "-r", help="A folder or s3://bucket/prefix (default: MODELYARD_DATA_REMOTE)."
    ),
]


def _service(ctx: typer.Context) -> DataService:
    from modelyard.core.config import load_settings
    from modelyard.datasets.backends import open_data

    services = ctx.ensure_object(Services)
    return open_data(load_settings(), lambda: services.tracking)


@app.command()
def add(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to version.")],
    json: JsonFlag = False,
) -> None:
    """Version PATH: store its content in the cache and write PATH.yard for git.

    PATH goes into .gitignore. Files unchanged since the last look are not read again.
    """
    svc = _service(ctx)
    console = render.stderr_console()
    results = []
    for path in paths:
        with view.bytes_bar(console, f"hashing {path}", None) as bar:
            results.append(svc.add(path, bar, bar.start if bar else None))
    if json:
        render.print_json([r.__dict__ | {"pointer": str(r.pointer)} for r in results])
        return
    out = render.stdout_console()
    for r in results:
        if r.unchanged:
            out.print(
                f"{r.pointer.name}: unchanged ({r.files:,} file(s), {view.size(r.size)}); "
                "nothing to do"
            )
            continue
        links = ", ".join(f"{n:,} {k}" for k, n in sorted(r.links.items())) or "none new"
        out.print(
            f"{r.pointer.name}: {r.files:,} file(s), {view.size(r.size)} → {r.oid}\n"
            f"  hashed {r.hashed:,} file(s); {r.stored:,} new object(s) in the cache ({links})"
        )
    out.print(
        "Commit the .yard file(s) and .gitignore with git; `modelyard data push` uploads the data."
    )


@app.command()
def status(ctx: typer.Context, targets: Targets = None, json: JsonFlag = False) -> None:
    """Show what changed in the workspace since each pointer was written."""
    svc = _service(ctx)
    rows = []
    for t in svc.targets(targets or []):
        if t.pointer is None:
            raise typer.BadParameter(f"{t.label} is a dataset, not a pointer file in the project")
        rows.append((str(t.pointer.relative_to(svc.workspace.root)), svc.status(t.pointer)))
    if json:
        render.print_json({label: {**c.__dict__, "clean": c.clean} for label, c in rows})
        return
    render.stdout_console().print(view.changes_table(rows))


@app.command()
def checkout(
    ctx: typer.Context,
    targets: Targets = None,
    force: Annotated[
        bool, typer.Option(help="Discard workspace changes that are in no saved version.")
    ] = False,
    remote: RemoteOpt = None,
) -> None:
    """Restore each data path to exactly what its pointer names.

    From the cache; a corrupted cache object is fetched again from the remote.
    """
    svc = _service(ctx)
    out = render.stdout_console()
    for t in svc.targets(targets or []):
        if t.pointer is None:
            raise typer.BadParameter(f"{t.label} is a dataset; use `my.data.get` or `data pull`")
        with view.bytes_bar(render.stderr_console(), f"checkout {t.label}", t.size) as bar:
            r = svc.checkout(t.pointer, force=force, remote=remote, progress=bar)
        extra = f", {r.refetched} corrupted object(s) fetched again" if r.refetched else ""
        out.print(
            f"{r.path.name}: {r.written:,} file(s) written, {r.kept:,} already right, "
            f"{r.removed:,} removed{extra}"
        )


@app.command()
def diff(
    ctx: typer.Context,
    old: Annotated[str, typer.Argument(help="A pointer file or NAME@VERSION.")],
    new: Annotated[str, typer.Argument(help="A pointer file or NAME@VERSION.")],
    json: JsonFlag = False,
) -> None:
    """Compare two versions: files added, removed, changed; tables' schema and stats.

    Each side is a pointer file or NAME@VERSION.
    """
    result = _service(ctx).diff(old, new)
    if json:
        render.print_json(result.to_dict())
        return
    console = render.stdout_console()
    for part in view.diff_view(result):
        console.print(part)


def _transfer(
    ctx: typer.Context, targets: list[str] | None, remote: str | None, pull: bool, json: bool
) -> None:
    svc = _service(ctx)
    out = render.stdout_console()
    docs = []
    for t in svc.targets(targets or []):
        verb = "pull" if pull else "push"
        with view.bytes_bar(render.stderr_console(), f"{verb} {t.label}", None) as bar:
            start = bar.start if bar else None
            move = svc.pull if pull else svc.push
            result = move(t, remote, bar, start)
        checked = None
        if pull and t.pointer is not None:
            checked = svc.checkout(t.pointer, remote=remote)
        doc = {"target": t.label, **result.__dict__, "noop": result.noop}
        docs.append(doc | {"checked_out": checked.written if checked else None})
        if json:
            continue
        out.print(f"{t.label}: {result.summary()}")
        if checked is not None:
            out.print(f"  checked out {checked.written:,} file(s), {checked.kept:,} already right")
    if json:
        render.print_json(docs)


@app.command()
def push(
    ctx: typer.Context, targets: Targets = None, remote: RemoteOpt = None, json: JsonFlag = False
) -> None:
    """Upload what the remote lacks (small files packed); a no-op costs one request."""
    _transfer(ctx, targets, remote, pull=False, json=json)


@app.command()
def pull(
    ctx: typer.Context, targets: Targets = None, remote: RemoteOpt = None, json: JsonFlag = False
) -> None:
    """Download what the cache lacks, verified on arrival; check out pointer targets."""
    _transfer(ctx, targets, remote, pull=True, json=json)


@app.command()
def register(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Dataset name, e.g. churn.")],
    path: Annotated[Path, typer.Argument(help="The file or folder to register.")],
    description: Annotated[str | None, typer.Option(help="What this version is.")] = None,
    remote: RemoteOpt = None,
    json: JsonFlag = False,
) -> None:
    """Register PATH as the next version of dataset NAME.

    Records the content hash, schema, rows and profile; pushes to the remote when one
    is set. Content equal to the latest version's makes no new version.
    """
    version, created = _service(ctx).register(name, path, description=description, remote=remote)
    if json:
        render.print_json(version.to_dict() | {"created": created})
        return
    console = render.stdout_console()
    if not created:
        console.print(f"{version.ref} already holds this content; no new version.")
    for part in view.version_detail(version):
        console.print(part)


@app.command("list")
def list_(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this dataset.")] = None,
    json: JsonFlag = False,
) -> None:
    """List registered dataset versions."""
    versions = _service(ctx).versions(name)
    if json:
        render.print_json([v.to_dict() for v in versions])
        return
    render.stdout_console().print(view.versions_table(versions))


@app.command()
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION (or NAME: the latest).")],
    json: JsonFlag = False,
) -> None:
    """Show one dataset version: content, size, schema, rows, remote, run."""
    version = _service(ctx).get(ref)
    if json:
        render.print_json(version.to_dict())
        return
    console = render.stdout_console()
    for part in view.version_detail(version):
        console.print(part)


@app.command()
def lineage(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(help="models:/NAME/VERSION or models:/NAME@ALIAS")],
    json: JsonFlag = False,
) -> None:
    """Show a model version's data: model → run → dataset versions → content."""
    result = _service(ctx).lineage(model_uri)
    if json:
        render.print_json(result.to_dict())
        return
    render.stdout_console().print(view.lineage_view(result))


@app.command()
def gc(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be freed.")
    ] = False,
    json: JsonFlag = False,
) -> None:
    """Free cache objects that nothing references any more.

    Dataset versions, run inputs, registered models' lineage and the project's
    pointers keep their objects. --dry-run only lists.
    """
    result = _service(ctx).gc(dry_run=dry_run)
    if json:
        render.print_json(result.__dict__)
        return
    console = render.stdout_console()
    for part in view.gc_view(result):
        console.print(part)
