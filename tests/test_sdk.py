"""The fluent SDK (``import modelyard as my``) on the local store.

Every test points the process-wide tracker at its own store (SQLite file, or the
throwaway PostgreSQL database with ``MODELYARD_TEST_BACKEND=postgres``) and checks
what was stored by reading it back, through ``my.get_run``, ``my.client()`` or the
store itself.
"""

from __future__ import annotations

import getpass
import io
import json
import math
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import modelyard as my
from modelyard.core.errors import (
    InvalidParameter,
    InvalidState,
    ModelyardError,
    ResourceNotFound,
)
from modelyard.tracking.entities import Metric, RunStatus
from modelyard.tracking.service import TrackingService
from modelyard.tracking.sql_store import SqlTrackingStore

T0 = 1_700_000_000_000
MAX_FLOAT = sys.float_info.max
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def svc(home: Path, db_url: str, tmp_path: Path) -> Iterator[TrackingService]:
    """The fluent API on this test's store; the tracking service behind it."""
    my.configure(home=home, db_url=db_url, artifacts=str(tmp_path / "artifacts"))
    service = my.client()
    yield service
    while my.active_run():
        my.end_run()
    service.store.close()


def store() -> SqlTrackingStore:
    """The SQL store behind the SDK: reads through it never flush the metric queue."""
    s = my.client().store
    assert isinstance(s, SqlTrackingStore)
    return s


def points(run_id: str, key: str) -> list[tuple[float, int, int]]:
    """(value, timestamp, step) of every stored point, read without flushing."""
    return [(m.value, m.timestamp, m.step) for m in store().get_metric_history(run_id, key)]


def all_run_ids(svc: TrackingService) -> set[str]:
    exp_ids = [e.experiment_id for e in svc.search_experiments(view_type="all").items]
    return {r.info.run_id for r in svc.search_runs(exp_ids, view_type="all").items}


# -- starting and ending runs --------------------------------------------------------


def test_run_as_context_manager_finishes_and_records_its_attributes(
    svc: TrackingService,
) -> None:
    before = int(time.time() * 1000)
    with my.start_run(
        experiment="churn", run_name="baseline", tags={"team": "growth", "n": 3}
    ) as run:
        assert my.active_run() is run
        assert svc.get_run(run.run_id).info.status == "RUNNING"
        assert svc.get_run(run.run_id).info.end_time is None
    after = int(time.time() * 1000)

    assert my.active_run() is None
    stored = my.get_run(run.run_id)
    exp = svc.get_experiment_by_name("churn")
    assert exp is not None
    assert stored.info.experiment_id == exp.experiment_id != "0"
    assert stored.info.run_name == "baseline"
    assert stored.info.status == "FINISHED"
    assert before <= stored.info.start_time <= stored.info.end_time <= after
    assert stored.info.parent_run_id is None
    assert stored.data.tags["team"] == "growth"
    assert stored.data.tags["n"] == "3"
    assert stored.data.tags["mlflow.runName"] == "baseline"
    assert "mlflow.parentRunId" not in stored.data.tags


def test_run_started_by_a_call_stays_active_until_end_run(svc: TrackingService) -> None:
    run = my.start_run(run_name="plain", description="first try")
    assert my.active_run() is run
    assert run.info.experiment_id == "0"
    assert svc.get_run(run.run_id).info.status == "RUNNING"
    assert svc.get_run(run.run_id).data.tags["mlflow.note.content"] == "first try"

    my.end_run()
    assert my.active_run() is None
    assert my.get_run(run.run_id).info.status == "FINISHED"
    my.end_run()  # nothing active: a no-op
    assert my.get_run(run.run_id).info.status == "FINISHED"


def test_exception_in_the_block_fails_the_run_and_propagates(svc: TrackingService) -> None:
    with pytest.raises(ValueError, match="diverged"), my.start_run() as run:
        my.log_metric("loss", 0.5)
        raise ValueError("diverged")
    assert my.active_run() is None
    stored = my.get_run(run.run_id)
    assert stored.info.status == "FAILED"
    assert stored.info.end_time is not None
    assert stored.data.metrics == {"loss": 0.5}  # points queued before the failure are kept


def test_keyboard_interrupt_kills_the_run(svc: TrackingService) -> None:
    with pytest.raises(KeyboardInterrupt), my.start_run() as run:
        raise KeyboardInterrupt
    assert my.active_run() is None
    assert my.get_run(run.run_id).info.status == "KILLED"


@pytest.mark.parametrize("status", ["FAILED", "KILLED", "FINISHED"])
def test_end_run_records_the_given_status(svc: TrackingService, status: str) -> None:
    run = my.start_run()
    my.end_run(status)
    info = my.get_run(run.run_id).info
    assert info.status == status
    assert info.end_time is not None and info.end_time >= info.start_time


def test_end_run_with_an_invalid_status_keeps_the_run_active_and_running(
    svc: TrackingService,
) -> None:
    run = my.start_run()
    with pytest.raises(InvalidParameter, match="DONE"):
        my.end_run("DONE")
    # Bad input must not orphan the run: it is still RUNNING in the store and still
    # the active run, so a correct end_run() can end it.
    assert svc.get_run(run.run_id).info.status == "RUNNING"
    assert my.active_run() is not None and my.active_run().run_id == run.run_id
    my.end_run()
    assert my.get_run(run.run_id).info.status == "FINISHED"


def test_second_start_run_without_nested_is_refused(svc: TrackingService) -> None:
    with my.start_run() as run:
        with pytest.raises(InvalidState, match=r"nested=True") as err:
            my.start_run()
        assert run.run_id in err.value.message
        assert my.active_run() is run
    assert all_run_ids(svc) == {run.run_id}  # no second run was created
    assert my.get_run(run.run_id).info.status == "FINISHED"


def test_nested_runs_record_their_parent(svc: TrackingService) -> None:
    with my.start_run(run_name="parent") as parent:
        with my.start_run(run_name="child", nested=True) as child:
            assert my.active_run() is child
            my.log_param("fold", 1)
        assert my.active_run() is parent
        with my.start_run(run_name="middle", nested=True) as child2:
            with my.start_run(run_name="grandchild", nested=True) as grandchild:
                assert my.active_run() is grandchild
            assert my.active_run() is child2
    assert my.active_run() is None

    p, c = my.get_run(parent.run_id), my.get_run(child.run_id)
    assert p.info.parent_run_id is None
    assert c.info.parent_run_id == parent.run_id
    assert c.data.tags["mlflow.parentRunId"] == parent.run_id
    assert c.data.params == {"fold": "1"}
    assert p.data.params == {}
    g = my.get_run(grandchild.run_id)
    assert g.info.parent_run_id == child2.run_id
    assert g.data.tags["mlflow.parentRunId"] == child2.run_id
    statuses = {r: my.get_run(r).info.status for r in all_run_ids(svc)}
    assert set(statuses.values()) == {"FINISHED"} and len(statuses) == 4


def test_nested_run_without_an_experiment_joins_its_parents_experiment(
    svc: TrackingService,
) -> None:
    with my.start_run(experiment="nest") as parent:
        with my.start_run(nested=True) as child:
            pass
        with my.start_run(experiment="elsewhere", nested=True) as explicit:
            pass
    exp = svc.get_experiment_by_name("nest")
    assert exp is not None
    assert my.get_run(parent.run_id).info.experiment_id == exp.experiment_id
    # A child belongs to its parent's experiment unless told otherwise (MLflow's UI,
    # and ours, show the run tree within one experiment).
    assert my.get_run(child.run_id).info.experiment_id == exp.experiment_id
    other = svc.get_experiment_by_name("elsewhere")
    assert other is not None
    assert my.get_run(explicit.run_id).info.experiment_id == other.experiment_id


def test_ending_the_parent_kills_children_still_active(svc: TrackingService) -> None:
    with my.start_run() as parent:
        child = my.start_run(nested=True)  # never ended by the caller
        assert my.active_run() is child
    assert my.active_run() is None
    assert my.get_run(parent.run_id).info.status == "FINISHED"
    assert my.get_run(child.run_id).info.status == "KILLED"


def test_ending_a_nested_run_inside_its_block_leaves_the_parent_running(
    svc: TrackingService,
) -> None:
    with my.start_run(run_name="parent") as parent:
        with my.start_run(run_name="child", nested=True) as child:
            my.end_run("FAILED")  # ends the child early
            assert my.active_run() is parent
        # Leaving the child's block must not touch the parent.
        assert my.active_run() is parent
        assert svc.get_run(parent.run_id).info.status == "RUNNING"
        my.log_metric("after_child", 1.0)
    assert my.get_run(child.run_id).info.status == "FAILED"
    parent_run = my.get_run(parent.run_id)
    assert parent_run.info.status == "FINISHED"
    assert parent_run.data.metrics == {"after_child": 1.0}


def test_resuming_a_run_by_id_appends_to_it(svc: TrackingService) -> None:
    with my.start_run(run_name="first") as run:
        my.log_param("lr", 0.1)
        my.log_metric("loss", 0.9, step=0, timestamp=T0)
    first_end = my.get_run(run.run_id).info.end_time
    assert first_end is not None

    with my.start_run(run_id=run.run_id) as resumed:
        assert resumed.run_id == run.run_id
        info = svc.get_run(run.run_id).info
        assert info.status == "RUNNING" and info.end_time is None
        my.log_param("lr", 0.1)  # the same value again is fine
        my.log_metric("loss", 0.4, step=1, timestamp=T0 + 1)

    stored = my.get_run(run.run_id)
    assert stored.info.status == "FINISHED"
    assert stored.info.run_name == "first"
    assert stored.info.end_time >= first_end
    assert stored.data.params == {"lr": "0.1"}
    assert stored.data.metrics == {"loss": 0.4}
    assert points(run.run_id, "loss") == [(0.9, T0, 0), (0.4, T0 + 1, 1)]
    assert all_run_ids(svc) == {run.run_id}


def test_unknown_run_ids_are_clear_errors(svc: TrackingService) -> None:
    missing = "0" * 32
    with pytest.raises(ResourceNotFound, match=missing):
        my.get_run(missing)
    with pytest.raises(ResourceNotFound, match=missing):
        my.start_run(run_id=missing)
    assert my.active_run() is None
    with pytest.raises(InvalidParameter, match="32 lowercase hex"):
        my.get_run("not-a-run-id")
    assert all_run_ids(svc) == set()


def test_active_run_data_includes_queued_metrics(svc: TrackingService) -> None:
    with my.start_run() as run:
        my.log_param("p", "v")
        for i in range(100):
            my.log_metric("m", float(i), step=i)
        data = run.data  # flushes the queue first
        assert data.metrics == {"m": 99.0}
        assert data.params == {"p": "v"}
        assert store().count_metric_points(run.run_id) == 100


def test_set_experiment_names_the_experiment_of_the_next_runs(svc: TrackingService) -> None:
    exp_id = my.set_experiment("fraud")
    assert svc.get_experiment(exp_id).name == "fraud"
    assert my.set_experiment("fraud") == exp_id  # idempotent
    with my.start_run() as run:
        pass
    assert my.get_run(run.run_id).info.experiment_id == exp_id
    with my.start_run(experiment="other") as other:
        pass
    assert my.get_run(other.run_id).info.experiment_id != exp_id


def test_logging_without_an_active_run_is_a_clear_error(svc: TrackingService) -> None:
    for call in (
        lambda: my.log_metric("m", 1.0),
        lambda: my.log_param("p", 1),
        lambda: my.set_tag("t", "v"),
        lambda: my.log_text("x", "x.txt"),
    ):
        with pytest.raises(InvalidState, match="start_run"):
            call()
    assert all_run_ids(svc) == set()


# -- params ----------------------------------------------------------------------------


def test_params_are_immutable(svc: TrackingService) -> None:
    with my.start_run() as run:
        my.log_param("lr", 0.1)
        my.log_param("lr", 0.1)  # same value: accepted
        my.log_params({"lr": "0.1", "depth": 6})
        with pytest.raises(InvalidParameter, match="'lr'") as err:
            my.log_param("lr", 0.2)
        assert "0.1" in err.value.message and "0.2" in err.value.message
        # A batch with one conflicting param writes none of its params.
        with pytest.raises(InvalidParameter, match="'depth'"):
            my.log_params({"new_key": "x", "depth": 7})
    assert my.get_run(run.run_id).data.params == {"lr": "0.1", "depth": "6"}


def test_oversized_param_is_refused_and_nothing_is_stored(svc: TrackingService) -> None:
    with my.start_run() as run:
        my.log_param("edge", "x" * 6000)  # the limit itself is fine
        with pytest.raises(InvalidParameter, match=r"'big'.*6001.*6000"):
            my.log_param("big", "y" * 6001)
        with pytest.raises(InvalidParameter, match="'big'"):
            my.log_params({"small": 1, "big": "y" * 6001})
    assert my.get_run(run.run_id).data.params == {"edge": "x" * 6000}


@pytest.mark.parametrize("key", ["../x", "", "k" * 300, "/abs", "a/../b", "bad\nkey", "loss\n"])
def test_invalid_keys_are_refused_everywhere(svc: TrackingService, key: str) -> None:
    with my.start_run() as run:
        with pytest.raises(InvalidParameter):
            my.log_param(key, 1)
        with pytest.raises(InvalidParameter):
            my.log_metric(key, 1.0)
        with pytest.raises(InvalidParameter):
            my.log_metrics({"ok": 1.0, key: 2.0})
        with pytest.raises(InvalidParameter):
            my.set_tag(key, "v")
    stored = my.get_run(run.run_id)
    assert stored.data.params == {}
    # log_metrics validates key by key: "ok" came before the bad key.
    assert set(stored.data.metrics) <= {"ok"}
    assert key not in stored.data.tags


def test_key_of_250_characters_is_accepted(svc: TrackingService) -> None:
    key = "k" * 250
    with my.start_run() as run:
        my.log_param(key, 1)
        my.log_metric(key, 2.0)
        my.set_tag(key, "v")
    stored = my.get_run(run.run_id)
    assert stored.data.params == {key: "1"}
    assert stored.data.metrics == {key: 2.0}
    assert stored.data.tags[key] == "v"


# -- metrics ---------------------------------------------------------------------------


def test_metrics_with_steps_and_timestamps(svc: TrackingService) -> None:
    with my.start_run() as run:
        for i in range(5):
            my.log_metric("loss", 1 / (i + 1), step=i, timestamp=T0 + 10 * i)
        my.log_metrics({"acc": 0.5, "f1": 0.25}, step=7, timestamp=T0 + 99)
        before = int(time.time() * 1000)
        my.log_metric("plain", 3)
        after = int(time.time() * 1000)
    assert points(run.run_id, "loss") == [(1 / (i + 1), T0 + 10 * i, i) for i in range(5)]
    assert points(run.run_id, "acc") == [(0.5, T0 + 99, 7)]
    assert points(run.run_id, "f1") == [(0.25, T0 + 99, 7)]
    [(value, ts, step)] = points(run.run_id, "plain")
    assert (value, step) == (3.0, 0)  # default step 0
    assert before <= ts <= after  # default timestamp: now
    assert my.get_run(run.run_id).data.metrics == {"loss": 0.2, "acc": 0.5, "f1": 0.25, "plain": 3}


def test_log_metrics_shares_one_timestamp_when_none_is_given(svc: TrackingService) -> None:
    with my.start_run() as run:
        my.log_metrics({"a": 1.0, "b": 2.0, "c": 3.0}, step=2)
    stamps = {points(run.run_id, k)[0][1] for k in "abc"}
    assert len(stamps) == 1
    assert {k: points(run.run_id, k)[0][2] for k in "abc"} == {"a": 2, "b": 2, "c": 2}


def test_async_metrics_are_all_stored_when_the_block_exits(svc: TrackingService) -> None:
    n = 3000
    with my.start_run() as run:
        assert run.synchronous is False
        for i in range(n):
            my.log_metric("loss", 1 / (i + 1), step=i, timestamp=T0 + i)
    stored = points(run.run_id, "loss")
    assert len(stored) == n
    assert stored == [(1 / (i + 1), T0 + i, i) for i in range(n)]
    assert store().count_metric_points(run.run_id) == n
    assert my.get_run(run.run_id).data.metrics == {"loss": 1 / n}


def test_synchronous_run_writes_each_point_through(svc: TrackingService) -> None:
    with my.start_run(synchronous=True) as run:
        assert run.synchronous is True
        my.log_metric("loss", 0.7, step=0, timestamp=T0)
        assert points(run.run_id, "loss") == [(0.7, T0, 0)]
        my.log_metrics({"loss": 0.6, "acc": 0.9}, step=1, timestamp=T0 + 1)
        assert points(run.run_id, "loss") == [(0.7, T0, 0), (0.6, T0 + 1, 1)]
        assert points(run.run_id, "acc") == [(0.9, T0 + 1, 1)]
        assert store().get_run(run.run_id).data.metrics == {"loss": 0.6, "acc": 0.9}


def test_nan_and_infinite_values(svc: TrackingService) -> None:
    with my.start_run() as run:
        my.log_metric("m", math.nan, step=0, timestamp=T0)
        my.log_metric("m", math.inf, step=1, timestamp=T0)
        my.log_metric("m", -math.inf, step=2, timestamp=T0)
        my.log_metric("m", "NaN", step=3, timestamp=T0)  # numeric strings are numbers
        my.log_metric("only_nan", math.nan)
    history = my.get_metric_history(run.run_id, "m")
    assert [m.step for m in history] == [0, 1, 2, 3]
    assert math.isnan(history[0].value) and math.isnan(history[3].value)
    # Infinities are clamped to the largest finite double, as MLflow stores them.
    assert history[1].value == MAX_FLOAT
    assert history[2].value == -MAX_FLOAT
    latest = my.get_run(run.run_id).data.metrics
    assert math.isnan(latest["m"]) and math.isnan(latest["only_nan"])


def test_numpy_and_integer_values_are_stored_as_floats(svc: TrackingService) -> None:
    with my.start_run() as run:
        my.log_metric("a", np.float32(0.5), step=np.int64(2), timestamp=T0)
        my.log_metric("b", 7, timestamp=T0)
        my.log_metric("c", np.int64(-3), timestamp=T0)
    assert points(run.run_id, "a") == [(0.5, T0, 2)]
    assert points(run.run_id, "b") == [(7.0, T0, 0)]
    assert points(run.run_id, "c") == [(-3.0, T0, 0)]
    assert all(type(m.value) is float for m in my.get_metric_history(run.run_id, "a"))


@pytest.mark.parametrize("value", ["abc", None, [1.0], {"v": 1}, object()])
def test_non_numeric_metric_is_refused_at_the_call_site(svc: TrackingService, value) -> None:
    with my.start_run() as run:
        with pytest.raises(InvalidParameter, match="'acc'.*must be a number"):
            my.log_metric("acc", value)
        with pytest.raises(InvalidParameter, match="'acc'"):
            my.log_metrics({"acc": value})
        my.flush()  # nothing bad was queued: the writer has no error to report
    assert store().count_metric_points(run.run_id) == 0
    assert my.get_run(run.run_id).info.status == "FINISHED"


# -- failures of the background writer ------------------------------------------------


def test_writer_error_after_the_run_is_deleted_surfaces_on_flush(svc: TrackingService) -> None:
    run = my.start_run()
    my.log_metric("loss", 0.5, step=0, timestamp=T0)
    my.flush()
    svc.delete_run(run.run_id)
    for i in range(1, 11):
        my.log_metric("loss", 0.1, step=i, timestamp=T0 + i)
    with pytest.raises(ModelyardError, match="Asynchronous metric logging failed") as err:
        my.flush()
    assert "deleted" in err.value.message
    assert isinstance(err.value, InvalidState)  # the writer's error type is kept
    my.flush()  # reported once, not again and again

    svc.restore_run(run.run_id)
    my.end_run()
    assert my.active_run() is None
    assert points(run.run_id, "loss") == [(0.5, T0, 0)]  # nothing of the failed batch
    assert my.get_run(run.run_id).info.status == "FINISHED"


def test_writer_error_after_the_run_was_ended_behind_the_sdks_back_surfaces_on_end_run(
    svc: TrackingService,
) -> None:
    run = my.start_run()
    my.log_metric("acc", 0.8, step=0, timestamp=T0)
    my.flush()
    svc.end_run(run.run_id, RunStatus.KILLED)  # e.g. another process or the UI
    my.log_metric("acc", 0.9, step=1, timestamp=T0 + 1)
    with pytest.raises(ModelyardError, match="Asynchronous metric logging failed") as err:
        my.end_run()
    assert "KILLED" in err.value.message
    assert my.active_run() is None
    assert points(run.run_id, "acc") == [(0.8, T0, 0)]


def test_end_run_reports_lost_points_even_when_the_run_is_gone(svc: TrackingService) -> None:
    run = my.start_run()
    svc.delete_run(run.run_id)
    my.log_metric("loss", 0.5)
    # Two things failed: the queued point could not be written, and the run could not
    # be ended. The loss of data must be what the caller sees.
    with pytest.raises(ModelyardError, match="Asynchronous metric logging failed"):
        my.end_run()
    assert my.active_run() is None
    assert store().count_metric_points(run.run_id) == 0


# -- tags and artifacts --------------------------------------------------------------


def test_tags_are_strings_and_can_be_overwritten(svc: TrackingService) -> None:
    with my.start_run(tags={"stage": "dev"}) as run:
        my.set_tag("team", "growth")
        my.set_tags({"epochs": 10, "ratio": 0.5, "flag": True})
        my.set_tag("stage", "prod")
        my.set_tag("long", "v" * 8000)
        with pytest.raises(InvalidParameter, match="'too_long'"):
            my.set_tag("too_long", "v" * 8001)
    tags = my.get_run(run.run_id).data.tags
    assert tags["team"] == "growth"
    assert (tags["epochs"], tags["ratio"], tags["flag"]) == ("10", "0.5", "True")
    assert tags["stage"] == "prod"
    assert tags["long"] == "v" * 8000
    assert "too_long" not in tags


def test_artifacts_round_trip_byte_for_byte(svc: TrackingService, tmp_path: Path) -> None:
    blob = os.urandom(100_000)
    (tmp_path / "model.bin").write_bytes(blob)
    folder = tmp_path / "report"
    (folder / "sub").mkdir(parents=True)
    (folder / "index.html").write_text("<h1>hi</h1>")
    (folder / "sub" / "data.csv").write_text("a,b\n1,2\n")
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "one.txt").write_text("1")
    (flat / "nested").mkdir()
    (flat / "nested" / "two.txt").write_text("2")

    with my.start_run() as run:
        assert my.log_artifact(tmp_path / "model.bin") == "model.bin"
        assert my.log_artifact(tmp_path / "model.bin", "weights") == "weights/model.bin"
        assert my.log_artifact(folder) == "report"
        assert my.log_artifacts(flat, "flat_copy") == 2
        assert my.log_text("héllo\nwörld", "notes/readme.txt") == "notes/readme.txt"
        with pytest.raises(InvalidParameter, match="no such file"):
            my.log_artifact(tmp_path / "missing.bin")
        with pytest.raises(InvalidParameter, match="folder"):
            my.log_artifacts(tmp_path / "model.bin")

    c, rid = my.client(), run.run_id
    assert c.read_artifact(rid, "model.bin") == blob
    assert c.read_artifact(rid, "weights/model.bin") == blob
    assert c.read_artifact(rid, "report/index.html") == b"<h1>hi</h1>"
    assert c.read_artifact(rid, "report/sub/data.csv") == b"a,b\n1,2\n"
    assert c.read_artifact(rid, "flat_copy/one.txt") == b"1"
    assert c.read_artifact(rid, "flat_copy/nested/two.txt") == b"2"
    assert c.read_artifact(rid, "notes/readme.txt") == "héllo\nwörld".encode()
    listed = {(f.path, f.is_dir) for f in c.list_artifacts(rid)}
    assert listed == {
        ("model.bin", False),
        ("weights", True),
        ("report", True),
        ("flat_copy", True),
        ("notes", True),
    }
    assert [f.file_size for f in c.list_artifacts(rid) if f.path == "model.bin"] == [100_000]


def test_log_dict_as_json_and_yaml(svc: TrackingService) -> None:
    yaml = pytest.importorskip("yaml")
    data = {"model": {"type": "xgb", "depth": 6}, "features": ["a", "b"], "lr": 0.1}
    with my.start_run() as run:
        my.log_dict(data, "config.json")
        my.log_dict(data, "config/params.yaml")
        my.log_dict(data, "config/params.yml")
    c = my.client()
    assert json.loads(c.read_artifact(run.run_id, "config.json")) == data
    yaml_text = c.read_artifact(run.run_id, "config/params.yaml").decode()
    assert yaml.safe_load(yaml_text) == data
    assert not yaml_text.lstrip().startswith("{")  # YAML, not JSON in a .yaml file
    assert yaml.safe_load(c.read_artifact(run.run_id, "config/params.yml")) == data


def test_log_figure_stores_the_rendered_image(svc: TrackingService) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    fig.add_subplot().plot([0, 1, 2], [2, 0, 1])
    expected = io.BytesIO()
    fig.savefig(expected, format="png")

    with my.start_run() as run:
        assert my.log_figure(fig, "plots/loss.png") == "plots/loss.png"
        my.log_figure(fig, "plots/loss.svg")
        with pytest.raises(InvalidParameter, match="matplotlib or plotly"):
            my.log_figure({"not": "a figure"}, "x.png")

    c = my.client()
    png = c.read_artifact(run.run_id, "plots/loss.png")
    assert png.startswith(PNG_MAGIC)
    assert png == expected.getvalue()
    svg = c.read_artifact(run.run_id, "plots/loss.svg")
    assert b"<svg" in svg[:1000]
    assert [f.path for f in c.list_artifacts(run.run_id, "plots")] == [
        "plots/loss.png",
        "plots/loss.svg",
    ]


def test_invalid_artifact_paths_are_refused(svc: TrackingService) -> None:
    with my.start_run() as run:
        for bad in ("../escape.txt", "/abs.txt", "a/../../b.txt"):
            with pytest.raises(InvalidParameter, match="artifact path"):
                my.log_text("x", bad)
    assert my.client().list_artifacts(run.run_id) == []


# -- automatic capture ---------------------------------------------------------------


def test_runs_record_their_context(svc: TrackingService) -> None:
    with my.start_run() as run:
        pass
    tags = my.get_run(run.run_id).data.tags
    assert tags["mlflow.user"] == getpass.getuser()
    assert my.get_run(run.run_id).info.user_id == getpass.getuser()
    assert tags["modelyard.python_version"] == platform.python_version()
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["modelyard.version"] == my.__version__
    # The entry point is __main__'s file: pytest's script, or none in an xdist worker
    # (the script case is checked end to end in test_git_commit_and_entry_point_...).
    main_file = getattr(sys.modules["__main__"], "__file__", None)
    if main_file:
        assert tags["mlflow.source.name"] == str(Path(main_file).resolve())
    else:
        assert "mlflow.source.name" not in tags
    # numpy is loaded in this process, so its version is recorded.
    assert f"numpy=={np.__version__}" in tags["modelyard.packages"].split(", ")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def _run_script(script: Path, home: Path, db_url: str, artifacts: Path) -> str:
    env = {
        **os.environ,
        "MODELYARD_HOME": str(home),
        "MODELYARD_DB_URL": db_url,
        "MODELYARD_ARTIFACTS": str(artifacts),
    }
    done = subprocess.run(
        [sys.executable, script.name],
        cwd=script.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


TRAIN_SCRIPT = """\
import numpy  # a tracked package, loaded before the run starts
import modelyard as my

with my.start_run(experiment="git") as run:
    my.log_metric("acc", 0.75)
print(run.run_id)
"""


@pytest.mark.parametrize("refs", ["loose", "packed"])
def test_git_commit_and_entry_point_of_a_script(
    svc: TrackingService, tmp_path: Path, home: Path, db_url: str, refs: str
) -> None:
    repo = tmp_path / "project"
    repo.mkdir()
    _git(repo, "init", "-q")
    script = repo / "train.py"
    script.write_text(TRAIN_SCRIPT)
    _git(repo, "add", "train.py")
    _git(repo, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "first")
    (repo / "second.txt").write_text("2")
    _git(repo, "add", "second.txt")
    _git(repo, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "second")
    if refs == "packed":
        _git(repo, "pack-refs", "--all")
    head = _git(repo, "rev-parse", "HEAD")
    assert len(head) == 40

    run_id = _run_script(script, home, db_url, tmp_path / "artifacts")
    run = my.get_run(run_id)
    tags = run.data.tags
    assert tags["mlflow.source.git.commit"] == head
    assert tags["mlflow.source.git.repoURL"] == str(repo.resolve())
    assert tags["mlflow.source.name"] == str(script.resolve())
    assert tags["modelyard.python_version"] == platform.python_version()
    assert tags["mlflow.user"] == getpass.getuser()
    assert f"numpy=={np.__version__}" in tags["modelyard.packages"].split(", ")
    assert run.info.status == "FINISHED"
    assert run.data.metrics == {"acc": 0.75}


def test_script_outside_a_repository_records_no_commit(
    svc: TrackingService, tmp_path: Path, home: Path, db_url: str
) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    if subprocess.run(["git", "rev-parse"], cwd=folder, capture_output=True).returncode == 0:
        pytest.skip(f"{tmp_path} is inside a git repository")
    script = folder / "train.py"
    script.write_text(TRAIN_SCRIPT)
    tags = my.get_run(_run_script(script, home, db_url, tmp_path / "artifacts")).data.tags
    assert "mlflow.source.git.commit" not in tags
    assert tags["mlflow.source.name"] == str(script.resolve())


# -- queries ---------------------------------------------------------------------------


@pytest.fixture
def three_runs(svc: TrackingService) -> dict[str, str]:
    """Runs a, b, c in experiment "search" (and one run elsewhere): name -> run id."""
    ids = {}
    for name, lr, acc, team in (
        ("a", 0.1, 0.70, "x"),
        ("b", 0.01, 0.95, "y"),
        ("c", 0.1, 0.85, "y"),
    ):
        with my.start_run(experiment="search", run_name=name, tags={"team": team}) as run:
            my.log_params({"lr": lr, "opt": "adam"})
            my.log_metric("acc", 0.0, step=0)
            my.log_metric("acc", acc, step=1)
        ids[name] = run.run_id
    with my.start_run(experiment="elsewhere", run_name="z") as run:
        my.log_metric("acc", 0.99)
    ids["z"] = run.run_id
    return ids


def test_search_runs_returns_a_dataframe(three_runs: dict[str, str]) -> None:
    df = my.search_runs(["search"], order_by=["metrics.acc DESC"])
    assert list(df["run_name"]) == ["b", "c", "a"]
    assert list(df["run_id"]) == [three_runs[n] for n in "bca"]
    assert list(df["metrics.acc"]) == [0.95, 0.85, 0.70]  # latest value, not the step-0 one
    assert list(df["params.lr"]) == ["0.01", "0.1", "0.1"]
    assert list(df["params.opt"]) == ["adam"] * 3
    assert list(df["tags.team"]) == ["y", "y", "x"]
    assert list(df["status"]) == ["FINISHED"] * 3
    assert {"start_time", "end_time", "experiment_id", "tags.mlflow.runName"} <= set(df.columns)
    assert str(df["start_time"].dtype).startswith("datetime64")


def test_search_runs_filters_orders_and_limits(three_runs: dict[str, str]) -> None:
    names = lambda df: list(df["run_name"])  # noqa: E731
    assert names(my.search_runs(["search"], "params.lr = '0.1'", ["metrics.acc"])) == ["a", "c"]
    assert names(
        my.search_runs(["search"], "metrics.acc > 0.8 and tags.team = 'y'", ["attributes.run_name"])
    ) == ["b", "c"]
    assert names(
        my.search_runs(
            ["search"], "tags.team = 'x' OR metrics.acc >= 0.95", ["attributes.run_name DESC"]
        )
    ) == ["b", "a"]
    assert names(my.search_runs(["search"], order_by=["metrics.acc DESC"], max_results=2)) == [
        "b",
        "c",
    ]
    assert names(
        my.search_runs(["search"], "attributes.status = 'FINISHED'", ["attributes.run_name"])
    ) == [
        "a",
        "b",
        "c",
    ]
    # Without experiment names every experiment is searched.
    assert names(my.search_runs(order_by=["metrics.acc DESC"])) == ["z", "b", "c", "a"]
    assert my.search_runs(["search"], "metrics.acc > 0.99").empty
    with pytest.raises(InvalidParameter):
        my.search_runs(["search"], "metrics.acc >>> 1")
    with pytest.raises(ModelyardError, match="nope"):
        my.search_runs(["nope"])


def test_search_runs_as_a_list(three_runs: dict[str, str]) -> None:
    runs = my.search_runs(["search"], "tags.team = 'y'", ["metrics.acc"], output="list")
    assert [r.info.run_id for r in runs] == [three_runs["c"], three_runs["b"]]
    assert runs[0].data.params == {"lr": "0.1", "opt": "adam"}
    assert runs[0].data.metrics == {"acc": 0.85}
    with pytest.raises(InvalidParameter, match="output"):
        my.search_runs(["search"], output="json")


def test_search_runs_pages_past_one_page(svc: TrackingService) -> None:
    exp_id = my.set_experiment("many")
    ids = [svc.create_run(exp_id, run_name=f"r{i:03d}").info.run_id for i in range(25)]
    runs = my.search_runs(experiment_ids=[exp_id], order_by=["attributes.run_name"], output="list")
    assert [r.info.run_id for r in runs] == ids
    page = my.search_runs(experiment_ids=[exp_id], order_by=["attributes.run_name"], max_results=7)
    assert list(page["run_name"]) == [f"r{i:03d}" for i in range(7)]


def test_compare_runs_with_and_without_differences_only(three_runs: dict[str, str]) -> None:
    a, c = three_runs["a"], three_runs["c"]
    full = my.compare_runs([a, c])
    assert list(full.columns) == [f"a ({a[:8]})", f"c ({c[:8]})"]
    assert full.loc["params.lr"].tolist() == ["0.1", "0.1"]
    assert full.loc["metrics.acc"].tolist() == [0.70, 0.85]
    assert full.loc["tags.team"].tolist() == ["x", "y"]
    assert full.loc["attributes.status"].tolist() == ["FINISHED", "FINISHED"]

    diff = my.compare_runs([a, c], diff_only=True)
    assert {"metrics.acc", "tags.team", "attributes.start_time"} <= set(diff.index)
    for equal in ("params.lr", "params.opt", "attributes.status", "tags.modelyard.version"):
        assert equal in full.index and equal not in diff.index
    assert diff.loc["metrics.acc"].tolist() == [0.70, 0.85]
    assert set(diff.index) < set(full.index)


def test_metric_history_downsampling_keeps_extremes(svc: TrackingService) -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(0.0, 1.0, 5000)
    values[1234] = 50.0  # one spike
    values[4321] = -40.0  # one dip
    with my.start_run() as run:
        for start in range(0, 5000, 1000):
            svc.log_batch(
                run.run_id,
                metrics=[
                    Metric("noisy", float(values[i]), T0 + i, i) for i in range(start, start + 1000)
                ],
            )
    full = my.get_metric_history(run.run_id, "noisy")
    assert [m.step for m in full] == list(range(5000))
    assert [m.value for m in full] == values.tolist()

    for max_points in (4, 100, 1000):
        sampled = my.get_metric_history(run.run_id, "noisy", max_points=max_points)
        assert 0 < len(sampled) <= max_points
        steps = [m.step for m in sampled]
        assert steps == sorted(set(steps))  # ordered, no duplicates
        assert max(m.value for m in sampled) == 50.0
        assert min(m.value for m in sampled) == -40.0
        by_step = {m.step: m for m in sampled}
        assert by_step[1234].value == 50.0 and by_step[4321].value == -40.0
        assert steps[0] == 0 and steps[-1] == 4999
        assert all(m.value == values[m.step] and m.timestamp == T0 + m.step for m in sampled)
    # Fewer points than asked: everything comes back unchanged.
    assert my.get_metric_history(run.run_id, "noisy", max_points=10_000) == full
    with pytest.raises(InvalidParameter, match="max_points"):
        my.get_metric_history(run.run_id, "noisy", max_points=3)


# -- concurrency -----------------------------------------------------------------------

THREADS, PER_THREAD = 4, 5000


def _in_threads(target) -> None:
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not any(th.is_alive() for th in threads)
    assert errors == []


def test_concurrent_log_batch_writers_lose_nothing(svc: TrackingService) -> None:
    run = my.start_run()
    client = my.client()

    def write(i: int) -> None:
        for start in range(0, PER_THREAD, 250):
            client.log_batch(
                run.run_id,
                metrics=[
                    Metric(f"k{i}", float(s * 10 + i), T0 + s, s) for s in range(start, start + 250)
                ],
            )
        # And a shared key: distinct steps per thread.
        client.log_batch(
            run.run_id,
            metrics=[Metric("shared", float(i), T0, i * PER_THREAD + s) for s in range(PER_THREAD)],
        )

    _in_threads(write)
    my.end_run()
    assert store().count_metric_points(run.run_id) == 2 * THREADS * PER_THREAD
    for i in range(THREADS):
        assert points(run.run_id, f"k{i}") == [
            (float(s * 10 + i), T0 + s, s) for s in range(PER_THREAD)
        ]
    shared = points(run.run_id, "shared")
    assert [p[2] for p in shared] == list(range(THREADS * PER_THREAD))
    latest = my.get_run(run.run_id).data.metrics
    assert latest == {
        **{f"k{i}": float((PER_THREAD - 1) * 10 + i) for i in range(THREADS)},
        "shared": float(THREADS - 1),
    }


def test_concurrent_async_loggers_lose_nothing(svc: TrackingService) -> None:
    run = my.start_run()

    def write(i: int) -> None:
        for s in range(PER_THREAD):
            my.log_metric(f"k{i}", float(s), step=s, timestamp=T0 + s)

    _in_threads(write)
    my.end_run()
    assert store().count_metric_points(run.run_id) == THREADS * PER_THREAD
    for i in range(THREADS):
        assert points(run.run_id, f"k{i}") == [(float(s), T0 + s, s) for s in range(PER_THREAD)]
    assert my.get_run(run.run_id).data.metrics == {
        f"k{i}": float(PER_THREAD - 1) for i in range(THREADS)
    }


def test_configure_refuses_while_a_run_is_active(svc: TrackingService, tmp_path: Path) -> None:
    with my.start_run() as run:
        with pytest.raises(InvalidState, match="End the active run"):
            my.configure(home=tmp_path / "other")
        assert my.active_run() is run
        assert my.client() is svc
    assert my.get_run(run.run_id).info.status == "FINISHED"
