"""``modelyard monitor drift|profile`` on Parquet and CSV files (typer's CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app

runner = CliRunner(env={"COLUMNS": "250"})


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("monitor")
    rng = np.random.default_rng(7)
    n = 4000
    ref = pd.DataFrame(
        {"age": rng.normal(40, 10, n), "plan": rng.choice(["a", "b", "c"], n), "x": rng.random(n)}
    )
    same = pd.DataFrame(
        {"age": rng.normal(40, 10, n), "plan": rng.choice(["a", "b", "c"], n), "x": rng.random(n)}
    )
    shifted = same.assign(age=same["age"] + 5, plan=rng.choice(["a", "b", "c", "d"], n))
    out = {"ref": root / "ref.parquet", "same": root / "same.parquet", "shifted": root / "cur.csv"}
    ref.to_parquet(out["ref"])
    same.to_parquet(out["same"])
    shifted.to_csv(out["shifted"], index=False)
    return out


def test_drift_table_names_the_drifted_columns_and_the_verdict(files):
    result = runner.invoke(app, ["monitor", "drift", str(files["ref"]), str(files["shifted"])])
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    assert "drift" in rows["age"] and "wasserstein" in rows["age"]
    assert "drift" in rows["plan"] and "d" in rows["plan"].split("│")[8]
    assert "ok" in rows["x"]
    assert "DATASET DRIFT: 2 of 3 columns drifted" in result.output


def test_json_and_out_file_and_fail_on_drift(files, tmp_path):
    out = tmp_path / "report.json"
    result = runner.invoke(
        app,
        [
            "monitor",
            "drift",
            str(files["ref"]),
            str(files["shifted"]),
            "--json",
            "--out",
            str(out),
            "--fail-on-drift",
            "--method",
            "numerical=ks,categorical=chi2",
        ],
    )
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc == json.loads(out.read_text())
    methods = {c["column"]: c["method"] for c in doc["columns"]}
    assert methods == {"age": "ks", "plan": "chi2", "x": "ks"}
    assert doc["dataset_drift"] is True and doc["drifted_columns"] == ["age", "plan"]
    calm = runner.invoke(
        app, ["monitor", "drift", str(files["ref"]), str(files["same"]), "--fail-on-drift"]
    )
    assert calm.exit_code == 0 and "no dataset drift" in calm.output


def test_a_saved_profile_stands_in_for_the_reference(files, tmp_path):
    prof = tmp_path / "ref.json"
    saved = runner.invoke(app, ["monitor", "profile", str(files["ref"]), "--out", str(prof)])
    assert saved.exit_code == 0 and "4,000 rows (1 categorical, 2 numerical)" in saved.output
    raw = json.loads(
        runner.invoke(
            app, ["monitor", "drift", str(files["ref"]), str(files["shifted"]), "--json"]
        ).output
    )
    from_profile = json.loads(
        runner.invoke(app, ["monitor", "drift", str(prof), str(files["shifted"]), "--json"]).output
    )
    assert from_profile["drifted_columns"] == raw["drifted_columns"] == ["age", "plan"]
    plan = [c for c in from_profile["columns"] if c["column"] == "plan"][0]
    assert plan["statistic"] == pytest.approx(
        [c for c in raw["columns"] if c["column"] == "plan"][0]["statistic"], rel=1e-12
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "kss"], "Unknown drift method 'kss'"),
        (["--threshold", "a=b"], "--threshold takes a number"),
        (["--drift-share", "0"], "drift_share must be in (0, 1]"),
        (["--method", "numerical="], "--method takes a name or KIND=NAME pairs"),
    ],
)
def test_bad_options_are_clear_errors(files, args, message):
    result = runner.invoke(app, ["monitor", "drift", str(files["ref"]), str(files["same"]), *args])
    assert result.exit_code == 1
    assert message in result.output


def test_missing_and_unreadable_files_are_named(files, tmp_path):
    missing = runner.invoke(
        app, ["monitor", "drift", str(files["ref"]), str(tmp_path / "no.parquet")]
    )
    assert missing.exit_code == 1 and "no.parquet" in missing.output
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet")
    bad = runner.invoke(app, ["monitor", "drift", str(files["ref"]), str(junk)])
    assert bad.exit_code == 1 and "is not readable Parquet" in bad.output
    not_profile = tmp_path / "p.json"
    not_profile.write_text("{}")
    wrong = runner.invoke(app, ["monitor", "drift", str(not_profile), str(files["same"])])
    assert wrong.exit_code == 1 and "Not a modelyard profile" in wrong.output
