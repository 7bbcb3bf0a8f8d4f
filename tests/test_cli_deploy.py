"""``modelyard deploy ...`` and ``modelyard gateway`` against a real SQLite store.

The churn model (versions 1-3) is trained and registered once per module; each test
gets its own copy of that database (SQLite's backup API), so deployments never leak
between tests. The ``deploy`` commands run in-process (typer's CliRunner, the SDK's
store); the gateway runs as a real ``python -m modelyard.cli.main gateway``
subprocess on a free loopback port and is called over HTTP.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sqlalchemy import update
from typer.testing import CliRunner

import modelyard as my
from infra.model_server import FEATURES, TrainedModels, build_models, server_env
from infra.ports import free_port
from modelyard.cli import deploy as deploy_cli
from modelyard.cli.main import app
from modelyard.core.ids import now_ms
from modelyard.core.store import schema as t
from modelyard.deploy.service import DeploymentService
from modelyard.sdk.deploy import deployment_service


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedModels:
    """churn v1 (alias production), v2 and v3 — three different logistic regressions."""
    models = build_models(tmp_path_factory.mktemp("deploy-cli"))
    y = (models.frame.f0 + 0.5 * models.frame.f1 - models.frame.f2 > 0).astype("int64")
    for c in (0.05, 0.01):
        with my.start_run(experiment="serving-tests"):
            fitted = LogisticRegression(C=c, max_iter=1000).fit(models.frame, y)
            my.log_model(
                fitted, "model", input_example=models.frame.head(3), registered_model_name="churn"
            )
    return models


@pytest.fixture
def settings(trained: TrainedModels, tmp_path: Path) -> dict[str, str]:
    """A copy of the module's store for this test, configured for the SDK; the
    settings a subprocess needs to open the same store."""
    source = Path(trained.settings["MODELYARD_DB_URL"].removeprefix("sqlite:///"))
    target = tmp_path / "modelyard.db"
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    out = {
        "MODELYARD_HOME": str(tmp_path / "home"),
        "MODELYARD_DB_URL": f"sqlite:///{target}",
        "MODELYARD_ARTIFACTS": trained.settings["MODELYARD_ARTIFACTS"],
    }
    my.configure(
        home=out["MODELYARD_HOME"],
        db_url=out["MODELYARD_DB_URL"],
        artifacts=out["MODELYARD_ARTIFACTS"],
    )
    return out


@pytest.fixture
def svc(settings: dict[str, str]) -> DeploymentService:
    return deployment_service()


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})


def ok(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


def failed(*args: str) -> str:
    """Assert ``modelyard <args>`` fails with ``error: ...`` and exit 1; the message."""
    result = invoke(*args)
    assert result.exit_code == 1, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return " ".join(result.stderr.split())  # rich may wrap long messages


def snapshot(svc: DeploymentService, name: str) -> tuple[dict, int]:
    """The stored state and the number of audit events: what must not change."""
    dep = svc.get(name)
    return dep.state_dict() | {"revision": dep.revision}, len(svc.history(name))


def _row(table: str, first: str) -> list[str]:
    """The cells of the table row whose first cell is ``first``."""
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in:\n{table}")


# -- create, list, status -------------------------------------------------------------
def test_create_list_status_and_json(svc: DeploymentService) -> None:
    out = ok("deploy", "create", "churn", "models:/churn@production")
    assert out.strip() == "Created deployment churn: stable models:/churn/1 (v1) 100%"
    out = ok(
        "deploy", "create", "duo", "--variant", "a=models:/churn/1:70", "--variant",
        "b=models:/churn/2:30",
    )  # fmt: skip
    assert "a models:/churn/1 (v1) 70%, b models:/churn/2 (v2) 30%" in out
    stored = svc.get("duo")
    assert [(v.name, v.uri, v.version, v.weight) for v in stored.variants] == [
        ("a", "models:/churn/1", "1", 70.0),
        ("b", "models:/churn/2", "2", 30.0),
    ]

    assert "Deployment 'churn' already exists" in failed(
        "deploy", "create", "churn", "models:/churn/2"
    )
    assert "Give either a model URI or variants" in failed(
        "deploy", "create", "both", "models:/churn/1", "--variant", "a=models:/churn/1:100"
    )
    assert "Invalid deployment name '-x'" in failed("deploy", "create", "--", "-x", "models:/a/1")
    assert [d.name for d in svc.list()] == ["churn", "duo"]

    table = ok("deploy", "list")
    assert re.search(r"│ churn\s+│ single\s+│ stable\s+│ stable models:/churn/1 \(v1\) 100%", table)
    assert re.search(r"│ duo\s+│ single\s+│ stable\s+│ a models:/churn/1 \(v1\) 70%", table)
    listed = json.loads(ok("deploy", "list", "--json"))["deployments"]
    assert [(d["name"], d["revision"], d["live"]) for d in listed] == [
        ("churn", 1, None),
        ("duo", 1, None),
    ]

    status = ok("deploy", "status", "churn")
    assert _row(status, "stable")[:5] == ["stable", "stable", "1", "models:/churn/1", "100%"]
    assert "not running (never seen) — start it: modelyard gateway churn" in status
    assert "no rollout yet" in status
    document = json.loads(ok("deploy", "status", "churn", "--json"))
    assert document == json.loads(json.dumps(svc.get("churn").to_dict()))
    assert document["strategy"] == "single" and document["rollout"] is None
    assert document["variants"][0]["uri"] == "models:/churn/1"

    assert "Deployment 'nope' not found (create it: modelyard deploy create nope URI)" in failed(
        "deploy", "status", "nope"
    )


# -- canary ---------------------------------------------------------------------------
def test_canary_is_stored_with_its_plan_and_gates(svc: DeploymentService) -> None:
    ok("deploy", "create", "churn", "models:/churn/1")
    out = ok(
        "deploy", "canary", "churn", "--candidate", "models:/churn/2", "--steps", "10,50",
        "--step-duration", "500ms", "--min-requests", "20", "--max-error-rate", "0.05",
        "--max-p99-ms", "250", "--max-latency-ratio", "1.5", "--max-prediction-drift", "0.2",
        "--max-feedback-drop", "0.03", "--min-feedback", "30",
    )  # fmt: skip
    assert "Canary of models:/churn/2 on churn started: 10% → 50% → 100%" in out
    assert "each step at least 0.5s" in out and "modelyard gateway churn" in out
    dep = svc.get("churn")
    r = dep.rollout
    assert r is not None and (r.strategy, r.status) == ("canary", "running")
    assert (r.steps, r.step, r.step_seconds, r.promote_alias) == (
        [10.0, 50.0, 100.0],
        0,
        0.5,
        "production",
    )
    assert r.gates.to_dict() == {
        "min_requests": 20,
        "max_error_rate": 0.05,
        "max_p99_ms": 250.0,
        "max_latency_ratio": 1.5,
        "max_prediction_drift": 0.2,
        "max_feedback_drop": 0.03,
        "min_feedback": 30,
    }
    assert dep.weights() == {"stable": 90.0, "candidate": 10.0}

    status = ok("deploy", "status", "churn")
    assert _row(status, "candidate")[:5] == [
        "candidate", "candidate", "2", "models:/churn/2", "10%",
    ]  # fmt: skip
    assert "1/3 at 10% (each step at least 0.5s; plan 10% → 50% → 100%)" in status
    assert "≥ 20 candidate requests, error rate ≤ 0.05, p99 ms ≤ 250" in status


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--candidate", "models:/churn/2", "--steps", "50,25"],
            "Canary steps must be increasing percentages in (0, 100], got [50.0, 25.0]",
        ),
        (
            ["--candidate", "models:/churn/2", "--steps", "0,50"],
            "Canary steps must be increasing percentages in (0, 100], got [0.0, 50.0]",
        ),
        (["--candidate", "models:/churn/99"], "Model 'churn' has no version 99"),
        (["--candidate", "models:/nope/1"], "nope"),
        (
            ["--candidate", "models:/churn@production"],
            "models:/churn/1 is already the stable version of 'churn': nothing to canary",
        ),
    ],
)
def test_canary_validation_errors_change_nothing(
    svc: DeploymentService, args: list[str], message: str
) -> None:
    ok("deploy", "create", "churn", "models:/churn/1")
    before = snapshot(svc, "churn")
    assert message in failed("deploy", "canary", "churn", *args)
    assert snapshot(svc, "churn") == before


def test_a_second_rollout_while_one_runs_is_refused(svc: DeploymentService) -> None:
    ok("deploy", "create", "churn", "models:/churn/1")
    ok("deploy", "canary", "churn", "--candidate", "models:/churn/2")
    running = svc.get("churn").rollout
    assert running is not None
    before = snapshot(svc, "churn")
    expected = (
        f"Deployment 'churn' already has a canary rollout running (id {running.id[:8]}, "
        "status running); promote or roll it back first"
    )
    assert expected in failed("deploy", "canary", "churn", "--candidate", "models:/churn/3")
    assert expected in failed("deploy", "shadow", "churn", "--candidate", "models:/churn/3")
    assert expected in failed(
        "deploy", "ab", "churn", "--variant", "a=models:/churn/1:50", "--variant",
        "b=models:/churn/3:50",
    )  # fmt: skip
    assert snapshot(svc, "churn") == before


def test_unparsable_durations_and_steps_are_usage_errors(svc: DeploymentService) -> None:
    ok("deploy", "create", "churn", "models:/churn/1")
    before = snapshot(svc, "churn")
    for option, value, message in (
        ("--step-duration", "soon", "'soon' is not a duration; expected e.g. 500ms, 30s, 2m"),
        ("--steps", "5,x", "'5,x' is not a list of percentages"),
    ):
        result = invoke(
            "deploy", "canary", "churn", "--candidate", "models:/churn/2", option, value
        )
        assert result.exit_code == 2
        assert message in " ".join(result.stderr.replace("│", " ").split())
    assert snapshot(svc, "churn") == before


def test_durations_accept_units_and_plain_seconds() -> None:
    assert deploy_cli.parse_duration("500ms") == 0.5
    assert deploy_cli.parse_duration("30s") == 30.0
    assert deploy_cli.parse_duration("2m") == 120.0
    assert deploy_cli.parse_duration("1.5h") == 5400.0
    assert deploy_cli.parse_duration("90") == 90.0
    assert deploy_cli.parse_steps("5%, 25,50 ,100") == [5.0, 25.0, 50.0, 100.0]


def test_a_policy_that_would_refuse_the_promotion_stops_the_canary_unless_no_promote(
    svc: DeploymentService,
) -> None:
    ok("deploy", "create", "churn", "models:/churn/1")
    svc.registry.set_policy("churn", required_approvals=1)
    before = snapshot(svc, "churn")
    message = failed("deploy", "canary", "churn", "--candidate", "models:/churn/2")
    assert "Version 2 of 'churn' could not take 'production' at the end of the rollout" in message
    assert "or pass --no-promote" in message
    assert snapshot(svc, "churn") == before

    ok("deploy", "canary", "churn", "--candidate", "models:/churn/2", "--no-promote")
    r = svc.get("churn").rollout
    assert r is not None and r.status == "running" and r.promote_alias is None
    assert "promotes to" not in ok("deploy", "status", "churn")


# -- A/B ---------------------------------------------------------------------------
def test_ab_weights_must_sum_to_100_and_need_two_variants(svc: DeploymentService) -> None:
    ok("deploy", "create", "churn", "models:/churn/1")
    before = snapshot(svc, "churn")
    assert "Weights must sum to 100, these sum to 90: 60, 30" in failed(
        "deploy", "ab", "churn", "--variant", "a=models:/churn/1:60", "--variant",
        "b=models:/churn/2:30",
    )  # fmt: skip
    assert "An A/B test needs at least two variants" in failed(
        "deploy", "ab", "churn", "--variant", "a=models:/churn/1:100"
    )
    assert "Give a variant as NAME=URI:WEIGHT, not 'models:/churn/2'" in failed(
        "deploy", "ab", "churn", "--variant", "a=models:/churn/1:50", "--variant",
        "models:/churn/2",
    )  # fmt: skip
    assert snapshot(svc, "churn") == before

    out = ok(
        "deploy", "ab", "churn", "--variant", "a=models:/churn/1:50", "--variant",
        "b=models:/churn/2:50", "--key-header", "X-User",
    )  # fmt: skip
    assert "A/B test on churn started: a models:/churn/1 50%, b models:/churn/2 50%" in out
    r = svc.get("churn").rollout
    assert r is not None and (r.strategy, r.arms, r.key_header) == ("ab", ["a", "b"], "x-user")


def _outcomes(svc: DeploymentService, variant: str, version: str, ones: int, n: int) -> None:
    at = now_ms()
    for i in range(n):
        svc.store.add_feedback(
            {
                "request_id": f"{variant}-{i}",
                "model": "churn",
                "variant": variant,
                "version": version,
                "prediction": [1],
                "predicted_at": at,
                "label": None,
                "reward": 1.0 if i < ones else 0.0,
            }
        )


def test_report_on_an_ab_test_shows_the_table_and_the_verdict(svc: DeploymentService) -> None:
    ok("deploy", "create", "churn", "models:/churn/1")
    ok(
        "deploy", "ab", "churn", "--variant", "a=models:/churn/1:50", "--variant",
        "b=models:/churn/2:50",
    )  # fmt: skip
    empty = ok("deploy", "report", "churn")
    assert "no outcomes yet" in empty and _row(empty, "a")[:3] == ["a", "0", ""]

    _outcomes(svc, "a", "1", ones=200, n=400)  # 50%
    _outcomes(svc, "b", "2", ones=280, n=400)  # 70%
    out = ok("deploy", "report", "churn", "--mde", "0.1")
    assert "A/B test of churn (outcome: rate)" in out
    a, b = _row(out, "a"), _row(out, "b")
    assert a[:2] == ["a", "400"] and a[2].startswith("0.5 [") and a[3] == "control"
    assert b[:2] == ["b", "400"] and b[2].startswith("0.7 [") and b[3].startswith("+0.2 [")
    assert float(b[4]) < 1e-6 and b[5] == "yes"
    assert "b wins (significant at alpha=0.05 with 1 comparison(s))" in out
    assert "promote it: modelyard deploy promote churn --variant b" in out
    document = json.loads(ok("deploy", "report", "churn", "--mde", "0.1", "--json"))
    assert (document["winner"], document["control"], document["kind"]) == ("b", "a", "rate")
    assert [(arm["variant"], arm["n"]) for arm in document["arms"]] == [("a", 400), ("b", 400)]
    required = document["required_per_arm"]
    assert 300 < required < 400

    # The default effect (2 points) needs far more outcomes than 400 per arm.
    short = ok("deploy", "report", "churn")
    assert re.search(r"keep collecting: \d+ outcomes per arm needed for power 0.8", short)
    assert _row(short, "b")[5] == "no"


def test_report_needs_an_ab_test_or_a_shadow(svc: DeploymentService) -> None:
    ok("deploy", "create", "churn", "models:/churn/1")
    assert (
        "Deployment 'churn' has no rollout: a report needs an A/B test (modelyard deploy ab) "
        "or a shadow rollout (modelyard deploy shadow)"
    ) in failed("deploy", "report", "churn")
    ok("deploy", "canary", "churn", "--candidate", "models:/churn/2")
    assert "Deployment 'churn' has a canary rollout: a report needs" in failed(
        "deploy", "report", "churn"
    )


# -- promote, rollback, history ----------------------------------------------------------
def test_promote_and_rollback_record_their_reasons(svc: DeploymentService) -> None:
    ok("deploy", "create", "churn", "models:/churn/1")
    assert "has no rollout in progress" in failed("deploy", "rollback", "churn")

    ok("deploy", "canary", "churn", "--candidate", "models:/churn/2")
    out = ok("deploy", "rollback", "churn", "--reason", "p99 too high in eu-west")
    assert out.strip() == (
        "Rolled back churn: models:/churn/1 (v1) serves 100%; reason: p99 too high in eu-west"
    )
    dep = svc.get("churn")
    assert dep.rollout is not None and dep.rollout.status == "rolled_back"
    assert dep.weights() == {"stable": 100.0}

    ok("deploy", "canary", "churn", "--candidate", "models:/churn/3")
    out = ok("deploy", "promote", "churn", "-r", "looks good on the dashboards")
    assert out.strip() == (
        "Promoted on churn: models:/churn/3 (v3) serves 100%; reason: looks good on the dashboards"
    )
    dep = svc.get("churn")
    assert dep.rollout is not None and dep.rollout.status == "succeeded"
    assert [(v.name, v.uri) for v in dep.variants] == [("stable", "models:/churn/3")]
    assert svc.registry.resolve("models:/churn@production").version == 3

    history = ok("deploy", "history", "churn")
    actions = [line.split("│")[3].strip() for line in history.splitlines() if "│ 20" in line]
    assert actions == [
        "deployment.created",
        "rollout.canary.started",
        "rollout.rolled_back",
        "rollout.canary.started",
        "rollout.promoted",
    ]
    flat = " ".join(history.replace("│", " ").split())
    assert "rollout.rolled_back p99 too high in eu-west" in flat
    assert "weights before: candidate 5%, stable 95%" in flat
    assert "rollout.promoted looks good on the dashboards" in flat
    assert "variants: stable=models:/churn/1 100%" in flat
    assert "steps: 5% → 25% → 50% → 100%" in flat
    events = json.loads(ok("deploy", "history", "churn", "--json"))["events"]
    assert [e["after"].get("reason") for e in events] == [
        None,
        None,
        "p99 too high in eu-west",
        None,
        "looks good on the dashboards",
    ]


def test_a_promotion_the_policy_refuses_changes_nothing(svc: DeploymentService) -> None:
    ok("deploy", "create", "churn", "models:/churn/1")
    ok("deploy", "canary", "churn", "--candidate", "models:/churn/2")
    svc.registry.set_policy("churn", required_approvals=1)  # set after the canary started
    before = snapshot(svc, "churn")
    message = failed("deploy", "promote", "churn", "--reason", "ship it")
    assert (
        "error: models:/churn/2 cannot take 'production': it needs 1 approval(s) and has 0. "
        "Approve it (modelyard models approve churn 2), then modelyard deploy promote churn; "
        "or roll back"
    ) in message
    assert snapshot(svc, "churn") == before
    r = svc.get("churn").rollout
    assert r is not None and r.status == "running"
    assert svc.registry.resolve("models:/churn@production").version == 1


def test_promote_of_an_ab_test_names_the_variant(svc: DeploymentService) -> None:
    ok("deploy", "create", "churn", "models:/churn/1")
    ok(
        "deploy", "ab", "churn", "--variant", "a=models:/churn/1:50", "--variant",
        "b=models:/churn/2:50",
    )  # fmt: skip
    before = snapshot(svc, "churn")
    message = failed("deploy", "promote", "churn")
    assert "Name the A/B variant to promote (--variant NAME)" in message
    assert re.search(r"see (modelyard deploy report|deploy ab-report)", message), message
    assert "Deployment 'churn' has no variant 'c' to promote (it has a, b)" in failed(
        "deploy", "promote", "churn", "--variant", "c"
    )
    assert snapshot(svc, "churn") == before
    out = ok("deploy", "promote", "churn", "--variant", "b", "--reason", "b converts better")
    assert "models:/churn/2 (v2) serves 100%; reason: b converts better" in out


# -- delete ---------------------------------------------------------------------------
def test_delete_asks_first_then_the_deployment_is_gone(
    svc: DeploymentService, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("deploy", "create", "churn", "models:/churn/1")
    ok("deploy", "create", "other", "models:/churn/2")
    before = snapshot(svc, "churn")
    assert "Not deleting deployment churn without confirmation: pass --yes" in failed(
        "deploy", "delete", "churn"
    )  # stdin is no terminal: nobody to ask
    monkeypatch.setattr(deploy_cli, "_interactive", lambda: True)
    no = CliRunner().invoke(app, ["deploy", "delete", "churn"], input="n\n")
    assert no.exit_code == 1 and "Delete deployment churn? [y/N]" in no.stdout
    assert snapshot(svc, "churn") == before

    yes = CliRunner().invoke(app, ["deploy", "delete", "churn"], input="y\n")
    assert yes.exit_code == 0, yes.stderr
    assert yes.stdout.splitlines()[-1] == "Deleted deployment churn"
    assert [d.name for d in svc.list()] == ["other"]
    assert "Deployment 'churn' not found" in failed("deploy", "status", "churn")
    assert svc.store.events("churn")[-1]["action"] == "deployment.deleted"  # audit kept

    assert json.loads(ok("deploy", "delete", "other", "--yes", "--json")) == {"deleted": "other"}
    assert svc.list() == []
    assert "Deployment 'other' not found" in failed("deploy", "delete", "other", "-y")
    ok("deploy", "create", "churn", "models:/churn/3")  # the name is free again
    assert svc.get("churn").variants[0].uri == "models:/churn/3"


def test_delete_during_a_rollout_is_refused_and_changes_nothing(svc: DeploymentService) -> None:
    ok("deploy", "create", "churn", "models:/churn/1")
    ok("deploy", "canary", "churn", "--candidate", "models:/churn/2")
    before = snapshot(svc, "churn")
    assert failed("deploy", "delete", "churn", "--yes") == (
        "error: Deployment 'churn' has a canary rollout running; promote or roll it back first"
    )
    assert snapshot(svc, "churn") == before

    ok("deploy", "rollback", "churn", "--reason", "not today")
    assert "Deleted deployment churn" in ok("deploy", "delete", "churn", "--yes")
    assert svc.list() == []


def test_deploy_help_loads_no_store_or_data_library() -> None:
    code = (
        "import sys\n"
        "from modelyard.cli.main import main\n"
        "for args in (['deploy', '--help'], ['deploy', 'delete', '--help']):\n"
        "    sys.argv = ['modelyard', *args]\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, exc.code\n"
        "heavy = {'pandas', 'numpy', 'sqlalchemy', 'sklearn', 'uvicorn'}\n"
        "print('LOADED', sorted(heavy & set(sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "delete" in proc.stdout and "--yes" in proc.stdout
    assert "LOADED []" in proc.stdout


# -- feedback -----------------------------------------------------------------------------
def test_feedback_for_an_unknown_request_stores_nothing(
    svc: DeploymentService, tmp_path: Path
) -> None:
    ok("deploy", "create", "churn", "models:/churn/1")
    message = failed(
        "deploy", "feedback", "no-such-request", "--label", "1", "--predictions",
        str(tmp_path / "predictions"),
    )  # fmt: skip
    assert message == (
        "error: No prediction with request id 'no-such-request' was logged: feedback joins "
        "to the x-request-id of an answered request"
    )
    assert svc.store.get_feedback("no-such-request") is None
    assert svc.store.feedback("churn") == []

    result = invoke("deploy", "feedback", "no-such-request")
    assert result.exit_code == 2 and "give --label or --reward" in result.stderr


# -- blue-green and shadow -------------------------------------------------------------
def test_bluegreen_reads_smoke_inputs_from_a_file(
    svc: DeploymentService, trained: TrainedModels, tmp_path: Path
) -> None:
    ok("deploy", "create", "churn", "models:/churn/1")
    before = snapshot(svc, "churn")
    assert "A tolerance needs smoke inputs to compare on" in failed(
        "deploy", "bluegreen", "churn", "--green", "models:/churn/2", "--tolerance", "0.1"
    )
    (tmp_path / "rows.txt").write_text("f0\n1\n")
    assert "expected a .json, .jsonl, .csv or .parquet file" in failed(
        "deploy", "bluegreen", "churn", "--green", "models:/churn/2", "--smoke-inputs",
        str(tmp_path / "rows.txt"),
    )  # fmt: skip
    (tmp_path / "rows.json").write_text('{"f0": 1}')
    assert "expected a list of records" in failed(
        "deploy", "bluegreen", "churn", "--green", "models:/churn/2", "--smoke-inputs",
        str(tmp_path / "rows.json"),
    )  # fmt: skip
    assert "Cannot read smoke inputs" in failed(
        "deploy", "bluegreen", "churn", "--green", "models:/churn/2", "--smoke-inputs",
        str(tmp_path / "missing.csv"),
    )  # fmt: skip
    assert snapshot(svc, "churn") == before

    rows = trained.frame.head(4)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    out = ok(
        "deploy", "bluegreen", "churn", "--green", "models:/churn/2", "--smoke-inputs",
        str(tmp_path / "rows.csv"), "--tolerance", "0.5", "--keep-previous", "90s",
        "--no-promote",
    )  # fmt: skip
    assert "models:/churn/2 takes all traffic after a smoke test on 4 rows" in out
    r = svc.get("churn").rollout
    assert r is not None and r.strategy == "bluegreen"
    assert (r.smoke_tolerance, r.keep_previous_seconds, r.promote_alias) == (0.5, 90.0, None)
    assert r.smoke_inputs is not None
    assert pd.DataFrame(r.smoke_inputs)[FEATURES].equals(rows)

    (tmp_path / "rows.jsonl").write_text('{"f0": 1.5}\n\n{"f0": 2.5}\n')
    assert deploy_cli.read_smoke_inputs(tmp_path / "rows.jsonl") == [{"f0": 1.5}, {"f0": 2.5}]
    frame = pd.DataFrame(
        {
            "f0": [0.1 + 0.2, float("nan")],
            "n": [1, 2],
            "at": pd.to_datetime(["2024-05-01T12:00:00", None]),
            "k": pd.array([7, None], dtype="Int64"),
            "tags": [["a", "b"], []],
        }
    )
    frame.to_parquet(tmp_path / "rows.parquet")
    assert deploy_cli.read_smoke_inputs(tmp_path / "rows.parquet") == [
        {"f0": 0.1 + 0.2, "n": 1, "at": "2024-05-01T12:00:00", "k": 7, "tags": ["a", "b"]},
        {"f0": None, "n": 2, "at": None, "k": None, "tags": []},
    ]


LIVE_SHADOW = {
    "mirrored": 120,
    "skipped": 3,
    "rows_compared": 400,
    "agreement_rate": 0.975,
    "mean_abs_delta": 0.0125,
    "p99_abs_delta": 0.5,
    "max_abs_delta": 1.0,
    "primary": {"requests": 120, "errors": 0, "error_rate": 0.0, "p50_ms": 2.5, "p99_ms": 9.0},
    "shadow": {"requests": 120, "errors": 6, "error_rate": 0.05, "p50_ms": 3.5, "p99_ms": 14.25},
}


def _live_variant(uri: str, version: str, role: str, weight: float, **figures) -> dict:
    return {
        "uri": uri,
        "version": version,
        "role": role,
        "weight": weight,
        "loaded": True,
        "load_error": None,
        "requests": 0,
        "errors": 0,
        "error_rate": None,
        "p50_ms": None,
        "p99_ms": None,
        **figures,
    }


def test_shadow_status_and_report_show_the_comparison(svc: DeploymentService) -> None:
    ok("deploy", "create", "churn", "models:/churn/1")
    out = ok("deploy", "shadow", "churn", "--candidate", "models:/churn/2", "--share", "50")
    assert "Shadow of models:/churn/2 on churn started: 50% of requests mirrored" in out
    assert "No mirrored requests yet: is the gateway running (modelyard gateway churn)?" in ok(
        "deploy", "report", "churn"
    )

    svc.write_live(
        "churn",
        {
            "gateway": {"pid": 4242, "at": now_ms()},
            "variants": {
                "stable": _live_variant(
                    "models:/churn/1",
                    "1",
                    "stable",
                    100.0,
                    requests=240,
                    error_rate=0.0,
                    p50_ms=2.5,
                    p99_ms=9.0,
                ),  # fmt: skip
                "shadow": _live_variant("models:/churn/2", "2", "shadow", 0.0),
            },
            "gates": {},
            "shadow": LIVE_SHADOW,
        },
    )
    status = ok("deploy", "status", "churn")
    assert "gateway live (pid 4242" in " ".join(status.split())
    assert _row(status, "stable")[4:] == ["100%", "yes", "240", "0", "0.00%", "2.5", "9.0"]
    assert _row(status, "shadow")[4] == "mirror 50%"
    for text in ("mirrored requests 120", "agreement rate 97.50%", "max abs delta 1"):
        assert text in " ".join(status.split())
    assert _row(status, "p99 ms")[1:] == ["9.0", "14.2"]
    assert _row(status, "error rate")[1:] == ["0.00%", "5.00%"]

    report = ok("deploy", "report", "churn")
    assert "agreement rate 97.50%" in " ".join(report.split())
    assert _row(report, "errors")[1:] == ["0", "6"]
    document = json.loads(ok("deploy", "report", "churn", "--json"))
    assert document["shadow"] == LIVE_SHADOW and document["strategy"] == "shadow"


def test_status_renders_the_live_gates_of_a_canary_and_a_stale_gateway(
    svc: DeploymentService,
) -> None:
    ok("deploy", "create", "churn", "models:/churn/1")
    ok("deploy", "canary", "churn", "--candidate", "models:/churn/2", "--max-p99-ms", "50")
    candidate = _live_variant("models:/churn/2", "2", "candidate", 0.0, loaded=False)
    svc.write_live(
        "churn",
        {
            "gateway": {"pid": 77, "at": now_ms()},
            "variants": {
                "stable": _live_variant(
                    "models:/churn/1",
                    "1",
                    "stable",
                    100.0,
                    requests=57,
                    errors=1,
                    error_rate=1 / 57,
                    p50_ms=1.25,
                    p99_ms=12.5,
                ),  # fmt: skip
                "candidate": candidate,
            },
            "gates": {
                "verdict": "wait",
                "requests": 57,
                "step": 0,
                "weight": 5.0,
                "gates": {
                    "error_rate": {"value": 0.0175, "limit": 0.01, "passed": False},
                    "p99_ms": {"value": 12.5, "limit": 50.0, "passed": True},
                    "latency_ratio": {"value": None, "limit": 2.0, "passed": None},
                },
            },
            "shadow": None,
        },
    )
    status = ok("deploy", "status", "churn")
    assert "Gates now (verdict wait, 57 candidate requests, step 1 at 5%)" in status
    assert _row(status, "error_rate")[1:4] == ["0.0175", "0.01", "FAIL"]
    assert _row(status, "p99_ms")[1:4] == ["12.5", "50", "pass"]
    assert _row(status, "latency_ratio")[1:4] == ["", "2", "waiting"]
    assert _row(status, "candidate")[4:6] == ["5% (routing 0%)", "loading"]
    assert _row(status, "stable")[6:] == ["57", "1", "1.75%", "1.2", "12.5"]

    with svc.store.engine.begin() as conn:  # the gateway stopped a minute ago
        conn.execute(update(t.deployments).values(live_at=now_ms() - 60_000))
    stale = ok("deploy", "status", "churn")
    assert "gateway not running (last figures" in " ".join(stale.split())
    assert "Gates now" not in stale
    assert _row(stale, "stable")[4:] == ["95%", "", "", "", "", "", ""]


def test_watch_refreshes_until_the_rollout_ends(
    svc: DeploymentService, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("deploy", "create", "churn", "models:/churn/1")
    ok("deploy", "canary", "churn", "--candidate", "models:/churn/2")
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:  # the gateway rolls back while we wait
        sleeps.append(seconds)
        if len(sleeps) == 2:
            svc.rollback("churn", "gate failed at step 1/4 (5%): error_rate 0.2 > 0.01")

    monkeypatch.setattr(deploy_cli.time, "sleep", sleep)
    out = ok("deploy", "status", "churn", "--watch", "--interval", "0.25")
    assert sleeps == [0.25, 0.25]
    assert "canary rolled_back" in out
    assert "gate failed at step 1/4 (5%): error_rate 0.2 > 0.01" in out


# -- the gateway process ------------------------------------------------------------------
def _gateway(settings: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "modelyard.cli.main", "gateway", *args],
        env={**server_env(settings), "COLUMNS": "250"},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return proc.returncode, err


@pytest.fixture
def gateway(
    svc: DeploymentService, settings: dict[str, str], tmp_path: Path
) -> Iterator[tuple[str, Path]]:
    """``modelyard gateway churn`` on a free port: (base URL, prediction log folder)."""
    ok("deploy", "create", "churn", "models:/churn@production")
    predictions = tmp_path / "predictions"
    log = tmp_path / "gateway.log"
    for _ in range(3):  # another process may take the free port in between
        port = free_port()
        with log.open("w") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "modelyard.cli.main",
                    "gateway",
                    "churn",
                    "--port",
                    str(port),
                    "--poll-seconds",
                    "0.1",
                    "--log-predictions",
                    str(predictions),
                ],  # fmt: skip
                env=server_env(settings),
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        if proc.poll() is None:
            break
        assert "cannot listen" in log.read_text(), log.read_text()
    else:
        raise AssertionError(log.read_text())
    try:
        assert httpx.get(f"{url}/v2/health/ready", timeout=5).status_code == 200, log.read_text()
        yield url, predictions
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    # A clean shutdown: uvicorn re-raises the SIGTERM it caught once it has stopped.
    assert proc.returncode in (0, -signal.SIGTERM), log.read_text()
    assert f"modelyard gateway on {url}" in log.read_text()
    assert "Traceback" not in log.read_text()


def test_gateway_serves_the_deployment_and_feedback_joins_its_answers(
    gateway: tuple[str, Path], svc: DeploymentService, trained: TrainedModels
) -> None:
    url, predictions = gateway
    rows = trained.frame.head(3)
    answer = httpx.post(f"{url}/predict/churn", json=rows.to_dict(orient="records"), timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-deployment-variant"] == "stable"
    assert answer.headers["x-model-version"] == "1"
    assert answer.json()["predictions"] == trained.churn.predict(rows).tolist()
    request_id = answer.headers["x-request-id"]

    deadline = time.monotonic() + 20  # the gateway writes its figures every second
    while (svc.get("churn").live or {}).get("variants", {}).get("stable", {}).get("requests") != 1:
        assert time.monotonic() < deadline, svc.get("churn").live
        time.sleep(0.2)
    status = ok("deploy", "status", "churn")
    assert "gateway live (pid" in " ".join(status.split())
    assert _row(status, "stable")[4:7] == ["100%", "yes", "1"]

    deadline = time.monotonic() + 20  # the prediction log reaches the folder in ~1 s
    while True:
        result = invoke(
            "deploy", "feedback", request_id, "--label", "1", "--predictions", str(predictions)
        )
        if result.exit_code == 0 or time.monotonic() > deadline:
            break
        assert svc.store.get_feedback(request_id) is None
        time.sleep(0.3)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == (
        f"Feedback stored for {request_id}: churn variant stable (v1), label 1"
    )
    stored = svc.store.get_feedback(request_id)
    assert stored is not None
    assert (stored["model"], stored["variant"], stored["version"]) == ("churn", "stable", "1")
    assert json.loads(stored["label"]) == 1


def test_gateway_refuses_unknown_deployments_taken_ports_and_unloadable_versions(
    svc: DeploymentService, settings: dict[str, str], tmp_path: Path
) -> None:
    code, err = _finish(_gateway(settings, tmp_path, "nope", "--port", str(free_port())))
    assert code == 1
    assert "error: Deployment 'nope' not found (create it: modelyard deploy create nope URI)" in err
    assert "Traceback" not in err

    ok("deploy", "create", "churn", "models:/churn/1")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = _finish(_gateway(settings, tmp_path, "churn", "--port", str(port)))
    assert code == 1
    assert err.splitlines()[-1] == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use; "
        "pick another --port or --host"
    )
    assert "warning" not in err

    ok("deploy", "create", "broken", str(tmp_path / "no-model-here"))
    code, err = _finish(_gateway(settings, tmp_path, "broken", "--port", str(free_port())))
    assert code == 1, err
    flat = " ".join(err.split())
    assert "error: Cannot serve deployment 'broken'" in flat and "no-model-here" in flat
    assert "Traceback" not in err


def test_gateway_warns_when_binding_beyond_loopback(
    svc: DeploymentService, settings: dict[str, str], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ok("deploy", "create", "churn", "models:/churn/1")
        code, err = _finish(
            _gateway(settings, tmp_path, "churn", "--host", "0.0.0.0", "--port", str(port))
        )
    assert code == 1
    assert err.startswith("warning: binding 0.0.0.0: the gateway has no authentication")
    assert f"error: cannot listen on 0.0.0.0:{port}" in err
