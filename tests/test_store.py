"""The SQL tracking store, on SQLite and (in the PostgreSQL pass) on PostgreSQL."""

from __future__ import annotations

import math
import threading

import pytest

from modelyard.core.errors import (
    InvalidParameter,
    InvalidState,
    ResourceAlreadyExists,
    ResourceNotFound,
)
from modelyard.core.store.engine import open_engine
from modelyard.tracking.entities import Metric, Param, RunInput, RunTag
from modelyard.tracking.sql_store import SqlTrackingStore


@pytest.fixture
def store(db_url, tmp_path):
    s = SqlTrackingStore(open_engine(db_url), str(tmp_path / "artifacts"))
    yield s
    s.close()


def _run(store, name="r"):
    exp = store.create_experiment(f"exp-{name}")
    return store.create_run(exp, run_name=name)


def test_default_experiment_exists_and_cannot_be_deleted(store):
    default = store.get_experiment("0")
    assert default.name == "Default"
    assert default.artifact_location.endswith("/artifacts/0")
    with pytest.raises(InvalidState, match="cannot be deleted"):
        store.update_experiment("0", lifecycle_stage="deleted")
    assert store.get_experiment("0").lifecycle_stage == "active"


def test_experiment_crud(store):
    eid = store.create_experiment("churn", tags={"team": "growth"})
    exp = store.get_experiment(eid)
    assert (exp.name, exp.tags) == ("churn", {"team": "growth"})
    assert exp.artifact_location.endswith(f"/artifacts/{eid}")
    with pytest.raises(ResourceAlreadyExists, match="churn"):
        store.create_experiment("churn")
    store.update_experiment(eid, new_name="churn-v2")
    assert store.get_experiment_by_name("churn") is None
    assert store.get_experiment_by_name("churn-v2").experiment_id == eid
    store.update_experiment(eid, lifecycle_stage="deleted")
    names = [e.name for e in store.search_experiments().items]
    assert "churn-v2" not in names
    assert "churn-v2" in [e.name for e in store.search_experiments(view_type="deleted").items]
    with pytest.raises(ResourceNotFound, match="No experiment with id 999"):
        store.get_experiment("999")
    with pytest.raises(InvalidParameter, match="Invalid experiment id"):
        store.get_experiment("abc")


def test_experiment_paging(store):
    for i in range(5):
        store.create_experiment(f"e{i}")
    seen, token = [], None
    while True:
        page = store.search_experiments(max_results=2, page_token=token)
        seen += [e.name for e in page.items]
        token = page.next_page_token
        if not token:
            break
    assert seen == ["Default", "e0", "e1", "e2", "e3", "e4"]
    with pytest.raises(InvalidParameter, match="page_token"):
        store.search_experiments(page_token="garbage!")


def test_run_lifecycle_and_data(store):
    run = _run(store)
    rid = run.info.run_id
    assert len(rid) == 32 and run.info.status == "RUNNING"
    assert run.info.artifact_uri.endswith(f"/{rid}/artifacts")
    store.log_batch(
        rid,
        metrics=[Metric("acc", 0.5, 1000, 0), Metric("acc", 0.7, 1001, 1)],
        params=[Param("lr", "0.1")],
        tags=[RunTag("team", "a")],
    )
    got = store.get_run(rid)
    assert got.data.metrics == {"acc": 0.7}
    assert got.data.params == {"lr": "0.1"}
    assert got.data.tags["team"] == "a" and got.data.tags["mlflow.runName"] == "r"
    info = store.update_run(rid, status="FINISHED")
    assert info.status == "FINISHED" and info.end_time >= info.start_time
    with pytest.raises(InvalidState, match="has ended with status FINISHED"):
        store.log_batch(rid, metrics=[Metric("acc", 0.9, 1002, 2)])
    assert store.get_run(rid).data.metrics == {"acc": 0.7}
    store.set_run_lifecycle(rid, "deleted")
    with pytest.raises(InvalidState, match="deleted"):
        store.update_run(rid, status="RUNNING")
    with pytest.raises(ResourceNotFound, match="not found"):
        store.get_run("0" * 32)
    with pytest.raises(InvalidParameter, match="Invalid run status"):
        run2 = _run(store, "r2")
        store.update_run(run2.info.run_id, status="DONE")


def test_batch_is_all_or_nothing(store):
    rid = _run(store).info.run_id
    store.log_batch(rid, params=[Param("lr", "0.1")])
    with pytest.raises(InvalidParameter, match="immutable"):
        store.log_batch(
            rid,
            metrics=[Metric("loss", 1.0, 1, 0)],
            params=[Param("depth", "3"), Param("lr", "0.2")],
            tags=[RunTag("t", "x")],
        )
    run = store.get_run(rid)
    assert run.data.params == {"lr": "0.1"}
    assert run.data.metrics == {}
    assert "t" not in run.data.tags
    assert store.count_metric_points(rid) == 0


def test_resent_batch_is_idempotent(store):
    rid = _run(store).info.run_id
    batch = [Metric("loss", 1.0 / (i + 1), 1000 + i, i) for i in range(500)]
    store.log_batch(rid, metrics=batch, params=[Param("lr", "0.1")], tags=[RunTag("a", "b")])
    store.log_batch(rid, metrics=batch, params=[Param("lr", "0.1")], tags=[RunTag("a", "b")])
    assert store.count_metric_points(rid, "loss") == 500
    assert len(store.get_metric_history(rid, "loss")) == 500


def test_latest_metric_follows_step_then_timestamp(store):
    rid = _run(store).info.run_id
    store.log_batch(rid, metrics=[Metric("m", 5.0, 100, 10)])
    store.log_batch(rid, metrics=[Metric("m", 1.0, 200, 3)])  # older step, newer time
    assert store.get_run(rid).data.metrics["m"] == 5.0
    store.log_batch(rid, metrics=[Metric("m", 2.0, 300, 10)])  # same step, newer time
    assert store.get_run(rid).data.metrics["m"] == 2.0
    history = store.get_metric_history(rid, "m")
    assert [(p.step, p.value) for p in history] == [(3, 1.0), (10, 5.0), (10, 2.0)]


def test_nan_and_infinity_round_trip(store):
    rid = _run(store).info.run_id
    store.log_batch(rid, metrics=[Metric("n", math.nan, 1, 0), Metric("big", 1e308, 1, 0)])
    run = store.get_run(rid)
    assert math.isnan(run.data.metrics["n"])
    assert run.data.metrics["big"] == 1e308
    assert math.isnan(store.get_metric_history(rid, "n")[0].value)


def test_downsampled_history_keeps_extremes(store):
    rid = _run(store).info.run_id
    values = [math.sin(i / 50) for i in range(5000)]
    values[1234] = 42.0
    values[4321] = -42.0
    store.log_batch(rid, metrics=[Metric("s", v, 1000 + i, i) for i, v in enumerate(values)])
    points = store.get_metric_history(rid, "s", max_points=200)
    assert 4 <= len(points) <= 200
    got = {p.value for p in points}
    assert 42.0 in got and -42.0 in got
    assert points[0].step == 0 and points[-1].step == 4999
    assert [p.step for p in points] == sorted(p.step for p in points)
    with pytest.raises(InvalidParameter, match="max_points"):
        store.get_metric_history(rid, "s", max_points=2)


def test_run_inputs(store):
    rid = _run(store).info.run_id
    store.log_inputs(rid, [RunInput("churn", "abc123", "s3://d/churn", "train")])
    assert store.get_run(rid).inputs == [RunInput("churn", "abc123", "s3://d/churn", "train")]


def test_search_runs_filter_order_and_pages(store):
    eid = store.create_experiment("search")
    ids = []
    for i in range(7):
        run = store.create_run(eid, run_name=f"run{i}", start_time=1000 + i)
        store.log_batch(
            run.info.run_id,
            metrics=[Metric("acc", i / 10, 1, 0)],
            params=[Param("lr", "0.1" if i % 2 else "0.2")],
        )
        ids.append(run.info.run_id)
    page = store.search_runs([eid], "metrics.acc >= 0.3 and params.lr = '0.1'")
    assert {r.info.run_name for r in page.items} == {"run3", "run5"}
    ordered = store.search_runs([eid], order_by=["metrics.acc DESC"])
    assert [r.info.run_name for r in ordered.items][:3] == ["run6", "run5", "run4"]
    names, token = [], None
    while True:
        page = store.search_runs([eid], max_results=3, page_token=token)
        names += [r.info.run_name for r in page.items]
        token = page.next_page_token
        if not token:
            break
    assert names == [f"run{i}" for i in reversed(range(7))]
    store.set_run_lifecycle(ids[0], "deleted")
    assert len(store.search_runs([eid]).items) == 6
    assert len(store.search_runs([eid], view_type="all").items) == 7
    with pytest.raises(InvalidParameter, match="Invalid filter"):
        store.search_runs([eid], "metrics.acc >>> 1")


def test_concurrent_writers_lose_nothing(store):
    rid = _run(store).info.run_id
    errors = []

    def writer(worker: int) -> None:
        try:
            for batch in range(10):
                store.log_batch(
                    rid,
                    metrics=[
                        Metric(f"w{worker}", float(i), 1000 + i, batch * 100 + i)
                        for i in range(100)
                    ],
                    tags=[RunTag(f"w{worker}", str(batch))],
                )
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert store.count_metric_points(rid) == 4000
    tags = store.get_run(rid).data.tags
    assert all(tags[f"w{w}"] == "9" for w in range(4))


def test_deletes_and_restores_are_audited(store):
    run = _run(store)
    rid = run.info.run_id
    store.set_run_lifecycle(rid, "deleted")
    store.set_run_lifecycle(rid, "active")
    events = store.audit_events("run", rid)
    assert [(e["action"], e["before"], e["after"]) for e in events] == [
        ("delete_run", '{"lifecycle_stage": "active"}', '{"lifecycle_stage": "deleted"}'),
        ("restore_run", '{"lifecycle_stage": "deleted"}', '{"lifecycle_stage": "active"}'),
    ]
    assert events[0]["actor"] and events[0]["created_at"] > 0
    store.update_experiment(run.info.experiment_id, lifecycle_stage="deleted")
    (event,) = store.audit_events("experiment", run.info.experiment_id)
    assert event["action"] == "update_experiment"
    assert '"deleted"' in event["after"]
