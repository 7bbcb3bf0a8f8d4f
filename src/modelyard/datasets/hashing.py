"""Content hashes of files and bytes: XXH3-128, hex.

Measured on this machine (1 GiB in memory): XXH3-128 0.12 s, BLAKE3 0.80 s (0.41 s
on 2 threads), MD5 (DVC's) 1.8 s. Content addressing needs a collision-free name
for data we produced ourselves, not a defence against forged inputs, so the fast
128-bit hash wins; the pointer files name the algorithm, so it can change later.
"""

from __future__ import annotations

from pathlib import Path

import xxhash

__all__ = ["ALGORITHM", "hash_bytes", "hash_file", "is_oid"]

ALGORITHM = "xxh3-128"
_CHUNK = 1 << 20
_HEX = frozenset("0123456789abcdef")


def hash_bytes(data: bytes | memoryview) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def hash_file(path: str | Path) -> str:
    """The hash of a file's bytes, read in 1 MiB chunks (constant memory)."""
    digest = xxhash.xxh3_128()
    with open(path, "rb", buffering=0) as fh:
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        while n := fh.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


def is_oid(value: str) -> bool:
    """A file object id (32 hex digits) or a tree id (the same with ``.dir``)."""
    core = value.removesuffix(".dir")
    return len(core) == 32 and set(core) <= _HEX
