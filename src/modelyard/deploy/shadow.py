"""The shadow comparison: the candidate's answers to mirrored requests against the
answers users got, and the latency and errors of both."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelyard.deploy.window import Window, _Reservoir, prediction_values

__all__ = ["ShadowStats", "compare_predictions"]


def compare_predictions(primary: list[Any], shadow: list[Any]) -> tuple[int, int, list[float]]:
    """(rows compared, rows that agree, absolute deltas of numeric predictions).
    Numbers agree within 1e-9 relative; anything else when equal."""
    n = min(len(primary), len(shadow))
    agree, deltas = 0, []
    for a, b in zip(primary[:n], shadow[:n], strict=True):
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            d = abs(float(a) - float(b))
            deltas.append(d)
            agree += d <= 1e-9 * max(1.0, abs(float(a)))
        else:
            agree += a == b
    return n, agree, deltas


class ShadowStats:
    """Mirrored requests: how many, how the two models compared."""

    def __init__(self, started: float) -> None:
        self.primary = Window(started)
        self.shadow = Window(started)
        self.mirrored = 0
        self.skipped = 0  # the shadow was busy: not mirrored, never queued
        self.rows = 0
        self.agreed = 0
        self._deltas = _Reservoir(20_000)

    def record(self, primary_outputs: Any, shadow_outputs: Any) -> None:
        n, agree, deltas = compare_predictions(
            prediction_values(primary_outputs, 10_000), prediction_values(shadow_outputs, 10_000)
        )
        self.rows += n
        self.agreed += agree
        for d in deltas:
            self._deltas.add(d)

    def report(self) -> dict[str, Any]:
        deltas = np.asarray(self._deltas.items, dtype=float)
        return {
            "mirrored": self.mirrored,
            "skipped": self.skipped,
            "rows_compared": self.rows,
            "agreement_rate": self.agreed / self.rows if self.rows else None,
            "mean_abs_delta": float(deltas.mean()) if deltas.size else None,
            "p99_abs_delta": float(np.percentile(deltas, 99)) if deltas.size else None,
            "max_abs_delta": float(deltas.max()) if deltas.size else None,
            "primary": self.primary.snapshot(),
            "shadow": self.shadow.snapshot(),
        }
