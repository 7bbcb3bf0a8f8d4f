"""``modelyard models ...``: the model registry from the command line.

Register versions, point aliases and stages at them under each model's approval
policy, approve or reject, read the history of every alias and stage, roll back,
write model cards, delete. Every command is a thin layer over `RegistryService`.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelyard.cli import JsonFlag, Services, render
from modelyard.core.errors import InvalidParameter
from modelyard.registry import card as model_card

if TYPE_CHECKING:  # pragma: no cover
    from modelyard.registry.service import RegistryService

__all__ = ["app"]

app = typer.Typer(
    help="Registered models: versions, aliases, stages, approvals, history, cards.",
    no_args_is_help=True,
)

_AT_FORMATS = "YYYY-MM-DD, 'YYYY-MM-DD HH:MM[:SS[.fff]]' (local time) or ISO 8601 with an offset"


def _registry(ctx: typer.Context) -> RegistryService:
    return ctx.ensure_object(Services).registry


def _echo(message: str) -> None:
    render.stdout_console().print(message, soft_wrap=True, markup=False)


def _report(as_json: bool, document: object, message: str) -> None:
    """A command's outcome: the document with --json, else one line of text."""
    if as_json:
        render.print_json(document)
    else:
        _echo(message)


def parse_when(text: str) -> int:
    """``--at`` as UTC milliseconds: a date, a local date and time, or ISO 8601."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a time; expected {_AT_FORMATS}", param_hint="--at"
        ) from None
    if when.tzinfo is None:
        when = when.astimezone()  # naive times are local, like the tables print them
    return round(when.timestamp() * 1000)


def parse_floors(floors: list[str]) -> dict[str, float]:
    """``["accuracy=0.8", "f1=0.7"]`` -> ``{"accuracy": 0.8, "f1": 0.7}``."""
    out = {}
    for item in floors:
        key, sep, value = item.partition("=")
        try:
            if not sep or not key.strip():
                raise ValueError
            out[key.strip()] = float(value)
        except ValueError:
            raise typer.BadParameter(
                f"{item!r} is not a metric floor; expected METRIC=NUMBER, e.g. accuracy=0.8",
                param_hint="--floor",
            ) from None
    return out


# -- reading ------------------------------------------------------------------------
@app.command("list")
def list_models(
    ctx: typer.Context,
    name_like: Annotated[
        str | None,
        typer.Option("--name", help="Only names matching this SQL LIKE pattern, e.g. 'churn%'."),
    ] = None,
    max_results: Annotated[
        int, typer.Option("--max-results", "-n", min=1, help="Show at most this many models.")
    ] = 100,
    as_json: JsonFlag = False,
) -> None:
    """List registered models with their newest version, aliases and stages."""
    models, more = _registry(ctx).search_registered_models(name_like, max_results)
    if as_json:
        render.print_json({"models": [m.to_dict() for m in models], "more": more})
        return
    console = render.stdout_console()
    if not models:
        console.print("No registered models.")
        return
    table = render.models_table(models)
    if more:
        table.caption = f"first {len(models)} models shown (--max-results shows more)"
    console.print(table)


@app.command("show")
def show_model(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The registered model.")],
    version: Annotated[
        int | None, typer.Option("--version", "-v", min=1, help="Show this version in detail.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show a model: its versions (stage, aliases, source, run, metrics), policy, approvals."""
    reg = _registry(ctx)
    model = reg.get_registered_model(name)
    if version is None:
        versions, _ = reg.search_model_versions(name, max_results=10_000)
    else:
        versions = [reg.get_model_version(name, version)]
    policy = reg.get_policy(name)
    approvals = reg.approvals(name, version)
    if as_json:
        render.print_json(
            {
                "model": model.to_dict(),
                "versions": [v.to_dict() for v in versions],
                "policy": None if policy is None else policy.to_dict(),
                "approvals": [a.to_dict() for a in approvals],
            }
        )
        return
    console = render.stdout_console()
    console.print(render.model_overview(model))
    if version is None:
        if versions:
            console.print(render.model_versions_table(versions))
        else:
            console.print("No versions yet.")
    else:
        for part in render.version_detail(versions[0]):
            console.print(part)
    console.print(render.policy_detail(policy, name))
    if approvals:
        console.print(render.approvals_table(approvals))


# -- versions -----------------------------------------------------------------------
@app.command("register")
def register(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(help="The model package: runs:/<run_id>/<path>, a folder or a URL."),
    ],
    name: Annotated[str, typer.Argument(help="The registered model (created on first use).")],
    description: Annotated[
        str | None, typer.Option("--description", "-d", help="What this version is.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a model package as the next version of NAME."""
    mv = _registry(ctx).register_model(source, name, description=description)
    _report(
        as_json,
        mv.to_dict(),
        f"Registered {mv.name} version {mv.version} ({mv.uri}) from {mv.source}",
    )


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The registered model.")],
    version: Annotated[
        int | None,
        typer.Option("--version", "-v", min=1, help="Delete only this version."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Delete a version (its aliases go with it) or, without --version, the whole model."""
    what = f"version {version} of {name}" if version else f"model {name} and every version"
    if not yes:
        if not sys.stdin.isatty():
            raise InvalidParameter(f"Not deleting {what} without confirmation: pass --yes")
        typer.confirm(f"Delete {what}?", abort=True)
    reg = _registry(ctx)
    if version is None:
        reg.delete_registered_model(name)
        _report(as_json, {"deleted": name}, f"Deleted model {name}")
        return
    removed = reg.delete_model_version(name, version)
    gone = f"; aliases removed with it: {', '.join(removed)}" if removed else ""
    _report(
        as_json,
        {"deleted": name, "version": version, "aliases_removed": removed},
        f"Deleted {name} version {version}{gone}",
    )


# -- aliases, stages, approvals ---------------------------------------------------------
@app.command("alias")
def alias_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The registered model.")],
    alias: Annotated[str, typer.Argument(help="The alias, e.g. production or champion.")],
    version: Annotated[
        int | None, typer.Argument(help="The version the alias should point at.")
    ] = None,
    delete_alias: Annotated[
        bool, typer.Option("--delete", help="Remove the alias instead.")
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", "-r", help="Why (kept in the history).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Point ALIAS at VERSION (under the model's approval policy), or --delete it."""
    if delete_alias == (version is not None):
        raise typer.BadParameter(
            "give either a VERSION to point the alias at or --delete", param_hint="VERSION"
        )
    reg = _registry(ctx)
    if delete_alias:
        reg.delete_alias(name, alias)
        _report(
            as_json,
            {"name": name, "alias": alias, "version": None},
            f"Removed alias {name}@{alias}",
        )
        return
    mv = reg.set_alias(name, alias, version, reason)
    _report(as_json, mv.to_dict(), f"{name}@{alias} -> version {mv.version}")


@app.command("stage")
def stage_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The registered model.")],
    version: Annotated[int, typer.Argument(help="The version to move.")],
    stage: Annotated[str, typer.Argument(help="None, Staging, Production or Archived.")],
    archive_existing: Annotated[
        bool,
        typer.Option(
            "--archive-existing", help="Archive the versions now in STAGE (Staging/Production)."
        ),
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", "-r", help="Why (kept in the history).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Move VERSION to STAGE (under the model's approval policy)."""
    mv = _registry(ctx).transition_stage(
        name, version, stage, archive_existing=archive_existing, reason=reason
    )
    archived = " (versions previously there archived)" if archive_existing else ""
    _report(as_json, mv.to_dict(), f"{name} version {mv.version} is now in {mv.stage}{archived}")


@app.command("approve")
def approve(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The registered model.")],
    version: Annotated[int, typer.Argument(help="The version to approve.")],
    reason: Annotated[str | None, typer.Option("--reason", "-r", help="Why.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Approve VERSION (counts toward the model's policy)."""
    a = _registry(ctx).approve(name, version, reason)
    why = f": {a.reason}" if a.reason else ""
    _report(as_json, a.to_dict(), f"{name} version {a.version} approved by {a.actor}{why}")


@app.command("reject")
def reject(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The registered model.")],
    version: Annotated[int, typer.Argument(help="The version to reject.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (required).")],
    as_json: JsonFlag = False,
) -> None:
    """Reject VERSION: it may not take a protected alias or stage until you approve it."""
    a = _registry(ctx).reject(name, version, reason)
    _report(as_json, a.to_dict(), f"{name} version {a.version} rejected by {a.actor}: {a.reason}")


@app.command("policy")
def policy(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The registered model.")],
    approvals: Annotated[
        int | None,
        typer.Option("--approvals", min=0, help="Approvals a version needs (default 0)."),
    ] = None,
    floor: Annotated[
        list[str] | None,
        typer.Option("--floor", help="A metric floor METRIC=NUMBER; repeat for several."),
    ] = None,
    protect: Annotated[
        list[str] | None,
        typer.Option(
            "--protect",
            help="An alias or stage the policy guards; repeat for several "
            "(default: production and Production).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show the approval policy, or set it: any option replaces the whole policy
    (options left out take their defaults)."""
    reg = _registry(ctx)
    if approvals is None and floor is None and protect is None:
        current = reg.get_policy(name)
    else:
        current = reg.set_policy(
            name,
            required_approvals=approvals or 0,
            metric_floors=parse_floors(floor or []),
            protected=protect,
        )
    if as_json:
        render.print_json({"name": name, "policy": None if current is None else current.to_dict()})
        return
    render.stdout_console().print(render.policy_detail(current, name))


# -- history ------------------------------------------------------------------------
@app.command("history")
def history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The registered model.")],
    alias_name: Annotated[
        str | None, typer.Option("--alias", "-a", help="Only this alias, e.g. production.")
    ] = None,
    stage_name: Annotated[
        str | None, typer.Option("--stage", "-s", help="Only this stage, e.g. Production.")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help=f"Which version held the alias at this time ({_AT_FORMATS}); "
            "alias production unless --alias names another.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Which version held each alias and stage, from when to when, set by whom and why."""
    if alias_name is not None and stage_name is not None:
        raise typer.BadParameter("give --alias or --stage, not both", param_hint="--stage")
    reg = _registry(ctx)
    if at is not None:
        if stage_name is not None:
            raise typer.BadParameter("--at answers for an alias, not a stage", param_hint="--at")
        label = alias_name or "production"
        when = parse_when(at)
        held = reg.version_at(name, label, when)
        if as_json:
            render.print_json({"name": name, "alias": label, "at": when, "version": held})
            return
        moment = render.fmt_time(when)
        if held is None:
            _echo(f"No version of {name} held {label!r} at {moment}")
        else:
            _echo(f"{name}@{label} at {moment}: version {held}")
        return
    periods = reg.history(name, alias=alias_name, stage=stage_name)
    if as_json:
        render.print_json({"name": name, "history": [p.to_dict() for p in periods]})
        return
    console = render.stdout_console()
    label = alias_name or stage_name
    if not periods:
        console.print(f"{name}: no {label!r} history." if label else f"{name}: no history yet.")
        return
    title = f"History of {name}@{alias_name}" if alias_name else f"History of {name}"
    if stage_name:
        title = f"History of {name} in stage {periods[0].label}"
    console.print(render.history_table(periods, title, show_label=label is None))


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The registered model.")],
    alias_name: Annotated[
        str, typer.Option("--alias", "-a", help="The alias to roll back.")
    ] = "production",
    reason: Annotated[
        str | None, typer.Option("--reason", "-r", help="Why (kept in the history).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Give the alias back to the version that held it before the current one."""
    reg = _registry(ctx)
    before = reg.get_version_by_alias(name, alias_name).version
    mv = reg.rollback(name, alias_name, reason)
    _report(
        as_json,
        {"name": name, "alias": alias_name, "from": before, "to": mv.version},
        f"{name}@{alias_name}: version {before} -> version {mv.version}",
    )


# -- model card -----------------------------------------------------------------------
@app.command("card")
def card(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The registered model.")],
    version: Annotated[int, typer.Option("--version", "-v", min=1, help="The version.")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write here; *.html or *.md picks the format. Default: stdout."
        ),
    ] = None,
    purpose: Annotated[
        str | None,
        typer.Option("--purpose", help="What the model is for (default: tag card.purpose)."),
    ] = None,
    limitations: Annotated[
        str | None,
        typer.Option(
            "--limitations", help="Where not to trust it (default: tag card.limitations)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Write the model card of a version: purpose, data, params, metrics, signature,
    feature importance, lineage, approvals (Markdown, or HTML for *.html)."""
    fmt = "markdown" if out is None else model_card.card_format(out.name)
    built = model_card.build_card(
        _registry(ctx), name, version, purpose=purpose, limitations=limitations
    )
    if as_json:
        render.print_json(built.to_dict())
        return
    text = model_card.render_card(built, fmt)
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidParameter(f"Cannot write {str(out)!r}: {exc.strerror or exc}") from None
    _echo(f"Wrote the card of {name} version {version} to {out}")
