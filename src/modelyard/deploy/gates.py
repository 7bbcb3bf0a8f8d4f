"""The canary gates: candidate against stable over one step's window.

``evaluate`` returns each gate's value, limit and verdict, and the step's verdict:
"fail" as soon as one gate fails (a rollback follows at once), "pass" when every
gate that is set passes on at least ``min_requests`` candidate requests, else
"wait". A gate fails early, before ``min_requests``, only when the outcome is
already certain (more errors than the whole window may have).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelyard.deploy.entities import Gates
from modelyard.deploy.window import Window
from modelyard.stats import psi, psi_categorical, psi_from_counts

__all__ = ["evaluate", "prediction_drift"]

MIN_STABLE = 20  # stable requests needed for the relative gates


def prediction_drift(stable: np.ndarray, candidate: np.ndarray) -> float | None:
    """PSI of the candidate's predictions against the stable's: over the classes
    for labels (few distinct integer or string values), else over ten quantile bins
    of the stable's predictions."""
    if len(stable) < MIN_STABLE or len(candidate) < MIN_STABLE:
        return None
    discrete = stable.dtype.kind in "OUSb" or (
        stable.dtype.kind in "iu" and len(np.unique(stable)) <= 50
    )
    if not discrete and stable.dtype.kind == "f" and candidate.dtype.kind in "fiu":
        uniques = np.unique(stable)
        discrete = len(uniques) <= 20 and bool(np.all(uniques == np.round(uniques)))
    if discrete:
        if stable.dtype.kind in "biuf" and candidate.dtype.kind in "biuf":
            # numeric labels: count with numpy (strings and Counter cost ~20 ms here)
            classes, inverse = np.unique(np.concatenate([stable, candidate]), return_inverse=True)
            ref = np.bincount(inverse[: len(stable)], minlength=len(classes))
            cur = np.bincount(inverse[len(stable) :], minlength=len(classes))
            return float(psi_from_counts(ref, cur))
        return float(psi_categorical(stable.astype(str), candidate.astype(str)))
    return float(psi(stable.astype(float), candidate.astype(float)))


def _gate(value: float | None, limit: float, passed: bool | None) -> dict[str, Any]:
    return {"value": value, "limit": limit, "passed": passed}


def evaluate(
    gates: Gates,
    candidate: Window,
    stable: Window,
    feedback: dict[str, tuple[int, float]] | None = None,
) -> dict[str, Any]:
    """``feedback``: (outcomes, mean outcome) per role ("candidate", "stable")."""
    n = candidate.requests
    enough = n >= gates.min_requests
    result: dict[str, Any] = {}
    if gates.max_error_rate is not None:
        rate = candidate.error_rate
        certain = candidate.errors > gates.max_error_rate * gates.min_requests
        passed = None
        if rate is not None and (enough or certain):
            passed = not (rate > gates.max_error_rate or (certain and not enough))
        result["error_rate"] = _gate(rate, gates.max_error_rate, passed)
    if gates.max_p99_ms is not None:
        p99 = candidate.latency_ms(99)
        result["p99_ms"] = _gate(
            p99, gates.max_p99_ms, None if not enough or p99 is None else p99 <= gates.max_p99_ms
        )
    if gates.max_latency_ratio is not None:
        c, s = candidate.latency_ms(99), stable.latency_ms(99)
        ratio = c / s if c is not None and s and stable.requests >= MIN_STABLE else None
        result["latency_ratio"] = _gate(
            ratio,
            gates.max_latency_ratio,
            None if not enough or ratio is None else ratio <= gates.max_latency_ratio,
        )
    if gates.max_prediction_drift is not None:
        drift = prediction_drift(stable.predictions(), candidate.predictions())
        result["prediction_drift"] = _gate(
            drift,
            gates.max_prediction_drift,
            None if not enough or drift is None else drift <= gates.max_prediction_drift,
        )
    if gates.max_feedback_drop is not None:
        fb = feedback or {}
        (nc, mc), (ns, ms) = fb.get("candidate", (0, 0.0)), fb.get("stable", (0, 0.0))
        drop = ms - mc if nc and ns else None
        decided = nc >= gates.min_feedback and ns >= gates.min_feedback
        result["feedback_drop"] = _gate(
            drop,
            gates.max_feedback_drop,
            None if not decided or drop is None else drop <= gates.max_feedback_drop,
        )
    verdicts = [g["passed"] for g in result.values()]
    if any(v is False for v in verdicts):
        verdict = "fail"
    elif enough and all(v is True for v in verdicts):
        verdict = "pass"
    else:
        verdict = "wait"
    return {"verdict": verdict, "requests": n, "gates": result}
