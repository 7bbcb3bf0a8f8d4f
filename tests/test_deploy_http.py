"""Deployments over HTTP (``/api/v1/deployments``), against a real server subprocess.

The models are registered with the SDK (embedded) into the server's own store; the
same store, opened directly through the deployment service, checks what landed and
that a refused request changed nothing (the revision stays put).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import modelyard as my
from infra.server import ServerProcess, tracking_server  # noqa: F401 - fixture
from modelyard.core.ids import now_ms
from modelyard.deploy.service import DeploymentService
from modelyard.sdk.deploy import deployment_service

BAD, MISSING, REFUSED = "INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "INVALID_STATE"
V1, V2, V3 = "models:/churn/1", "models:/churn/2", "models:/churn/3"


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Iterator[DeploymentService]:
    """Three versions of "churn" (version 1 holds "production") in the server's store,
    and that store's deployment service."""
    my.configure(
        home=tmp_path / "client-home", db_url=db_url, artifacts=str(tmp_path / "server-artifacts")
    )
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 3))
    for c in (1.0, 0.5, 0.1):
        y = (x[:, 0] > 0).astype("int64")
        with my.start_run(experiment="deploy-http"):
            model = LogisticRegression(C=c).fit(x, y)
            my.log_model(model, "model", registered_model_name="churn")
    my.set_alias("churn", "production", 1)
    yield deployment_service()
    my.configure(home=tmp_path / "unused")


@pytest.fixture
def api(store: DeploymentService, tracking_server: ServerProcess) -> Iterator[httpx.Client]:  # noqa: F811
    with httpx.Client(
        base_url=f"{tracking_server.url}/api/v1",
        headers={"X-Modelyard-User": "alice"},
        timeout=30,
    ) as client:
        yield client


def ok(resp: httpx.Response) -> dict:
    assert resp.status_code == 200, resp.text
    return resp.json()


def error(resp: httpx.Response, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error_code", "message"} and body["error_code"] == code, body
    return body["message"]


def weights(dep: dict) -> dict[str, float]:
    return {v["name"]: v["weight"] for v in dep["variants"]}


def create(api: httpx.Client, name: str = "churn-live", uri: str = V1) -> dict:
    return ok(api.post("/deployments", json={"name": name, "model_uri": uri}))


# -- deployments ------------------------------------------------------------------
def test_create_get_list_delete(api, store):
    made = create(api, uri="models:/churn@production")
    assert made["name"] == "churn-live" and made["revision"] == 1
    assert (made["strategy"], made["status"], made["rollout"]) == ("single", "stable", None)
    assert made["variants"] == [
        {"name": "stable", "uri": V1, "version": "1", "weight": 100.0, "role": "stable"}
    ]
    assert ok(api.get("/deployments/churn-live")) == made
    assert store.get("churn-live").to_dict() == made  # what the server stored

    create(api, "churn-split", uri=V2)
    listed = ok(api.get("/deployments"))["deployments"]
    assert [d["name"] for d in listed] == ["churn-live", "churn-split"]

    again = api.post("/deployments", json={"name": "churn-live", "model_uri": V2})
    assert "already exists" in error(again, 400, "RESOURCE_ALREADY_EXISTS")
    assert store.get("churn-live").variants[0].uri == V1

    events = ok(api.get("/deployments/churn-live/history"))["events"]
    assert [(e["action"], e["actor"]) for e in events] == [("deployment.created", "alice")]

    assert ok(api.delete("/deployments/churn-live")) == {}
    assert "'churn-live'" in error(api.get("/deployments/churn-live"), 404, MISSING)
    assert [d.name for d in store.list()] == ["churn-split"]


def test_create_with_variants_and_weights_that_do_not_sum(api, store):
    body = {"name": "split", "variants": [f"a={V1}:90", f"b={V2}:10"]}
    made = ok(api.post("/deployments", json=body))
    assert weights(made) == {"a": 90.0, "b": 10.0}
    assert [v["uri"] for v in made["variants"]] == [V1, V2]

    bad = {"name": "split-bad", "variants": [f"a={V1}:60", f"b={V2}:30"]}
    message = error(api.post("/deployments", json=bad), 400, BAD)
    assert "sum to 100" in message and "sum to 90" in message
    assert "'split-bad'" in error(api.get("/deployments/split-bad"), 404, MISSING)

    both = {"name": "split-both", "model_uri": V1, "variants": [f"a={V1}:100"]}
    assert "either a model URI or variants" in error(api.post("/deployments", json=both), 400, BAD)
    assert [d.name for d in store.list()] == ["split"]


def test_unknown_version_is_404_and_writes_nothing(api, store):
    gone = api.post("/deployments", json={"name": "churn-live", "model_uri": "models:/churn/99"})
    assert "99" in error(gone, 404, MISSING)
    assert store.list() == []

    create(api)
    canary = api.post("/deployments/churn-live/canary", json={"candidate": "models:/churn/99"})
    assert "99" in error(canary, 404, MISSING)
    dep = store.get("churn-live")
    assert (dep.revision, dep.rollout, weights(dep.to_dict())) == (1, None, {"stable": 100.0})


def test_unknown_deployment_is_404_naming_it(api):
    calls = [
        api.get("/deployments/ghost"),
        api.delete("/deployments/ghost"),
        api.get("/deployments/ghost/history"),
        api.get("/deployments/ghost/report"),
        api.post("/deployments/ghost/canary", json={"candidate": V2}),
        api.post("/deployments/ghost/bluegreen", json={"green": V2}),
        api.post("/deployments/ghost/shadow", json={"candidate": V2}),
        api.post("/deployments/ghost/ab", json={"variants": [f"a={V1}:50", f"b={V2}:50"]}),
        api.post("/deployments/ghost/promote", json={}),
        api.post("/deployments/ghost/rollback", json={"reason": "x"}),
    ]
    for resp in calls:
        assert "'ghost'" in error(resp, 404, MISSING), resp.request.url


def test_unknown_and_malformed_fields_are_400(api, store):
    create(api)
    typo = api.post("/deployments", json={"name": "other", "model_uri": V1, "modle": "x"})
    assert "modle" in error(typo, 400, BAD)
    gate_typo = {"candidate": V2, "gates": {"max_error": 0.1}}
    assert "max_error" in error(
        api.post("/deployments/churn-live/canary", json=gate_typo), 400, BAD
    )
    not_a_number = f'{{"candidate": "{V2}", "step_seconds": NaN}}'  # Python's json writes NaN
    headers = {"content-type": "application/json"}
    canary = api.post("/deployments/churn-live/canary", content=not_a_number, headers=headers)
    message = error(canary, 400, BAD)
    assert "step_seconds" in message
    wrong_type = {"variants": "a=models:/churn/1:100"}
    assert "variants" in error(api.post("/deployments/churn-live/ab", json=wrong_type), 400, BAD)
    assert [d.name for d in store.list()] == ["churn-live"]
    assert store.get("churn-live").revision == 1


# -- canary, rollback, promote ----------------------------------------------------------
def test_canary_then_second_canary_refused(api, store):
    create(api)
    body = {
        "candidate": V2,
        "steps": [10, 50],
        "step_seconds": 30,
        "gates": {"min_requests": 5, "max_p99_ms": 250, "max_error_rate": None},
    }
    dep = ok(api.post("/deployments/churn-live/canary", json=body))
    assert (dep["strategy"], dep["status"], dep["revision"]) == ("canary", "running", 2)
    assert weights(dep) == {"stable": 90.0, "candidate": 10.0}
    assert [v["uri"] for v in dep["variants"]] == [V1, V2]
    r = dep["rollout"]
    assert (r["steps"], r["step"], r["step_seconds"]) == ([10.0, 50.0, 100.0], 0, 30.0)
    assert r["promote_alias"] == "production"  # the service's default: left out of the body
    gates = r["gates"]
    assert (gates["min_requests"], gates["max_p99_ms"], gates["max_error_rate"]) == (5, 250, None)
    assert gates["min_feedback"] == 50  # a gate left out keeps its default
    assert ok(api.get("/deployments/churn-live")) == dep

    second = api.post("/deployments/churn-live/canary", json={"candidate": V3})
    assert "already has a canary rollout running" in error(second, 400, REFUSED)
    unordered = api.post(
        "/deployments/churn-live/canary", json={"candidate": V3, "steps": [50, 10]}
    )
    assert "increasing" in error(unordered, 400, BAD)
    busy = api.delete("/deployments/churn-live")
    assert "rollout running" in error(busy, 400, REFUSED)
    same = store.get("churn-live")
    assert same.to_dict() == dep and same.revision == 2


def test_rollback_restores_one_variant_and_records_the_reason(api, store):
    create(api)
    ok(api.post("/deployments/churn-live/canary", json={"candidate": V2, "steps": [25]}))
    dep = ok(api.post("/deployments/churn-live/rollback", json={"reason": "p99 doubled"}))
    assert dep["variants"] == [
        {"name": "stable", "uri": V1, "version": "1", "weight": 100.0, "role": "stable"}
    ]
    assert (dep["status"], dep["strategy"], dep["rollout"]["reason"]) == (
        "rolled_back",
        "single",
        "p99 doubled",
    )
    events = ok(api.get("/deployments/churn-live/history"))["events"]
    assert [e["action"] for e in events] == [
        "deployment.created",
        "rollout.canary.started",
        "rollout.rolled_back",
    ]
    last = events[-1]
    assert last["actor"] == "alice" and last["after"]["reason"] == "p99 doubled"
    assert last["before"]["variants"][1]["weight"] == 25.0

    again = api.post("/deployments/churn-live/rollback")
    assert "no rollout in progress" in error(again, 400, REFUSED)
    assert store.get("churn-live").revision == dep["revision"]


def test_promote_canary_by_hand_gives_the_alias(api, store):
    create(api)
    ok(api.post("/deployments/churn-live/canary", json={"candidate": V2}))
    dep = ok(api.post("/deployments/churn-live/promote", json={"reason": "looks good"}))
    assert dep["variants"] == [
        {"name": "stable", "uri": V2, "version": "2", "weight": 100.0, "role": "stable"}
    ]
    assert (dep["status"], dep["rollout"]["reason"]) == ("succeeded", "looks good")
    assert ok(api.get("/models/churn/aliases/production"))["version"] == 2
    period = ok(api.get("/models/churn/history", params={"alias": "production"}))["history"][-1]
    assert (period["version"], period["started_by"]) == (2, "alice")  # the caller's registry
    assert "no rollout in progress" in error(
        api.post("/deployments/churn-live/promote"), 400, REFUSED
    )
    assert ok(api.delete("/deployments/churn-live")) == {}  # the rollout is over


# -- blue-green and shadow ------------------------------------------------------------
def test_bluegreen_start_and_its_checks(api, store):
    create(api)
    no_rows = {"green": V2, "tolerance": 0.01}
    assert "smoke inputs" in error(
        api.post("/deployments/churn-live/bluegreen", json=no_rows), 400, BAD
    )
    negative = {"green": V2, "keep_previous_seconds": -1}
    message = error(api.post("/deployments/churn-live/bluegreen", json=negative), 400, BAD)
    assert "keep_previous_seconds" in message
    same = api.post("/deployments/churn-live/bluegreen", json={"green": V1})
    assert "already the stable version" in error(same, 400, BAD)
    assert store.get("churn-live").revision == 1

    rows = [{"f0": 0.1, "f1": -0.2, "f2": 0.3}]
    body = {"green": V2, "smoke_inputs": rows, "tolerance": 0.05, "keep_previous_seconds": 10}
    dep = ok(api.post("/deployments/churn-live/bluegreen", json=body))
    assert (dep["strategy"], dep["rollout"]["candidate"]) == ("bluegreen", "green")
    assert [(v["name"], v["uri"], v["weight"], v["role"]) for v in dep["variants"]] == [
        ("stable", V1, 100.0, "stable"),
        ("green", V2, 0.0, "candidate"),
    ]
    r = dep["rollout"]
    assert (r["smoke_inputs"], r["smoke_tolerance"], r["keep_previous_seconds"]) == (rows, 0.05, 10)
    assert r["switched_at"] is None
    # not switched yet: the rollback unloads green and blue keeps serving
    back = ok(api.post("/deployments/churn-live/rollback", json={"reason": "smoke mismatch"}))
    assert [(v["uri"], v["weight"]) for v in back["variants"]] == [(V1, 100.0)]


def test_shadow_report_and_report_without_a_test(api, store):
    create(api)
    none_yet = api.get("/deployments/churn-live/report")
    assert "no A/B test or shadow rollout" in error(none_yet, 400, REFUSED)
    too_much = api.post("/deployments/churn-live/shadow", json={"candidate": V2, "share": 150})
    assert "(0, 100]" in error(too_much, 400, BAD)

    dep = ok(api.post("/deployments/churn-live/shadow", json={"candidate": V2, "share": 25}))
    assert (dep["strategy"], dep["rollout"]["shadow_share"]) == ("shadow", 25.0)
    assert weights(dep) == {"stable": 100.0, "shadow": 0.0}
    assert [v["role"] for v in dep["variants"]] == ["stable", "shadow"]
    assert ok(api.get("/deployments/churn-live/report")) == {"shadow": None}  # no gateway yet

    comparison = {"compared": 120, "agreement": 0.97, "skipped": 0}
    store.write_live("churn-live", {"weights": {"stable": 100.0}, "shadow": comparison})
    assert ok(api.get("/deployments/churn-live/report")) == {"shadow": comparison}


# -- A/B ----------------------------------------------------------------------------------
def _feedback(store: DeploymentService, name: str, variant: str, version: str, hits: int, n: int):
    at = now_ms()
    for i in range(n):
        store.store.add_feedback(
            {
                "request_id": f"{variant}-{i}",
                "model": name,
                "variant": variant,
                "version": version,
                "prediction": [1],
                "predicted_at": at,
                "label": None,
                "reward": 1.0 if i < hits else 0.0,
            }
        )


def test_ab_promote_needs_a_variant_and_report_has_arms_and_verdict(api, store):
    create(api)
    arms = [f"a={V1}:50", f"b={V2}:50"]
    uneven = api.post("/deployments/churn-live/ab", json={"variants": [f"a={V1}:70", f"b={V2}:20"]})
    assert "sum to 90" in error(uneven, 400, BAD)
    assert store.get("churn-live").revision == 1

    dep = ok(
        api.post("/deployments/churn-live/ab", json={"variants": arms, "key_header": "X-User"})
    )
    assert (dep["strategy"], dep["rollout"]["arms"]) == ("ab", ["a", "b"])
    assert dep["rollout"]["key_header"] == "x-user" and dep["rollout"]["previous"] == "a"
    assert weights(dep) == {"a": 50.0, "b": 50.0}

    unnamed = api.post("/deployments/churn-live/promote", json={})
    assert "Name the A/B variant" in error(unnamed, 400, BAD)
    no_such = api.post("/deployments/churn-live/promote", json={"variant": "c"})
    assert "no variant 'c'" in error(no_such, 400, BAD)
    assert store.get("churn-live").to_dict() == dep

    empty = ok(api.get("/deployments/churn-live/report"))
    assert (empty["kind"], empty["winner"]) == ("none", None)
    assert [(a["variant"], a["n"]) for a in empty["arms"]] == [("a", 0), ("b", 0)]
    assert "no outcomes yet" in empty["verdict"]

    _feedback(store, "churn-live", "a", "1", hits=120, n=400)  # 30%
    _feedback(store, "churn-live", "b", "2", hits=240, n=400)  # 60%
    planned = ok(api.get("/deployments/churn-live/report"))  # mde 2 points: far too few rows
    assert (planned["kind"], planned["control"], planned["winner"]) == ("rate", "a", None)
    assert planned["required_per_arm"] > 400 and "keep collecting" in planned["verdict"]

    report = ok(api.get("/deployments/churn-live/report", params={"alpha": 0.01, "mde": 0.2}))
    assert report["alpha"] == 0.01 and report["required_per_arm"] <= 400
    by_arm = {a["variant"]: a for a in report["arms"]}
    assert (by_arm["a"]["n"], by_arm["b"]["n"]) == (400, 400)
    assert by_arm["a"]["mean"] == pytest.approx(0.3) and by_arm["b"]["mean"] == pytest.approx(0.6)
    assert by_arm["b"]["difference"] == pytest.approx(0.3) and by_arm["b"]["significant"]
    assert by_arm["b"]["p_value"] < 0.01
    assert report["winner"] == "b" and report["verdict"].startswith("b wins")

    bad_alpha = api.get("/deployments/churn-live/report", params={"alpha": 2})
    assert "alpha" in error(bad_alpha, 400, BAD)

    won = ok(api.post("/deployments/churn-live/promote", json={"variant": "b", "reason": "b wins"}))
    assert [(v["name"], v["uri"], v["weight"]) for v in won["variants"]] == [("stable", V2, 100.0)]
    assert ok(api.get("/models/churn/aliases/production"))["version"] == 2
    events = ok(api.get("/deployments/churn-live/history"))["events"]
    assert events[-1]["action"] == "rollout.promoted" and events[-1]["after"]["reason"] == "b wins"


# -- the contract -------------------------------------------------------------------------
def test_openapi_documents_every_deployment_route(tracking_server):  # noqa: F811
    spec = ok(httpx.get(f"{tracking_server.url}/openapi.json"))
    base = "/api/v1/deployments"
    expected = {
        ("post", base),
        ("get", base),
        ("get", base + "/{name}"),
        ("delete", base + "/{name}"),
        ("get", base + "/{name}/history"),
        ("post", base + "/{name}/canary"),
        ("post", base + "/{name}/bluegreen"),
        ("post", base + "/{name}/shadow"),
        ("post", base + "/{name}/ab"),
        ("post", base + "/{name}/promote"),
        ("post", base + "/{name}/rollback"),
        ("get", base + "/{name}/report"),
    }
    paths = spec["paths"]
    listed = {(m, p) for p, ops in paths.items() for m in ops if p.startswith(base)}
    assert listed == expected
    for method, path in expected:
        op = paths[path][method]
        assert op["summary"] and op["description"], (method, path)
        assert {"400", "404"} <= set(op["responses"]), (method, path)
    schemas = spec["components"]["schemas"]
    for body in ("CreateDeploymentRequest", "CanaryRequest", "GatesRequest", "ABRequest"):
        assert schemas[body]["additionalProperties"] is False, body
