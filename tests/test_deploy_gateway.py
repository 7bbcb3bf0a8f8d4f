"""The gateway under real load: a ``modelyard gateway`` subprocess on loopback, client
threads posting rows, rollouts started through the SDK, and what users saw checked
answer by answer (which variant answered, when, with what status)."""

from __future__ import annotations

import json
import math
import time

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

import modelyard as my
from infra.deployments import Traffic, build_deploy_models, running_gateway
from infra.model_server import ModelServer, server_env
from modelyard.core.errors import ResourceNotFound

FAST = ("--poll-seconds", "0.2", "--tick-seconds", "0.05")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return build_deploy_models(tmp_path_factory.mktemp("deploy-gateway"))


@pytest.fixture
def svc(trained):
    s = trained.settings
    my.configure(
        home=s["MODELYARD_HOME"], db_url=s["MODELYARD_DB_URL"], artifacts=s["MODELYARD_ARTIFACTS"]
    )
    return my.deployment_service()


def wait_until(predicate, timeout: float = 30.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")


def live_variant(svc, name, variant) -> dict:
    return ((svc.get(name).live or {}).get("variants") or {}).get(variant) or {}


def ended(svc, name):
    dep = svc.get(name)
    return dep if dep.rollout is not None and dep.rollout.status != "running" else None


@pytest.fixture
def gateway(trained, svc, tmp_path, request):
    """A deployment on churn v1 (named after the test) and a gateway serving it."""
    name = request.node.name.split("[")[0].removeprefix("test_")[:40].replace("_", "-")
    if "[" in request.node.name:
        name += "-" + request.node.name.split("[")[1].rstrip("]")
    svc.create(name, "models:/churn/1")
    server = running_gateway(trained, tmp_path / "gateway.log", name, *FAST)
    server.deployment = name
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("candidate", "gate"),
    [("5", "error_rate"), ("4", "p99_ms"), ("3", "prediction_drift")],
    ids=["errors", "slow", "shifted"],
)
def test_a_bad_candidate_is_rolled_back_within_its_first_step(
    svc, trained, gateway, candidate, gate
):
    name = gateway.deployment
    with Traffic(f"{gateway.url}/predict/{name}", trained.frame) as traffic:
        traffic.wait_for(100)
        started = time.monotonic()
        rid = my.start_canary(
            name,
            f"models:/churn/{candidate}",
            steps=[5, 25, 50, 100],
            step_seconds=30,
            min_requests=100,
            max_error_rate=0.01,
            max_p99_ms=15,
            max_prediction_drift=0.2,
        ).rollout.id
        dep = wait_until(lambda: ended(svc, name), timeout=60)
        rolled_back_at = time.monotonic()
        time.sleep(1.0)  # answers after the rollback: none from the candidate
    r = dep.rollout
    assert (r.id, r.status, r.step) == (rid, "rolled_back", 0)
    assert r.reason.startswith("gate failed at step 1/4 (5%)")
    assert gate in r.reason, r.reason
    assert r.last_gates["gates"][gate]["passed"] is False
    assert [(v.uri, v.weight) for v in dep.variants] == [("models:/churn/1", 100.0)]
    during = [a for a in traffic.answers if started <= a.sent <= rolled_back_at]
    to_candidate = sum(a.variant == "candidate" for a in during)
    assert 0 < to_candidate <= math.ceil(0.05 * len(during)) + 1
    after = [a for a in traffic.answers if a.sent > rolled_back_at + 0.2]
    assert after and all(a.variant == "stable" and a.version == "1" for a in after)
    failed = [a for a in during if a.status != 200]
    assert len(failed) <= to_candidate  # only the candidate's answers could fail
    if gate == "error_rate":
        assert failed and all(a.variant == "candidate" for a in failed)
    else:
        assert not failed
    event = svc.history(name)[-1]
    assert event["action"] == "rollout.rolled_back" and event["after"]["reason"] == r.reason


def test_a_good_candidate_reaches_100_percent_and_takes_the_alias(svc, trained, gateway):
    name = gateway.deployment
    with Traffic(f"{gateway.url}/predict/{name}", trained.frame) as traffic:
        traffic.wait_for(50)
        my.start_canary(
            name,
            "models:/churn/2",
            steps=[10, 50],
            step_seconds=1,
            min_requests=40,
            max_error_rate=0.01,
            max_prediction_drift=0.3,
            promote_alias="production",
        )
        dep = wait_until(lambda: ended(svc, name), timeout=60)
        promoted_at = time.monotonic()
        time.sleep(0.8)
    assert dep.rollout.status == "succeeded", dep.rollout.reason
    assert [(v.name, v.uri, v.weight) for v in dep.variants] == [
        ("stable", "models:/churn/2", 100.0)
    ]
    assert my.model_registry().get_version_by_alias("churn", "production").version == 2
    steps = [e for e in svc.history(name) if e["action"] == "rollout.step"]
    assert [e["after"]["weight"] for e in steps] == [50.0]
    assert all(e["after"]["gates"]["verdict"] == "pass" for e in steps)
    after = [a for a in traffic.answers if a.sent > promoted_at + 0.5]
    assert after and {a.version for a in after} == {"2"}
    assert all(a.status == 200 for a in traffic.answers)


def test_a_candidate_that_fails_to_load_never_gets_a_request(svc, trained, gateway):
    name = gateway.deployment
    with Traffic(f"{gateway.url}/predict/{name}", trained.frame) as traffic:
        traffic.wait_for(20)
        my.start_canary(name, "models:/churn/6", steps=[50, 100], step_seconds=1, min_requests=5)
        dep = wait_until(lambda: ended(svc, name), timeout=60)
        time.sleep(0.3)
    assert dep.rollout.status == "rolled_back"
    assert "failed to load" in dep.rollout.reason and "models:/churn/6" in dep.rollout.reason
    assert {a.variant for a in traffic.answers} == {"stable"}
    assert all(a.status == 200 for a in traffic.answers)


def test_a_killed_gateway_resumes_the_canary_at_the_same_step(svc, trained, gateway, tmp_path):
    name = gateway.deployment
    r = my.start_canary(name, "models:/churn/2", steps=[10, 30, 60], step_seconds=3600).rollout
    svc.advance(name, r.id, {"verdict": "pass"})  # as the controller would: now at 30%
    wait_until(
        lambda: (
            (svc.get(name).live or {}).get("variants", {}).get("candidate", {}).get("weight")
            == 30.0
        )
    )
    gateway.kill()  # SIGKILL: no clean shutdown
    restarted = running_gateway(trained, tmp_path / "gateway2.log", name, *FAST)
    try:
        with Traffic(f"{restarted.url}/predict/{name}", trained.frame) as traffic:
            traffic.wait_for(400)
        metrics = httpx.get(f"{restarted.url}/metrics", timeout=30).text
    finally:
        restarted.stop()
    dep = svc.get(name)
    assert (dep.rollout.id, dep.rollout.status, dep.rollout.step) == (r.id, "running", 1)
    share = sum(a.variant == "candidate" for a in traffic.answers) / len(traffic.answers)
    assert share == pytest.approx(0.30, abs=0.02)
    assert {a.version for a in traffic.answers if a.variant == "candidate"} == {"2"}
    weights = {
        (m.labels["variant"], m.labels["version"]): m.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "modelyard_deployment_weight"
        for m in family.samples
        if m.labels["deployment"] == name
    }
    assert weights == {("stable", "1"): 70.0, ("candidate", "2"): 30.0}


def test_feedback_joins_to_the_answer_and_refuses_unknown_ids(svc, trained, gateway, tmp_path):
    name = gateway.deployment
    url = f"{gateway.url}/predict/{name}"
    answer = httpx.post(
        url, json={"dataframe_records": trained.frame.head(1).to_dict("records")}, timeout=30
    )
    rid = answer.headers["x-request-id"]
    ok = httpx.post(f"{gateway.url}/feedback", json={"request_id": rid, "label": 1}, timeout=30)
    assert ok.status_code == 200
    assert ok.json()["feedback"] == [
        {"request_id": rid, "model": name, "variant": "stable", "version": "1"}
    ]
    row = svc.store.get_feedback(rid)
    assert row["label"] == "1" and row["prediction"] == str(answer.json()["predictions"])
    unknown = httpx.post(
        f"{gateway.url}/feedback", json={"request_id": "nope", "label": 1}, timeout=30
    )
    assert unknown.status_code == 404 and "nope" in unknown.json()["message"]
    assert svc.store.get_feedback("nope") is None
    bad = httpx.post(f"{gateway.url}/feedback", json={"request_id": rid, "labl": 1}, timeout=30)
    assert bad.status_code == 400 and "labl" in bad.json()["message"]
    mixed = httpx.post(
        f"{gateway.url}/feedback",
        json=[{"request_id": rid, "reward": 1.0}, {"request_id": "nope", "reward": 1.0}],
        timeout=30,
    )
    assert mixed.status_code == 404
    assert svc.store.get_feedback(rid)["reward"] is None  # nothing of the batch stored
    # after a restart the ledger is empty: the join goes through the prediction log
    gateway.stop()
    with pytest.raises(ResourceNotFound):
        my.log_feedback("nope", reward=1.0)
    stored = my.log_feedback(rid, reward=0.25)
    assert (stored["variant"], stored["version"], stored["prediction"]) == (
        "stable",
        "1",
        answer.json()["predictions"],
    )


def test_bluegreen_switches_at_once_and_rolls_back_instantly(svc, trained, gateway):
    name = gateway.deployment
    smoke = trained.frame.head(20).to_dict("records")
    with Traffic(f"{gateway.url}/predict/{name}", trained.frame) as traffic:
        traffic.wait_for(50)
        r = my.start_bluegreen(
            name,
            "models:/churn/2",
            smoke_inputs=smoke,
            tolerance=0.2,
            keep_previous_seconds=60,
            promote_alias=None,
        ).rollout
        dep = wait_until(lambda: svc.get(name).rollout.switched_at and svc.get(name))
        switched = time.monotonic()
        assert dep.rollout.last_gates["smoke"]["passed"] is True
        wait_until(lambda: sum(a.sent > switched + 0.5 for a in traffic.answers) >= 50)
        assert {a.version for a in traffic.answers if a.sent > switched + 0.5} == {"2"}
        my.rollback_deployment(name, "users complained")
        rolled = time.monotonic()
        wait_until(lambda: any(a.version == "1" and a.sent > rolled for a in traffic.answers))
        back = min(a.received for a in traffic.answers if a.version == "1" and a.sent > rolled)
        traffic.wait_for(100)
    assert back - rolled < 1.0  # blue was still loaded: no load on the way back
    assert all(a.status == 200 for a in traffic.answers)
    dep = svc.get(name)
    assert (dep.rollout.id, dep.rollout.status) == (r.id, "rolled_back")
    assert [v.uri for v in dep.variants] == ["models:/churn/1"]


def test_bluegreen_smoke_failure_keeps_blue(svc, trained, gateway):
    name = gateway.deployment
    smoke = trained.frame.head(5).to_dict("records")
    with Traffic(f"{gateway.url}/predict/{name}", trained.frame) as traffic:
        my.start_bluegreen(name, "models:/churn/5", smoke_inputs=smoke, promote_alias=None)
        dep = wait_until(lambda: ended(svc, name), timeout=60)
    assert dep.rollout.status == "rolled_back"
    assert dep.rollout.reason.startswith("smoke test failed: green failed")
    assert {a.version for a in traffic.answers} == {"1"}


def test_shadow_mirrors_without_slowing_users(svc, trained, gateway):
    name = gateway.deployment
    my.start_shadow(name, "models:/churn/4", share=100)  # 25 ms per call
    wait_until(lambda: (svc.get(name).live or {}).get("shadow") is not None)
    with Traffic(f"{gateway.url}/predict/{name}", trained.frame, threads=2) as traffic:
        wait_until(
            lambda: ((svc.get(name).live or {}).get("shadow") or {}).get("mirrored", 0) >= 60,
            timeout=60,
        )
    report = svc.get(name).live["shadow"]
    users = np.array([a.received - a.sent for a in traffic.answers]) * 1000
    assert {a.variant for a in traffic.answers} == {"stable"}
    assert np.median(users) < 25  # users never wait for the 25 ms shadow
    assert report["shadow"]["p50_ms"] >= 25
    assert report["primary"]["p50_ms"] < report["shadow"]["p50_ms"]
    assert report["rows_compared"] >= 60
    assert 0.5 < report["agreement_rate"] <= 1.0  # v4 answers f0 > 0, v1 a linear rule
    assert report["shadow"]["errors"] == 0


def test_ab_test_is_sticky_and_names_the_winner(svc, trained, gateway):
    name = gateway.deployment
    my.start_ab_test(
        name, {"a": ("models:/churn/1", 50), "b": ("models:/churn/2", 50)}, key_header="x-user-id"
    )
    url = f"{gateway.url}/predict/{name}"
    row = {"dataframe_records": trained.frame.head(1).to_dict("records")}
    rng = np.random.default_rng(11)
    seen: dict[str, set] = {}
    feedback = []
    wait_until(lambda: live_variant(svc, name, "b").get("loaded"))
    with httpx.Client(timeout=10) as client:
        for i in range(1200):
            user = f"user{i % 400}"
            r = client.post(url, json=row, headers={"x-user-id": user})
            assert r.status_code == 200
            variant = r.headers["x-deployment-variant"]
            seen.setdefault(user, set()).add(variant)
            p = 0.5 if variant == "a" else 0.65  # b converts better
            feedback.append(
                {"request_id": r.headers["x-request-id"], "reward": float(rng.random() < p)}
            )
        for chunk in range(0, len(feedback), 300):
            ok = client.post(f"{gateway.url}/feedback", json=feedback[chunk : chunk + 300])
            assert ok.status_code == 200
    assert all(len(v) == 1 for v in seen.values())  # every user kept one variant
    assert {next(iter(v)) for v in seen.values()} == {"a", "b"}
    report = my.ab_report(name, min_detectable_effect=0.1)
    arms = {a.variant: a for a in report.arms}
    assert report.kind == "rate" and arms["a"].n + arms["b"].n == 1200
    assert report.required_per_arm <= min(arms["a"].n, arms["b"].n)
    assert report.winner == "b", report.verdict
    assert arms["b"].p_value < 0.05 and arms["b"].diff_ci[0] > 0
    dep = my.promote_deployment(name, report.winner, "b won the A/B test")
    assert [v.uri for v in dep.variants] == ["models:/churn/2"]


def test_a_variant_on_an_upstream_model_server(svc, trained, gateway, tmp_path):
    """The candidate runs in another server (``modelyard serve``); the gateway routes
    to it over HTTP, and its answers are the model's own."""
    name = gateway.deployment
    upstream = ModelServer(
        server_env(trained.settings), tmp_path / "upstream.log", ["churn=models:/churn/2"]
    ).start()
    try:
        uri = f"{upstream.url}/churn"
        with pytest.raises(ResourceNotFound, match="does not serve a model named 'nope'"):
            my.start_canary(name, f"{upstream.url}/nope")
        dep = my.start_canary(name, uri, steps=[50], step_seconds=3600)
        assert dep.variant("candidate").version == "2"  # asked of the upstream
        wait_until(lambda: live_variant(svc, name, "candidate").get("loaded"))
        rows = trained.frame.head(40)
        expected = my.load_model("models:/churn/2").predict(rows)
        seen = set()
        with httpx.Client(timeout=30) as client:
            for i in range(40):
                body = {"dataframe_records": rows.iloc[[i]].to_dict("records")}
                r = client.post(f"{gateway.url}/predict/{name}", json=body)
                assert r.status_code == 200
                seen.add(r.headers["x-deployment-variant"])
                if r.headers["x-deployment-variant"] == "candidate":
                    assert r.headers["x-model-version"] == "2"
                    assert r.json()["predictions"] == [int(expected[i])]
        assert seen == {"stable", "candidate"}
    finally:
        upstream.stop()


def test_every_strategy_through_the_cli_against_a_live_gateway(svc, trained, gateway):
    """The same flows as above, driven by `modelyard deploy ...` commands."""
    from typer.testing import CliRunner

    from modelyard.cli.main import app

    def cli(*args: str) -> str:
        result = CliRunner().invoke(app, list(args), env={**trained.settings, "COLUMNS": "200"})
        assert result.exit_code == 0, f"{result.stdout}\n{result.stderr}"
        return result.stdout

    name = gateway.deployment
    with Traffic(f"{gateway.url}/predict/{name}", trained.frame) as traffic:
        # canary of a failing candidate: rolled back by the gateway
        canary = ["--candidate", "models:/churn/5", "--steps", "5,50", "--step-duration", "30s"]
        gates = ["--min-requests", "100", "--max-error-rate", "0.01"]
        cli("deploy", "canary", name, *canary, *gates)
        dep = wait_until(lambda: ended(svc, name), timeout=60)
        assert dep.rollout.status == "rolled_back" and "error_rate" in dep.rollout.reason
        status = json.loads(cli("deploy", "status", name, "--json"))
        assert status["rollout"]["status"] == "rolled_back"
        assert "rollout.rolled_back" in cli("deploy", "history", name)
        # blue-green, then a rollback by hand
        cli("deploy", "bluegreen", name, "--green", "models:/churn/2", "--no-promote")
        wait_until(lambda: svc.get(name).rollout.switched_at)
        switched = time.monotonic()
        wait_until(lambda: any(a.version == "2" and a.sent > switched for a in traffic.answers))
        cli("deploy", "rollback", name, "--reason", "cli rollback")
        back = time.monotonic()
        wait_until(lambda: any(a.version == "1" and a.sent > back for a in traffic.answers))
        # shadow, its report, then promote
        cli("deploy", "shadow", name, "--candidate", "models:/churn/2", "--share", "100")
        wait_until(
            lambda: ((svc.get(name).live or {}).get("shadow") or {}).get("mirrored", 0) >= 30,
            timeout=60,
        )
        report = json.loads(cli("deploy", "report", name, "--json"))
        assert report["shadow"]["mirrored"] >= 30 and report["shadow"]["agreement_rate"] > 0.5
        cli("deploy", "rollback", name)
        # an A/B test and its promotion
        cli("deploy", "ab", name, "--variant", "a=models:/churn/1:50",
            "--variant", "b=models:/churn/2:50")  # fmt: skip
        ab_started = time.monotonic()
        wait_until(
            lambda: {a.variant for a in traffic.answers if a.sent > ab_started} >= {"a", "b"}
        )
        cli("deploy", "promote", name, "--variant", "b", "--reason", "b wins")
    dep = svc.get(name)
    assert (dep.rollout.strategy, dep.rollout.status) == ("ab", "succeeded")
    assert [v.uri for v in dep.variants] == ["models:/churn/2"]
    failed = [a for a in traffic.answers if a.status != 200]
    assert failed and {a.variant for a in failed} == {"candidate"}  # only the bad canary's
