"""What one variant did since its window opened: requests, errors, latencies and a
sample of its predictions (the inputs of the canary gates and of the live table).

Bounded: latencies and predictions are kept in reservoirs (uniform samples of fixed
size: 10,000 latencies, 5,000 predictions), so a window of millions of requests costs
the same memory, and the same time to summarise, as one of 10,000.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Window", "prediction_values"]

LATENCY_RESERVOIR = 10_000
PREDICTION_RESERVOIR = 5_000
VALUES_PER_REQUEST = 32


class _Reservoir:
    """Algorithm R: a uniform sample of at most ``size`` of everything offered."""

    __slots__ = ("items", "seen", "size")

    def __init__(self, size: int) -> None:
        self.size, self.seen, self.items = size, 0, []

    def add(self, value: Any) -> None:
        self.seen += 1
        if len(self.items) < self.size:
            self.items.append(value)
        else:
            j = random.randrange(self.seen)
            if j < self.size:
                self.items[j] = value


class _NumberReservoir:
    """The same for floats, in a preallocated array (percentiles without copies)."""

    __slots__ = ("n", "seen", "size", "values")

    def __init__(self, size: int) -> None:
        self.size, self.seen, self.n = size, 0, 0
        self.values = np.empty(size, dtype=np.float64)

    def add(self, value: float) -> None:
        self.seen += 1
        if self.n < self.size:
            self.values[self.n] = value
            self.n += 1
        else:
            j = random.randrange(self.seen)
            if j < self.size:
                self.values[j] = value

    def percentile(self, q: float) -> float | None:
        return float(np.percentile(self.values[: self.n], q)) if self.n else None


def prediction_values(outputs: Any, limit: int = VALUES_PER_REQUEST) -> list[Any]:
    """Up to ``limit`` scalar predictions of one answer (first column of a frame or
    matrix), for drift and shadow comparisons."""
    if outputs is None:
        return []
    if isinstance(outputs, dict):  # several named outputs: the first
        outputs = next(iter(outputs.values()), None)
        if outputs is None:
            return []
    if isinstance(outputs, pd.DataFrame):
        outputs = outputs.iloc[:limit, 0].to_numpy()
    elif isinstance(outputs, pd.Series):
        outputs = outputs.to_numpy()[:limit]
    array = np.asarray(outputs)
    if array.ndim == 0:
        array = array.reshape(1)
    elif array.ndim > 1:
        array = array.reshape(array.shape[0], -1)[:, 0]
    return array[:limit].tolist()


class Window:
    """Counters and samples of one variant since ``started`` (monotonic seconds)."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.requests = 0
        self.errors = 0
        self._latency = _NumberReservoir(LATENCY_RESERVOIR)
        self._predictions = _Reservoir(PREDICTION_RESERVOIR)

    def observe(self, status: int, latency_ms: float, outputs: Any = None) -> None:
        self.requests += 1
        if status >= 500:
            self.errors += 1
        self._latency.add(latency_ms)
        if status < 300 and outputs is not None:
            for value in prediction_values(outputs, 4):
                self._predictions.add(value)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def latency_ms(self, q: float) -> float | None:
        return self._latency.percentile(q)

    def predictions(self) -> np.ndarray:
        return np.asarray(self._predictions.items)

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "p50_ms": self.latency_ms(50),
            "p99_ms": self.latency_ms(99),
        }
