"""``modelyard data ...`` end to end: the commands a user types, on real files, a
real folder remote and the test's metadata store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app

ENV = {"COLUMNS": "250"}


def run(*args: str, code: int = 0, env: dict | None = None) -> str:
    result = CliRunner().invoke(app, list(args), env={**ENV, **(env or {})})
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def project(settings_env, tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    return tmp_path


def table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"id": np.arange(n), "x": rng.normal(size=n), "plan": ["a", "b"] * (n // 2)}
    )


def test_add_status_checkout_and_the_noop_readd(project):
    data = project / "data"
    data.mkdir()
    table(100).to_parquet(data / "t.parquet")
    (data / "notes.txt").write_text("v1")
    out = run("data", "add", "data")
    assert "data.yard: 2 file(s)" in out and "2 new object(s)" in out
    assert "unchanged" in run("data", "add", "data") and "nothing to do" in run(
        "data", "add", "data"
    )

    assert "up to date" in run("data", "status")
    (data / "notes.txt").unlink()
    (data / "new.txt").write_text("x")
    out = run("data", "status", "data.yard")
    assert "added 1: new.txt" in out and "removed 1: notes.txt" in out
    doc = json.loads(run("data", "status", "--json"))
    assert doc["data.yard"]["added"] == ["new.txt"] and not doc["data.yard"]["clean"]

    run("data", "checkout", "--force")
    assert sorted(p.name for p in data.iterdir()) == ["notes.txt", "t.parquet"]
    assert (data / "notes.txt").read_text() == "v1"


def test_diff_shows_files_schema_and_row_counts(project):
    data = project / "data"
    data.mkdir()
    table(100).to_parquet(data / "t.parquet")
    run("data", "add", "data")
    shutil.copy(project / "data.yard", project / "v1.yard")
    (data / "t.parquet").unlink()
    table(150, seed=1).assign(extra=1.0).to_parquet(data / "t.parquet")
    run("data", "add", "data")
    out = run("data", "diff", "v1.yard", "data.yard")
    assert "modified" in out and "t.parquet" in out
    assert "100 → 150 rows" in out and "extra" in out and "added" in out
    doc = json.loads(run("data", "diff", "v1.yard", "data.yard", "--json"))
    assert doc["modified"] == ["t.parquet"]
    assert doc["table"]["rows_before"] == 100 and doc["table"]["rows_after"] == 150
    assert {"column": "extra", "change": "added"}.items() <= doc["table"]["columns"][0].items()


def test_push_then_pull_on_another_machine_restores_the_files(project, tmp_path):
    data = project / "data"
    data.mkdir()
    for i in range(30):
        (data / f"f{i}.bin").write_bytes(np.random.default_rng(i).bytes(5_000))
    original = {p.name: p.read_bytes() for p in data.iterdir()}
    run("data", "add", "data")
    remote = str(tmp_path / "remote")
    out = run("data", "push", "--remote", remote)
    assert "data.yard" in out and "Pushed 31 objects" in out  # 30 files + the tree
    assert "up to date" in run("data", "push", "--remote", remote)

    shutil.rmtree(data)
    other_home = {"MODELYARD_HOME": str(tmp_path / "other-home")}
    out = run("data", "pull", "data.yard", "--remote", remote, env=other_home)
    assert "checked out 30 file(s)" in out
    assert {p.name: p.read_bytes() for p in data.iterdir()} == original


def test_register_list_show_lineage_and_gc_dry_run(project):
    data = project / "churn"
    data.mkdir()
    table(200).to_parquet(data / "part.parquet")
    out = run("data", "register", "churn", "churn", "--description", "first")
    assert "churn@1" in out and "200" in out and "plan" in out
    assert "already holds this content" in run("data", "register", "churn", "churn")
    doc = json.loads(run("data", "show", "churn@1", "--json"))
    assert doc["ref"] == "churn@1" and doc["rows"] == 200 and doc["description"] == "first"
    listing = json.loads(run("data", "list", "--json"))
    assert [v["ref"] for v in listing] == ["churn@1"]
    assert "churn@1" in run("data", "list")

    (project / "scratch").mkdir()
    (project / "scratch" / "x.bin").write_bytes(b"\1" * 4096)
    run("data", "add", "scratch")
    (project / "scratch.yard").unlink()
    out = run("data", "gc", "--dry-run")
    assert "would free" in out and "2 object(s)" in out  # the file and its tree
    assert json.loads(run("data", "gc", "--json"))["freed"] >= 4096
    assert "would free 0 B in 0 object(s)" in run("data", "gc", "--dry-run")


def test_lineage_command_names_the_dataset_version(project):
    from sklearn.linear_model import LogisticRegression

    import modelyard as my

    data = project / "churn"
    data.mkdir()
    df = table(200).assign(y=[0, 1] * 100)
    df.to_parquet(data / "part.parquet")
    run("data", "register", "churn", "churn")
    my.configure()
    try:
        with my.start_run(experiment="cli-lineage") as r:
            my.log_input("churn@1", "train")
            model = LogisticRegression().fit(df[["x"]], df.y)
            my.log_model(model, "model", input_example=df[["x"]].head(2))
        my.register_model(f"runs:/{r.run_id}/model", "m")
    finally:
        my.client().store.close()
    out = run("data", "lineage", "models:/m/1")
    assert "churn@1" in out and "train" in out and r.run_id in out
    doc = json.loads(run("data", "lineage", "models:/m/1", "--json"))
    assert doc["inputs"][0]["ref"] == "churn@1" and doc["run_id"] == r.run_id


def test_bad_input_is_a_clear_error_not_a_traceback(project, tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-x.csv"
    outside.write_text("a\n")
    try:
        out = run("data", "add", str(outside), code=1)
    finally:
        outside.unlink()
    assert "outside the repository" in out
    assert "No dataset named 'nope'" in run("data", "show", "nope@1", code=1)
    (project / "d").mkdir()
    (project / "d" / "f").write_text("x")
    run("data", "add", "d")
    assert "MODELYARD_DATA_REMOTE" in run("data", "push", code=1)


def test_validate_a_registered_version_gates_with_exit_codes(project):
    data = project / "churn"
    data.mkdir()
    table(400).to_parquet(data / "part.parquet")
    run("data", "register", "churn", "churn")
    suite = run("data", "infer-suite", "churn@1")
    (project / "suite.yaml").write_text(suite)
    assert "PASSED" in run("data", "validate", "--suite", "suite.yaml", "churn@1")
    (data / "part.parquet").unlink()
    table(400).drop(columns=["plan"]).to_parquet(data / "part.parquet")
    run("data", "register", "churn", "churn")
    out = run("data", "validate", "--suite", "suite.yaml", "churn@2", code=1)
    assert "plan" in out and "FAILED" in out
    assert "No dataset named 'nope'" in run(
        "data", "validate", "--suite", "suite.yaml", "nope@1", code=2
    )


def test_a_corrupted_cache_object_is_fetched_again_from_the_remote_on_checkout(project, tmp_path):
    data = project / "data"
    data.mkdir()
    blobs = {f"f{i}.bin": np.random.default_rng(i).bytes(20_000) for i in range(3)}
    for name, blob in blobs.items():
        (data / name).write_bytes(blob)
    run("data", "add", "data")
    remote = str(tmp_path / "remote")
    doc = json.loads(run("data", "push", "--remote", remote, "--json"))
    assert doc[0]["objects"] == 4 and not doc[0]["noop"]
    shutil.rmtree(data)
    from modelyard.datasets.hashing import hash_bytes

    victim = tmp_path / "home" / "data" / "cache" / hash_bytes(blobs["f1.bin"])[:2]
    victim = victim / hash_bytes(blobs["f1.bin"])[2:]
    victim.chmod(0o644)
    victim.write_bytes(b"\0" * 20_000)  # same size, other bytes: bit rot

    out = run("data", "checkout", code=1)  # no remote: refused, nothing written
    assert "corrupted" in out and not data.exists()
    out = run("data", "checkout", "--remote", remote)
    assert "1 corrupted object(s) fetched again" in out
    assert {p.name: p.read_bytes() for p in data.iterdir()} == blobs
