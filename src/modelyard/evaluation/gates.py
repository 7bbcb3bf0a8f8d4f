"""Evaluation gates: does a candidate clear absolute floors and not regress against
the champion on the same data? The verdict drives `modelyard check` (exit code)
and, later, the continuous-training pipeline."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from modelyard.core.errors import InvalidParameter
from modelyard.evaluation.evaluate import EvaluationResult, evaluate, load_table
from modelyard.evaluation.metrics import HIGHER_IS_BETTER

__all__ = ["GateResult", "Verdict", "check"]


@dataclass
class GateResult:
    metric: str
    rule: str  # "min" | "max" | "max_regression"
    threshold: float
    candidate: float | None
    champion: float | None
    passed: bool
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Verdict:
    passed: bool
    gates: list[GateResult]
    candidate: EvaluationResult
    champion: EvaluationResult | None

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "gates": [g.to_dict() for g in self.gates],
            "candidate": self.candidate.to_dict(),
            "champion": None if self.champion is None else self.champion.to_dict(),
        }


def _higher_is_better(metric: str) -> bool:
    try:
        return HIGHER_IS_BETTER[metric]
    except KeyError:
        raise InvalidParameter(
            f"Unknown metric {metric!r} for a gate: expected one of "
            f"{', '.join(sorted(HIGHER_IS_BETTER))}"
        ) from None


def check(
    candidate: Any,
    data: pd.DataFrame | str | Path,
    target: str,
    *,
    champion: Any = None,
    task: str = "classification",
    min_values: dict[str, float] | None = None,
    max_values: dict[str, float] | None = None,
    max_regression: dict[str, float] | None = None,
    log: bool = False,
    allow_pickle: bool = False,
) -> Verdict:
    """Evaluate ``candidate`` (and ``champion``) on ``data`` and apply the gates.

    - ``min_values``: ``{"accuracy": 0.8}``: the candidate must reach at least this.
    - ``max_values``: ``{"rmse": 3.0}``: the candidate must stay at or below this.
    - ``max_regression``: ``{"f1": 0.01}``: the candidate may be worse than the
      champion by at most this much (in the metric's own direction).
    """
    min_values, max_values = dict(min_values or {}), dict(max_values or {})
    max_regression = dict(max_regression or {})
    if max_regression and champion is None:
        raise InvalidParameter("max_regression gates need a champion to compare with")
    if not (min_values or max_values or max_regression):
        raise InvalidParameter("Give at least one gate: min_values, max_values or max_regression")
    frame = load_table(data)
    kw = {"task": task, "log": log, "importance": False, "allow_pickle": allow_pickle}
    cand = evaluate(candidate, frame, target, **kw)
    champ = evaluate(champion, frame, target, **kw) if champion is not None else None

    def value(result: EvaluationResult | None, metric: str) -> float | None:
        return None if result is None else result.metrics.get(metric)

    gates: list[GateResult] = []
    for metric, floor in sorted(min_values.items()):
        _higher_is_better(metric)
        got = value(cand, metric)
        ok = got is not None and got >= floor
        detail = "not computed" if got is None else f"{got:.4g} {'>=' if ok else '<'} {floor:g}"
        gates.append(GateResult(metric, "min", floor, got, value(champ, metric), ok, detail))
    for metric, ceiling in sorted(max_values.items()):
        _higher_is_better(metric)
        got = value(cand, metric)
        ok = got is not None and got <= ceiling
        detail = "not computed" if got is None else f"{got:.4g} {'<=' if ok else '>'} {ceiling:g}"
        gates.append(GateResult(metric, "max", ceiling, got, value(champ, metric), ok, detail))
    for metric, allowed in sorted(max_regression.items()):
        up = _higher_is_better(metric)
        got, base = value(cand, metric), value(champ, metric)
        if got is None or base is None:
            gates.append(
                GateResult(metric, "max_regression", allowed, got, base, False, "not computed")
            )
            continue
        regression = (base - got) if up else (got - base)
        ok = regression <= allowed
        detail = f"{'worse' if regression > 0 else 'better'} by {abs(regression):.4g}" + (
            "" if ok else f" (allowed {allowed:g})"
        )
        gates.append(GateResult(metric, "max_regression", allowed, got, base, ok, detail))
    return Verdict(all(g.passed for g in gates), gates, cand, champ)
