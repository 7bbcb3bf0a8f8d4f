"""modelyard.stats: equal to scipy where we delegate, equal to hand computations where
we do the arithmetic, calibrated under no shift, and clear about bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from modelyard import stats
from modelyard.core.errors import InvalidParameter

PUBLIC_NAMES = [
    "MeanDifferenceResult",
    "ProportionTestResult",
    "TestResult",
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
    "sample_size_two_means",
    "sample_size_two_proportions",
    "two_proportion_ztest",
    "wasserstein_from_counts",
    "wasserstein_normed",
    "wasserstein_sorted",
    "welch_ttest",
]


def test_exported_names_are_exactly_the_intended_ones():
    assert sorted(stats.__all__) == PUBLIC_NAMES
    for name in PUBLIC_NAMES:
        assert getattr(stats, name) is not None


# --------------------------------------------------------------------- KS / chi-square


@pytest.mark.parametrize(("n_ref", "n_cur", "shift"), [(50, 80, 0.0), (2000, 1500, 0.1)])
def test_ks_equals_scipy(n_ref, n_cur, shift):
    rng = np.random.default_rng(7)
    ref, cur = rng.normal(size=n_ref), rng.normal(shift, size=n_cur)
    ours, theirs = stats.ks_2samp(ref, cur), sps.ks_2samp(ref, cur)
    assert ours.statistic == theirs.statistic
    assert ours.p_value == theirs.pvalue
    assert ours.method == "ks_2samp"


def test_ks_drops_nans():
    ref = [0.1, 0.5, np.nan, 0.9, 1.3]
    cur = [0.2, np.nan, 0.4, 2.0]
    expected = sps.ks_2samp([0.1, 0.5, 0.9, 1.3], [0.2, 0.4, 2.0])
    assert stats.ks_2samp(ref, cur).p_value == expected.pvalue


def test_chi2_equals_scipy_contingency_on_the_same_table():
    ref = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    cur = ["a"] * 40 + ["b"] * 45 + ["c"] * 10 + ["d"] * 5
    table = np.array([[50, 30, 20, 0], [40, 45, 10, 5]])
    expected = sps.chi2_contingency(table)
    ours = stats.chi2_two_sample(ref, cur)
    assert ours.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(expected.pvalue, rel=1e-12)
    assert stats.chi2_from_counts(table[0], table[1]) == ours


def test_chi2_is_a_two_sample_test_not_goodness_of_fit():
    # Goodness of fit against the reference shares would give 10.0 here (it treats
    # the reference as exact); the contingency test accounts for both samples' noise.
    ref_counts, cur_counts = [60, 40], [50, 50]
    gof = sps.chisquare(cur_counts, f_exp=[60, 40]).statistic
    ours = stats.chi2_from_counts(ref_counts, cur_counts).statistic
    assert gof == pytest.approx(25 / 6)  # (50-60)²/60 + (50-40)²/40 = 1.667 + 2.5
    assert ours == pytest.approx(sps.chi2_contingency([ref_counts, cur_counts]).statistic)
    assert ours < gof


def test_chi2_single_category_is_no_evidence():
    res = stats.chi2_two_sample(["x"] * 10, ["x"] * 3)
    assert (res.statistic, res.p_value) == (0.0, 1.0)


def test_unseen_category_is_flagged():
    rng = np.random.default_rng(3)
    ref = rng.choice(["a", "b", "c"], size=5000)
    cur = np.concatenate([rng.choice(["a", "b", "c"], size=4500), ["new"] * 500])
    assert stats.chi2_two_sample(ref, cur).p_value < 1e-10
    assert stats.psi_categorical(ref, cur) > 0.25
    assert stats.psi_categorical(ref, ref) == 0.0


def test_categorical_missing_values_are_dropped():
    assert stats.psi_categorical(["a", None, "b", float("nan")], ["a", "b"]) == 0.0


# --------------------------------------------------------------------- PSI


def test_psi_matches_hand_computation():
    # reference 1..10, bins=2: the median 5.5 splits (-inf, 5.5] | (5.5, inf)
    #   reference shares: 5/10 = 0.5, 5/10 = 0.5
    #   current 1..8:      5/8 = 0.625, 3/8 = 0.375
    # PSI = (0.625-0.5)·ln(0.625/0.5) + (0.375-0.5)·ln(0.375/0.5)
    #     = 0.125·0.2231435513 + (-0.125)·(-0.2876820725)
    #     = 0.0278929439 + 0.0359602591 = 0.0638532030
    assert stats.psi(range(1, 11), range(1, 9), bins=2) == pytest.approx(0.0638532030, abs=1e-9)


def test_psi_from_counts_floors_empty_bins_at_eps():
    # shares r = (0.5, 0.5), c = (1.0, 0.0 -> eps 1e-4)
    # PSI = (1-0.5)·ln(1/0.5) + (1e-4-0.5)·ln(1e-4/0.5)
    #     = 0.5·0.6931471806 + (-0.4999)·(-8.5171931914)
    #     = 0.3465735903 + 4.2577448764 = 4.6043184667
    assert stats.psi_from_counts([5, 5], [10, 0]) == pytest.approx(4.6043184667, abs=1e-9)


def test_psi_outer_bins_are_open_ended():
    # current values beyond the reference's range land in the outer bins
    ref = np.arange(100.0)
    assert stats.psi(ref, ref + 1000, bins=4) > 5
    assert stats.psi(ref, ref, bins=4) == 0.0


def test_psi_against_itself_is_zero_and_grows_with_a_mean_shift():
    rng = np.random.default_rng(11)
    ref = rng.normal(size=10_000)
    noise = rng.normal(size=10_000)
    assert stats.psi(ref, ref) == 0.0
    values = [stats.psi(ref, noise + shift) for shift in (0.0, 0.2, 0.5, 1.0)]
    assert values == sorted(values)
    assert values[0] < 0.01 < values[1] and values[3] > 0.25


def test_psi_explicit_cut_points():
    # cut points (0, 1): bins (-inf, 0] | (0, 1] | (1, inf)
    assert stats.psi([-1, 0.5, 2], [-1, 0.5, 2], bins=[0.0, 1.0]) == 0.0
    assert stats.quantile_edges(range(1, 11), 2).tolist() == [5.5]


# --------------------------------------------------------------------- distances


def test_wasserstein_normed_is_in_reference_std_units():
    rng = np.random.default_rng(5)
    ref = rng.normal(0, 3, size=20_000)
    value = stats.wasserstein_normed(ref, ref + 1.5)  # shift of half a std
    assert value == pytest.approx(1.5 / np.std(ref))
    assert value == pytest.approx(sps.wasserstein_distance(ref, ref + 1.5) / np.std(ref))


def test_wasserstein_normed_guards_a_constant_reference():
    assert stats.wasserstein_normed([2.0] * 5, [2.0] * 5) == 0.0
    assert stats.wasserstein_normed([2.0] * 5, [2.1] * 5) == pytest.approx(0.1 / 1e-3)


def test_jensen_shannon_is_in_unit_interval_and_symmetric_on_counts():
    assert stats.jensen_shannon_from_counts([1, 0], [0, 1]) == pytest.approx(1.0)
    assert stats.jensen_shannon_from_counts([3, 1], [3, 1]) == 0.0
    assert stats.jensen_shannon_from_counts([3, 1], [1, 3]) == pytest.approx(
        stats.jensen_shannon_from_counts([1, 3], [3, 1])
    )
    rng = np.random.default_rng(2)
    ref = rng.normal(size=5000)
    assert stats.jensen_shannon(ref, ref) == 0.0
    assert 0 < stats.jensen_shannon(ref, ref + 0.5) < stats.jensen_shannon(ref, ref + 2) <= 1
    assert stats.jensen_shannon_categorical(["a", "b"], ["c", "d"]) == pytest.approx(1.0)


# --------------------------------------------------------------------- calibration


def test_ks_false_alarm_rate_without_shift_is_near_alpha():
    rng = np.random.default_rng(2024)
    alarms = sum(
        stats.ks_2samp(rng.normal(size=500), rng.normal(size=500)).p_value < 0.05
        for _ in range(200)
    )
    assert 0.02 <= alarms / 200 <= 0.09


def test_ks_detects_a_fifth_of_a_std_at_ten_thousand_rows():
    rng = np.random.default_rng(9)
    assert stats.ks_2samp(rng.normal(size=10_000), rng.normal(0.2, size=10_000)).p_value < 1e-6


# --------------------------------------------------------------------- A/B tests


def test_two_proportion_ztest_matches_hand_computation():
    # p_a = 120/1000 = 0.12, p_b = 100/1000 = 0.10, pooled p̄ = 220/2000 = 0.11
    # se = sqrt(0.11·0.89·(1/1000 + 1/1000)) = sqrt(0.0001958) = 0.0139928553
    # z = 0.02 / 0.0139928553 = 1.4293008498; two-sided p = 2·(1 - Φ(z)) = 0.1529177819
    # (statsmodels proportions_ztest([120, 100], [1000, 1000]) gives the same pair)
    r = stats.two_proportion_ztest(120, 1000, 100, 1000)
    assert r.statistic == pytest.approx(1.4293008498, abs=1e-9)
    assert r.p_value == pytest.approx(0.1529177819, abs=1e-9)
    assert r.difference == pytest.approx(0.02)
    # unpooled Wald: se = sqrt(0.12·0.88/1000 + 0.10·0.90/1000) = sqrt(0.0001956)
    #              = 0.0139856997; half-width = 1.9599639845·se = 0.0274114820
    low, high = r.confidence_interval(0.95)
    assert low == pytest.approx(0.02 - 0.0274114820, abs=1e-9)
    assert high == pytest.approx(0.02 + 0.0274114820, abs=1e-9)


def test_two_proportion_ztest_one_sided_and_degenerate():
    greater = stats.two_proportion_ztest(120, 1000, 100, 1000, alternative="greater")
    less = stats.two_proportion_ztest(120, 1000, 100, 1000, alternative="less")
    assert greater.p_value == pytest.approx(0.1529177819 / 2, abs=1e-9)
    assert less.p_value == pytest.approx(1 - 0.1529177819 / 2, abs=1e-9)
    # z = (0.5 - 0.4)/sqrt(0.45·0.55·(2/100)) = 0.1/0.0703562364 = 1.4213381091
    assert stats.two_proportion_ztest(50, 100, 40, 100).statistic == pytest.approx(
        1.4213381091, abs=1e-9
    )
    none = stats.two_proportion_ztest(0, 50, 0, 80)
    assert (none.statistic, none.p_value) == (0.0, 1.0)


def test_welch_matches_scipy_including_the_interval():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, size=40), rng.normal(0.5, 3, size=25)
    ours, theirs = stats.welch_ttest(a, b), sps.ttest_ind(a, b, equal_var=False)
    assert ours.statistic == theirs.statistic
    assert ours.p_value == theirs.pvalue
    assert ours.df == pytest.approx(theirs.df)
    assert ours.confidence_interval(0.9) == pytest.approx(tuple(theirs.confidence_interval(0.9)))
    assert ours.difference == pytest.approx(a.mean() - b.mean())


def test_welch_on_constant_samples_does_not_return_nan():
    same = stats.welch_ttest([1.0, 1.0], [1.0, 1.0, 1.0])
    assert (same.statistic, same.p_value) == (0.0, 1.0)
    apart = stats.welch_ttest([1.0, 1.0], [2.0, 2.0])
    assert apart.p_value == 0.0 and apart.statistic == -math.inf


def test_sample_size_matches_the_textbook_value():
    # Fleiss formula without continuity correction, p1 = 0.10, p2 = 0.12, p̄ = 0.11:
    #   z_{0.975}·sqrt(2·0.11·0.89)       = 1.9599640·0.4424929 = 0.8672704
    #   z_{0.80}·sqrt(0.10·0.90+0.12·0.88) = 0.8416212·0.4422669 = 0.3722212
    #   n = (0.8672704 + 0.3722212)² / 0.02² = 1.5363397 / 0.0004 = 3840.85 -> 3841
    assert stats.sample_size_two_proportions(0.10, 0.02) == 3841
    # one-sided needs fewer; more power needs more
    assert stats.sample_size_two_proportions(0.10, 0.02, alternative="greater") < 3841
    assert stats.sample_size_two_proportions(0.10, 0.02, power=0.9) > 3841


# --------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: stats.psi([], [1.0]), "reference is empty"),
        (lambda: stats.ks_2samp([1.0], [np.nan, np.nan]), "0 non-NaN value"),
        (lambda: stats.ks_2samp([[1.0, 2.0]], [1.0]), "expected a 1-D array"),
        (lambda: stats.ks_2samp(["a", "b"], [1.0]), "must be numeric"),
        (lambda: stats.psi([1.0, np.inf], [1.0]), "infinite"),
        (lambda: stats.psi([1.0, 2.0], [1.0], bins=0), "bins must be a positive integer"),
        (lambda: stats.psi_from_counts([1, 2], [1, 2, 3]), "same bins"),
        (lambda: stats.psi_from_counts([0, 0], [1, 2]), "sum to 0"),
        (lambda: stats.chi2_two_sample([], ["a"]), "reference is empty"),
        (lambda: stats.psi_categorical(["a"], [None, np.nan]), "only missing values"),
        (lambda: stats.welch_ttest([1.0], [1.0, 2.0]), "at least 2"),
        (lambda: stats.two_proportion_ztest(1, 0, 1, 10), "n_a is 0"),
        (lambda: stats.two_proportion_ztest(11, 10, 1, 10), "exceeds n_a"),
        (lambda: stats.two_proportion_ztest(-1, 10, 1, 10), "non-negative integer"),
        (lambda: stats.two_proportion_ztest(1, 10, 1, 10, alternative="up"), "alternative"),
        (lambda: stats.sample_size_two_proportions(1.5, 0.02), "p_baseline"),
        (lambda: stats.sample_size_two_proportions(0.99, 0.02), "outside (0, 1)"),
        (lambda: stats.sample_size_two_proportions(0.1, 0), "non-zero"),
        (lambda: stats.sample_size_two_proportions(0.1, 0.02, power=1.0), "power"),
        (lambda: stats.two_proportion_ztest(1, 10, 1, 10).confidence_interval(95), "level"),
    ],
)
def test_bad_input_raises_invalid_parameter_with_a_clear_message(call, message):
    with pytest.raises(InvalidParameter) as info:
        call()
    assert message in str(info.value)
    assert info.value.code == "INVALID_PARAMETER_VALUE"


def test_sample_size_two_means_matches_the_normal_formula():
    from scipy.stats import norm

    z = norm.ppf(0.975) + norm.ppf(0.8)
    assert stats.sample_size_two_means(1.0, 0.1) == math.ceil(2 * z**2 / 0.01) == 1570
    assert stats.sample_size_two_means(2.0, 0.1) == math.ceil(2 * z**2 * 4 / 0.01)
    with pytest.raises(InvalidParameter, match="std must be a positive"):
        stats.sample_size_two_means(0.0, 0.1)
    with pytest.raises(InvalidParameter, match="non-zero"):
        stats.sample_size_two_means(1.0, 0)
