"""Statistics shared by progressive delivery (canary gates, A/B tests) and monitoring.

Pure numpy/scipy on array-likes. `modelyard.stats.drift` compares distributions
(PSI, Kolmogorov–Smirnov, chi-square, Wasserstein, Jensen–Shannon);
`modelyard.stats.tests` compares groups (two-proportion z-test, Welch's t-test) and
sizes experiments. Bad input raises `modelyard.core.errors.InvalidParameter`.

Example:
    >>> from modelyard import stats
    >>> stats.two_proportion_ztest(120, 1000, 100, 1000).p_value > 0.05
    True
"""

from __future__ import annotations

from modelyard.stats.drift import (
    chi2_from_counts,
    chi2_two_sample,
    jensen_shannon,
    jensen_shannon_categorical,
    jensen_shannon_from_counts,
    ks_2samp,
    ks_from_counts,
    ks_sorted,
    psi,
    psi_categorical,
    psi_from_counts,
    quantile_edges,
    wasserstein_from_counts,
    wasserstein_normed,
    wasserstein_sorted,
)
from modelyard.stats.tests import (
    MeanDifferenceResult,
    ProportionTestResult,
    TestResult,
    sample_size_two_means,
    sample_size_two_proportions,
    two_proportion_ztest,
    welch_ttest,
)

__all__ = [
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
