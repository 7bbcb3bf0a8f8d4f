"""Deployments without a gateway: the service's rules, the stored state and its audit
trail, the router, the gates and the A/B statistics."""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np
import pytest
from scipy import stats as sps

import modelyard as my
from infra.deployments import build_deploy_models
from modelyard.core.errors import (
    InvalidParameter,
    InvalidState,
    PolicyViolation,
    ResourceAlreadyExists,
    ResourceNotFound,
)
from modelyard.deploy.ab import ab_report
from modelyard.deploy.entities import Gates
from modelyard.deploy.gates import evaluate, prediction_drift
from modelyard.deploy.router import Router
from modelyard.deploy.window import Window
from modelyard.stats import sample_size_two_proportions


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    trained = build_deploy_models(tmp_path_factory.mktemp("deploy-service"))
    return trained.settings


@pytest.fixture
def svc(store):
    my.configure(
        home=store["MODELYARD_HOME"],
        db_url=store["MODELYARD_DB_URL"],
        artifacts=store["MODELYARD_ARTIFACTS"],
    )
    return my.deployment_service()


_count = iter(range(10_000))


@pytest.fixture
def name(svc):
    """A fresh deployment of churn v1."""
    n = f"dep{next(_count)}"
    svc.create(n, "models:/churn/1")
    return n


def state(svc, name):
    d = svc.get(name)
    return d.revision, d.state_dict()


# -- creating ------------------------------------------------------------------------


def test_create_resolves_the_exact_version_and_records_an_event(svc):
    dep = svc.create("fresh-one", "models:/churn@production")
    assert [(v.name, v.uri, v.version, v.weight) for v in dep.variants] == [
        ("stable", "models:/churn/1", "1", 100.0)
    ]
    assert svc.get("fresh-one").revision == 1
    assert [e["action"] for e in svc.history("fresh-one")] == ["deployment.created"]
    with pytest.raises(ResourceAlreadyExists, match="'fresh-one' already exists"):
        svc.create("fresh-one", "models:/churn/2")


def test_create_with_variants_checks_weights_and_versions(svc):
    with pytest.raises(InvalidParameter, match="sum to 100, these sum to 90"):
        svc.create("w1", variants=["a=models:/churn/1:50", "b=models:/churn/2:40"])
    with pytest.raises(ResourceNotFound, match="99"):
        svc.create("w2", variants=["a=models:/churn/1:50", "b=models:/churn/99:50"])
    with pytest.raises(InvalidParameter, match="NAME=URI:WEIGHT"):
        svc.create("w3", variants=["models:/churn/1"])
    with pytest.raises(InvalidParameter, match="Invalid deployment name"):
        svc.create("bad name", "models:/churn/1")
    with pytest.raises(ResourceNotFound):
        svc.get("w1")  # nothing was stored by the refusals
    dep = svc.create("w4", variants=["a=models:/churn/1:30", "b=models:/churn/2:70"])
    assert dep.weights() == {"a": 30.0, "b": 70.0}


# -- canary --------------------------------------------------------------------------


def test_canary_refusals_change_nothing(svc, name):
    before = state(svc, name)
    with pytest.raises(InvalidParameter, match="increasing percentages"):
        svc.canary(name, "models:/churn/2", steps=[50, 25])
    with pytest.raises(InvalidParameter, match="increasing percentages"):
        svc.canary(name, "models:/churn/2", steps=[0, 50])
    with pytest.raises(ResourceNotFound, match="version 42|42"):
        svc.canary(name, "models:/churn/42")
    with pytest.raises(InvalidParameter, match="already the stable version"):
        svc.canary(name, "models:/churn/1")
    assert state(svc, name) == before
    svc.canary(name, "models:/churn/2", steps=[5, 25, 50, 100])
    running = state(svc, name)
    with pytest.raises(InvalidState, match="already has a canary rollout running"):
        svc.canary(name, "models:/churn/3")
    with pytest.raises(InvalidState, match="already has a canary rollout running"):
        svc.bluegreen(name, "models:/churn/3")
    assert state(svc, name) == running


def test_canary_steps_then_promotion_moves_the_alias(svc, name):
    dep = svc.canary(name, "models:/churn/2", steps=[5, 50], promote_alias="champion-" + name)
    r = dep.rollout
    assert r.steps == [5.0, 50.0, 100.0]  # the last step is always 100
    assert dep.weights() == {"stable": 95.0, "candidate": 5.0}
    dep = svc.advance(name, r.id, {"verdict": "pass"})
    assert dep.weights() == {"stable": 50.0, "candidate": 50.0} and dep.rollout.step == 1
    dep = svc.advance(name, r.id, {"verdict": "pass"})
    assert dep.rollout.status == "succeeded"
    assert [(v.name, v.uri, v.weight) for v in dep.variants] == [
        ("stable", "models:/churn/2", 100.0)
    ]
    assert my.model_registry().get_version_by_alias("churn", "champion-" + name).version == 2
    actions = [e["action"] for e in svc.history(name)]
    assert actions == [
        "deployment.created",
        "rollout.canary.started",
        "rollout.step",
        "rollout.promoted",
    ]
    with pytest.raises(InvalidState, match="no rollout in progress"):
        svc.advance(name, r.id, {})


def test_rollback_records_the_reason_and_gate_values(svc, name):
    r = svc.canary(name, "models:/churn/3").rollout
    gates = {"verdict": "fail", "gates": {"error_rate": {"value": 0.2, "limit": 0.01}}}
    dep = svc.rollback(name, "gate failed: error_rate 0.2 > 0.01", rollout_id=r.id, gates=gates)
    assert dep.rollout.status == "rolled_back"
    assert [(v.uri, v.weight) for v in dep.variants] == [("models:/churn/1", 100.0)]
    last = svc.history(name)[-1]
    assert last["action"] == "rollout.rolled_back"
    assert last["after"]["reason"] == "gate failed: error_rate 0.2 > 0.01"
    assert last["after"]["gates"] == gates
    assert last["after"]["weights_before"] == {"stable": 95.0, "candidate": 5.0}
    with pytest.raises(InvalidState, match="no rollout in progress"):
        svc.rollback(name)
    # a stale controller cannot end a newer rollout
    newer = svc.canary(name, "models:/churn/2").rollout
    with pytest.raises(InvalidState, match="no longer current"):
        svc.rollback(name, "late", rollout_id=r.id)
    assert svc.get(name).rollout.id == newer.id


def test_the_approval_policy_is_checked_at_the_start_and_at_the_end(svc):
    for v in (1, 2):
        my.register_model(my.get_model_version("churn", v).source, "guarded")
    svc.create("guarded-dep", "models:/guarded/1")
    my.set_policy("guarded", required_approvals=1, protected=["production"])
    with pytest.raises(PolicyViolation, match="needs 1 approval"):
        svc.canary("guarded-dep", "models:/guarded/2")
    assert svc.get("guarded-dep").rollout is None
    my.approve("guarded", 2)
    r = svc.canary("guarded-dep", "models:/guarded/2", steps=[50]).rollout
    my.reject("guarded", 2, reason="changed my mind")  # between the start and the end
    dep = svc.advance("guarded-dep", r.id, {"verdict": "pass"})
    assert dep.rollout.status == "paused"
    assert "rejected" in dep.rollout.reason and "modelyard models approve" in dep.rollout.reason
    assert [e["action"] for e in svc.history("guarded-dep")][-1] == "rollout.paused"
    assert dep.weights() == {"stable": 50.0, "candidate": 50.0}  # nothing moved
    with pytest.raises(PolicyViolation, match="rejected"):
        svc.promote("guarded-dep")
    my.approve("guarded", 2, reason="fixed")  # the latest decision counts
    dep = svc.promote("guarded-dep")
    assert dep.rollout.status == "succeeded"
    assert [v.uri for v in dep.variants] == ["models:/guarded/2"]
    assert my.model_registry().get_version_by_alias("guarded", "production").version == 2
    # a paused rollout rolls back to the version that served before it
    my.approve("guarded", 1)
    svc.canary("guarded-dep", "models:/guarded/1", steps=[50], promote_alias="production")
    my.reject("guarded", 1)
    r = svc.get("guarded-dep").rollout
    assert svc.advance("guarded-dep", r.id, {"verdict": "pass"}).rollout.status == "paused"
    dep = svc.rollback("guarded-dep", "not approved")
    assert [v.uri for v in dep.variants] == ["models:/guarded/2"]


def test_concurrent_changes_are_never_lost(svc, name):
    """Compare-and-swap on the revision: two writers, both changes land."""
    rid = svc.canary(name, "models:/churn/2", steps=[10, 20, 30, 40, 50, 60, 70, 80, 90]).rollout.id
    errors = []

    def writer(n):
        try:
            for _ in range(n):
                svc.write_live(name, {"x": 1})
                svc.store.update(name, lambda d: ("test.touch", {}))
        except Exception as exc:  # pragma: no cover - the failure shows in the assert
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(10,)) for _ in range(3)]
    rev = svc.get(name).revision
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert svc.get(name).revision == rev + 30
    assert svc.get(name).rollout.id == rid


# -- blue-green, shadow, A/B -------------------------------------------------------


def test_bluegreen_switch_keep_and_rollback(svc, name):
    with pytest.raises(InvalidParameter, match="tolerance needs smoke inputs"):
        svc.bluegreen(name, "models:/churn/2", tolerance=0.1)
    r = svc.bluegreen(name, "models:/churn/2", promote_alias=None).rollout
    dep = svc.switch(name, r.id, {"passed": True, "rows": 0})
    assert {v.name: (v.uri, v.weight, v.role) for v in dep.variants} == {
        "previous": ("models:/churn/1", 0.0, "standby"),
        "stable": ("models:/churn/2", 100.0, "stable"),
    }
    dep = svc.rollback(name, "users complained")
    assert [(v.name, v.uri, v.weight) for v in dep.variants] == [
        ("stable", "models:/churn/1", 100.0)
    ]
    r = svc.bluegreen(name, "models:/churn/2", promote_alias=None).rollout
    svc.switch(name, r.id, {"passed": True})
    dep = svc.finish(name, r.id, "previous version unloaded")
    assert dep.rollout.status == "succeeded"
    assert [(v.uri, v.weight) for v in dep.variants] == [("models:/churn/2", 100.0)]


def test_shadow_share_and_promotion(svc, name):
    with pytest.raises(InvalidParameter, match="shadow share"):
        svc.shadow(name, "models:/churn/2", share=0)
    dep = svc.shadow(name, "models:/churn/2", share=30)
    assert dep.weights() == {"stable": 100.0}  # the shadow never answers users
    assert dep.variant("shadow").role == "shadow"
    dep = svc.rollback(name, "enough")
    assert [v.uri for v in dep.variants] == ["models:/churn/1"]


def test_ab_test_validation_promotion_and_rollback(svc, name):
    before = state(svc, name)
    with pytest.raises(InvalidParameter, match="sum to 100, these sum to 110"):
        svc.ab(name, ["a=models:/churn/1:60", "b=models:/churn/2:50"])
    with pytest.raises(InvalidParameter, match="at least two"):
        svc.ab(name, ["a=models:/churn/1:100"])
    with pytest.raises(InvalidParameter, match="not both"):
        svc.ab(
            name, ["a=models:/churn/1:50", "b=models:/churn/2:50"], key_header="x", key_field="y"
        )
    assert state(svc, name) == before
    dep = svc.ab(name, ["a=models:/churn/2:50", "b=models:/churn/3:50"], key_header="X-User")
    assert dep.weights() == {"previous": 0.0, "a": 50.0, "b": 50.0}
    assert dep.rollout.key_header == "x-user" and dep.rollout.arms == ["a", "b"]
    with pytest.raises(InvalidParameter, match="Name the A/B variant"):
        svc.promote(name)
    dep = svc.rollback(name, "stopped the test")
    assert [v.uri for v in dep.variants] == ["models:/churn/1"]
    svc.ab(name, ["a=models:/churn/1:50", "b=models:/churn/2:50"])
    dep = svc.promote(name, "b", "b won")
    assert [(v.uri, v.weight) for v in dep.variants] == [("models:/churn/2", 100.0)]
    assert svc.history(name)[-1]["after"]["reason"] == "b won"


# -- feedback ------------------------------------------------------------------------


def test_feedback_for_an_unknown_request_stores_nothing(svc):
    def lookup(rid):
        return (
            {"model": "m", "variant": "a", "version": "1", "prediction": [1]}
            if rid == "r1"
            else None
        )

    with pytest.raises(ResourceNotFound, match="No prediction with request id 'nope'"):
        svc.log_feedback("nope", label=1, lookup=lookup)
    assert svc.store.get_feedback("nope") is None
    with pytest.raises(InvalidParameter, match="label or a reward"):
        svc.log_feedback("r1", lookup=lookup)
    with pytest.raises(InvalidParameter, match="finite"):
        svc.log_feedback("r1", reward=float("nan"), lookup=lookup)
    with pytest.raises(InvalidParameter, match="must be a number"):
        svc.log_feedback("r1", reward="1", lookup=lookup)
    assert svc.store.get_feedback("r1") is None
    svc.log_feedback("r1", label=1, lookup=lookup)
    svc.log_feedback("r1", reward=0.5, lookup=lookup)  # a correction replaces
    row = svc.store.get_feedback("r1")
    assert row["reward"] == 0.5 and row["variant"] == "a" and row["label"] is None


def test_ab_report_matches_scipy_and_names_a_winner_only_when_significant():
    rng = np.random.default_rng(3)
    rows = [{"variant": "a", "reward": float(x)} for x in rng.random(5000) < 0.10]
    rows += [{"variant": "b", "reward": float(x)} for x in rng.random(5000) < 0.13]
    rep = ab_report("d", rows, ["a", "b"], control="a")
    b = rep.arms[1]
    pa, pb = (
        np.mean([r["reward"] for r in rows[:5000]]),
        np.mean([r["reward"] for r in rows[5000:]]),
    )
    # the power calculation: two points over the control's observed rate
    assert rep.kind == "rate"
    assert rep.required_per_arm == sample_size_two_proportions(pa, 0.02)
    pooled = (pa + pb) / 2
    z = (pb - pa) / np.sqrt(pooled * (1 - pooled) * (2 / 5000))
    assert b.p_value == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-9)
    assert b.difference == pytest.approx(pb - pa)
    assert b.diff_ci[0] < b.difference < b.diff_ci[1]
    assert rep.winner == "b" and b.significant
    # the same effect on too few outcomes: no winner, and how many are needed
    small = ab_report("d", rows[:300] + rows[5000:5300], ["a", "b"], control="a")
    assert small.winner is None
    assert f"{small.required_per_arm} outcomes per arm needed" in small.verdict
    # no difference at all: no winner even with many outcomes
    same = [{"variant": v, "reward": float(x)} for v in "ab" for x in rng.random(6000) < 0.1]
    assert ab_report("d", same, ["a", "b"], control="a").winner is None


def test_ab_report_uses_welch_for_continuous_rewards_and_labels_for_accuracy():
    rng = np.random.default_rng(5)
    a, b = rng.normal(10, 2, 3000), rng.normal(10.4, 2, 3000)
    rows = [{"variant": "a", "reward": float(x)} for x in a]
    rows += [{"variant": "b", "reward": float(x)} for x in b]
    rep = ab_report("d", rows, ["a", "b"], control="a")
    assert rep.kind == "mean"
    t = sps.ttest_ind(b, a, equal_var=False)
    assert rep.arms[1].p_value == pytest.approx(t.pvalue, rel=1e-9)
    labels = [
        {"variant": "a", "prediction": [1], "label": 1},
        {"variant": "a", "prediction": [0], "label": 1},
    ]
    assert ab_report("d", labels, ["a", "b"]).arms[0].mean == 0.5


# -- routing and gates ---------------------------------------------------------------


def test_router_interleaves_to_the_weight_and_keys_are_sticky():
    router = Router({"stable": 95.0, "candidate": 5.0})
    picks = [router.pick() for _ in range(1000)]
    for n in (1, 19, 20, 21, 100, 999, 1000):
        assert picks[:n].count("candidate") <= n * 0.05 + 1
    assert picks.count("candidate") == 50
    sticky = Router({"a": 50.0, "b": 50.0})
    first = {f"user{i}": sticky.pick(f"user{i}") for i in range(2000)}
    assert all(sticky.pick(k) == v for k, v in first.items())
    share = Counter(first.values())["a"] / 2000
    assert 0.45 < share < 0.55
    assert Router({"a": 0.0, "b": 100.0}).pick() == "b"
    assert Router({}).empty


def _window(n, errors=0, latency=1.0, predictions=None):
    w = Window(0.0)
    preds = predictions if predictions is not None else [0, 1] * n
    for i in range(n):
        w.observe(500 if i < errors else 200, latency, np.array([preds[i % len(preds)]]))
    return w


def test_gates_fail_early_when_errors_make_the_outcome_certain():
    gates = Gates(min_requests=200, max_error_rate=0.01)
    stable = _window(500)
    assert evaluate(gates, _window(20, errors=2), stable)["verdict"] == "wait"
    assert evaluate(gates, _window(20, errors=3), stable)["verdict"] == "fail"
    assert evaluate(gates, _window(200, errors=2), stable)["verdict"] == "pass"
    assert evaluate(gates, _window(199), stable)["verdict"] == "wait"


def test_latency_and_drift_gates():
    gates = Gates(min_requests=100, max_p99_ms=10, max_latency_ratio=3, max_prediction_drift=0.2)
    stable = _window(300, latency=2.0)
    slow = evaluate(gates, _window(100, latency=12.0), stable)
    assert slow["verdict"] == "fail"
    assert slow["gates"]["p99_ms"]["passed"] is False
    assert slow["gates"]["latency_ratio"]["value"] == pytest.approx(6.0)
    shifted = evaluate(gates, _window(100, predictions=[1, 1, 1, 1, 1, 1, 0]), stable)
    assert shifted["gates"]["prediction_drift"]["passed"] is False
    assert evaluate(gates, _window(100), stable)["verdict"] == "pass"


def test_prediction_drift_is_categorical_for_labels_and_binned_for_numbers():
    rng = np.random.default_rng(0)
    assert prediction_drift(np.array([0, 1] * 100), np.array([0, 1] * 100)) == pytest.approx(0.0)
    same = prediction_drift(rng.normal(0, 1, 2000), rng.normal(0, 1, 2000))
    moved = prediction_drift(rng.normal(0, 1, 2000), rng.normal(1, 1, 2000))
    assert same < 0.05 < 0.2 < moved
    assert prediction_drift(np.array([0, 1]), np.array([1, 1])) is None  # too few


def test_the_store_on_each_backend(db_url):
    """Create, compare-and-swap under concurrent writers, audit, feedback: on SQLite
    and (``-m backend``) PostgreSQL."""
    from modelyard.core.store.engine import open_engine
    from modelyard.deploy.service import DeploymentService
    from modelyard.deploy.sql_store import SqlDeploymentStore

    engine = open_engine(db_url)
    svc = DeploymentService(SqlDeploymentStore(engine, actor="tester"))
    svc.create("d", "/models/a")
    rid = svc.canary("d", "/models/b", steps=[50]).rollout.id
    errors = []

    def writer():
        try:
            for _ in range(10):
                svc.store.update("d", lambda dep: ("test.touch", {}))
        except Exception as exc:  # pragma: no cover - shows in the assert
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    dep = svc.get("d")
    assert dep.revision == 2 + 30 and dep.rollout.id == rid
    events = svc.history("d")
    assert len(events) == 32 and {e["actor"] for e in events} == {"tester"}
    svc.store.add_feedback({"request_id": "r", "model": "d", "variant": "stable", "label": 1})
    svc.store.add_feedback({"request_id": "r", "model": "d", "variant": "stable", "reward": 2.0})
    rows = svc.store.feedback("d")
    assert [(r["request_id"], r["label"], r["reward"]) for r in rows] == [("r", None, 2.0)]
    svc.rollback("d", "done")
    svc.delete("d")
    with pytest.raises(ResourceNotFound):
        svc.get("d")
    engine.dispose()


def test_limits_must_be_finite_numbers(svc, name):
    before = state(svc, name)
    nan = float("nan")
    with pytest.raises(InvalidParameter, match="step duration must be a finite number"):
        svc.canary(name, "models:/churn/2", step_seconds=nan)
    with pytest.raises(InvalidParameter, match="max_error_rate must be a finite number"):
        svc.canary(name, "models:/churn/2", gates=Gates(max_error_rate=nan))
    with pytest.raises(InvalidParameter, match=r"max_error_rate .* \[0, 1\]"):
        svc.canary(name, "models:/churn/2", gates=Gates(max_error_rate=2.0))
    with pytest.raises(InvalidParameter, match="max_p99_ms must be a finite number"):
        svc.canary(name, "models:/churn/2", gates=Gates(max_p99_ms=float("inf")))
    with pytest.raises(InvalidParameter, match="min_requests and min_feedback"):
        svc.canary(name, "models:/churn/2", gates=Gates(min_feedback=0))
    with pytest.raises(InvalidParameter, match="keep_previous_seconds must be a finite"):
        svc.bluegreen(name, "models:/churn/2", keep_previous_seconds=nan)
    with pytest.raises(InvalidParameter, match="tolerance must be a finite number"):
        svc.bluegreen(name, "models:/churn/2", smoke_inputs=[{"f0": 1}], tolerance=-1)
    with pytest.raises(InvalidParameter, match="shadow share"):
        svc.shadow(name, "models:/churn/2", share=nan)
    assert state(svc, name) == before


def test_the_feedback_gate_waits_for_outcomes_then_compares_the_means():
    gates = Gates(min_requests=10, max_error_rate=None, max_feedback_drop=0.05, min_feedback=50)
    cand, stable = _window(10), _window(100)
    few = evaluate(gates, cand, stable, {"candidate": (20, 0.5), "stable": (200, 0.9)})
    assert few["verdict"] == "wait" and few["gates"]["feedback_drop"]["passed"] is None
    worse = evaluate(gates, cand, stable, {"candidate": (60, 0.80), "stable": (200, 0.90)})
    assert worse["verdict"] == "fail"
    assert worse["gates"]["feedback_drop"]["value"] == pytest.approx(0.10)
    close = evaluate(gates, cand, stable, {"candidate": (60, 0.88), "stable": (200, 0.90)})
    assert close["verdict"] == "pass"
