"""The pipelines agent: cron, dataset and alert triggers fire each event exactly
once, across repeated passes, a second agent and a killed agent; concurrency
limits; bad configurations; ``modelyard pipelines runs``; and a real agent process
killed mid-run and started again, on the test's real store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import modelyard as my
from modelyard.cli import Services
from modelyard.cli.agent import agent as agent_command
from modelyard.cli.agent import pipelines_runs
from modelyard.core.config import load_settings
from modelyard.core.errors import InvalidParameter
from modelyard.core.ids import new_id, now_ms
from modelyard.monitor.alerts import Alert
from modelyard.monitor.sql_store import SqlMonitorStore
from modelyard.pipelines.agent import TAG_INTERRUPTED, Agent, open_agent
from modelyard.pipelines.agent_config import AgentConfig, PipelineSpec
from modelyard.pipelines.agent_history import pipeline_runs
from modelyard.pipelines.agent_store import EventRecord, SqlAgentStore
from modelyard.pipelines.agent_worker import engine_of, execute_event, job_for, pid_alive
from modelyard.pipelines.runner import run_pipeline
from modelyard.pipelines.triggers import Event, ScheduleTrigger
from modelyard.tracking.backends import open_tracking

PIPES = '''
"""Pipelines the agent tests fire (a module, so worker processes import it)."""
import os
import time
from pathlib import Path

from modelyard.pipelines import pipeline, step


@step(cache=False)
def note(kind: str, key: str, ref: str) -> str:
    return f"{kind} {key} {ref}"


@pipeline
def retrain(kind: str = "", key: str = "", ref: str = ""):
    return note(kind, key, ref)


@step(cache=False)
def hold(key: str) -> str:
    """Waits (60 s at most) for the file AGENT_TEST_RELEASE names."""
    release = Path(os.environ["AGENT_TEST_RELEASE"])
    deadline = time.time() + 60
    while not release.exists() and time.time() < deadline:
        time.sleep(0.05)
    return key


@pipeline
def slow(key: str = ""):
    return hold(key)


not_a_pipeline = 42
'''


@pytest.fixture
def env(settings_env, home: Path, db_url: str, tmp_path: Path, monkeypatch) -> Iterator[dict]:
    (tmp_path / "agent_pipes.py").write_text(PIPES)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), *sys.path]))
    monkeypatch.setenv("AGENT_TEST_RELEASE", str(tmp_path / "release"))
    my.configure(home=home, db_url=db_url, artifacts=settings_env["MODELYARD_ARTIFACTS"])
    sys.modules.pop("agent_pipes", None)
    yield dict(os.environ)
    while my.active_run():
        my.end_run()
    my.client().store.close()
    sys.modules.pop("agent_pipes", None)


class Done:
    """A worker that has already ended."""

    def __init__(self, code: int) -> None:
        self.code, self.pid = code, os.getpid()

    def poll(self) -> int | None:
        return self.code

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


class InlineLauncher:
    """Runs each event's pipeline at once, in this process (what a worker does)."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, spec: PipelineSpec, record: EventRecord) -> Done:
        self.started.append(record.event_key)
        tracking = open_tracking(load_settings())
        store = SqlAgentStore(engine_of(tracking))
        return Done(execute_event(store, tracking, record.event_id, job_for(spec, record)))


class Held:
    """A worker that runs until the test releases it (then records its event)."""

    def __init__(self, store: SqlAgentStore, record: EventRecord) -> None:
        self.store, self.record, self.pid, self.done = store, record, os.getpid(), False

    def release(self) -> None:
        self.store.finish(self.record.event_id, "finished")
        self.done = True

    def poll(self) -> int | None:
        return 0 if self.done else None

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


class HeldLauncher:
    def __init__(self, store: SqlAgentStore) -> None:
        self.store, self.workers = store, []

    def start(self, spec: PipelineSpec, record: EventRecord) -> Held:
        worker = Held(self.store, record)
        self.workers.append(worker)
        return worker


def config(*triggers: dict, target: str = "agent_pipes:retrain", **options) -> AgentConfig:
    params = options.pop("params", {"kind": "${trigger.kind}", "key": "${trigger.key}"})
    entry = {"target": target, "params": params, "triggers": list(triggers), **options}
    return AgentConfig.from_dict({"pipelines": [entry]})


def make_agent(cfg: AgentConfig, launcher=None) -> Agent:
    return open_agent(cfg, load_settings(), poll_seconds=1.0, launcher=launcher or InlineLauncher())


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def register(name: str, tmp_path: Path, n: int) -> int:
    path = tmp_path / f"{name}-{n}.parquet"
    pd.DataFrame({"x": range(n + 3), "y": [n] * (n + 3)}).to_parquet(path)
    return my.data.register(name, path).version


def alert(model: str, rule: str = "drift", *, trigger: bool = True, metric: str = "drift_share"):
    store = SqlMonitorStore(engine_of(my.client()))
    fired = Alert(
        new_id(), rule, model, metric, 0.5, "> 0.3", "warning", "drifted", now_ms(), trigger
    )
    store.add_alert(fired)
    return fired


def events(agent: Agent) -> list[EventRecord]:
    return sorted(agent.store.events(limit=1000), key=lambda r: (r.occurred_at, r.event_key))


# -- triggers -----------------------------------------------------------------------------


def test_a_schedule_fires_once_per_tick_and_catches_up_only_the_latest_missed_tick(env):
    cfg = config({"schedule": "*/5 * * * *"})
    agent = make_agent(cfg)
    first = agent.tick(at("2026-03-01T12:07:30"))  # armed: the 12:05 tick is history
    assert first.armed == [("retrain", "schedule:*/5 * * * *")] and first.recorded == []
    assert agent.tick(at("2026-03-01T12:09:59")).launched == []

    report = agent.tick(at("2026-03-01T12:10:05"))
    assert [r.event_key for r in report.launched] == ["schedule:2026-03-01T12:10Z"]
    assert agent.tick(at("2026-03-01T12:10:05")).launched == []  # the same pass again
    assert agent.tick(at("2026-03-01T12:14:00")).launched == []
    other = make_agent(cfg)  # a second agent on the same store sees nothing new either
    assert other.tick(at("2026-03-01T12:14:30")).launched == []

    # Down from 12:14 to 13:02: eleven ticks missed, one run (for 13:00).
    report = agent.tick(at("2026-03-01T13:02:00"))
    assert [r.event_key for r in report.launched] == ["schedule:2026-03-01T13:00Z"]
    recorded = events(agent)
    assert [(r.event_key, r.status) for r in recorded] == [
        ("schedule:2026-03-01T12:10Z", "finished"),
        ("schedule:2026-03-01T13:00Z", "finished"),
    ]
    assert recorded[1].payload["missed_ticks"] is True
    run = my.client().get_run(recorded[1].run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["key"] == "schedule:2026-03-01T13:00Z"  # ${trigger.key}
    trigger = json.loads(run.data.tags["modelyard.trigger"])
    assert trigger["event_id"] == recorded[1].event_id and trigger["kind"] == "schedule"


def test_a_schedule_reads_its_timezone():
    paris = ScheduleTrigger("0 3 * * *", timezone="Europe/Paris")
    assert paris.latest_tick(at("2026-07-01T01:30:00")).astimezone(UTC) == at("2026-07-01T01:00")
    assert ScheduleTrigger("@hourly").name == "schedule:@hourly"


def test_each_new_dataset_version_fires_once_and_waiting_versions_coalesce(env, tmp_path):
    register("churn", tmp_path, 1)
    cfg = config(
        {"dataset": "churn"},
        params={"kind": "${trigger.kind}", "key": "${trigger.key}", "ref": "${trigger.ref}"},
    )
    agent = make_agent(cfg)
    assert agent.tick().recorded == []  # churn@1 existed before: history
    register("churn", tmp_path, 2)
    report = agent.tick()
    assert [r.event_key for r in report.launched] == ["dataset:churn@2"]
    assert agent.tick().launched == []

    register("churn", tmp_path, 3)
    register("churn", tmp_path, 4)
    report = agent.tick()  # both wait at once: only the newest runs
    assert [r.event_key for r in report.launched] == ["dataset:churn@4"]
    by_key = {r.event_key: r for r in events(agent)}
    assert by_key["dataset:churn@3"].status == "skipped"
    assert by_key["dataset:churn@3"].error == "coalesced into dataset:churn@4"
    assert by_key["dataset:churn@4"].status == "finished"
    run = my.client().get_run(by_key["dataset:churn@4"].run_id)
    assert run.data.params["ref"] == "churn@4"  # the run trains on exactly that version
    assert agent.tick().launched == []


def test_each_trigger_alert_fires_once_filtered_by_model_and_rule(env):
    cfg = config({"alert": "churn", "rule": "drift"}, {"alert": "churn", "metric": "accuracy"})
    agent = make_agent(cfg)
    agent.tick()
    wanted = [alert("churn"), alert("churn"), alert("churn", "perf", metric="accuracy")]
    alert("churn", trigger=False)  # no `trigger` sink: not for retraining
    alert("fraud")  # another model
    alert("churn", "other-rule", metric="psi")  # a rule neither trigger names
    report = agent.tick()
    assert sorted(r.event_key for r in report.launched) == sorted(f"alert:{a.id}" for a in wanted)
    assert {r.status for r in events(agent)} == {"finished"}
    assert agent.tick().launched == []


# -- crashes and limits -----------------------------------------------------------------------


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_an_agent_killed_mid_run_leaves_a_failed_run_and_the_event_never_fires_again(env):
    cfg = config({"dataset": "churn"})
    agent = make_agent(cfg)
    store, tracking = agent.store, agent.tracking
    store.arm("retrain", "dataset:churn", "dataset", {"version": 0})
    # What a killed agent leaves: two claimed events, one with a run still RUNNING.
    gone = "gone-host:1:dead"
    store.register_agent(gone, agent.hostname, dead_pid(), 1.0)
    store.record(
        "retrain",
        "dataset:churn",
        "dataset",
        [
            Event("dataset:churn", "dataset", "dataset:churn@1", 1, {"ref": "churn@1"}),
            Event("dataset:churn", "dataset", "dataset:churn@2", 2, {"ref": "churn@2"}),
        ],
        {"version": 2},
    )
    first = store.claim_next("retrain", max_concurrent=5, coalesce=(), agent_id=gone)
    assert store.claim_next("retrain", max_concurrent=5, coalesce=(), agent_id=gone)
    exp = tracking.get_or_create_experiment("retrain").experiment_id
    doc = json.dumps({"event_id": first.event_id, "key": first.event_key, "kind": "dataset"})
    parent = tracking.create_run(
        exp, run_name="retrain", tags={"modelyard.pipeline": "retrain", "modelyard.trigger": doc}
    ).info.run_id
    child = tracking.create_run(
        exp, run_name="note", tags={"modelyard.step": "note"}, parent_run_id=parent
    ).info.run_id
    store.set_running(first.event_id, parent)

    report = agent.tick()  # the next agent starts
    assert {r.event_key for r in report.recovered} == {"dataset:churn@1", "dataset:churn@2"}
    assert report.launched == []  # nothing fires again
    for run_id in (parent, child):
        run = tracking.get_run(run_id)
        assert run.info.status == "FAILED"
        assert run.data.tags[TAG_INTERRUPTED] == "interrupted: agent stopped"
    again = {r.event_key: r for r in events(agent)}
    assert again["dataset:churn@1"].status == "failed"
    assert again["dataset:churn@1"].run_id == parent
    assert again["dataset:churn@2"].status == "failed"  # killed before its run began
    assert again["dataset:churn@2"].error == "interrupted: agent stopped"
    assert agent.tick().launched == [] and agent.tick().recovered == []
    assert len(events(agent)) == 2


def test_a_live_agents_runs_are_not_taken_over(env):
    cfg = config({"alert": "churn"})
    first = make_agent(cfg, HeldLauncher(None))
    first.launcher.store = first.store
    first.tick()
    alert("churn")
    assert len(first.tick().launched) == 1
    second = make_agent(cfg)
    assert second.tick().recovered == []  # same machine, process alive, heartbeat fresh
    assert [r.status for r in events(second)] == ["claimed"]
    first.close()  # once it is gone, its events are another agent's to settle
    assert [r.event_key for r in second.tick().recovered] == [events(second)[0].event_key]
    assert [r.status for r in events(second)] == ["failed"]


def test_a_pipeline_never_runs_more_than_its_limit_and_waiting_alerts_queue(env):
    cfg = config({"alert": "churn"}, max_concurrent=2)
    launcher = HeldLauncher(None)
    agent = make_agent(cfg, launcher)
    launcher.store = agent.store
    agent.tick()
    for _ in range(4):
        alert("churn")
    assert len(agent.tick().launched) == 2
    assert agent.tick().launched == []
    statuses = sorted(r.status for r in events(agent))
    assert statuses == ["claimed", "claimed", "pending", "pending"]
    launcher.workers[0].release()
    assert len(agent.tick().launched) == 1  # one slot freed, one more runs
    for worker in launcher.workers[1:]:
        worker.release()
    assert len(agent.tick().launched) == 1
    launcher.workers[-1].release()
    agent.tick()
    assert sorted(r.status for r in events(agent)) == ["finished"] * 4
    assert len({r.event_key for r in events(agent)}) == 4  # alerts queue, never coalesce


# -- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"triggers": [{"webhook": "x"}]}, "unknown trigger kind 'webhook'"),
        ({"triggers": [{"schedule": "61 * * * *"}]}, "schedule '61 * * * *' is not a cron"),
        ({"triggers": [{"schedule": "* * * *"}]}, "expected five fields"),
        ({"triggers": [{"schedule": "0 3 * * *", "timezone": "Mars/Olympus"}]}, "Mars/Olympus"),
        ({"triggers": [{"dataset": "churn", "rule": "x"}]}, "unknown option 'rule'"),
        ({"triggers": [{"dataset": "a", "alert": "b"}]}, "exactly one of schedule, dataset"),
        ({"target": "no_such_module:p"}, "unknown pipeline target: Cannot import 'no_such"),
        ({"target": "agent_pipes:missing"}, "'agent_pipes:missing' is not a pipeline"),
        ({"target": "agent_pipes:not_a_pipeline"}, "is not a pipeline"),
        ({"target": "agent_pipes"}, "package.module:attr"),
        ({"params": {"epochs": 3}}, "has no parameter(s) epochs"),
        ({"params": {"ref": "${trigger.ref}"}}, "${trigger.ref}, which trigger 'schedule:"),
        ({"max_concurrent": 0}, "max_concurrent must be a whole number"),
        ({"executor": "spark"}, "unknown executor 'spark'"),
        ({"triggers": [{"dataset": "a"}, {"dataset": "a"}]}, "two triggers are named"),
        ({"triggers": []}, "'triggers' lists at least one"),
    ],
)
def test_a_bad_configuration_is_refused_naming_the_problem(env, entry, message):
    base = {"target": "agent_pipes:retrain", "triggers": [{"schedule": "0 3 * * *"}]}
    with pytest.raises(InvalidParameter) as info:
        AgentConfig.from_dict({"pipelines": [{**base, **entry}]}, source="agent.yaml")
    assert message in info.value.message
    assert info.value.message.startswith("agent.yaml: pipelines[0]")


def test_a_configuration_file_loads_and_its_errors_name_the_file(env, tmp_path):
    good = tmp_path / "agent.yaml"
    good.write_text(
        textwrap.dedent(
            """
            pipelines:
              - target: agent_pipes:retrain
                params: {ref: "${trigger.ref}", key: "${trigger.key}"}
                max_concurrent: 2
                triggers:
                  - dataset: churn
                  - dataset: churn-eu
                    name: eu
            """
        )
    )
    spec = AgentConfig.load(good).pipeline("retrain")
    assert [t.name for t in spec.triggers] == ["dataset:churn", "eu"]
    assert spec.max_concurrent == 2 and spec.target == "agent_pipes:retrain"
    (tmp_path / "bad.yaml").write_text("pipelines: [")
    with pytest.raises(InvalidParameter, match="bad.yaml: not valid YAML"):
        AgentConfig.load(tmp_path / "bad.yaml")
    with pytest.raises(InvalidParameter, match="No agent configuration at"):
        AgentConfig.load(tmp_path / "missing.yaml")


# -- the command line -----------------------------------------------------------------------


def cli_app() -> typer.Typer:
    """``agent`` and ``pipelines runs`` as the root app mounts them."""
    from modelyard.cli.main import _Group

    app = typer.Typer(cls=_Group)
    app.command("agent")(agent_command)
    runs = typer.Typer()
    runs.command("runs")(pipelines_runs)
    app.add_typer(runs, name="pipelines")

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.ensure_object(Services)

    return app


def test_pipelines_runs_lists_what_ran_and_why(env, tmp_path):
    register("churn", tmp_path, 1)
    cfg = config({"dataset": "churn"}, params={"ref": "${trigger.ref}", "key": "${trigger.key}"})
    agent = make_agent(cfg)
    agent.tick()
    for n in (2, 3):
        register("churn", tmp_path, n)
    agent.tick()  # churn@3 runs, churn@2 is coalesced
    manual = run_pipeline("agent_pipes:retrain", {"key": "by hand"})

    rows = pipeline_runs(agent.store, agent.tracking, "retrain")
    assert [(r.reason, r.status) for r in rows] == [
        ("manual", "FINISHED"),
        ("new dataset version churn@3", "FINISHED"),
        ("new dataset version churn@2", "SKIPPED"),
    ]
    assert rows[0].run_id == manual.run_id and rows[1].event_key == "dataset:churn@3"
    assert rows[2].error == "coalesced into dataset:churn@3"

    runner = CliRunner()
    out = runner.invoke(cli_app(), ["pipelines", "runs"], env={"COLUMNS": "250"})
    assert out.exit_code == 0, out.output
    assert "new dataset version churn@3" in out.output and "manual" in out.output
    assert "coalesced into dataset:churn@3" in out.output
    out = runner.invoke(
        cli_app(), ["pipelines", "runs", "--pipeline", "retrain", "--json"], env={"COLUMNS": "250"}
    )
    doc = json.loads(out.output)
    assert [d["kind"] for d in doc] == [None, "dataset", "dataset"]
    assert doc[1]["event_status"] == "finished" and doc[1]["trigger"] == "dataset:churn"
    out = runner.invoke(cli_app(), ["pipelines", "runs", "--pipeline", "nothing"])
    assert out.exit_code == 0 and "no pipeline runs yet" in out.output

    (tmp_path / "bad.yaml").write_text(
        "pipelines:\n  - target: agent_pipes:retrain\n    triggers: [{cron: '* * * * *'}]\n"
    )
    out = runner.invoke(cli_app(), ["agent", "--config", str(tmp_path / "bad.yaml"), "--once"])
    assert out.exit_code == 1
    assert "unknown trigger kind 'cron'; expected one of schedule, dataset, alert" in out.output


# -- a real agent process ---------------------------------------------------------------------


_AGENT_APP = """
import typer
from modelyard.cli.agent import agent

app = typer.Typer()
app.command("agent")(agent)


@app.callback()
def root() -> None: ...


app(prog_name="modelyard")
"""


def _cli_argv() -> list[str]:
    """``modelyard`` once the root app mounts ``agent``; until then, the command alone."""
    from modelyard.cli.main import app

    if any(c.name == "agent" for c in app.registered_commands):
        return [sys.executable, "-m", "modelyard.cli.main"]
    return [sys.executable, "-c", _AGENT_APP]


def wait_for(what: Callable[[], object], timeout: float = 30.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_real_agent_killed_mid_run_is_taken_over_on_restart_exactly_once(env, tmp_path):
    """An agent SIGKILLed with its run's worker leaves a run that the next agent marks
    FAILED without firing the event again; an agent SIGKILLed alone leaves a worker
    that the next agent adopts; SIGTERM stops an agent after its runs end."""
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        "pipelines:\n  - target: agent_pipes:slow\n    params: {key: '${trigger.key}'}\n"
        "    triggers: [{dataset: churn}]\n"
    )
    register("churn", tmp_path, 1)
    store = SqlAgentStore(engine_of(my.client()))
    argv = [*_cli_argv(), "agent", "--config", str(cfg), "--poll", "0.2s"]

    def start() -> subprocess.Popen:
        return subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)

    def event(key: str) -> EventRecord | None:
        return next((r for r in store.events(limit=100) if r.event_key == key), None)

    def running(key: str) -> EventRecord:
        return wait_for(lambda: (e := event(key)) and e.run_id and e)

    # 1. Agent and worker killed mid-run (a lost machine, an OOM kill of the group).
    proc = start()
    wait_for(lambda: store.trigger_state("slow", "dataset:churn"))
    register("churn", tmp_path, 2)
    first = running("dataset:churn@2")
    proc.kill()  # the agent first: alive, it would see its worker die and record that
    proc.wait(timeout=20)
    os.kill(first.worker_pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(first.worker_pid))

    # 2. The next agent (one pass) marks the run FAILED; nothing fires again.
    again = subprocess.run([*argv, "--once", "--json"], env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert [e["event_key"] for e in report["events"]] == ["dataset:churn@2"]
    assert report["events"][0]["status"] == "failed" and report["recorded"] == []
    run = my.client().get_run(first.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags[TAG_INTERRUPTED] == "interrupted: agent stopped"

    # 3. The agent alone killed: its worker lives on...
    proc = start()
    register("churn", tmp_path, 3)
    second = running("dataset:churn@3")
    proc.kill()
    proc.wait(timeout=20)
    # ...the next agent adopts it; SIGTERM makes that agent wait for the run to end.
    proc = start()
    wait_for(lambda: event("dataset:churn@3").agent_id != second.agent_id)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert proc.poll() is None  # still waiting for the adopted run
    (tmp_path / "release").write_text("go")
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    assert event("dataset:churn@3").status == "finished"
    assert my.client().get_run(second.run_id).info.status == "FINISHED"

    # Exactly once: one event and one run per version, whatever was killed.
    keys = sorted(r.event_key for r in store.events(limit=100))
    assert keys == ["dataset:churn@2", "dataset:churn@3"]
    exp = my.client().get_experiment_by_name("slow").experiment_id
    parents = my.client().find_runs([exp], "tags.`modelyard.step` IS NULL")
    assert len(parents) == 2
