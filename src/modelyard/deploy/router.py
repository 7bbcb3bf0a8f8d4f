"""Which variant answers a request: by weight, at random or sticky by a key.

A ``Router`` is immutable; the gateway swaps in a new one (one assignment) when the
weights change, so a request sees either the old split or the new one, never half.
With a key, the variant is a pure function of the key and the weights: a user keeps
their variant for the whole test.
"""

from __future__ import annotations

import bisect
import hashlib
import random

__all__ = ["Router", "bucket"]


def bucket(key: str) -> float:
    """A key's fixed point in [0, 100): the first 8 bytes of its BLAKE2b digest."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * 100.0


class Router:
    """Weights (percent) over the variants that can answer; zero weights never do."""

    __slots__ = ("_bounds", "_names", "_total", "weights")

    def __init__(self, weights: dict[str, float]) -> None:
        self.weights = {n: w for n, w in weights.items() if w > 0}
        self._names = list(self.weights)
        self._bounds = []
        total = 0.0
        for n in self._names:
            total += self.weights[n]
            self._bounds.append(total)
        self._total = total

    @property
    def empty(self) -> bool:
        return not self._names

    def pick(self, key: str | None = None) -> str:
        if len(self._names) == 1:
            return self._names[0]
        point = bucket(key) if key is not None else random.random() * 100.0
        point = point / 100.0 * self._total  # renormalised when weights sum below 100
        i = bisect.bisect_right(self._bounds, point)
        return self._names[min(i, len(self._names) - 1)]
