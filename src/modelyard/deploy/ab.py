"""The A/B report: per-variant outcomes from feedback, tested against the control.

An outcome is the feedback's ``reward`` or, without one, whether the prediction
matched the ``label`` (1/0). Outcomes that are all 0/1 are rates and get the
two-proportion z-test; others are means and get Welch's t-test. Each treatment is
compared with the control (the variant that served before the test, else the
first) at ``alpha`` divided by the number of comparisons (Bonferroni), and a
winner is named only when the difference is significant **and** both arms have
the sample size a power calculation asks for; before that the verdict says how
many more outcomes are needed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from modelyard.stats import (
    sample_size_two_means,
    sample_size_two_proportions,
    two_proportion_ztest,
    welch_ttest,
)

__all__ = ["ABReport", "ArmResult", "ab_report", "outcome_of"]


@dataclass
class ArmResult:
    variant: str
    n: int
    mean: float | None
    ci: tuple[float, float] | None = None  # of the mean (rates: Wald)
    difference: float | None = None  # vs the control
    diff_ci: tuple[float, float] | None = None
    p_value: float | None = None
    significant: bool = False


@dataclass
class ABReport:
    deployment: str
    kind: str  # "rate" | "mean" | "none"
    control: str | None
    alpha: float
    required_per_arm: int | None
    arms: list[ArmResult] = field(default_factory=list)
    winner: str | None = None
    verdict: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def outcome_of(row: dict[str, Any]) -> float | None:
    """The number an A/B test compares for one feedback row."""
    if row.get("reward") is not None:
        return float(row["reward"])
    label, prediction = row.get("label"), row.get("prediction")
    if label is None or prediction is None:
        return None
    if isinstance(prediction, list) and len(prediction) == 1:
        prediction = prediction[0]
    if isinstance(label, list) and len(label) == 1:
        label = label[0]
    return 1.0 if str(prediction) == str(label) else 0.0


def _mean_ci(values: np.ndarray, rate: bool, z: float) -> tuple[float, float] | None:
    n = len(values)
    if n < 2:
        return None
    m = float(values.mean())
    se = math.sqrt(m * (1 - m) / n) if rate else float(values.std(ddof=1)) / math.sqrt(n)
    return (m - z * se, m + z * se)


def ab_report(
    deployment: str,
    rows: list[dict[str, Any]],
    variants: list[str],
    *,
    control: str | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    min_detectable_effect: float | None = None,
) -> ABReport:
    """Test each variant against ``control`` on the outcomes in ``rows``.

    ``min_detectable_effect``: for rates an absolute difference (default 0.02, two
    points); for means, in the outcome's units (default a tenth of its standard
    deviation)."""
    from scipy.stats import norm

    outcomes: dict[str, list[float]] = {v: [] for v in variants}
    for row in rows:
        value = outcome_of(row)
        if value is not None and math.isfinite(value) and row.get("variant") in outcomes:
            outcomes[row["variant"]].append(value)
    arrays = {v: np.asarray(o, dtype=float) for v, o in outcomes.items()}
    every = np.concatenate([a for a in arrays.values()]) if arrays else np.array([])
    control = control if control in arrays else (variants[0] if variants else None)
    if every.size == 0 or control is None:
        return ABReport(
            deployment,
            "none",
            control,
            alpha,
            None,
            [ArmResult(v, 0, None) for v in variants],
            verdict="no outcomes yet: send feedback (POST /feedback or my.log_feedback)",
        )
    rate = bool(np.isin(every, (0.0, 1.0)).all())
    z = float(norm.ppf(0.975))
    comparisons = max(1, len(variants) - 1)
    level = alpha / comparisons
    base = arrays[control]
    required = _required(base, every, rate, alpha=level, power=power, mde=min_detectable_effect)
    report = ABReport(deployment, "rate" if rate else "mean", control, alpha, required)
    best: tuple[float, str] | None = None
    short = []
    for v in variants:
        a = arrays[v]
        arm = ArmResult(v, len(a), float(a.mean()) if len(a) else None, _mean_ci(a, rate, z))
        report.arms.append(arm)
        if v == control or len(a) < 2 or len(base) < 2:
            continue
        if rate:
            test = two_proportion_ztest(int(a.sum()), len(a), int(base.sum()), len(base))
        else:
            test = welch_ttest(a, base)
        arm.difference = float(test.difference)
        arm.diff_ci = tuple(float(x) for x in test.confidence_interval(1 - level))  # type: ignore[assignment]
        arm.p_value = float(test.p_value)
        enough = required is not None and min(len(a), len(base)) >= required
        arm.significant = bool(test.p_value < level and enough)
        if not enough:
            short.append(v)
        if arm.significant:
            candidate = (arm.difference, v) if arm.difference > 0 else (0.0, control)
            if best is None or candidate[0] > best[0]:
                best = candidate
    if best is not None:
        report.winner = best[1]
        report.verdict = (
            f"{best[1]} wins (significant at alpha={alpha:g} with {comparisons} comparison(s))"
        )
    elif short:
        have = min(len(arrays[v]) for v in [control, *short])
        report.verdict = (
            f"keep collecting: {required} outcomes per arm needed for power {power:g}, "
            f"the smallest arm has {have}"
        )
    else:
        report.verdict = "no significant difference at the planned sample size"
    return report


def _required(
    base: np.ndarray,
    every: np.ndarray,
    rate: bool,
    *,
    alpha: float,
    power: float,
    mde: float | None,
) -> int | None:
    if rate:
        p = float(base.mean()) if len(base) else float(every.mean())
        p = min(max(p, 0.01), 0.99)
        effect = mde if mde is not None else 0.02
        if not 0 < p + effect < 1:
            effect = -effect
        return sample_size_two_proportions(p, effect, alpha=alpha, power=power)
    std = float(every.std(ddof=1)) if len(every) > 1 else 0.0
    if std <= 0:
        return None
    return sample_size_two_means(
        std, mde if mde is not None else std / 10, alpha=alpha, power=power
    )
