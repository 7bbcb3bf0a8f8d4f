"""Which variant answers a request: by weight, interleaved or sticky by a key.

Without a key, requests are spread by smooth weighted round-robin (nginx's): at any
moment each variant has answered its weight's share of requests to within one, so
a canary at 5% never gets more than 5% of the requests plus one, even over a short
window. With a key, the variant is a pure function of the key and the weights: a
user keeps their variant for the whole test.

A ``Router`` is replaced, never changed (one assignment swaps the weights), so a
request sees either the old split or the new one. Its round-robin state is touched
only from the event loop's thread.
"""

from __future__ import annotations

import bisect
import hashlib

__all__ = ["Router", "bucket"]


def bucket(key: str) -> float:
    """A key's fixed point in [0, 100): the first 8 bytes of its BLAKE2b digest."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * 100.0


class Router:
    """Weights (percent) over the variants that can answer; zero weights never do."""

    __slots__ = ("_bounds", "_current", "_names", "_total", "_weights", "weights")

    def __init__(self, weights: dict[str, float]) -> None:
        self.weights = {n: w for n, w in weights.items() if w > 0}
        self._names = list(self.weights)
        self._weights = [self.weights[n] for n in self._names]
        self._current = [0.0] * len(self._names)
        self._bounds = []
        total = 0.0
        for w in self._weights:
            total += w
            self._bounds.append(total)
        self._total = total

    @property
    def empty(self) -> bool:
        return not self._names

    def pick(self, key: str | None = None) -> str:
        names = self._names
        if len(names) == 1:
            return names[0]
        if key is not None:  # sticky: renormalised when the weights sum below 100
            point = bucket(key) / 100.0 * self._total
            i = bisect.bisect_right(self._bounds, point)
            return names[min(i, len(names) - 1)]
        current, weights = self._current, self._weights
        best = 0
        for i in range(len(names)):
            current[i] += weights[i]
            if current[i] > current[best]:
                best = i
        current[best] -= self._total
        return names[best]
