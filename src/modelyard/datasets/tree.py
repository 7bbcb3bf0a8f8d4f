"""Trees: a folder as a sorted list of (relative path, object id, size).

A tree is serialised canonically (one JSON array, sorted by path, no spaces), so
the same content always gives the same tree id (``<hash>.dir``). `scan` walks a
folder and hashes its files in parallel, skipping every file the stat cache
already knows unchanged; that is what makes a re-add of a large folder cost one
``stat`` per file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from modelyard.core.errors import InvalidParameter
from modelyard.datasets.hashing import hash_bytes, hash_file
from modelyard.datasets.state import FileStat, StatCache

__all__ = ["Entry", "Scan", "Tree", "chunks", "scan"]

_WORKERS = min(4, (os.cpu_count() or 1) * 2)
_IGNORED = frozenset({".git", ".modelyard", "__pycache__"})


@dataclass(frozen=True, slots=True)
class Entry:
    path: str  # relative, '/'-separated
    oid: str
    size: int


@dataclass(frozen=True)
class Tree:
    entries: tuple[Entry, ...]

    def to_bytes(self) -> bytes:
        rows = [[e.path, e.oid, e.size] for e in self.entries]
        return json.dumps(rows, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Tree:
        return cls(tuple(Entry(p, o, s) for p, o, s in json.loads(data)))

    @property
    def oid(self) -> str:
        return hash_bytes(self.to_bytes()) + ".dir"

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)

    def by_path(self) -> dict[str, Entry]:
        return {e.path: e for e in self.entries}


@dataclass
class Scan:
    """What `scan` found: the tree, every file's stat, and how many it hashed."""

    tree: Tree
    stats: dict[str, FileStat]  # relative path -> stat at scan time
    hashed: int


def _walk(root: Path) -> Iterator[tuple[str, os.DirEntry[str]]]:
    stack = [("", str(root))]
    while stack:
        rel, folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except PermissionError as exc:
            raise InvalidParameter(f"Cannot read folder {folder}: permission denied") from exc
        for entry in entries:
            name = f"{rel}{entry.name}"
            if entry.name in _IGNORED or entry.name.endswith(".yard-tmp"):
                continue
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                if not os.path.exists(target):
                    raise InvalidParameter(
                        f"{entry.path} is a dangling symlink (to {os.readlink(entry.path)}); "
                        "remove it or point it at a file"
                    )
            if entry.is_dir():
                stack.append((f"{name}/", entry.path))
            elif entry.is_file():
                yield name, entry


def chunks(items: list, size: int = 64) -> list[list]:
    """Work for a thread pool in chunks: one task per file costs more than the file."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def _hash(path: str) -> str:
    try:
        return hash_file(path)
    except PermissionError as exc:
        raise InvalidParameter(f"Cannot read {path}: permission denied") from exc


def scan(
    root: str | Path,
    state: StatCache,
    progress: Callable[[int], None] | None = None,
    start: Callable[[int], None] | None = None,
) -> Scan:
    """Hash the file or folder ``root`` (files whose stat is unchanged come from the
    stat cache); ``progress`` is called with bytes done as files finish."""
    root = Path(root).absolute()
    # Plain strings below: pathlib costs more than the stat itself per file.
    if root.is_file():
        files = [("", str(root))]
        stats = {"": FileStat.of(root.stat())}
    else:
        files, stats = [], {}
        for rel, entry in _walk(root):
            files.append((rel, entry.path))
            stats[rel] = FileStat.of(entry.stat())
    if start is not None:
        start(sum(s.size for s in stats.values()))
    known = state.under(str(root))
    oids: dict[str, str] = {}
    todo: list[tuple[str, str]] = []
    for rel, path in files:
        hit = known.get(path)
        if hit is not None and hit[0] == stats[rel]:
            oids[rel] = hit[1]
            if progress:
                progress(stats[rel].size)
        else:
            todo.append((rel, path))
    if todo:

        def hash_chunk(chunk: list[tuple[str, str]]) -> list[str]:
            return [_hash(path) for _, path in chunk]

        with ThreadPoolExecutor(_WORKERS) as pool:
            for chunk, hashed in zip(chunks(todo), pool.map(hash_chunk, chunks(todo)), strict=True):
                for (rel, _), oid in zip(chunk, hashed, strict=True):
                    oids[rel] = oid
                if progress:
                    progress(sum(stats[rel].size for rel, _ in chunk))
        state.save((path, stats[rel], oids[rel]) for rel, path in todo)
    entries = tuple(
        sorted((Entry(rel, oids[rel], stats[rel].size) for rel, _ in files), key=lambda e: e.path)
    )
    return Scan(Tree(entries), stats, len(todo))
