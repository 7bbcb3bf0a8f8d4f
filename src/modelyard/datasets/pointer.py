"""Pointer files: ``PATH.yard``, the few lines of YAML that git keeps for ``PATH``.

A pointer names the content (object or tree id), its size and file count; the
bytes themselves live in the cache and on the remote. `ignore` adds the data path
to the ``.gitignore`` beside it, so git tracks the pointer and never the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from modelyard.core.errors import InvalidParameter, ResourceNotFound
from modelyard.datasets.hashing import ALGORITHM, is_oid

__all__ = ["SUFFIX", "Pointer", "ignore", "pointer_path"]

SUFFIX = ".yard"
_HEADER = "# modelyard data pointer: commit it; `modelyard data checkout` restores the data\n"


def pointer_path(data_path: Path) -> Path:
    return data_path.with_name(data_path.name + SUFFIX)


@dataclass(frozen=True)
class Pointer:
    oid: str
    size: int
    files: int
    path: str  # the data's name, relative to the pointer's folder
    algorithm: str = ALGORITHM

    @property
    def is_dir(self) -> bool:
        return self.oid.endswith(".dir")

    def to_yaml(self) -> str:
        body = {
            "oid": self.oid,
            "kind": "dir" if self.is_dir else "file",
            "size": self.size,
            "files": self.files,
            "path": self.path,
            "algorithm": self.algorithm,
        }
        return _HEADER + yaml.safe_dump(body, sort_keys=False)

    def save(self, file: Path) -> None:
        tmp = file.with_name(f".{file.name}.tmp")
        tmp.write_text(self.to_yaml())
        tmp.replace(file)

    @classmethod
    def load(cls, file: str | Path) -> Pointer:
        file = Path(file)
        if not file.exists():
            raise ResourceNotFound(f"No pointer file {file}")
        try:
            body = yaml.safe_load(file.read_text())
            pointer = cls(
                oid=str(body["oid"]),
                size=int(body["size"]),
                files=int(body["files"]),
                path=str(body["path"]),
                algorithm=str(body.get("algorithm", ALGORITHM)),
            )
        except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
            raise InvalidParameter(
                f"{file} is not a valid pointer file (needs oid, size, files, path): {exc}"
            ) from exc
        if not is_oid(pointer.oid):
            raise InvalidParameter(f"{file}: {pointer.oid!r} is not an object id")
        if pointer.algorithm != ALGORITHM:
            raise InvalidParameter(
                f"{file} was hashed with {pointer.algorithm}; this modelyard reads {ALGORITHM}"
            )
        if "/" in pointer.path or pointer.path in ("", ".", ".."):
            raise InvalidParameter(f"{file}: path {pointer.path!r} must be a plain name")
        return pointer

    def data_path(self, file: Path) -> Path:
        return file.parent / self.path


def ignore(data_path: Path) -> bool:
    """Add ``/<name>`` to the ``.gitignore`` beside ``data_path``; True if it was added."""
    gitignore = data_path.parent / ".gitignore"
    line = f"/{data_path.name}"
    lines = gitignore.read_text().splitlines() if gitignore.exists() else []
    if line in lines:
        return False
    lines.append(line)
    gitignore.write_text("\n".join(lines) + "\n")
    return True
