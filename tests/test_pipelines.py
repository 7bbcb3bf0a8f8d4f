"""Pipelines: the DAG from the data flow, tracked runs, caching, failures, retries,
resume, and the local and Ray executors, on the test's real store."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import modelyard as my
import pipeline_steps as ps
from modelyard.core.errors import InvalidParameter, StoreUnavailable
from modelyard.pipelines import resume_pipeline, run_pipeline


@pytest.fixture
def store(home: Path, db_url: str, tmp_path: Path, monkeypatch) -> Iterator[Path]:
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("PIPELINE_TEST_CALLS", str(calls))
    monkeypatch.setenv("PIPELINE_TEST_FAIL", str(tmp_path / "fail.txt"))
    my.configure(home=home, db_url=db_url, artifacts=str(tmp_path / "artifacts"))
    yield calls
    while my.active_run():
        my.end_run()
    my.client().store.close()


def calls(path: Path) -> list[str]:
    if not path.exists():
        return []
    found = path.read_text().split()
    path.unlink()
    return found


def children(run_id: str) -> dict[str, my.Run]:
    svc = my.client()
    parent = svc.get_run(run_id)
    runs = svc.find_runs([parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{run_id}'")
    return {r.data.tags["modelyard.step"]: r for r in runs}


def test_a_pipeline_runs_each_step_in_a_child_run_and_stores_outputs(store):
    run = run_pipeline(ps.numbers, {"n": 4})
    assert run.status == "FINISHED" and run.error is None
    assert run.result == {"summary": {"rows": 4, "mean": 1.5}, "total": 12.0}
    assert sorted(calls(store)) == ["load", "scale", "summarize", "total"]

    parent = my.get_run(run.run_id)
    assert parent.data.tags["modelyard.pipeline"] == "numbers"
    assert parent.data.tags["modelyard.pipeline.target"] == "pipeline_steps:numbers"
    assert parent.data.params == {"n": "4", "factor": "2.0"}
    kids = children(run.run_id)
    assert set(kids) == {"load", "summarize", "scale", "total"}
    assert all(k.info.status == "FINISHED" for k in kids.values())
    # A metric logged inside a step lands on that step's run; its print on its log.
    assert kids["summarize"].data.metrics == {"rows": 4.0}
    log = my.client().read_artifact(kids["load"].info.run_id, "logs/step.log").decode()
    assert "loading 4 rows" in log
    # Outputs are files in safe formats, loadable after the fact.
    listed = [f.path for f in my.client().list_artifacts(kids["load"].info.run_id, "outputs")]
    assert "outputs/value.parquet" in listed
    assert list(run.output("load").x) == [0, 1, 2, 3]


def test_a_second_run_is_cached_and_a_changed_parameter_reruns_only_its_steps(store):
    first = run_pipeline(ps.numbers, {"n": 4})
    calls(store)
    again = run_pipeline(ps.numbers, {"n": 4})
    assert {s.state for s in again.steps.values()} == {"cached"}
    assert calls(store) == []
    assert again.result == first.result
    cached = children(again.run_id)["total"]
    assert cached.data.tags["modelyard.step.state"] == "cached"
    assert cached.data.tags["modelyard.step.output_run"] == first.steps["total"].run_id

    changed = run_pipeline(ps.numbers, {"n": 4, "factor": 3.0})
    states = {k: s.state for k, s in changed.steps.items()}
    assert states == {"load": "cached", "summarize": "cached", "scale": "ran", "total": "ran"}
    assert sorted(calls(store)) == ["scale", "total"]
    assert changed.result["total"] == 18.0


def test_cache_controls_no_cache_invalidate_ttl_custom_key_and_lost_outputs(store):
    run_pipeline(ps.numbers, {"n": 3})
    calls(store)
    assert {s.state for s in run_pipeline(ps.numbers, {"n": 3}, no_cache=True).steps.values()} == {
        "ran"
    }
    calls(store)
    inv = run_pipeline(ps.numbers, {"n": 3}, invalidate=["scale"])
    assert inv.steps["scale"].state == "ran" and inv.steps["load"].state == "cached"
    # total's input is byte-identical to before, so total stays cached.
    assert inv.steps["total"].state == "cached"
    with pytest.raises(InvalidParameter, match="--invalidate names no step .*nope"):
        run_pipeline(ps.numbers, {"n": 3}, invalidate=["nope"])

    run_pipeline(ps.caching, {"n": 1, "noise": "a"})
    calls(store)
    second = run_pipeline(ps.caching, {"n": 1, "noise": "b"})  # custom key ignores noise
    assert second.steps["keyed"].state == "cached"
    time.sleep(0.3)  # short_lived's cache_ttl is 0.2 s
    third = run_pipeline(ps.caching, {"n": 1, "noise": "c"})
    assert third.steps["short_lived"].state == "ran" and third.steps["keyed"].state == "cached"

    # A cached run whose output files are gone is not reused.
    source = run_pipeline(ps.numbers, {"n": 7})
    folder = Path(my.client().get_run(source.steps["total"].run_id).info.artifact_uri)
    for f in (folder / "outputs").iterdir():
        f.unlink()
    rerun = run_pipeline(ps.numbers, {"n": 7})
    assert rerun.steps["total"].state == "ran" and rerun.steps["load"].state == "cached"


def test_a_failing_step_fails_the_run_skips_dependents_and_resume_reruns_from_it(store, tmp_path):
    (tmp_path / "fail.txt").write_text("1")
    run = run_pipeline(ps.fragile, {"n": 5})
    assert run.status == "FAILED"
    assert run.steps["flaky"].state == "failed" and run.steps["after"].state == "skipped"
    assert "RuntimeError: flaky failure (1 left)" in run.error
    parent = my.get_run(run.run_id)
    assert parent.info.status == "FAILED"
    assert "flaky failure" in parent.data.tags["modelyard.error"]
    kids = children(run.run_id)
    assert kids["flaky"].info.status == "FAILED" and kids["after"].info.status == "KILLED"
    log = my.client().read_artifact(kids["flaky"].info.run_id, "logs/step.log").decode()
    assert "Traceback" in log and "flaky failure" in log
    assert calls(store) == ["load", "flaky"]

    resumed = resume_pipeline(run.run_id)
    assert resumed.status == "FINISHED" and resumed.result == 6
    assert resumed.steps["load"].state == "reused"
    assert resumed.steps["flaky"].state == "ran" and resumed.steps["after"].state == "ran"
    assert calls(store) == ["flaky", "after"]
    assert my.get_run(resumed.run_id).data.tags["modelyard.pipeline.resumed_from"] == run.run_id


def test_retries_with_backoff_recover_a_flaky_step(store, tmp_path):
    (tmp_path / "fail.txt").write_text("2")
    run = run_pipeline(ps.sturdy, {"n": 5})
    assert run.status == "FINISHED" and run.steps["flaky_retried"].attempts == 3
    (tmp_path / "fail.txt").write_text("5")
    failed = run_pipeline(ps.sturdy, {"n": 6})
    assert failed.status == "FAILED" and failed.steps["flaky_retried"].attempts == 3


def test_bad_definitions_are_refused_before_anything_runs(store):
    svc = my.client()
    before = len(svc.all_experiments())
    with pytest.raises(
        InvalidParameter, match="Step 'needs_two': missing a required argument: 'b'"
    ):
        run_pipeline(ps.missing_input)
    with pytest.raises(InvalidParameter, match="cycle: (a -> b -> a|b -> a -> b)"):
        run_pipeline(ps.cyclic)
    with pytest.raises(InvalidParameter, match="no parameter.*bogus"):
        run_pipeline(ps.numbers, {"bogus": 1})
    with pytest.raises(InvalidParameter, match="package.module:attr"):
        run_pipeline("pipeline_steps.numbers")
    with pytest.raises(InvalidParameter, match="not a pipeline"):
        run_pipeline("pipeline_steps:load")
    assert len(svc.all_experiments()) == before  # no run, not even an experiment


def test_an_unsafe_output_fails_the_step_with_the_way_out(store):
    run = run_pipeline(ps.unsafe)
    assert run.status == "FAILED"
    assert "cannot store in a safe format" in run.error and "allow_pickle=True" in run.error


def test_parallel_branches_run_in_worker_processes(store):
    run = run_pipeline(ps.branches, executor="local", workers=2)
    assert run.status == "FINISHED", run.error
    pids = run.output("join")
    assert len(set(pids)) == 2 and os.getpid() not in pids
    assert {s.seconds > 0 for s in run.steps.values() if s.state == "ran"} == {True}


def test_ray_unreachable_names_the_address(store):
    with pytest.raises(StoreUnavailable, match=r"ray://127\.0\.0\.1:1"):
        run_pipeline(ps.squares, executor="ray", ray_address="ray://127.0.0.1:1")


def test_the_ray_executor_runs_steps_as_ray_tasks(store, monkeypatch):
    tests_dir = str(Path(ps.__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([tests_dir, os.environ.get("PYTHONPATH", "")]))
    run = run_pipeline(ps.squares, {"k": 3}, executor="ray")
    assert run.status == "FINISHED", run.error
    assert run.result == [0, 1, 4]
    kids = children(run.run_id)
    assert set(kids) == {"square", "square_2", "square_3"}
    assert all(k.data.tags["modelyard.step.state"] == "ran" for k in kids.values())
    again = run_pipeline(ps.squares, {"k": 3}, executor="ray")
    assert {s.state for s in again.steps.values()} == {"cached"}


def test_the_cli_runs_shows_and_resumes(store, tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from modelyard.cli.main import app

    settings = my.client().store.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MODELYARD_DB_URL", settings)
    monkeypatch.setenv("MODELYARD_ARTIFACTS", str(tmp_path / "artifacts"))

    def cli(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})
        assert result.exit_code == code, result.output
        return result.output

    out = cli("pipelines", "run", "pipeline_steps:numbers", "-p", "n=3", "-p", "factor=0.5")
    assert "Pipeline numbers: FINISHED" in out and "scale" in out and "ran" in out
    again = cli(
        "pipelines", "run", "pipeline_steps:numbers", "-p", "n=3", "-p", "factor=0.5", "--json"
    )
    assert {s["state"] for s in json.loads(again)["steps"].values()} == {"cached"}

    (tmp_path / "fail.txt").write_text("1")
    out = cli("pipelines", "run", "pipeline_steps:fragile", code=1)
    assert "failed" in out and "skipped" in out and "flaky failure" in out
    (tmp_path / "fail.txt").write_text("1")
    failed = json.loads(
        cli("pipelines", "run", "pipeline_steps:fragile", "-p", "n=6", "--json", code=1)
    )
    assert failed["status"] == "FAILED"
    step_run = failed["steps"]["flaky"]["run_id"]
    assert "is a step of pipeline run" in cli("pipelines", "resume", step_run, code=1)
    out = cli("pipelines", "resume", failed["run_id"])
    assert "FINISHED" in out and "reused" in out
    assert "nothing to resume" in cli("pipelines", "resume", json.loads(again)["run_id"], code=1)


def test_a_search_step_fans_out_trials_as_child_runs_and_returns_the_best(store):
    run = run_pipeline(ps.tuning, {"mode": "grid", "workers": 2})
    assert run.status == "FINISHED", run.error
    assert run.result == {"best": {"C": 1.0}, "value": 4.0, "trials": 4}
    step_run = run.steps["tune"].run_id
    svc = my.client()
    trials = svc.find_runs(
        [svc.get_run(step_run).info.experiment_id], f"tags.`mlflow.parentRunId` = '{step_run}'"
    )
    assert len(trials) == 4
    by_c = {t.data.params["C"]: t for t in trials}
    assert by_c["0"].info.status == "FAILED"  # a failed trial is recorded, not fatal
    assert by_c["1.0"].data.metrics["score"] == 4.0
    assert svc.get_run(step_run).data.tags["modelyard.search.best_run"] == by_c["1.0"].info.run_id

    rnd = run_pipeline(ps.tuning, {"mode": "random"})
    assert rnd.result["trials"] == 6 and 0.01 <= rnd.result["best"]["C"] <= 2.0
    again = run_pipeline(ps.tuning, {"mode": "random"}, no_cache=True)
    assert again.result == rnd.result  # the seed makes the draws repeatable
