"""Distribution drift between a reference and a current sample.

Numerical: PSI, the two-sample Kolmogorov–Smirnov test, the Wasserstein distance
normalised by the reference's spread, Jensen–Shannon distance. Categorical: PSI,
the two-sample chi-square test, Jensen–Shannon distance.

Every binned statistic has a ``*_from_counts`` primitive, so monitoring can compute
drift from stored histograms and category counts without the raw data; the sample
functions are built on it. NaN / None values are dropped; a side with nothing left
raises `InvalidParameter`.

The categorical chi-square is a **two-sample contingency test** (a 2×K table of
reference and current counts, `scipy.stats.chi2_contingency`), not a goodness-of-fit
test against the reference as fixed expected frequencies: the latter ignores the
reference's own sampling noise and raises false alarms on large samples.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as _sps
from scipy.spatial.distance import jensenshannon as _jensenshannon

from modelyard.core.errors import InvalidParameter
from modelyard.stats.tests import TestResult, _as_sample

__all__ = [
    "chi2_from_counts",
    "chi2_two_sample",
    "jensen_shannon",
    "jensen_shannon_categorical",
    "jensen_shannon_from_counts",
    "ks_2samp",
    "ks_from_counts",
    "ks_sorted",
    "psi",
    "psi_categorical",
    "psi_from_counts",
    "quantile_edges",
    "wasserstein_from_counts",
    "wasserstein_normed",
    "wasserstein_sorted",
]


# --------------------------------------------------------------------- helpers


def _as_counts(values: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise InvalidParameter(
            f"{name}: expected a non-empty 1-D array of counts, got shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise InvalidParameter(f"{name}: counts must be finite and non-negative.")
    if arr.sum() == 0:
        raise InvalidParameter(f"{name}: counts sum to 0; the window holds no observations.")
    return arr


def _pair_counts(ref_counts: ArrayLike, cur_counts: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    r = _as_counts(ref_counts, "ref_counts")
    c = _as_counts(cur_counts, "cur_counts")
    if r.shape != c.shape:
        raise InvalidParameter(
            f"ref_counts has {r.size} bins but cur_counts has {c.size}; "
            "both must count the same bins or categories in the same order."
        )
    return r, c


def quantile_edges(reference: ArrayLike, bins: int = 10) -> np.ndarray:
    """Interior cut points splitting ``reference`` into ``bins`` quantile bins.

    Returns the ``bins - 1`` inner quantiles, de-duplicated (ties collapse bins).
    With the outer bins open-ended, they define bins ``(-inf, e1], (e1, e2], ...,
    (e_last, +inf)`` that any current value falls into.
    """
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise InvalidParameter(f"bins must be a positive integer, got {bins!r}.")
    ref = _as_sample(reference, "reference")
    inner = np.quantile(ref, np.linspace(0, 1, int(bins) + 1)[1:-1])
    return np.unique(inner)


def _bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    # side="left": index i means edges[i-1] < v <= edges[i] (right-closed bins).
    idx = np.searchsorted(edges, values, side="left")
    return np.bincount(idx, minlength=edges.size + 1).astype(float)


def _edges(reference: np.ndarray, bins: int | Sequence[float]) -> np.ndarray:
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        return quantile_edges(reference, bins)
    edges = np.asarray(bins, dtype=float)
    if edges.ndim != 1 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise InvalidParameter(
            "bins must be a positive integer or a strictly increasing 1-D sequence of "
            f"finite cut points, got {bins!r}."
        )
    return edges


def _is_missing(v: object) -> bool:
    return v is None or (isinstance(v, (float, np.floating)) and math.isnan(v))


def _category_counts(
    reference: ArrayLike, current: ArrayLike
) -> tuple[list[object], np.ndarray, np.ndarray]:
    """Counts over the union of categories: reference's first, then new ones."""
    sides = []
    for values, name in ((reference, "reference"), (current, "current")):
        arr = np.asarray(values, dtype=object)
        if arr.ndim != 1:
            raise InvalidParameter(
                f"{name}: expected a 1-D array of categories, got shape {arr.shape}."
            )
        if arr.size == 0:
            raise InvalidParameter(f"{name} is empty; at least one category value is needed.")
        counts = Counter(v for v in arr.tolist() if not _is_missing(v))
        if not counts:
            raise InvalidParameter(f"{name} holds only missing values (None/NaN).")
        sides.append(counts)
    ref, cur = sides
    categories = list(ref) + [k for k in cur if k not in ref]
    return (
        categories,
        np.array([ref.get(k, 0) for k in categories], dtype=float),
        np.array([cur.get(k, 0) for k in categories], dtype=float),
    )


# --------------------------------------------------------------------- PSI


def psi_from_counts(ref_counts: ArrayLike, cur_counts: ArrayLike, *, eps: float = 1e-4) -> float:
    """Population Stability Index from per-bin (or per-category) counts.

    ``PSI = Σ_i (c_i - r_i) · ln(c_i / r_i)`` where ``r_i`` and ``c_i`` are the
    shares of the reference and current observations in bin ``i``, each floored at
    ``eps`` (``max(share, eps)``) so an empty bin contributes a large but finite
    term. 0 means identical; a common reading is < 0.1 stable, 0.1–0.25 moderate,
    > 0.25 significant shift.
    """
    if not (isinstance(eps, (int, float)) and 0 < eps < 1):
        raise InvalidParameter(f"eps must be in (0, 1), got {eps!r}.")
    r, c = _pair_counts(ref_counts, cur_counts)
    r = np.maximum(r / r.sum(), eps)
    c = np.maximum(c / c.sum(), eps)
    return float(np.sum((c - r) * np.log(c / r)))


def psi(
    reference: ArrayLike,
    current: ArrayLike,
    bins: int | Sequence[float] = 10,
    *,
    eps: float = 1e-4,
) -> float:
    """PSI of numerical samples over the reference's quantile bins.

    ``bins`` is the number of quantile bins of ``reference`` (ties merge bins) or
    explicit interior cut points; the outer bins are open-ended, so current values
    beyond the reference's range still count. See `psi_from_counts` for the formula.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> ref = rng.normal(size=5000)
        >>> psi(ref, ref) == 0.0
        True
    """
    ref = _as_sample(reference, "reference")
    cur = _as_sample(current, "current")
    edges = _edges(ref, bins)
    return psi_from_counts(_bin_counts(ref, edges), _bin_counts(cur, edges), eps=eps)


def psi_categorical(reference: ArrayLike, current: ArrayLike, *, eps: float = 1e-4) -> float:
    """PSI of categorical samples over the union of both sides' categories."""
    _, r, c = _category_counts(reference, current)
    return psi_from_counts(r, c, eps=eps)


# --------------------------------------------------------------------- tests


def ks_2samp(
    reference: ArrayLike, current: ArrayLike, *, alternative: str = "two-sided"
) -> TestResult:
    """Two-sample Kolmogorov–Smirnov test (``scipy.stats.ks_2samp``, method "auto")."""
    ref = _as_sample(reference, "reference")
    cur = _as_sample(current, "current")
    if alternative not in ("two-sided", "less", "greater"):
        raise InvalidParameter(
            f"alternative must be 'two-sided', 'less' or 'greater', got {alternative!r}."
        )
    res = _sps.ks_2samp(ref, cur, alternative=alternative)
    return TestResult(float(res.statistic), float(res.pvalue), "ks_2samp")


def chi2_from_counts(ref_counts: ArrayLike, cur_counts: ArrayLike) -> TestResult:
    """Chi-square test of homogeneity on the 2×K table ``[ref_counts, cur_counts]``.

    ``scipy.stats.chi2_contingency`` with its defaults (Yates' correction applies
    only when K = 2). Categories absent from both sides are dropped; with fewer than
    two categories left there is nothing to compare and the result is
    ``statistic=0, p_value=1``.
    """
    r, c = _pair_counts(ref_counts, cur_counts)
    keep = (r + c) > 0
    if keep.sum() < 2:
        return TestResult(0.0, 1.0, "chi2_contingency")
    res = _sps.chi2_contingency(np.vstack([r[keep], c[keep]]))
    return TestResult(float(res.statistic), float(res.pvalue), "chi2_contingency")


def chi2_two_sample(reference: ArrayLike, current: ArrayLike) -> TestResult:
    """Two-sample chi-square test for categorical data (see `chi2_from_counts`)."""
    _, r, c = _category_counts(reference, current)
    return chi2_from_counts(r, c)


# --------------------------------------------------------------------- distances


def wasserstein_normed(reference: ArrayLike, current: ArrayLike, *, min_std: float = 1e-3) -> float:
    """Wasserstein-1 distance divided by the reference's standard deviation.

    In units of reference standard deviations (0.1 ≈ "moved a tenth of a std").
    The divisor is ``max(std(reference), min_std)`` (population std, ddof=0), so a
    constant reference gives a large finite value instead of a division by zero —
    the same guard as Evidently's.
    """
    ref = _as_sample(reference, "reference")
    cur = _as_sample(current, "current")
    if not (isinstance(min_std, (int, float)) and min_std > 0):
        raise InvalidParameter(f"min_std must be a positive number, got {min_std!r}.")
    return float(_sps.wasserstein_distance(ref, cur) / max(float(np.std(ref)), min_std))


def jensen_shannon_from_counts(
    ref_counts: ArrayLike, cur_counts: ArrayLike, *, base: float | None = 2
) -> float:
    """Jensen–Shannon distance between two histograms: base 2 (in [0, 1]) by default;
    ``base=None`` is the natural log (in [0, √ln 2]), scipy's and Evidently's."""
    r, c = _pair_counts(ref_counts, cur_counts)
    return float(_jensenshannon(r / r.sum(), c / c.sum(), base=base))


def jensen_shannon(
    reference: ArrayLike, current: ArrayLike, bins: int | Sequence[float] = 10
) -> float:
    """Jensen–Shannon distance of numerical samples on shared bins.

    Both sides are counted on the same bins as `psi` (the reference's quantile
    bins, open-ended outer bins, or explicit cut points); base 2, in [0, 1].
    """
    ref = _as_sample(reference, "reference")
    cur = _as_sample(current, "current")
    edges = _edges(ref, bins)
    return jensen_shannon_from_counts(_bin_counts(ref, edges), _bin_counts(cur, edges))


def jensen_shannon_categorical(reference: ArrayLike, current: ArrayLike) -> float:
    """Jensen–Shannon distance of categorical samples over the union of categories."""
    _, r, c = _category_counts(reference, current)
    return jensen_shannon_from_counts(r, c)


# --------------------------------------------------------------------- sorted samples
#
# Monitoring compares many large columns: sorting each side once and computing the
# statistics from the sorted arrays in O(n) passes is several times faster than the
# scipy functions (which sort again and search every value of both sides).


def _run_ends(a: np.ndarray) -> np.ndarray:
    """For sorted ``a``: how many values are <= a[i] (``searchsorted(a, a, "right")``)."""
    n = a.size
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    np.not_equal(a[1:], a[:-1], out=starts[1:])
    if starts.all():  # no ties (continuous data): each value counts itself and those below
        return np.arange(1, n + 1)
    run = np.cumsum(starts) - 1
    ends = np.append(np.flatnonzero(starts)[1:], n)
    return ends[run]


def ks_sorted(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> TestResult:
    """Two-sided two-sample KS test on already sorted, NaN-free samples.

    The statistic and p-value equal ``scipy.stats.ks_2samp`` (method "auto"): below
    10,000 values per side scipy's exact distribution is used (it is cheap there),
    above that Smirnov's asymptotic ``kstwo`` with ``round(n1*n2/(n1+n2))``.
    """
    n1, n2 = ref_sorted.size, cur_sorted.size
    if n1 == 0 or n2 == 0:
        raise InvalidParameter("ks_sorted: both samples need at least one value.")
    if max(n1, n2) <= 10_000:
        res = _sps.ks_2samp(ref_sorted, cur_sorted)
        return TestResult(float(res.statistic), float(res.pvalue), "ks_2samp")
    # F1 - F2 only changes at data points. At each current value c_j (right limits)
    # both CDFs are known from one search; between c_j and c_{j+1} F2 is flat and F1
    # rises, so the rest of the supremum is F1 just below c_{j+1} minus F2(c_j).
    right = np.searchsorted(ref_sorted, cur_sorted, side="right")
    left = right
    tied = (ref_sorted[np.maximum(right - 1, 0)] == cur_sorted) & (right > 0)
    if tied.any():  # reference values equal to a current one: count them out
        left = right.copy()
        left[tied] = np.searchsorted(ref_sorted, cur_sorted[tied], side="left")
    f2 = _run_ends(cur_sorted) / n2
    d_at_cur = np.abs(right / n1 - f2).max()
    before_next = np.append(left[1:], n1) / n1  # F1 just below the next current value
    d_at_ref = max(float((before_next - f2).max()), float(left[0] / n1))
    d = float(min(max(d_at_cur, d_at_ref), 1.0))
    m, n = sorted((float(n1), float(n2)), reverse=True)
    p = float(np.clip(_sps.distributions.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))
    return TestResult(d, p, "ks_2samp")


def wasserstein_sorted(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> float:
    """Wasserstein-1 distance of two sorted, NaN-free samples (not normalised).

    ``W = ∫_0^1 |Q_ref(u) - Q_cur(u)| du`` over the union of both quantile functions'
    breakpoints ``i/n1`` and ``j/n2``, kept as exact integers over ``n1*n2``; equals
    ``scipy.stats.wasserstein_distance`` up to rounding.
    """
    n1, n2 = ref_sorted.size, cur_sorted.size
    if n1 == 0 or n2 == 0:
        raise InvalidParameter("wasserstein_sorted: both samples need at least one value.")
    if n1 == n2:
        return float(np.mean(np.abs(ref_sorted.astype(float) - cur_sorted)))
    # breakpoints u = k / (n1*n2): i*n2 for the reference, j*n1 for the current side
    num = np.concatenate(
        [np.arange(1, n1 + 1, dtype=np.int64) * n2, np.arange(1, n2 + 1, dtype=np.int64) * n1]
    )
    num.sort(kind="stable")  # two sorted runs: timsort merges them in O(n)
    width = np.diff(num, prepend=0)
    i1 = (num + n2 - 1) // n2 - 1  # the reference's quantile index on (u_prev, u]
    i2 = (num + n1 - 1) // n1 - 1
    gaps = np.abs(ref_sorted[i1].astype(float) - cur_sorted[i2])
    return float(np.dot(width, gaps) / (n1 * n2))


# --------------------------------------------------------------------- from histograms


def ks_from_counts(ref_counts: ArrayLike, cur_counts: ArrayLike) -> TestResult:
    """Two-sample KS test from counts on shared ordered bins (profiles, no raw data).

    The statistic is the largest CDF gap at the bin edges, so it is at most the
    exact one (by less than the largest bin share: with 100 quantile bins, about
    0.01); the p-value is the asymptotic ``kstwo`` one at the sample sizes.
    """
    r, c = _pair_counts(ref_counts, cur_counts)
    n1, n2 = r.sum(), c.sum()
    d = float(np.abs(np.cumsum(r) / n1 - np.cumsum(c) / n2).max())
    m, n = sorted((float(n1), float(n2)), reverse=True)
    p = float(np.clip(_sps.distributions.kstwo.sf(d, max(np.round(m * n / (m + n)), 1)), 0, 1))
    return TestResult(d, p, "ks_binned")


def wasserstein_from_counts(
    edges: ArrayLike,
    ref_counts: ArrayLike,
    cur_counts: ArrayLike,
    low: float,
    high: float,
    ref_sums: ArrayLike | None = None,
    cur_sums: ArrayLike | None = None,
) -> float:
    """Wasserstein-1 distance from counts on bins ``(-inf, e1], ..., (ek, inf)``.

    The outer bins are closed at ``low`` and ``high`` (both sides' extremes). With
    each bin's sum of values (``*_sums``), ``∫ F`` over a bin is exact
    (``b·F(b) - a·F(a) - sum/n``), so the distance is exact wherever the two CDFs do
    not cross inside a bin. Without sums each CDF is taken as linear inside a bin
    (good for location shifts, coarse in wide tail bins).
    """
    r, c = _pair_counts(ref_counts, cur_counts)
    e = np.asarray(edges, dtype=float)
    if e.size + 1 != r.size:
        raise InvalidParameter(f"{e.size} edges need {e.size + 1} counts, got {r.size}.")
    points = np.concatenate(
        [[min(low, e[0]) if e.size else low], e, [max(high, e[-1]) if e.size else high]]
    )
    f1 = np.concatenate([[0.0], np.cumsum(r) / r.sum()])
    f2 = np.concatenate([[0.0], np.cumsum(c) / c.sum()])
    gap = f1 - f2
    if ref_sums is not None and cur_sums is not None:
        s1 = np.asarray(ref_sums, dtype=float) / r.sum()
        s2 = np.asarray(cur_sums, dtype=float) / c.sum()
        # ∫_a^b (F1 - F2) dx per bin, from the CDFs at its ends and its value sums
        area = points[1:] * gap[1:] - points[:-1] * gap[:-1] - (s1 - s2)
        return float(np.abs(area).sum())
    widths = np.diff(points)
    # trapezoid of |gap| per bin, exact where the gap keeps its sign inside the bin
    a, b = gap[:-1], gap[1:]
    same = a * b >= 0
    area = np.where(
        same,
        (np.abs(a) + np.abs(b)) / 2,
        (a**2 + b**2) / (2 * np.maximum(np.abs(a) + np.abs(b), 1e-300)),
    )
    return float(np.dot(area, widths))
