"""Views of the data commands: progress bars, summaries and tables."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from modelyard.cli.render import _size, fmt_time, fmt_value

if TYPE_CHECKING:  # pragma: no cover
    from modelyard.datasets.entities import DatasetVersion
    from modelyard.datasets.service import DiffResult, GcResult, Lineage
    from modelyard.datasets.workspace import Changes

__all__ = [
    "bytes_bar",
    "changes_table",
    "diff_view",
    "gc_view",
    "lineage_view",
    "size",
    "version_detail",
    "versions_table",
]

size = _size


class _Bar:
    """``bar(n)`` advances by n bytes; ``bar.start(total)`` sets the total once known."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress, self.task = progress, task

    def __call__(self, n: int) -> None:
        self.progress.advance(self.task, n)

    def start(self, total: int) -> None:
        self.progress.update(self.task, total=total)


@contextlib.contextmanager
def bytes_bar(console: Console, description: str, total: int | None) -> Iterator[_Bar | None]:
    """A byte progress bar on a terminal (None when piped: nothing to draw)."""
    if not console.is_terminal:
        yield None
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    with bar:
        yield _Bar(bar, bar.add_task(description, total=total))


def changes_table(rows: Sequence[tuple[str, Changes]], limit: int = 20) -> Table:
    """One row per target: clean, or the first changed paths of each kind."""
    table = Table(title="Data status", title_justify="left")
    table.add_column("target")
    table.add_column("state")
    table.add_column("changes")
    for label, c in rows:
        if c.clean:
            table.add_row(label, Text("up to date", style="green"), "")
            continue
        parts = []
        for kind, paths, style in (
            ("added", c.added, "green"),
            ("removed", c.removed, "red"),
            ("modified", c.modified, "yellow"),
        ):
            if paths:
                shown = ", ".join(paths[:limit]) + (" ..." if len(paths) > limit else "")
                parts.append(f"[{style}]{kind} {len(paths)}[/]: {shown}")
        table.add_row(label, Text("changed", style="yellow"), "\n".join(parts))
    return table


def diff_view(result: DiffResult, limit: int = 50) -> list[Any]:
    c = result.changes
    out: list[Any] = []
    files = Table(title=f"Files: {result.old} → {result.new}", title_justify="left")
    files.add_column("change")
    files.add_column("path")
    for kind, paths, style in (
        ("added", c.added, "green"),
        ("removed", c.removed, "red"),
        ("modified", c.modified, "yellow"),
    ):
        for p in paths[:limit]:
            files.add_row(Text(kind, style=style), p or "(the file)")
        if len(paths) > limit:
            files.add_row(Text(kind, style=style), f"... {len(paths) - limit} more")
    out.append(files if not c.clean else Text("Same content: no file changed.", style="green"))
    if result.table is not None:
        t = result.table
        cols = Table(
            title=f"Table: {t.rows_before:,} → {t.rows_after:,} rows", title_justify="left"
        )
        for name in ("column", "change", "before", "after"):
            cols.add_column(name)
        for ch in t.columns:
            cols.add_row(ch.column, ch.change, _stats(ch.before), _stats(ch.after))
        out.append(cols)
    return out


def _stats(row: dict[str, Any] | None) -> str:
    if not row:
        return ""
    return "  ".join(f"{k}={fmt_value(v)}" for k, v in row.items())


def versions_table(versions: Sequence[DatasetVersion]) -> Table:
    table = Table(title="Datasets", title_justify="left")
    for name in ("dataset", "content", "size", "files", "rows", "format", "remote", "created"):
        table.add_column(name, justify="right" if name in ("size", "files", "rows") else "left")
    for v in versions:
        table.add_row(
            v.ref,
            v.oid[:12],
            size(v.size),
            f"{v.files:,}",
            "" if v.rows is None else f"{v.rows:,}",
            v.format or "",
            v.remote or "(local)",
            fmt_time(v.created_at),
        )
    return table


def version_detail(v: DatasetVersion) -> list[Any]:
    info = Table(title=v.ref, title_justify="left", show_header=False)
    info.add_column("field", style="bold")
    info.add_column("value")
    for key, value in (
        ("content", v.oid),
        ("size", f"{size(v.size)} in {v.files:,} file(s)"),
        ("added from", v.path),
        ("remote", v.remote or "(local cache only)"),
        ("rows", "" if v.rows is None else f"{v.rows:,}"),
        ("run", v.run_id or ""),
        ("profile", v.profile_uri or ""),
        ("description", v.description or ""),
        ("created", f"{fmt_time(v.created_at)} by {v.user_id}"),
    ):
        info.add_row(key, value)
    out: list[Any] = [info]
    if v.columns:
        schema = Table(title="Schema", title_justify="left")
        schema.add_column("column")
        schema.add_column("type")
        for col in v.columns:
            schema.add_row(col["name"], col["type"])
        out.append(schema)
    return out


def lineage_view(lineage: Lineage) -> Table:
    table = Table(
        title=f"Lineage of models:/{lineage.model}/{lineage.version} "
        f"(run {lineage.run_id or 'unknown'})",
        title_justify="left",
    )
    for name in ("context", "dataset", "content", "rows", "size", "remote", "split"):
        table.add_column(name)
    for item in lineage.inputs:
        v = item.version
        split = ""
        if item.split:
            parts = item.split.get("parts", {})
            split = ", ".join(
                f"{n}: {p['rows']:,} rows #{p['row_hash'][:8]}" for n, p in parts.items()
            )
            split += f" (seed {item.split.get('seed')})"
        table.add_row(
            item.context or "",
            v.ref if v else f"{item.dataset_name} (not in the registry)",
            item.digest[:16],
            "" if not v or v.rows is None else f"{v.rows:,}",
            size(v.size) if v else "",
            (v.remote or "(local)") if v else "",
            split,
        )
    return table


def gc_view(result: GcResult, limit: int = 20) -> list[Any]:
    verb = "would free" if result.dry_run else "freed"
    head = Text(
        f"gc {verb} {size(result.freed)} in {len(result.removed):,} object(s); "
        f"{result.kept:,} object(s) still referenced are kept.",
        style="bold",
    )
    if not result.removed:
        return [head]
    table = Table(title="Unreferenced objects", title_justify="left")
    table.add_column("object")
    for oid in result.removed[:limit]:
        table.add_row(oid)
    if len(result.removed) > limit:
        table.add_row(f"... {len(result.removed) - limit} more")
    return [head, table]
