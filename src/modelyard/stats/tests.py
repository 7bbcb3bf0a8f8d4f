"""Hypothesis tests for A/B comparisons and a power calculation.

The result types (`TestResult` and its subclasses with confidence intervals) and the
input checks live here too; `drift.py` builds on them.

Differences are always ``a - b`` (first argument minus second), as in
``scipy.stats.ttest_ind`` and ``statsmodels.stats.proportion.proportions_ztest``;
``alternative="greater"`` means "a is greater than b".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as _sps

from modelyard.core.errors import InvalidParameter

__all__ = [
    "MeanDifferenceResult",
    "ProportionTestResult",
    "TestResult",
    "sample_size_two_proportions",
    "two_proportion_ztest",
    "welch_ttest",
]

_ALTERNATIVES = ("two-sided", "greater", "less")


@dataclass(frozen=True)
class TestResult:
    """The outcome of a statistical test.

    Args:
        statistic: the test statistic (KS D, chi-square, z, t, ...).
        p_value: its p-value under the null hypothesis, in [0, 1].
        method: a short stable name of the test, e.g. ``"ks_2samp"``.

    Example:
        >>> r = TestResult(statistic=2.1, p_value=0.036, method="two_proportion_ztest")
        >>> r.is_significant(alpha=0.05)
        True
    """

    __test__ = False  # not a pytest test class despite the name

    statistic: float
    p_value: float
    method: str

    def is_significant(self, alpha: float = 0.05) -> bool:
        """Whether the null hypothesis is rejected at level ``alpha``."""
        _check_level(alpha, "alpha")
        return self.p_value < alpha


@dataclass(frozen=True)
class ProportionTestResult(TestResult):
    """A two-proportion z-test, with the observed rates for a Wald interval.

    ``difference`` is ``p_a - p_b``; ``confidence_interval`` uses the unpooled
    standard error ``sqrt(p_a(1-p_a)/n_a + p_b(1-p_b)/n_b)`` (the test statistic
    itself uses the pooled one).
    """

    p_a: float
    p_b: float
    n_a: int
    n_b: int

    @property
    def difference(self) -> float:
        return self.p_a - self.p_b

    def confidence_interval(self, level: float = 0.95) -> tuple[float, float]:
        """Two-sided unpooled Wald interval for ``p_a - p_b`` at ``level``."""
        _check_level(level, "level")
        se = math.sqrt(self.p_a * (1 - self.p_a) / self.n_a + self.p_b * (1 - self.p_b) / self.n_b)
        half = float(_sps.norm.ppf(0.5 + level / 2)) * se
        return (self.difference - half, self.difference + half)


@dataclass(frozen=True)
class MeanDifferenceResult(TestResult):
    """Welch's t-test, with what its confidence interval needs.

    ``difference`` is ``mean(a) - mean(b)``, ``std_error`` is
    ``sqrt(var_a/n_a + var_b/n_b)`` (sample variances, ddof=1) and ``df`` the
    Welch–Satterthwaite degrees of freedom.
    """

    difference: float
    std_error: float
    df: float

    def confidence_interval(self, level: float = 0.95) -> tuple[float, float]:
        """Two-sided interval ``difference ± t_{(1+level)/2, df} · std_error``."""
        _check_level(level, "level")
        if self.std_error == 0:
            return (self.difference, self.difference)
        half = float(_sps.t.ppf(0.5 + level / 2, self.df)) * self.std_error
        return (self.difference - half, self.difference + half)


# --------------------------------------------------------------------- validation


def _check_level(value: float, name: str) -> float:
    if not (isinstance(value, (int, float)) and 0 < value < 1):
        raise InvalidParameter(f"{name} must be a number strictly between 0 and 1, got {value!r}.")
    return float(value)


def _check_alternative(alternative: str) -> str:
    if alternative not in _ALTERNATIVES:
        raise InvalidParameter(
            f"alternative must be one of {', '.join(_ALTERNATIVES)}; got {alternative!r}."
        )
    return alternative


def _as_sample(values: ArrayLike, name: str, *, min_size: int = 1) -> np.ndarray:
    """Return ``values`` as a 1-D float array with NaNs dropped.

    Refuses non-numeric data, anything but 1-D, infinities, and fewer than
    ``min_size`` values left once NaNs are gone.
    """
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidParameter(
            f"{name} must be numeric; could not convert it to floats ({exc}). "
            "Use the categorical functions for categories."
        ) from None
    if arr.ndim != 1:
        raise InvalidParameter(
            f"{name}: expected a 1-D array, got a {arr.ndim}-D array of shape {arr.shape}; "
            "pass one column, e.g. array.ravel() or df['col']."
        )
    if arr.size == 0:
        raise InvalidParameter(f"{name} is empty; at least {min_size} value(s) are needed.")
    arr = arr[~np.isnan(arr)]
    if arr.size < min_size:
        raise InvalidParameter(
            f"{name} has {arr.size} non-NaN value(s) after dropping NaNs; "
            f"at least {min_size} are needed."
        )
    if not np.all(np.isfinite(arr)):
        raise InvalidParameter(f"{name} contains infinite values; drop or clip them first.")
    return arr


def _as_count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise InvalidParameter(f"{name} must be a non-negative integer, got {value!r}.")
    if not (math.isfinite(value) and float(value).is_integer() and value >= 0):
        raise InvalidParameter(f"{name} must be a non-negative integer, got {value!r}.")
    return int(value)


# --------------------------------------------------------------------- the tests


def two_proportion_ztest(
    successes_a: int,
    n_a: int,
    successes_b: int,
    n_b: int,
    *,
    alternative: str = "two-sided",
) -> ProportionTestResult:
    """Pooled two-proportion z-test of ``p_a = p_b``.

    ``z = (p_a - p_b) / sqrt(p̄(1-p̄)(1/n_a + 1/n_b))`` with the pooled rate
    ``p̄ = (successes_a + successes_b) / (n_a + n_b)``; the p-value is from the
    standard normal (``alternative`` "two-sided", "greater": p_a > p_b, "less").
    This is ``statsmodels``' ``proportions_ztest(..., prop_var=False)``. When both
    groups are all successes or all failures the pooled variance is 0 and the
    result is ``z = 0, p = 1`` (no evidence of a difference).

    Example:
        >>> r = two_proportion_ztest(120, 1000, 100, 1000)
        >>> round(r.statistic, 3), round(r.p_value, 3)
        (1.429, 0.153)
    """
    _check_alternative(alternative)
    s_a, n_a = _as_count(successes_a, "successes_a"), _as_count(n_a, "n_a")
    s_b, n_b = _as_count(successes_b, "successes_b"), _as_count(n_b, "n_b")
    for s, n, label in ((s_a, n_a, "a"), (s_b, n_b, "b")):
        if n == 0:
            raise InvalidParameter(f"n_{label} is 0; each group needs at least one trial.")
        if s > n:
            raise InvalidParameter(
                f"successes_{label}={s} exceeds n_{label}={n}; a proportion must lie in [0, 1]."
            )
    p_a, p_b = s_a / n_a, s_b / n_b
    pooled = (s_a + s_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        z, p = 0.0, 1.0
    else:
        z = (p_a - p_b) / se
        if alternative == "two-sided":
            p = 2 * float(_sps.norm.sf(abs(z)))
        elif alternative == "greater":
            p = float(_sps.norm.sf(z))
        else:
            p = float(_sps.norm.cdf(z))
    return ProportionTestResult(
        statistic=z,
        p_value=min(p, 1.0),
        method="two_proportion_ztest",
        p_a=p_a,
        p_b=p_b,
        n_a=n_a,
        n_b=n_b,
    )


def welch_ttest(
    a: ArrayLike, b: ArrayLike, *, alternative: str = "two-sided"
) -> MeanDifferenceResult:
    """Welch's unequal-variance t-test of ``mean(a) = mean(b)``.

    Delegates to ``scipy.stats.ttest_ind(a, b, equal_var=False)``; NaNs are dropped
    and each side needs at least two values. The result's
    ``confidence_interval(level)`` is two-sided around ``mean(a) - mean(b)`` with
    the Welch–Satterthwaite degrees of freedom
    ``df = (va/na + vb/nb)² / ((va/na)²/(na-1) + (vb/nb)²/(nb-1))``.
    """
    _check_alternative(alternative)
    x = _as_sample(a, "a", min_size=2)
    y = _as_sample(b, "b", min_size=2)
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = math.sqrt(va + vb)
    diff = float(x.mean() - y.mean())
    if se == 0:  # both samples constant: scipy would return NaN
        df = float(x.size + y.size - 2)
        stat = 0.0 if diff == 0 else math.copysign(math.inf, diff)
        agrees = {"two-sided": diff != 0, "greater": diff > 0, "less": diff < 0}[alternative]
        p = 0.0 if agrees else 1.0
    else:
        res = _sps.ttest_ind(x, y, equal_var=False, alternative=alternative)
        df = (va + vb) ** 2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
        stat, p = float(res.statistic), float(res.pvalue)
    return MeanDifferenceResult(
        statistic=stat,
        p_value=p,
        method="welch_ttest",
        difference=diff,
        std_error=se,
        df=float(df),
    )


def sample_size_two_proportions(
    p_baseline: float,
    min_detectable_effect: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: str = "two-sided",
) -> int:
    """Users needed per arm to detect ``p2 = p_baseline + min_detectable_effect``.

    The normal-approximation formula with the pooled variance under the null and
    the unpooled one under the alternative (Fleiss, *Statistical Methods for Rates
    and Proportions*, without continuity correction)::

        n = (z_{1-α/2}·sqrt(2·p̄(1-p̄)) + z_{1-β}·sqrt(p1(1-p1) + p2(1-p2)))² / δ²

    with ``p1 = p_baseline``, ``δ = min_detectable_effect`` (absolute, so 0.02 is two
    percentage points), ``p̄ = (p1 + p2)/2`` and ``1-β = power``; a one-sided
    ``alternative`` uses ``z_{1-α}``. Rounded up. p=0.10, δ=0.02 → 3,841 per arm.
    """
    _check_alternative(alternative)
    alpha = _check_level(alpha, "alpha")
    power = _check_level(power, "power")
    if not (isinstance(p_baseline, (int, float)) and 0 < p_baseline < 1):
        raise InvalidParameter(f"p_baseline must be strictly between 0 and 1, got {p_baseline!r}.")
    if not isinstance(min_detectable_effect, (int, float)) or min_detectable_effect == 0:
        raise InvalidParameter(
            f"min_detectable_effect must be a non-zero absolute difference in rate, "
            f"got {min_detectable_effect!r}."
        )
    p1, p2 = float(p_baseline), float(p_baseline + min_detectable_effect)
    if not 0 < p2 < 1:
        raise InvalidParameter(
            f"p_baseline + min_detectable_effect = {p2:g} lies outside (0, 1); "
            "min_detectable_effect is an absolute difference (0.02 = two points)."
        )
    z_alpha = _sps.norm.ppf(1 - alpha / 2 if alternative == "two-sided" else 1 - alpha)
    z_beta = _sps.norm.ppf(power)
    p_bar = (p1 + p2) / 2
    root = z_alpha * math.sqrt(2 * p_bar * (1 - p_bar)) + z_beta * math.sqrt(
        p1 * (1 - p1) + p2 * (1 - p2)
    )
    return math.ceil(root**2 / (p2 - p1) ** 2)


def sample_size_two_means(
    std: float,
    min_detectable_effect: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: str = "two-sided",
) -> int:
    """Observations needed per arm to detect a difference of means of
    ``min_detectable_effect`` when both arms have standard deviation ``std``
    (normal approximation): ``n = 2·(z_{1-α/2} + z_{1-β})²·σ² / δ²``, rounded up.
    σ=1, δ=0.1 → 1,570 per arm."""
    _check_alternative(alternative)
    alpha = _check_level(alpha, "alpha")
    power = _check_level(power, "power")
    if not (isinstance(std, (int, float)) and math.isfinite(std) and std > 0):
        raise InvalidParameter(f"std must be a positive number, got {std!r}.")
    if not isinstance(min_detectable_effect, (int, float)) or min_detectable_effect == 0:
        raise InvalidParameter(
            f"min_detectable_effect must be a non-zero difference of means, "
            f"got {min_detectable_effect!r}."
        )
    z_alpha = _sps.norm.ppf(1 - alpha / 2 if alternative == "two-sided" else 1 - alpha)
    z_beta = _sps.norm.ppf(power)
    return math.ceil(2 * (z_alpha + z_beta) ** 2 * std**2 / min_detectable_effect**2)
