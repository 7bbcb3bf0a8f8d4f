"""Reproducible splits: each row goes where the hash of (seed, its id) sends it.

Assignment depends only on the seed and the row's id (the ``by`` column, or the
index), never on row order or on the other rows, so the same id lands in the same
split in every version of the data, and rows sharing an id (a customer's many
rows) stay together. Each split records its row count and a hash of its sorted
row ids, so the split can be checked later (`verify_split`) against the data a run
logged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modelyard.core.errors import InvalidParameter
from modelyard.datasets.hashing import hash_bytes

__all__ = ["Split", "split", "verify_split"]

_ID_KEY = "modelyard-rowids"  # the fixed key that turns ids into row-id hashes


def _ids(df: pd.DataFrame, by: str | None) -> pd.Series:
    if by is None:
        return df.index.to_series(index=df.index)
    if by not in df.columns:
        raise InvalidParameter(f"split: no column {by!r} to split by (columns: {list(df.columns)})")
    return df[by]


def _hash(ids: pd.Series, key: str) -> np.ndarray:
    return pd.util.hash_pandas_object(ids, index=False, hash_key=key).to_numpy(np.uint64)


def _mix(hashes: np.ndarray, seed: int) -> np.ndarray:
    """splitmix64 of (id hash xor seed): pandas ignores its hash key for numbers, so
    the seed enters here; uint64 arithmetic wraps, as the mixer wants."""
    x = hashes ^ np.uint64((seed * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _rows_hash(id_hashes: np.ndarray) -> str:
    """Order-free: the hash of the sorted per-id hashes."""
    return hash_bytes(np.sort(id_hashes).tobytes())


def _check_fractions(
    fractions: Mapping[str, float] | Sequence[tuple[str, float]],
) -> dict[str, float]:
    """The parts in order (the order decides which hash range each part gets)."""
    if not isinstance(fractions, Mapping):
        fractions = dict((str(k), f) for k, f in fractions)
    if not fractions:
        raise InvalidParameter(
            "split: give at least one fraction, e.g. {'train': 0.8, 'test': 0.2}"
        )
    bad = {k: f for k, f in fractions.items() if not 0 < float(f) <= 1}
    if bad:
        raise InvalidParameter(f"split: fractions must be in (0, 1], got {bad}")
    total = sum(float(f) for f in fractions.values())
    if abs(total - 1) > 1e-9:
        raise InvalidParameter(f"split: fractions must sum to 1, they sum to {total:g}")
    return {str(k): float(f) for k, f in fractions.items()}


@dataclass
class Split(Mapping[str, pd.DataFrame]):
    """The parts by name (``parts["train"]``) and the record that verifies them."""

    parts: dict[str, pd.DataFrame]
    seed: int
    by: str | None
    fractions: dict[str, float]
    row_hashes: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.parts[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.parts)

    def __len__(self) -> int:
        return len(self.parts)

    def record(self, name: str | None = None) -> dict[str, Any]:
        """What a run logs: seed, key, fractions, and rows + row-id hash per part
        (only part ``name`` when given)."""
        names = [name] if name else list(self.parts)
        return {
            "seed": self.seed,
            "by": self.by,
            "fractions": [[k, f] for k, f in self.fractions.items()],  # ordered
            "parts": {
                n: {"rows": len(self.parts[n]), "row_hash": self.row_hashes[n]} for n in names
            },
        }


def split(
    df: pd.DataFrame,
    *,
    fractions: Mapping[str, float] | Sequence[tuple[str, float]] | None = None,
    by: str | None = None,
    seed: int = 0,
) -> Split:
    """Split ``df`` into named parts, e.g. ``split(df, by="customer_id",
    fractions={"train": 0.8, "test": 0.2}, seed=7)``."""
    if not isinstance(df, pd.DataFrame):
        raise InvalidParameter(f"split: expected a pandas DataFrame, got {type(df).__name__}")
    fr = _check_fractions(fractions or {"train": 0.8, "test": 0.2})
    hashes = _hash(_ids(df, by), _ID_KEY)
    u = _mix(hashes, seed) / np.float64(2**64)
    edges = np.cumsum(list(fr.values()))
    edges[-1] = 1.0 + 1e-12
    which = np.searchsorted(edges, u, side="right")
    parts, row_hashes = {}, {}
    for i, name in enumerate(fr):
        mask = which == i
        parts[name] = df[mask]
        row_hashes[name] = _rows_hash(hashes[mask])
    return Split(parts, seed, by, fr, row_hashes)


def verify_split(df: pd.DataFrame, record: Mapping[str, Any], name: str | None = None) -> bool:
    """Whether splitting ``df`` with ``record``'s seed, key and fractions gives the
    recorded parts (part ``name`` only, or every part the record lists)."""
    again = split(df, fractions=record["fractions"], by=record["by"], seed=int(record["seed"]))
    wanted = [name] if name else list(record["parts"])
    return all(
        again.row_hashes.get(n) == record["parts"][n]["row_hash"]
        and len(again.parts[n]) == record["parts"][n]["rows"]
        for n in wanted
    )
