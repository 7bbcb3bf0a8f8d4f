"""Validation suites: infer from a reference, validate data, every check failing when
its rule is broken (and only then), reports, exit codes, and bad suites."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import typer
import yaml
from typer.testing import CliRunner

from modelyard.cli.data_validate import infer_suite, validate
from modelyard.core.errors import InvalidParameter
from modelyard.datasets import validation
from modelyard.datasets.validation import Suite

runner = CliRunner(env={"COLUMNS": "250"})
app = typer.Typer()
app.command("infer-suite")(infer_suite)
app.command("validate")(validate)

N = 1000
EMAIL = r"^[^@\s]+@[^@\s]+\.[a-z]+$"
FIRST_EMAIL = "user0@example.com"


def reference_frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    return pd.DataFrame(
        {
            "id": np.arange(N),
            "age": rng.integers(18, 100, N),
            "plan": rng.choice(["basic", "pro"], N),
            "email": [f"user{i}@example.com" for i in range(N)],
            "score": rng.uniform(0, 100, N),
            "signup": pd.date_range("2024-01-01", periods=N, freq="h"),
        }
    )


@pytest.fixture(scope="module")
def ref() -> pd.DataFrame:
    return reference_frame()


@pytest.fixture(scope="module")
def ref_path(tmp_path_factory, ref) -> Path:
    path = tmp_path_factory.mktemp("reference") / "ref.parquet"
    ref.to_parquet(path)
    return path


@pytest.fixture(scope="module")
def suite_path(tmp_path_factory, ref_path) -> Path:
    """The suite ``infer-suite`` prints, plus a regex rule (which it never infers)."""
    result = runner.invoke(app, ["infer-suite", str(ref_path)])
    assert result.exit_code == 0, result.output
    suite = Suite.loads(result.stdout)
    suite.columns["email"].regex = EMAIL
    path = tmp_path_factory.mktemp("suite") / "suite.yaml"
    suite.save(path)
    return path


def failing(document: dict) -> set[tuple[str | None, str]]:
    return {(c["column"], c["check"]) for c in document["checks"] if c["status"] == "fail"}


def run_validate(data: Path, suite: Path, *extra: str):
    return runner.invoke(app, ["validate", "--suite", str(suite), str(data), *extra])


# -- infer, then validate the reference itself -------------------------------------------
def test_inferred_suite_has_the_reference_bounds(suite_path):
    data = yaml.safe_load(suite_path.read_text())
    assert data["version"] == 1
    assert data["rows"] == {"min": 500, "max": 1500}
    columns = data["columns"]
    assert columns["age"] == {"type": "int", "nullable": False, "min": 18, "max": 99}
    assert columns["plan"] == {"type": "string", "nullable": False, "allowed": ["basic", "pro"]}
    assert columns["email"]["unique"] is True and "min" not in columns["email"]
    assert columns["id"] == {"type": "int", "nullable": False, "unique": True}  # no range
    assert columns["signup"]["min"] == "2024-01-01T00:00:00"
    assert columns["score"]["type"] == "float" and 0 <= columns["score"]["min"] < 1
    # distribution checks for numbers and categories, not for ids, free text or dates
    assert set(data["distribution"]["reference"]["columns"]) == {"age", "plan", "score"}


def test_reference_passes_its_own_suite(ref_path, suite_path):
    result = run_validate(ref_path, suite_path)
    assert result.exit_code == 0, result.output
    assert "PASSED" in result.output
    as_json = run_validate(ref_path, suite_path, "--json")
    document = json.loads(as_json.stdout)
    assert as_json.exit_code == 0 and document["passed"] is True
    assert failing(document) == set()
    checks = {(c["column"], c["check"]) for c in document["checks"]}
    for expected in [
        (None, "rows"),
        ("age", "type"),
        ("age", "not_null"),
        ("age", "range"),
        ("plan", "allowed"),
        ("email", "unique"),
        ("email", "regex"),
        ("score", "distribution"),
    ]:
        assert expected in checks


# -- each check fails when its rule is broken, and nothing else does ---------------------
def _set(column: str, row: int, value) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        if value is None:
            df[column] = df[column].astype("float64")
        df.loc[row, column] = value
        return df

    return change


def _shift_scores(df: pd.DataFrame) -> pd.DataFrame:
    """Low scores replaced by high ones: inside the range, not the same shape."""
    df = df.copy()
    low = df["score"] < 50
    df.loc[low, "score"] = np.resize(df.loc[~low, "score"].to_numpy(), int(low.sum()))
    return df


CASES = {
    "nulls": (_set("age", 5, None), ("age", "not_null"), ["row 5"]),
    "range": (_set("age", 3, 150), ("age", "range"), [150]),
    "category": (_set("plan", 2, "gold"), ("plan", "allowed"), ["gold"]),
    "uniqueness": (_set("email", 1, FIRST_EMAIL), ("email", "unique"), [FIRST_EMAIL]),
    "regex": (_set("email", 4, "no-at-sign"), ("email", "regex"), ["no-at-sign"]),
    "row count": (lambda df: df.head(400), (None, "rows"), []),
    "missing column": (lambda df: df.drop(columns=["plan"]), ("plan", "exists"), []),
    "type": (lambda df: df.assign(age=df["age"].map("{} years".format)), ("age", "type"), None),
    "distribution": (_shift_scores, ("score", "distribution"), []),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_check_fails_alone_when_broken(case, ref, suite_path, tmp_path):
    change, check, examples = CASES[case]
    data = tmp_path / "data.parquet"
    change(ref).to_parquet(data)
    result = run_validate(data, suite_path, "--json")
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["passed"] is False
    assert failing(document) == {check}
    found = next(c for c in document["checks"] if (c["column"], c["check"]) == check)
    if examples is not None:
        assert found["examples"] == examples
    assert found["message"]


def test_nulls_in_an_int_column_fail_only_not_null(ref, suite_path):
    """pandas stores integers with a missing value as floats: the type still passes."""
    result = validation.validate(_set("age", 5, None)(ref), suite_path)
    assert result.check("age", "type").status == "pass"
    not_null = result.check("age", "not_null")
    assert (not_null.failing, not_null.observed) == (1, 1)


def test_type_mismatch_skips_the_range_and_names_both_types(ref, suite_path):
    result = validation.validate(ref.assign(age=ref["age"].astype(str) + "y"), suite_path)
    type_check = result.check("age", "type")
    assert (type_check.expected, type_check.observed) == ("int", "string")
    assert type_check.examples[:1] == [f"{ref['age'][0]}y"]
    assert result.check("age", "range").status == "skip"
    assert result.check("age", "distribution").status == "skip"


def test_distribution_check_reports_the_method_and_score(ref, suite_path):
    check = validation.validate(_shift_scores(ref), suite_path).check("score", "distribution")
    assert check.details["method"] == "ks"
    assert check.observed < 0.05 and check.expected == "p ≥ 0.05"
    assert "drifted from the reference" in check.message


def test_range_counts_every_value_outside(ref, suite_path):
    df = ref.copy()
    df.loc[[1, 2, 3], "age"] = [5, 120, 130]
    check = validation.validate(df, suite_path).check("age", "range")
    assert check.failing == 3 and check.observed == {"min": 5, "max": 130}
    assert check.examples == [5, 120, 130]


def test_missing_column_is_named_on_the_terminal(ref, suite_path, tmp_path):
    data = tmp_path / "data.parquet"
    ref.drop(columns=["plan"]).to_parquet(data)
    result = run_validate(data, suite_path)
    assert result.exit_code == 1
    line = next(line for line in result.stdout.splitlines() if "exists" in line)
    assert "plan" in line and "FAIL" in line
    assert "column 'plan' is missing from the data" in result.stdout
    assert "FAILED: 1 of" in result.stdout


# -- reports -------------------------------------------------------------------------------
def test_html_and_json_reports_hold_the_failing_checks(ref, suite_path, tmp_path):
    data = tmp_path / "data.parquet"
    _set("plan", 2, "gold")(_set("age", 3, 150)(ref)).to_parquet(data)
    report = tmp_path / "report.html"
    result = run_validate(data, suite_path, "--report", str(report))
    assert result.exit_code == 1
    html = report.read_text()
    assert html.startswith("<!doctype html>") and "<script" not in html and "http" not in html
    fail_rows = [row for row in html.split("<tr") if 'class="fail"' in row]
    assert len(fail_rows) == 2
    assert any("age" in row and "range" in row and "150" in row for row in fail_rows)
    assert any("plan" in row and "allowed" in row and "gold" in row for row in fail_rows)
    twin = json.loads(report.with_suffix(".json").read_text())
    assert failing(twin) == {("age", "range"), ("plan", "allowed")}
    assert twin["rows"] == N and twin["suite"] == str(suite_path)

    only_json = tmp_path / "only.json"
    assert run_validate(data, suite_path, "--report", str(only_json)).exit_code == 1
    assert failing(json.loads(only_json.read_text())) == {("age", "range"), ("plan", "allowed")}
    assert not only_json.with_suffix(".html").exists()


def test_html_escapes_values(ref, suite_path):
    df = _set("plan", 2, "<b>gold</b>")(ref)
    html = validation.to_html(validation.validate(df, suite_path))
    assert "&lt;b&gt;gold&lt;/b&gt;" in html and "<b>gold" not in html


# -- bad suites, bad data: exit code 2 with a clear message ------------------------------
BAD_SUITES = {
    "not yaml": ("columns: {age: [1, 2", "not valid YAML"),
    "not a mapping": ("- age\n- plan\n", "expected a mapping"),
    "unknown key": ("columns:\n  age: {type: int, nullabel: false}\n", "columns.age.nullabel"),
    "unknown type": ("columns:\n  age: {type: integer}\n", "unknown type 'integer'"),
    "bound not a scalar": ("columns:\n  age: {min: [1, 2]}\n", "columns.age.min"),
    "regex RE2 refuses": ("columns:\n  email: {regex: '(?=x)'}\n", "columns.email.regex"),
    "rows reversed": ("rows: {min: 10, max: 5}\n", "rows.max"),
    "future version": ("version: 2\n", "suite version 1, not 2"),
    "drift method": (
        "distribution: {method: kss, reference: ref.json}\n",
        "unknown method 'kss'",
    ),
    "boolean column name": ("columns:\n  yes: {type: int}\n", "quote names"),
}


@pytest.mark.parametrize("case", list(BAD_SUITES))
def test_invalid_suite_is_an_error_with_exit_code_2(case, ref_path, tmp_path):
    text, message = BAD_SUITES[case]
    suite = tmp_path / "suite.yaml"
    suite.write_text(text)
    result = run_validate(ref_path, suite)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_unreadable_data_and_missing_files_exit_2(suite_path, tmp_path):
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    result = run_validate(broken, suite_path)
    assert result.exit_code == 2 and "not readable Parquet" in result.stderr
    result = run_validate(tmp_path / "absent.parquet", suite_path)
    assert result.exit_code == 2 and "no file or folder" in result.stderr
    result = run_validate(broken, tmp_path / "absent.yaml")
    assert result.exit_code == 2 and "No suite at" in result.stderr
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "notes.txt").write_text("hello")
    result = run_validate(mixed, suite_path)
    assert result.exit_code == 2 and "only Parquet files or only CSV files" in result.stderr


def test_missing_reference_file_is_an_error(ref_path, tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text("distribution: {reference: nowhere.json}\n")
    result = run_validate(ref_path, suite)
    assert result.exit_code == 2
    assert "no profile or data at" in result.stderr and "nowhere.json" in result.stderr


# -- inputs, the format, the profile beside the suite ------------------------------------
def test_every_kind_of_input_gives_the_same_result(ref, ref_path, suite_path, tmp_path):
    parts = tmp_path / "parts"
    parts.mkdir()
    ref.iloc[:600].to_parquet(parts / "a.parquet")
    ref.iloc[600:].to_parquet(parts / "b.parquet")
    (parts / "_SUCCESS").write_text("")
    csv = tmp_path / "ref.csv"
    ref.to_csv(csv, index=False)
    csv_parts = tmp_path / "csv_parts"
    csv_parts.mkdir()
    ref.iloc[:500].to_csv(csv_parts / "a.csv", index=False)
    ref.iloc[500:].to_csv(csv_parts / "b.csv", index=False)
    inputs = [ref, pa.Table.from_pandas(ref), ref_path, str(parts), csv, csv_parts]
    for data in inputs:
        result = validation.validate(data, suite_path)
        assert result.passed, (result.data, result.failures)
        assert result.rows == N and len(result.checks) == 23


def test_dump_and_load_round_trip_and_documented_example():
    text = """
version: 1
rows: {min: 900, max: 1100}
strict: true
columns:
  age: {type: int, nullable: false, min: 18, max: 99}
  plan: {type: string, allowed: [basic, pro]}
  email: {type: string, regex: '^[^@]+@[^@]+$', unique: true}
  signup: {type: datetime, min: 2020-01-01}
  "1": {}
"""
    suite = Suite.loads(text)
    assert suite.columns["signup"].min == "2020-01-01"  # YAML's date, kept as ISO text
    assert list(suite.columns) == ["age", "plan", "email", "signup", "1"]
    again = Suite.loads(suite.dumps())
    assert again == suite
    assert "  age: {type: int, nullable: false, min: 18, max: 99}\n" in suite.dumps()


def test_strict_suite_fails_unlisted_columns(ref):
    suite = Suite.loads("strict: true\ncolumns: {id: {}, age: {}, plan: {}, email: {}, score: {}}")
    result = validation.validate(ref, suite)
    assert [(c.column, c.check) for c in result.failures] == [("signup", "unexpected")]


def test_datetime_bounds(ref):
    suite = Suite.loads("columns:\n  signup: {min: '2024-01-02T00:00:00', max: '2024-03-01'}")
    check = validation.validate(ref, suite).check("signup", "range")
    assert check.failing == 24  # the first day, hourly
    assert check.examples[0] == "2024-01-01T00:00:00"
    assert check.observed["max"] == "2024-02-11T15:00:00"


def test_profile_out_keeps_the_reference_beside_the_suite(ref, ref_path, tmp_path):
    folder = tmp_path / "suites"
    folder.mkdir()
    out, profile = folder / "suite.yaml", folder / "ref.profile.json"
    result = runner.invoke(
        app, ["infer-suite", str(ref_path), "--out", str(out), "--profile-out", str(profile)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # the suite went to --out
    assert yaml.safe_load(out.read_text())["distribution"] == {"reference": "ref.profile.json"}
    assert json.loads(profile.read_text())["rows"] == N
    moved = tmp_path / "elsewhere"
    folder.rename(moved)  # the relative path follows the suite's folder
    shifted = validation.validate(_shift_scores(ref), moved / "suite.yaml")
    assert [(c.column, c.check) for c in shifted.failures] == [("score", "distribution")]


def test_infer_options(ref):
    suite = validation.infer_suite(ref, row_tolerance=0.1, max_categories=1, distribution=False)
    assert (suite.rows.min, suite.rows.max) == (900, 1100)
    assert suite.columns["plan"].allowed is None  # two values: more than max_categories
    assert suite.distribution is None
    with pytest.raises(InvalidParameter, match="reference has no column"):
        validation.infer_suite(ref, categorical=["nope"])


def test_public_names():
    assert sorted(validation.__all__) == [
        "CheckResult",
        "ColumnRule",
        "DistributionRule",
        "RowRule",
        "Suite",
        "ValidationResult",
        "infer_suite",
        "to_html",
        "to_json",
        "validate",
        "write_report",
    ]
    for name in validation.__all__:
        assert getattr(validation, name) is not None
