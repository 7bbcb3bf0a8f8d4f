"""Pack files: many small objects in one remote file, found through an index.

A pack is its objects' bytes back to back; its index is JSON
``{"format": 1, "size": <pack bytes>, "objects": [[oid, offset, length], ...]}``.
A pack's id is the hash of its bytes, so the same objects packed the same way get
the same name. Packing is what turns 100,000 small files into a few dozen PUTs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from modelyard.core.errors import ArtifactIntegrityError
from modelyard.datasets.hashing import hash_bytes, is_oid

__all__ = ["PackIndex", "build_pack", "coalesce", "group"]

PACK_FORMAT = 1

# (start, end, [(oid, offset, length), ...]): one byte range of a pack and the
# objects inside it.
Span = tuple[int, int, list[tuple[str, int, int]]]


@dataclass(frozen=True)
class PackIndex:
    """Where each object of pack ``pack_id`` lies: oid -> (offset, length)."""

    pack_id: str
    size: int
    objects: dict[str, tuple[int, int]]

    def to_bytes(self) -> bytes:
        rows = [[oid, off, length] for oid, (off, length) in self.objects.items()]
        doc = {"format": PACK_FORMAT, "size": self.size, "objects": rows}
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, pack_id: str, data: bytes, where: str) -> PackIndex:
        """Parse an index read from ``where`` (named in the error when it is bad)."""
        try:
            doc = json.loads(data)
            if doc["format"] != PACK_FORMAT:
                raise ValueError(f"format {doc['format']!r}, this version reads {PACK_FORMAT}")
            objects = {oid: (int(off), int(n)) for oid, off, n in doc["objects"]}
            size = int(doc["size"])
            if not all(map(is_oid, objects)):
                raise ValueError("an entry is not an object id")
        except (ValueError, KeyError, TypeError) as exc:
            raise ArtifactIntegrityError(f"Pack index {where} is unreadable: {exc}") from exc
        return cls(pack_id, size, objects)


def build_pack(items: Iterable[tuple[str, bytes]]) -> tuple[bytes, PackIndex]:
    """Concatenate ``(oid, data)`` pairs into one pack and its index."""
    parts: list[bytes] = []
    objects: dict[str, tuple[int, int]] = {}
    offset = 0
    for oid, data in items:
        objects[oid] = (offset, len(data))
        parts.append(data)
        offset += len(data)
    pack = b"".join(parts)
    return pack, PackIndex(hash_bytes(pack), len(pack), objects)


def group(sizes: Iterable[tuple[str, int]], pack_size: int) -> list[list[str]]:
    """Split ``(oid, size)`` pairs, in order, into runs of about ``pack_size`` bytes."""
    groups: list[list[str]] = []
    current: list[str] = []
    filled = 0
    for oid, size in sizes:
        if current and filled + size > pack_size:
            groups.append(current)
            current, filled = [], 0
        current.append(oid)
        filled += size
    if current:
        groups.append(current)
    return groups


def coalesce(wanted: Iterable[tuple[str, int, int]], gap: int) -> list[Span]:
    """Merge ``(oid, offset, length)`` entries whose bytes lie less than ``gap``
    apart into one range each, so a partial pull costs a few ranged GETs, not one
    per object."""
    spans: list[Span] = []
    for oid, off, length in sorted(wanted, key=lambda w: w[1]):
        if spans and off - spans[-1][1] <= gap:
            start, end, members = spans[-1]
            spans[-1] = (start, max(end, off + length), members)
            members.append((oid, off, length))
        else:
            spans.append((off, off + length, [(oid, off, length)]))
    return spans
