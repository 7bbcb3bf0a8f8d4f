"""What the dataset registry records: a named dataset and its numbered versions."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from modelyard.core.errors import InvalidParameter

__all__ = ["Dataset", "DatasetVersion", "parse_ref"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$")


def check_dataset_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidParameter(
            f"Invalid dataset name {name!r}: letters, digits, '.', '_' and '-' only "
            "(starting with a letter or digit)"
        )
    return name


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``churn@3`` -> ("churn", 3); ``churn`` or ``churn@latest`` -> ("churn", None)."""
    name, sep, version = ref.partition("@")
    check_dataset_name(name)
    if not sep or version == "latest":
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise InvalidParameter(
            f"Invalid dataset reference {ref!r}: use NAME@VERSION (a positive number) or NAME"
        )
    return name, int(version)


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str | None
    last_version: int
    created_at: int
    updated_at: int


@dataclass(frozen=True)
class DatasetVersion:
    name: str
    version: int
    oid: str  # the content: an object id, or a tree id ending in .dir
    size: int
    files: int
    path: str
    remote: str | None = None
    format: str | None = None
    rows: int | None = None
    columns: list[dict[str, str]] = field(default_factory=list)
    profile_uri: str | None = None
    description: str | None = None
    run_id: str | None = None
    user_id: str = ""
    created_at: int = 0

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, **asdict(self)}
