"""modelyard.monitor drift: equal to scipy where scipy defines the statistic, equal to
a hand computation for PSI, calibrated under no shift, sensitive to a small shift on
large samples, the same from profiles as from raw data, and never a crash on bad
input."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats as sps

from modelyard import monitor, stats
from modelyard.core.errors import InvalidParameter


def _comparable(report: monitor.DriftReport) -> dict:
    """The report without its timing."""
    out = report.to_dict()
    del out["seconds"]
    return out


def _categories(counts: dict[str, int], seed: int) -> np.ndarray:
    """A shuffled column holding exactly ``counts``."""
    values = np.repeat(list(counts), list(counts.values())).astype(object)
    np.random.default_rng(seed).shuffle(values)
    return values


# --------------------------------------------------------------------- KS

# below 10,000 per side scipy's exact distribution, above it the asymptotic one;
# (4000, 20000) is asymptotic too, as scipy decides on the larger side
KS_SIZES = [
    (500, 500),
    (800, 1300),
    (9000, 10_000),
    (12_000, 12_000),
    (15_000, 11_000),
    (4000, 20_000),
]


def _ks_samples(n_ref: int, n_cur: int, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n_ref + n_cur)
    ref, cur = rng.normal(size=n_ref), rng.normal(0.03, size=n_cur)
    return (ref.round(1), cur.round(1)) if ties else (ref, cur)


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize(("n_ref", "n_cur"), KS_SIZES)
def test_ks_sorted_equals_scipy(n_ref, n_cur, ties):
    ref, cur = _ks_samples(n_ref, n_cur, ties)
    expected = sps.ks_2samp(ref, cur)
    ours = stats.ks_sorted(np.sort(ref), np.sort(cur))
    assert ours.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(expected.pvalue, rel=1e-9)


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize(("n_ref", "n_cur"), KS_SIZES)
def test_drift_ks_equals_scipy(n_ref, n_cur, ties):
    ref, cur = _ks_samples(n_ref, n_cur, ties)
    expected = sps.ks_2samp(ref, cur)
    col = monitor.drift(pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur}), method="ks").column("x")
    assert col.method == "ks"
    assert col.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert col.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert col.drifted == (expected.pvalue < 0.05)


# --------------------------------------------------------------------- Wasserstein


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize(("n_ref", "n_cur"), [(1000, 1000), (1000, 1337), (7, 40)])
def test_wasserstein_sorted_equals_scipy(n_ref, n_cur, ties):
    rng = np.random.default_rng(n_ref * n_cur)
    ref, cur = rng.normal(size=n_ref), rng.normal(0.3, 1.2, size=n_cur)
    if ties:
        ref, cur = ref.round(1), cur.round(1)
    expected = sps.wasserstein_distance(ref, cur)
    assert stats.wasserstein_sorted(np.sort(ref), np.sort(cur)) == pytest.approx(
        expected, rel=1e-12
    )


def test_drift_wasserstein_is_scipy_distance_over_reference_std():
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(5, 2, size=3000), rng.normal(5.3, 2, size=2100)
    col = monitor.drift(
        pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur}), method="wasserstein"
    ).column("x")
    assert col.method == "wasserstein"
    expected = sps.wasserstein_distance(ref, cur) / np.std(ref)
    assert col.statistic == pytest.approx(expected, rel=1e-12)
    assert col.p_value is None
    assert col.drifted == (expected >= 0.1)


# --------------------------------------------------------------------- categorical


def test_chi2_equals_scipy_contingency_including_an_unseen_category():
    ref_counts = {"a": 120, "b": 80, "c": 50}
    cur_counts = {"a": 100, "b": 90, "c": 40, "new": 20}
    ref = pd.DataFrame({"c": _categories(ref_counts, 1)})
    cur = pd.DataFrame({"c": _categories(cur_counts, 2)})
    col = monitor.drift(ref, cur, method="chi2").column("c")
    expected = sps.chi2_contingency([[120, 80, 50, 0], [100, 90, 40, 20]])
    assert col.method == "chi2"
    assert col.new_categories == ["new"]
    assert col.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert col.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert col.drifted == (expected.pvalue < 0.05)


def test_psi_matches_hand_computation():
    ref = pd.DataFrame({"c": _categories({"a": 50, "b": 30, "c": 20}, 1)})
    cur = pd.DataFrame({"c": _categories({"a": 30, "b": 30, "c": 40}, 2)})
    col = monitor.drift(ref, cur, method="psi").column("c")
    # shares: reference .5 .3 .2, current .3 .3 .4
    hand = (0.3 - 0.5) * math.log(0.3 / 0.5) + 0.0 + (0.4 - 0.2) * math.log(0.4 / 0.2)
    assert col.method == "psi"
    assert col.statistic == pytest.approx(hand, rel=1e-12)
    assert col.drifted  # 0.24 >= 0.1

    # a category the reference never saw: its reference share is floored at 1e-4
    cur = pd.DataFrame({"c": _categories({"a": 30, "b": 30, "c": 30, "d": 10}, 3)})
    col = monitor.drift(ref, cur, method="psi").column("c")
    hand = (
        (0.3 - 0.5) * math.log(0.3 / 0.5)
        + (0.3 - 0.3) * math.log(0.3 / 0.3)
        + (0.3 - 0.2) * math.log(0.3 / 0.2)
        + (0.1 - 1e-4) * math.log(0.1 / 1e-4)
    )
    assert col.statistic == pytest.approx(hand, rel=1e-12)


def test_binary_column_uses_the_z_test_on_the_reference_majority_share():
    ref = pd.DataFrame({"b": _categories({"yes": 300, "no": 200}, 1)})
    cur = pd.DataFrame({"b": _categories({"yes": 250, "no": 250}, 2)})
    col = monitor.drift(ref, cur).column("b")
    expected = stats.two_proportion_ztest(300, 500, 250, 500)
    assert col.method == "z"
    assert col.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert col.p_value == pytest.approx(expected.p_value, rel=1e-12)
    assert col.drifted  # z ≈ 3.2


def test_unseen_category_is_listed_and_a_large_one_drifts():
    ref = pd.DataFrame({"c": _categories({"a": 1000, "b": 600, "c": 400}, 1)})
    few = pd.DataFrame({"c": _categories({"a": 999, "b": 598, "c": 399, "z": 4}, 2)})
    many = pd.DataFrame({"c": _categories({"a": 700, "b": 400, "c": 300, "z": 600}, 3)})
    small = monitor.drift(ref, few).column("c")
    large = monitor.drift(ref, many).column("c")
    assert small.method == large.method == "jensen_shannon"
    assert small.new_categories == large.new_categories == ["z"]
    assert not small.drifted
    assert large.drifted


# --------------------------------------------------------------------- calibration and power


def _no_shift_sample(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """One draw of the distribution both sides share: numbers, five categories, a flag."""
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "c": rng.choice(list("abcde"), size=n, p=[0.3, 0.25, 0.2, 0.15, 0.1]),
            "b": rng.choice(["yes", "no"], size=n, p=[0.7, 0.3]),
        }
    )


def test_no_shift_false_alarm_rate_is_within_alpha_plus_two_points():
    trials, n = 200, 500
    alarms = {"x": 0, "c": 0, "b": 0}
    methods = set()
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        report = monitor.drift(_no_shift_sample(rng, n), _no_shift_sample(rng, n), workers=1)
        methods |= {(c.name, c.method) for c in report.columns}
        for name in report.drifted_columns:
            alarms[name] += 1
    assert methods == {("x", "ks"), ("c", "chi2"), ("b", "z")}
    for name, count in alarms.items():
        assert count / trials <= 0.07, (name, count)


def test_a_fifth_of_a_std_at_ten_thousand_rows_is_detected_and_no_shift_is_not():
    rng = np.random.default_rng(11)
    n = 10_000
    ref = pd.DataFrame({"x": rng.normal(size=n)})
    shifted = pd.DataFrame({"x": rng.normal(0.2, size=n)})
    same = pd.DataFrame({"x": rng.normal(size=n)})

    auto = monitor.drift(ref, shifted).column("x")
    assert auto.method == "wasserstein"
    assert auto.drifted
    assert monitor.drift(ref, shifted, method="ks").column("x").drifted

    quiet = monitor.drift(ref, same).column("x")
    assert quiet.method == "wasserstein"
    assert not quiet.drifted


# --------------------------------------------------------------------- bad input


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(shift, size=n),
            "c": rng.choice(list("abc"), size=n),
        }
    )


def test_empty_current_window_gives_a_message_per_column():
    ref = _frame(300, 1)
    report = monitor.drift(ref, ref.iloc[:0])
    assert report.current_rows == 0
    assert [c.name for c in report.columns] == ["x", "c"]
    for col in report.columns:
        assert col.method is None
        assert not col.drifted
        assert "current window has no values" in col.message
    assert report.evaluated == []
    assert report.share_drifted == 0.0
    assert not report.dataset_drift


@pytest.mark.parametrize("side", ["reference", "current"])
def test_all_null_columns_are_reported_and_the_rest_evaluated(side):
    ref, cur = _frame(400, 1), _frame(400, 2, shift=3.0)
    bad = ref if side == "reference" else cur
    bad["nan"] = np.nan  # float column of NaN
    bad["none"] = None  # object column of None: Arrow's null type
    other = cur if side == "reference" else ref
    other["nan"] = np.random.default_rng(3).normal(size=400)
    other["none"] = np.random.default_rng(4).choice(["p", "q"], size=400)

    report = monitor.drift(ref, cur)
    for name in ("nan", "none"):
        col = report.column(name)
        assert col.method is None
        assert not col.drifted
        assert f"{side}" in col.message
        assert "no values" in col.message
    assert {c.name for c in report.evaluated} == {"x", "c"}
    assert report.drifted_columns == ["x"]
    assert report.share_drifted == 0.5  # of the two evaluated columns, not of four


@pytest.mark.parametrize("with_null", [False, True], ids=["no-nulls", "a-null"])
def test_numbers_in_reference_strings_in_current_is_a_type_mismatch(with_null):
    ref, cur = _frame(300, 1), _frame(300, 2)
    # numeric-looking strings: Arrow would parse them if asked to cast
    cur["x"] = cur["x"].astype(str)
    if with_null:
        cur.loc[0, "x"] = None
    report = monitor.drift(ref, cur)
    col = report.column("x")
    assert col.method is None
    assert "type mismatch" in col.message
    assert "numerical" in col.message
    assert "string" in col.message
    assert [c.name for c in report.evaluated] == ["c"]


def test_column_missing_from_the_current_data_is_reported():
    ref, cur = _frame(300, 1), _frame(300, 2)
    ref["only_ref"] = 1.5
    report = monitor.drift(ref, cur)
    col = report.column("only_ref")
    assert col.method is None
    assert col.message == "column missing from the current data"
    assert [c.name for c in report.evaluated] == ["x", "c"]


def test_column_only_in_the_current_data_is_reported():
    ref, cur = _frame(300, 1), _frame(300, 2)
    cur["only_cur"] = 1.5
    report = monitor.drift(ref, cur)
    col = report.column("only_cur")
    assert col.method is None
    assert col.message == "column only in the current data"
    assert [c.name for c in report.evaluated] == ["x", "c"]


def test_unsupported_reference_column_type_is_reported_and_the_rest_evaluated():
    ref, cur = _frame(300, 1), _frame(300, 2, shift=3.0)
    ref["lists"] = [[1, 2]] * 300
    cur["lists"] = [[3]] * 300
    report = monitor.drift(ref, cur)
    col = report.column("lists")
    assert col.kind == "unsupported"
    assert col.method is None
    assert "list" in col.message
    assert "not monitored" in col.message
    assert report.drifted_columns == ["x"]
    assert report.share_drifted == 0.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "kolmogorov"}, "Unknown drift method 'kolmogorov'"),
        ({"method": {"x": "kolmogorov"}}, "Unknown drift method 'kolmogorov'"),
        ({"drift_share": 0}, "drift_share must be in (0, 1], got 0"),
        ({"drift_share": 1.5}, "drift_share must be in (0, 1], got 1.5"),
        ({"threshold": -0.1}, "thresholds must be positive numbers, got -0.1"),
        ({"threshold": {"ks": -1}}, "thresholds must be positive numbers, got -1"),
        ({"threshold": {"kolmogorov": 0.1}}, "threshold for unknown method 'kolmogorov'"),
    ],
)
def test_bad_arguments_raise_invalid_parameter_naming_the_problem(kwargs, message):
    ref = _frame(50, 1)
    with pytest.raises(InvalidParameter) as info:
        monitor.drift(ref, ref, **kwargs)
    assert message in str(info.value)


# --------------------------------------------------------------------- profiles


def _shifted_pair(n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """x, c and b shift clearly; y and d do not."""
    rng = np.random.default_rng(n)

    def frame(shift: float) -> pd.DataFrame:
        cat_p = [0.5, 0.3, 0.2] if shift == 0 else [0.25, 0.35, 0.4]
        return pd.DataFrame(
            {
                "x": rng.normal(shift, size=n),
                "y": rng.normal(size=n),
                "c": rng.choice(list("abc"), size=n, p=cat_p),
                "d": rng.choice(list("pqrs"), size=n),
                "b": rng.choice(["t", "f"], size=n, p=[0.5 + shift / 5, 0.5 - shift / 5]),
            }
        )

    return frame(0.0), frame(1.0)


@pytest.mark.parametrize("n", [600, 5000], ids=["tests", "distances"])
def test_profile_drift_gives_the_raw_verdicts(n):
    ref, cur = _shifted_pair(n)
    raw = monitor.drift(ref, cur)
    ref_profile = monitor.profile(ref)
    from_profiles = monitor.drift(ref_profile, ref_profile.profile(cur))

    def verdicts(report):
        return {c.name: (c.method, c.drifted) for c in report.columns}

    assert verdicts(from_profiles) == verdicts(raw)
    assert set(raw.drifted_columns) == {"x", "c", "b"}
    expected = {"x": "ks", "c": "chi2", "b": "z"} if n == 600 else {"x": "wasserstein"}
    for name, method in expected.items():
        assert raw.column(name).method == method


@pytest.mark.parametrize(
    "method",
    [
        "psi",
        "jensen_shannon",
        {"numerical": "psi", "categorical": "chi2"},
    ],
    ids=["psi", "jensen_shannon", "chi2"],
)
def test_profile_binned_statistics_equal_the_raw_ones(method):
    ref, cur = _shifted_pair(3000)
    raw = monitor.drift(ref, cur, method=method)
    ref_profile = monitor.profile(ref)
    from_profiles = monitor.drift(ref_profile, ref_profile.profile(cur), method=method)
    for col in raw.columns:
        other = from_profiles.column(col.name)
        assert other.method == col.method
        assert other.statistic == pytest.approx(col.statistic, rel=1e-12, abs=1e-15)
        if col.p_value is not None:
            assert other.p_value == pytest.approx(col.p_value, rel=1e-12, abs=1e-300)
    used = {c.method for c in raw.columns}
    assert used == ({"psi", "chi2"} if isinstance(method, dict) else {method})


def _profile_and_exact(ref: pd.DataFrame, cur: pd.DataFrame, method: str):
    ref_profile = monitor.profile(ref)
    exact = monitor.drift(ref, cur, method=method)
    approx = monitor.drift(ref_profile, ref_profile.profile(cur), method=method)
    return [(exact.column(name), approx.column(name)) for name in ref.columns]


def _tails_and_shifts(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n_ref, n_cur = 20_000, 8000
    ref = pd.DataFrame(
        {
            "normal_shift": rng.normal(size=n_ref),
            "exponential_shift": rng.exponential(size=n_ref),
            "normal_scale": rng.normal(size=n_ref),
            "lognormal_shift": rng.lognormal(size=n_ref),
        }
    )
    cur = pd.DataFrame(
        {
            "normal_shift": rng.normal(0.3, size=n_cur),
            "exponential_shift": rng.exponential(size=n_cur) + 0.3,
            "normal_scale": rng.normal(0, 1.3, size=n_cur),
            "lognormal_shift": rng.lognormal(0.2, size=n_cur),
        }
    )
    return ref, cur


def test_profile_ks_is_within_a_bin_share_of_exact():
    for exact, approx in _profile_and_exact(*_tails_and_shifts(5), "ks"):
        assert exact.method == approx.method == "ks"
        assert abs(approx.statistic - exact.statistic) <= 0.011, exact.name
        assert approx.drifted == exact.drifted


def test_profile_wasserstein_is_within_two_percent_of_exact_for_location_shifts():
    ref, cur = _tails_and_shifts(5)
    cols = ["normal_shift", "exponential_shift"]
    for exact, approx in _profile_and_exact(ref[cols], cur[cols], "wasserstein"):
        assert exact.method == approx.method == "wasserstein"
        assert approx.statistic == pytest.approx(exact.statistic, rel=0.02), exact.name
        assert approx.drifted == exact.drifted


def test_profile_wasserstein_is_within_two_percent_of_exact_for_scale_and_tail_changes():
    ref, cur = _tails_and_shifts(5)
    cols = ["normal_scale", "lognormal_shift"]
    for exact, approx in _profile_and_exact(ref[cols], cur[cols], "wasserstein"):
        assert approx.statistic == pytest.approx(exact.statistic, rel=0.02), exact.name


def test_profile_save_and_load_round_trip(tmp_path):
    ref, cur = _shifted_pair(2000)
    ref_profile = monitor.profile(ref)
    window = ref_profile.profile(cur)
    ref_profile.save(tmp_path / "ref.json")
    window.save(tmp_path / "window.json")
    ref_loaded = monitor.DatasetProfile.load(tmp_path / "ref.json")
    window_loaded = monitor.DatasetProfile.load(tmp_path / "window.json")
    assert ref_loaded.to_dict() == ref_profile.to_dict()
    assert window_loaded.to_dict() == window.to_dict()
    assert not window_loaded.reference
    before = monitor.drift(ref_profile, window)
    after = monitor.drift(ref_loaded, window_loaded)
    assert _comparable(after) == _comparable(before)
    assert after.drifted_columns  # the comparison is of real verdicts


def test_merged_window_profiles_equal_the_profile_of_the_concatenated_window():
    ref, cur = _shifted_pair(3000)
    first, second = cur.iloc[:1700].copy(), cur.iloc[1700:].copy()
    first.loc[first.index[:5], "x"] = np.nan
    second.loc[second.index[:9], "c"] = None
    ref_profile = monitor.profile(ref)
    merged = ref_profile.profile(first).merge(ref_profile.profile(second))
    whole = ref_profile.profile(pd.concat([first, second]))
    assert merged.rows == whole.rows == 3000
    assert set(merged.columns) == set(whole.columns)
    for name, w in whole.columns.items():
        m = merged.columns[name]
        assert (m.kind, m.count, m.missing) == (w.kind, w.count, w.missing)
        if w.kind == "numerical":
            assert m.counts == w.counts
            assert m.edges == w.edges
            assert (m.min, m.max) == (w.min, w.max)
            assert m.mean == pytest.approx(w.mean, rel=1e-9)
            assert m.std == pytest.approx(w.std, rel=1e-9)
        else:
            assert m.categories == w.categories
            assert m.other == w.other
    assert merged.columns["x"].missing == 5
    assert merged.columns["c"].missing == 9


def test_profiling_a_string_window_against_a_numerical_reference_gives_a_message():
    ref, cur = _frame(300, 1), _frame(300, 2)
    cur["x"] = cur["x"].astype(str)
    ref_profile = monitor.profile(ref)
    window = ref_profile.profile(cur)
    assert "expected numbers" in window.columns["x"].message
    report = monitor.drift(ref_profile, window)
    col = report.column("x")
    assert col.method is None
    assert "expected numbers" in col.message
    assert "string" in col.message
    assert [c.name for c in report.evaluated] == ["c"]


# --------------------------------------------------------------------- inputs


def test_parquet_path_and_arrow_table_give_the_dataframe_report(tmp_path):
    ref, cur = _shifted_pair(1500)
    pq.write_table(pa.Table.from_pandas(ref, preserve_index=False), tmp_path / "ref.parquet")
    pq.write_table(pa.Table.from_pandas(cur, preserve_index=False), tmp_path / "cur.parquet")
    expected = _comparable(monitor.drift(ref, cur))
    from_files = monitor.drift(tmp_path / "ref.parquet", str(tmp_path / "cur.parquet"))
    from_tables = monitor.drift(
        pa.Table.from_pandas(ref, preserve_index=False),
        pa.Table.from_pandas(cur, preserve_index=False),
    )
    assert _comparable(from_files) == expected
    assert _comparable(from_tables) == expected
    assert expected["drifted_columns"]


def test_integer_columns_with_few_values_are_categorical_and_categorical_forces_it():
    rng = np.random.default_rng(2)
    ref = pd.DataFrame({"five": rng.integers(0, 5, size=800), "six": rng.integers(0, 6, size=800)})
    cur = pd.DataFrame({"five": rng.integers(0, 5, size=800), "six": rng.integers(0, 6, size=800)})
    report = monitor.drift(ref, cur)
    assert report.column("five").kind == "categorical"
    assert report.column("five").method == "chi2"
    assert report.column("six").kind == "numerical"
    assert report.column("six").method == "ks"
    forced = monitor.drift(ref, cur, categorical=["six"]).column("six")
    assert forced.kind == "categorical"
    assert forced.method == "chi2"
    assert set(forced.reference.categories) == {"0", "1", "2", "3", "4", "5"}


def test_integer_codes_match_the_float_codes_of_a_window_with_a_missing_value():
    # pandas stores integer codes as floats once a value is missing
    rng = np.random.default_rng(4)
    ref = pd.DataFrame({"code": rng.integers(0, 3, size=500)})
    cur = pd.DataFrame({"code": rng.integers(0, 3, size=500).astype(float)})
    cur.loc[0, "code"] = np.nan
    col = monitor.drift(ref, cur).column("code")
    assert col.kind == "categorical"
    assert col.new_categories == []
    assert not col.drifted
    assert col.current.missing == 1


def test_missing_path_raises_with_the_path(tmp_path):
    path = tmp_path / "nowhere" / "ref.parquet"
    with pytest.raises(InvalidParameter) as info:
        monitor.drift(path, _frame(10, 1))
    assert str(path) in str(info.value)


# --------------------------------------------------------------------- the report


def test_dataset_drift_flips_at_drift_share():
    ref = _frame(400, 1).assign(y=0.0, z=0.0)
    cur = _frame(400, 2, shift=3.0).assign(y=0.0, z=0.0)
    rng = np.random.default_rng(9)
    ref["y"], cur["y"] = rng.normal(size=400), rng.normal(size=400)
    ref["z"], cur["z"] = rng.normal(size=400), rng.normal(size=400)
    at = monitor.drift(ref, cur, drift_share=0.25)
    assert at.drifted_columns == ["x"]
    assert at.share_drifted == 0.25
    assert at.dataset_drift
    assert not monitor.drift(ref, cur, drift_share=0.26).dataset_drift


def test_report_to_dict_is_json_and_to_frame_has_a_row_per_column():
    ref, cur = _shifted_pair(600)
    cur["d"] = cur["d"].where(cur["d"] != "p", "new")
    report = monitor.drift(ref, cur)
    decoded = orjson.loads(orjson.dumps(report.to_dict()))
    assert decoded["drifted_columns"] == report.drifted_columns
    assert decoded["dataset_drift"] == report.dataset_drift
    assert [c["column"] for c in decoded["columns"]] == ["x", "y", "c", "d", "b"]
    assert decoded["columns"][3]["new_categories"] == ["new"]
    with_profiles = orjson.loads(orjson.dumps(report.to_dict(profiles=True)))
    assert with_profiles["columns"][0]["reference"]["count"] == 600

    frame = report.to_frame()
    assert len(frame) == len(report.columns) == 5
    assert list(frame["column"]) == ["x", "y", "c", "d", "b"]
    assert list(frame["drifted"]) == [c.drifted for c in report.columns]


def test_jensen_shannon_uses_the_natural_log_like_scipy_and_evidently():
    from scipy.spatial.distance import jensenshannon

    ref = pd.DataFrame({"c": ["a"] * 700 + ["b"] * 200 + ["c"] * 300})
    cur = pd.DataFrame({"c": ["a"] * 500 + ["b"] * 300 + ["c"] * 400})
    col = monitor.drift(ref, cur).column("c")
    assert col.method == "jensen_shannon"
    expected = jensenshannon(np.array([700, 200, 300]) / 1200, np.array([500, 300, 400]) / 1200)
    assert col.statistic == pytest.approx(expected, rel=1e-12)
