"""The stat cache: a file whose size, mtime and inode are unchanged is not re-hashed.

A small SQLite file beside the object cache (local, per machine, like DVC's
``.dvc/tmp``), not the metadata database: it only ever saves time, and deleting
it costs one full re-hash. Keys are absolute paths; one query loads a whole tree.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

__all__ = ["FileStat", "StatCache"]


class FileStat(NamedTuple):
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(st.st_ino, st.st_size, st.st_mtime_ns)


class StatCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS state (path TEXT PRIMARY KEY, inode INTEGER,"
            " size INTEGER, mtime_ns INTEGER, oid TEXT)"
        )

    def close(self) -> None:
        self._db.close()

    def under(self, prefix: str) -> dict[str, tuple[FileStat, str]]:
        """Every entry whose path is ``prefix`` or below it: path -> (stat, oid)."""
        base = prefix.rstrip("/")
        rows = self._db.execute(
            "SELECT path, inode, size, mtime_ns, oid FROM state"
            " WHERE path = ? OR (path >= ? AND path < ?)",
            (base, base + "/", base + "0"),  # '0' sorts right after '/'
        )
        return {p: (FileStat(i, s, m), oid) for p, i, s, m, oid in rows}

    def get(self, path: str) -> tuple[FileStat, str] | None:
        row = self._db.execute(
            "SELECT inode, size, mtime_ns, oid FROM state WHERE path = ?", (path,)
        ).fetchone()
        return (FileStat(*row[:3]), row[3]) if row else None

    def lookup(self, path: str, st: FileStat) -> str | None:
        """The recorded hash of ``path`` if its stat is unchanged, else None."""
        hit = self.get(path)
        return hit[1] if hit and hit[0] == st else None

    def save(self, entries: Iterable[tuple[str, FileStat, str]]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?, ?)",
                ((p, s.inode, s.size, s.mtime_ns, oid) for p, s, oid in entries),
            )

    def forget(self, paths: Iterable[str]) -> None:
        with self._db:
            self._db.executemany("DELETE FROM state WHERE path = ?", ((p,) for p in paths))
