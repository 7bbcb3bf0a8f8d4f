"""``modelyard models ...`` run for real (``python -m modelyard.cli.main``) against a
store the SDK filled in the same test: a run with params, metrics, a dataset input
and a minimal model package (a manifest and one file).

``--json`` output and every failure come from a subprocess: JSON is parsed and checked
value by value; failures must exit 1 with ``error: <message>`` on stderr and no
traceback. Tables and messages are read as text from the same app run in-process
(typer's CliRunner, the SDK's store), which keeps the suite quick.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import modelyard as my
from modelyard.cli import Services
from modelyard.cli.main import app
from modelyard.tracking.entities import RunInput

SIGNATURE = {
    "inputs": [{"name": "age", "dtype": "int64"}],
    "outputs": [{"name": "prediction", "dtype": "int64"}],
    "kind": "columns",
}


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelyard.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "250"},
        stdin=subprocess.DEVNULL,
    )


def ok(*args: str) -> str:
    """``modelyard <args>`` in this process (the SDK's store), for tables and messages."""
    result = CliRunner().invoke(
        app, list(args), obj=Services(tracking=my.client), env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


def ok_json(*args: str) -> dict:
    """``modelyard <args> --json`` in a subprocess, parsed."""
    proc = cli(*args, "--json")
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return json.loads(proc.stdout)


def failed(*args: str) -> str:
    """Assert ``modelyard <args>`` fails cleanly; return its stderr."""
    proc = cli(*args)
    assert proc.returncode == 1, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.stderr.startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stdout == ""
    return " ".join(proc.stderr.split())  # rich may wrap long messages


def make_package(folder: Path) -> Path:
    folder.mkdir(parents=True)
    manifest = {"format_version": 1, "flavor": "sklearn", "signature": SIGNATURE}
    (folder / "modelyard-model.yaml").write_text(yaml.safe_dump(manifest))
    (folder / "model.skops").write_bytes(b"not really weights")
    return folder


@pytest.fixture
def run_id(settings_env: dict[str, str], tmp_path: Path) -> str:
    """A finished run with params, metrics, a training dataset and a model package at
    ``model/``; the CLI subprocesses read the same settings."""
    my.configure()
    package = make_package(tmp_path / "build" / "model")
    with my.start_run(experiment="churn-exp", run_name="train-lr") as run:
        my.log_params({"C": 0.5, "penalty": "l2"})
        my.log_metrics({"accuracy": 0.91, "f1": 0.88})
        my.log_artifact(package)
        my.client().log_inputs(
            run.run_id, [RunInput("churn-train", "d1g3st00", "s3://data/churn", "train")]
        )
    return run.run_id


@pytest.fixture
def two_versions(run_id: str) -> str:
    for _ in range(2):
        ok("models", "register", f"runs:/{run_id}/model", "churn")
    return run_id


def test_register_twice_list_and_show(run_id: str) -> None:
    first = ok_json("models", "register", f"runs:/{run_id}/model", "churn", "-d", "baseline")
    assert (first["name"], first["version"], first["run_id"]) == ("churn", 1, run_id)
    assert first["metrics"] == {"accuracy": 0.91, "f1": 0.88}
    assert first["signature"] == SIGNATURE and first["flavor"] == "sklearn"
    out = ok("models", "register", f"runs:/{run_id}/model", "churn")
    assert "Registered churn version 2 (models:/churn/2)" in out

    listed = ok_json("models", "list")["models"]
    assert [m["name"] for m in listed] == ["churn"]
    assert [v["version"] for v in listed[0]["latest_versions"]] == [2]
    table = ok("models", "list")
    assert re.search(r"│ churn\s+│\s+2 │", table), table

    shown = ok_json("models", "show", "churn")
    assert [v["version"] for v in shown["versions"]] == [2, 1]
    assert shown["versions"][1]["description"] == "baseline"
    assert shown["versions"][1]["lineage"][0]["dataset_digest"] == "d1g3st00"
    assert shown["policy"] is None and shown["approvals"] == []
    table = ok("models", "show", "churn")
    assert f"runs:/{run_id}/model" in table and "accuracy=0.91, f1=0.88" in table
    assert "no approval policy" in table

    one = ok("models", "show", "churn", "--version", "1")
    for text in ("churn version 1", "models:/churn/1", "baseline", "d1g3st00", "age", "int64"):
        assert text in one, one
    assert [v["version"] for v in ok_json("models", "show", "churn", "-v", "1")["versions"]] == [1]


def test_alias_history_and_version_at_a_time(two_versions: str) -> None:
    assert "churn@production -> version 1" in ok(
        "models", "alias", "churn", "production", "1", "--reason", "first release"
    )
    moved = ok_json("models", "alias", "churn", "production", "2", "--reason", "better f1")
    assert moved["version"] == 2 and moved["aliases"] == ["production"]
    ok("models", "alias", "churn", "champion", "2")

    periods = ok_json("models", "history", "churn", "--alias", "production")["history"]
    assert [(p["version"], p["reason"]) for p in periods] == [
        (1, "first release"),
        (2, "better f1"),
    ]
    assert periods[0]["ended_at"] == periods[1]["started_at"]
    assert periods[1]["ended_at"] is None

    table = ok("models", "history", "churn", "--alias", "production")
    rows = [line for line in table.splitlines() if "first release" in line or "better f1" in line]
    assert len(rows) == 2
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    assert re.search(rf"│\s+1 │ {stamp} │ {stamp} │ \S+\s+│ first release", rows[0]), rows[0]
    assert re.search(rf"│\s+2 │ {stamp} │ now\s+│ \S+\s+│ better f1", rows[1]), rows[1]
    everything = ok("models", "history", "churn")
    assert "production (alias)" in everything and "champion (alias)" in everything

    def local(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000).isoformat(sep=" ", timespec="milliseconds")

    start1, start2 = periods[0]["started_at"], periods[1]["started_at"]
    between = local((start1 + start2) // 2)
    at = ok_json("models", "history", "churn", "--at", between)
    assert (at["alias"], at["version"]) == ("production", 1)
    assert "churn@production at" in ok("models", "history", "churn", "--at", between)
    iso_utc = datetime.fromtimestamp((start2 + 5) / 1000, UTC).isoformat(timespec="milliseconds")
    assert ok_json("models", "history", "churn", "--at", iso_utc)["version"] == 2
    champion = ok_json("models", "history", "churn", "--alias", "champion")["history"][0]
    assert champion["started_at"] > start2  # set by a later command
    at_champion = ["models", "history", "churn", "--alias", "champion", "--at"]
    assert ok_json(*at_champion, local(champion["started_at"]))["version"] == 2
    assert ok_json(*at_champion, local(start2))["version"] is None
    assert ok_json("models", "history", "churn", "--at", "2001-01-01")["version"] is None
    assert "No version of churn held 'production'" in ok(
        "models", "history", "churn", "--at", "2001-01-01 08:00"
    )

    bad = cli("models", "history", "churn", "--at", "last tuesday")
    assert bad.returncode == 2 and "is not a time" in bad.stderr


def test_policy_refuses_promotion_until_approved(two_versions: str) -> None:
    assert ok_json("models", "policy", "churn")["policy"] is None
    policy = ok_json("models", "policy", "churn", "--approvals", "1")["policy"]
    assert policy["required_approvals"] == 1
    assert policy["protected"] == ["production", "Production"]
    assert "approvals required │ 1" in ok("models", "policy", "churn")

    err = failed("models", "alias", "churn", "production", "2")
    assert "The approval policy of 'churn' refuses version 2 for 'production'" in err
    assert "needs 1 approval(s) and has 0" in err
    err = failed("models", "stage", "churn", "2", "Production")
    assert "refuses version 2 for 'Production'" in err
    ok("models", "alias", "churn", "staging", "2")  # not protected

    approved = ok_json("models", "approve", "churn", "2", "--reason", "offline eval ok")
    assert (approved["decision"], approved["reason"]) == ("approved", "offline eval ok")
    assert "churn@production -> version 2" in ok("models", "alias", "churn", "production", "2")

    assert "rejected by" in ok("models", "reject", "churn", "1", "--reason", "leaks the label")
    err = failed("models", "alias", "churn", "production", "1")
    assert "it is rejected by" in err and "needs 1 approval(s)" in err
    missing_reason = cli("models", "reject", "churn", "1")
    assert missing_reason.returncode == 2 and "--reason" in missing_reason.stderr

    floors = ok_json(
        "models", "policy", "churn", "--floor", "accuracy=0.95", "--protect", "champion"
    )["policy"]
    assert floors == {
        **floors,
        "required_approvals": 0,
        "metric_floors": {"accuracy": 0.95},
        "protected": ["champion"],
    }
    err = failed("models", "alias", "churn", "champion", "2")
    assert "metric 'accuracy' = 0.91 is below its floor 0.95" in err
    bad = cli("models", "policy", "churn", "--floor", "accuracy")
    assert bad.returncode == 2 and "METRIC=NUMBER" in bad.stderr

    shown = ok_json("models", "show", "churn")
    assert [(a["version"], a["decision"]) for a in shown["approvals"]] == [
        (2, "approved"),
        (1, "rejected"),
    ]
    assert "leaks the label" in ok("models", "show", "churn")


def test_rollback_gives_the_alias_back(two_versions: str) -> None:
    ok("models", "alias", "churn", "production", "1")
    ok("models", "alias", "churn", "production", "2")
    out = ok("models", "rollback", "churn", "--reason", "p99 latency doubled")
    assert "churn@production: version 2 -> version 1" in out
    periods = ok_json("models", "history", "churn", "--alias", "production")["history"]
    assert [(p["version"], p["reason"]) for p in periods][-1] == (1, "p99 latency doubled")

    ok("models", "alias", "churn", "champion", "1")
    ok("models", "alias", "churn", "champion", "2")
    assert ok_json("models", "rollback", "churn", "--alias", "champion") == {
        "name": "churn",
        "alias": "champion",
        "from": 2,
        "to": 1,
    }
    # a second rollback goes back to the holder before the current one again
    assert "version 1 -> version 2" in ok("models", "rollback", "churn", "--alias", "champion")
    ok("models", "alias", "churn", "solo", "1")
    assert "nothing to roll back to" in failed("models", "rollback", "churn", "--alias", "solo")
    assert "has no alias 'canary'" in failed("models", "rollback", "churn", "--alias", "canary")


def test_stage_with_archive_existing(two_versions: str) -> None:
    assert "churn version 1 is now in Production" in ok(
        "models", "stage", "churn", "1", "production"
    )
    moved = ok_json("models", "stage", "churn", "2", "Production", "--archive-existing")
    assert moved["stage"] == "Production"
    stages = {v["version"]: v["stage"] for v in ok_json("models", "show", "churn")["versions"]}
    assert stages == {1: "Archived", 2: "Production"}
    periods = ok_json("models", "history", "churn", "--stage", "production")["history"]
    assert [(p["version"], p["ended_at"] is None) for p in periods] == [(1, False), (2, True)]
    assert "in stage Production" in ok("models", "history", "churn", "--stage", "Production")
    assert "Invalid stage 'Live'" in failed("models", "stage", "churn", "1", "Live")


def test_delete_version_reports_removed_aliases_and_delete_model(two_versions: str) -> None:
    ok("models", "alias", "churn", "production", "2")
    ok("models", "alias", "churn", "champion", "2")
    ok("models", "alias", "churn", "old", "1")
    assert "without confirmation: pass --yes" in failed("models", "delete", "churn", "-v", "2")

    out = ok("models", "delete", "churn", "--version", "2", "--yes")
    assert "Deleted churn version 2; aliases removed with it: champion, production" in out
    shown = ok_json("models", "show", "churn")
    assert [v["version"] for v in shown["versions"]] == [1]
    assert shown["model"]["aliases"] == {"old": 1}
    assert ok_json("models", "delete", "churn", "-v", "1", "-y")["aliases_removed"] == ["old"]

    assert "Deleted model churn" in ok("models", "delete", "churn", "--yes")
    assert ok_json("models", "list")["models"] == []
    assert "No registered models." in ok("models", "list")


def test_alias_delete(two_versions: str) -> None:
    ok("models", "alias", "churn", "canary", "2")
    assert "Removed alias churn@canary" in ok("models", "alias", "churn", "canary", "--delete")
    assert ok_json("models", "show", "churn")["model"]["aliases"] == {}
    assert "has no alias 'canary'" in failed("models", "alias", "churn", "canary", "--delete")
    both = cli("models", "alias", "churn", "canary", "2", "--delete")
    assert both.returncode == 2 and "either a VERSION" in both.stderr


def test_errors_are_one_line_without_traceback(run_id: str, tmp_path: Path) -> None:
    assert "not found" in failed("models", "show", "nope").lower()
    with my.start_run(experiment="churn-exp", run_name="no-model") as bare:
        my.log_metric("accuracy", 0.5)
    err = failed("models", "register", f"runs:/{bare.run_id}/model", "churn")
    assert "No model found in run" in err and "modelyard-model.yaml" in err
    assert "No model found in" in failed("models", "register", str(tmp_path), "churn")
    assert "Invalid model name" in failed("models", "register", f"runs:/{run_id}/model", "/bad")

    ok("models", "register", f"runs:/{run_id}/model", "churn")
    for args in (
        ("models", "alias", "churn", "production", "9"),
        ("models", "stage", "churn", "9", "Staging"),
        ("models", "approve", "churn", "9"),
        ("models", "show", "churn", "--version", "9"),
        ("models", "delete", "churn", "--version", "9", "--yes"),
    ):
        assert "9" in failed(*args)
    assert "reserved" in failed("models", "alias", "churn", "latest", "1")


def test_register_from_a_folder_path(settings_env: dict[str, str], tmp_path: Path) -> None:
    folder = make_package(tmp_path / "exported")
    made = ok_json("models", "register", str(folder), "fraud", "--description", "from disk")
    assert (made["version"], made["run_id"], made["source"]) == (1, None, str(folder))
    assert made["signature"] == SIGNATURE


def test_in_process_with_injected_services(two_versions: str) -> None:
    """The sub-app reaches the registry through the Services object on the context."""
    runner = CliRunner()
    obj = Services(tracking=my.client)
    result = runner.invoke(app, ["models", "show", "churn", "--json"], obj=obj)
    assert result.exit_code == 0, result.output
    assert [v["version"] for v in json.loads(result.stdout)["versions"]] == [2, 1]
    assert obj.registry.tracking is obj.tracking

    result = runner.invoke(app, ["models", "alias", "churn", "production", "7"], obj=obj)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "7" in result.stderr


def test_models_help_loads_no_store() -> None:
    code = (
        "import sys\n"
        "from modelyard.cli.main import main\n"
        "sys.argv = ['modelyard', 'models', 'history', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "heavy = {'pandas', 'sqlalchemy', 'yaml', 'pydantic_settings', 'fsspec'}\n"
        "print('LOADED', sorted(heavy & set(sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "--at" in proc.stdout and "--alias" in proc.stdout
    assert "LOADED []" in proc.stdout
