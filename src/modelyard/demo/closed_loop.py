"""The closed loop that ``modelyard demo`` (``make demo``) runs, unattended, on the
embedded default: no network beyond loopback, no services.

1. churn data v1 is registered and a validation suite inferred from it;
2. the continuous-training pipeline validates, trains, evaluates, registers
   churn v1 and creates the ``churn`` deployment; a gateway serves it and a
   traffic generator sends it requests;
3. drifted data v2 arrives and traffic drifts with it; the monitoring check fires
   the drift alert; the agent, triggered by the alert, runs the pipeline on v2:
   evaluation against the champion, registration, canary under live traffic,
   promotion;
4. a deliberately broken model is pushed by hand; its canary fails the error-rate
   gate and is rolled back automatically.

Every event lands on a timeline with its figures (drift scores, gate values,
weights); the drift report (HTML) and the model card are written under
``demo-output/``; the end lists the commands that inspect all of it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

import modelyard as my
from modelyard.core.errors import InvalidState

__all__ = ["DemoFailed", "Timeline", "run_closed_loop"]


class DemoFailed(InvalidState):
    """A stage of the loop did not do what the demo shows (the message says which)."""


TARGET = "churned"
MODEL = "churn"
DEPLOYMENT = "churn"
FEATURES = ["tenure", "charges", "support_calls"]


@dataclass
class Event:
    at: float
    phase: str
    what: str
    figures: str = ""


@dataclass
class Timeline:
    """What happened, when (seconds since the start), with the measured figures."""

    console: Console
    started: float = field(default_factory=time.time)
    events: list[Event] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)

    def add(self, phase: str, what: str, figures: str = "", at_ms: int | None = None) -> None:
        """Record an event now, or at ``at_ms`` (epoch ms) when it happened elsewhere."""
        at = (at_ms / 1000 if at_ms else time.time()) - self.started
        event = Event(at, phase, what, figures)
        self.events.append(event)
        extra = f"  [dim]{figures}[/dim]" if figures else ""
        self.console.print(f"[cyan]{event.at:6.1f}s[/cyan] [bold]{phase}[/bold]  {what}{extra}")

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        began = time.monotonic()
        try:
            yield
        finally:
            self.phases[name] = time.monotonic() - began

    def table(self) -> Table:
        table = Table(title="Timeline", title_justify="left")
        for name in ("t (s)", "phase", "event", "figures"):
            table.add_column(name, justify="right" if name == "t (s)" else "left")
        for e in sorted(self.events, key=lambda e: e.at):
            table.add_row(f"{e.at:.1f}", e.phase, e.what, e.figures)
        return table

    def phase_table(self) -> Table:
        table = Table(title="Wall time by phase", title_justify="left")
        table.add_column("phase")
        table.add_column("seconds", justify="right")
        for name, seconds in self.phases.items():
            table.add_row(name, f"{seconds:.1f}")
        table.add_row("[bold]total[/bold]", f"[bold]{sum(self.phases.values()):.1f}[/bold]")
        return table


# --- data ------------------------------------------------------------------------------


def churn_data(n: int, seed: int, drifted: bool = False) -> pd.DataFrame:
    """Customers; v2 (drifted) are newer, pricier and call support more, and for
    them support calls matter more than for v1's."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, n) if not drifted else rng.integers(1, 30, n)
    charges = np.clip(rng.normal(70 if not drifted else 95, 20, n), 5.0, None)
    calls = rng.poisson(1.0 if not drifted else 3.0, n)
    weight, base = (0.35, -1.8) if not drifted else (0.9, -5.5)  # both ~15-35% churn
    logit = -0.06 * tenure + 0.03 * charges + weight * calls + base + rng.normal(0, 0.4, n)
    return pd.DataFrame(
        {
            "tenure": tenure,
            "charges": charges,
            "support_calls": calls,
            TARGET: (logit > 0).astype(int),
        }
    )


def write_version(folder: Path, df: pd.DataFrame) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.parquet"):
        old.unlink()
    df.to_parquet(folder / "part-0.parquet", index=False)


def reviewed_suite(suite):  # noqa: ANN001, ANN201 - a validation Suite
    """What a reviewer keeps of an inferred suite for retraining: the schema, no
    nulls, the label's values and the fields' business domains. The observed
    ranges and distributions of v1 are dropped: drift is what retraining is for
    (monitoring watches it), not bad data."""
    domains = {"tenure": (0, 240), "charges": (0.0, 1_000.0), "support_calls": (0, 100)}
    for name, (low, high) in domains.items():
        suite.columns[name].min, suite.columns[name].max = low, high
    return suite


# --- the gateway and its traffic --------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    """``modelyard gateway churn`` in a subprocess on loopback."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("w")
        cmd = [sys.executable, "-m", "modelyard.cli.main", "gateway", DEPLOYMENT]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--poll-seconds", "0.2", "--tick-seconds", "0.1"]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DemoFailed(
                    f"the gateway exited ({self.proc.returncode}); see {self.log.name}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise DemoFailed(f"the gateway was not ready within {timeout:.0f} s; see {self.log.name}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class Traffic:
    """Client threads posting single rows of ``rows`` (swappable) to the gateway."""

    def __init__(self, url: str, rows: pd.DataFrame, threads: int = 3) -> None:
        self.url = f"{url}/predict/{DEPLOYMENT}"
        self.records = rows.to_dict(orient="records")
        self.sent = 0
        self.errors = 0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]
        for t in self._threads:
            t.start()

    def _run(self, seed: int) -> None:
        import httpx

        rng = np.random.default_rng(seed)
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                records = self.records  # swapped whole when the traffic drifts
                row = records[int(rng.integers(len(records)))]
                try:
                    r = client.post(self.url, json={"dataframe_records": [row]})
                except httpx.HTTPError:
                    time.sleep(0.05)
                    continue
                self.sent += 1
                self.errors += r.status_code != 200

    def wait_for(self, n: int, timeout: float = 60) -> None:
        goal, deadline = self.sent + n, time.monotonic() + timeout
        while self.sent < goal and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)


# --- the loop --------------------------------------------------------------------------


def _gates(run_id: str) -> str:
    """A step run's gate verdicts and figures, in one line."""
    run = my.get_run(run_id)
    verdicts = [
        f"{k.split('.')[-1]}={v}"
        for k, v in run.data.tags.items()
        if k.startswith("modelyard.gate.")
    ]
    figures = [
        f"{k.removeprefix('gate.')}={v:.3g}"
        for k, v in sorted(run.data.metrics.items())
        if k.startswith("gate.")
    ]
    return ", ".join(verdicts + figures[:6])


def _pipeline_events(timeline: Timeline, phase: str, run_id: str) -> None:
    """One line per step of a pipeline run, with its gates, at the time it ended."""
    from modelyard.pipelines.runner import PARENT, TAG_STATE, TAG_STEP

    svc = my.client()
    parent = svc.get_run(run_id)
    steps = svc.find_runs([parent.info.experiment_id], f"tags.`{PARENT}` = '{run_id}'")
    for child in sorted(steps, key=lambda r: r.info.start_time):
        tags = child.data.tags
        what = f"step {tags.get(TAG_STEP)}: {tags.get(TAG_STATE)}"
        timeline.add(phase, what, _gates(child.info.run_id), at_ms=child.info.end_time)
    error = parent.data.tags.get("modelyard.error", "")[:120]
    what = f"pipeline continuous-training {parent.info.status}"
    timeline.add(phase, what, error, at_ms=parent.info.end_time)


def _history_size() -> int:
    return len(my.deployment_service().history(DEPLOYMENT))


def _rollout_events(timeline: Timeline, phase: str, skip: int) -> None:
    """The deployment's rollout events after the first ``skip`` (weights, gates)."""
    for e in my.deployment_service().history(DEPLOYMENT)[skip:]:
        if not e["action"].startswith("rollout."):
            continue
        after = e.get("after") or {}
        figures = []
        if "weight" in after:
            figures.append(f"weight={after['weight']:g}%")
        gates = (after.get("gates") or {}).get("gates") or {}
        for name, g in gates.items():
            value = g.get("value", g.get("candidate"))
            if isinstance(value, (int, float)):
                verdict = {True: "", False: " FAIL", None: " (not judged yet)"}[g.get("passed")]
                figures.append(f"{name}={value:.3g}{verdict}")
        if after.get("reason"):
            figures.append(str(after["reason"])[:100])
        timeline.add(phase, e["action"], ", ".join(figures), at_ms=e["created_at"])


def run_closed_loop(console: Console, *, fast: bool = False, out: Path | None = None) -> Timeline:
    """Run the whole loop; returns the timeline (the caller prints the end)."""
    from modelyard.datasets.validation import infer_suite
    from modelyard.pipelines.agent import open_agent
    from modelyard.pipelines.agent_config import AgentConfig
    from modelyard.pipelines.runner import run_pipeline

    out = (out or Path("demo-output")).absolute()
    out.mkdir(parents=True, exist_ok=True)
    rows = 1_500 if fast else 6_000
    step_seconds = 1.5 if fast else 3.0
    min_requests = 20 if fast else 40
    timeline = Timeline(console)
    settings = my.configure()  # the embedded default (or MODELYARD_* of the caller)
    env = {
        **os.environ,
        "MODELYARD_HOME": str(settings.home.resolve()),
        "MODELYARD_DB_URL": settings.resolved_db_url,
        "MODELYARD_ARTIFACTS": settings.resolved_artifacts,
    }
    canary = {
        "steps": [10, 50, 100],
        "step_seconds": step_seconds,
        "min_requests": min_requests,
        "max_error_rate": 0.02,
        # --fast runs inside a loaded test suite: latency there says little.
        "max_p99_ms": 2_000 if fast else 250,
    }
    params = {
        "dataset": "churn",
        "target": TARGET,
        "model_name": MODEL,
        "suite": str(out / "suite.yaml"),
        "deployment": DEPLOYMENT,
        "gates": {"min": {"accuracy": 0.7}, "max_regression": {"accuracy": 0.02}},
        "canary": canary,
    }
    gateway = traffic = None
    try:
        with timeline.phase("1. data v1, suite, first training"):
            v1 = churn_data(rows, seed=1)
            write_version(out / "data" / "churn", v1)
            ds = my.data.register("churn", out / "data" / "churn", description="CRM export, v1")
            timeline.add("data", f"registered {ds.ref}", f"{ds.rows:,} rows, content {ds.oid[:12]}")
            suite = reviewed_suite(infer_suite(my.data.get(ds.ref), distribution=False))
            suite.save(out / "suite.yaml")
            timeline.add(
                "data",
                "validation suite inferred from churn@1, reviewed",
                f"{len(suite.columns)} columns: types, not-null, domain ranges, labels in (0, 1)",
            )
            first = run_pipeline("modelyard.pipelines.ct:continuous_training", params)
            _pipeline_events(timeline, "train", first.run_id)
            if first.status != "FINISHED":
                raise DemoFailed(f"the first training failed: {first.error}")

        with timeline.phase("2. serve under traffic"):
            gateway = Gateway(env, out / "gateway.log")
            gateway.wait_ready()
            timeline.add(
                "serve",
                f"gateway on {gateway.url} serving deployment {DEPLOYMENT}",
                "churn v1 at 100%",
            )
            traffic = Traffic(gateway.url, v1[FEATURES])
            traffic.wait_for(min_requests * 2)
            timeline.add(
                "serve", "traffic flowing", f"{traffic.sent} requests, {traffic.errors} errors"
            )

        with timeline.phase("3. drift, alert, agent retrains, canary, promote"):
            config = AgentConfig.from_dict(
                {
                    "pipelines": [
                        {
                            "target": "modelyard.pipelines.ct:continuous_training",
                            "params": params,
                            "triggers": [{"alert": MODEL, "rule": "churn-drift"}],
                        }
                    ]
                }
            )
            agent = open_agent(config, settings, poll_seconds=0.5)
            agent.tick()  # the agent is up: its triggers count what happens from now on
            timeline.add("agent", "agent started", "trigger: alert churn-drift on model churn")
            v2 = churn_data(rows, seed=2, drifted=True)
            write_version(out / "data" / "churn", v2)
            ds2 = my.data.register("churn", out / "data" / "churn", description="CRM export, v2")
            timeline.add(
                "data", f"registered {ds2.ref} (new customers drift)", f"{ds2.rows:,} rows"
            )
            traffic.records = v2[FEATURES].to_dict(orient="records")
            traffic.wait_for(400 if not fast else 250)
            time.sleep(1.5)  # the gateway's prediction log flushes every second
            check = my.check_model(
                MODEL,
                window="10m",
                rows=300 if not fast else 200,
                rules=[
                    {
                        "name": "churn-drift",
                        "metric": "drift_share",
                        "condition": "> 0.3",
                        "sinks": ["log", "trigger"],
                    }
                ],
            )
            scores = ", ".join(
                f"{c.name} {c.method}={c.statistic:.3g}{' drifted' if c.drifted else ''}"
                for c in (check.drift.columns if check.drift else [])
                if c.statistic is not None
            )
            share = check.figures.get("drift_share")
            timeline.add(
                "monitor",
                f"drift check on the last {check.rows} predictions",
                f"drift_share={share:.2f}; {scores}",
            )
            for alert in check.alerts:
                timeline.add("monitor", f"alert {alert.rule} fired", alert.message[:100])
            if not check.alerts:
                raise DemoFailed("the drift alert did not fire")
            since = _history_size()
            try:
                report = agent.tick()
                for record in report.launched:
                    timeline.add(
                        "agent",
                        f"fired continuous-training on {record.event_key}",
                        "in a worker process; the canary waits for live traffic",
                    )
                if not agent.wait(timeout=180):
                    raise DemoFailed("the retraining did not finish within 3 minutes")
            finally:
                agent.close()
            retrain = _last_pipeline_run()
            _pipeline_events(timeline, "retrain", retrain)
            _rollout_events(timeline, "canary", since)
            prod = my.model_registry().get_version_by_alias(MODEL, "production")
            timeline.add("registry", f"production is churn v{prod.version}")
            if int(prod.version) < 2:
                error = my.get_run(retrain).data.tags.get("modelyard.error", "no error recorded")
                raise DemoFailed(f"the retrained model was not promoted: {error}")

        with timeline.phase("4. a broken model pushed by hand, rolled back"):
            from modelyard.demo.models import BrokenChurnModel

            with my.start_run(experiment="hotfix", run_name="hand-pushed"):
                small = v2[FEATURES][v2.tenure <= 12].head(3)
                info = my.log_model(BrokenChurnModel(), "model", input_example=small)
            bad = my.register_model(info.model_uri, MODEL)
            timeline.add("release", f"churn v{bad.version} pushed by hand; canary starts")
            since = _history_size()
            my.start_canary(DEPLOYMENT, f"models:/{MODEL}/{bad.version}", **canary)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                dep = my.deployment_service().get(DEPLOYMENT)
                if dep.rollout is not None and not dep.rollout.running:
                    break
                time.sleep(0.2)
            _rollout_events(timeline, "canary", since)
            dep = my.deployment_service().get(DEPLOYMENT)
            serving = ", ".join(f"{v.uri}={v.weight:g}%" for v in dep.variants)
            timeline.add("deploy", f"rollout {dep.rollout.status}", f"serving {serving}")

        with timeline.phase("5. report and model card"):
            from modelyard.monitor.report import render_html

            report = my.monitor_service().report(MODEL, window_seconds=600)
            (out / "drift-report.html").write_text(render_html(report), encoding="utf-8")
            card = my.model_card(MODEL, prod.version, format="html")
            (out / f"model-card-churn-v{prod.version}.html").write_text(card, encoding="utf-8")
            timeline.add("report", f"wrote {out / 'drift-report.html'} and the model card")
    finally:
        if traffic is not None:
            traffic.stop()
        if gateway is not None:
            gateway.stop()
    return timeline


def _last_pipeline_run() -> str:
    svc = my.client()
    exp = svc.get_experiment_by_name("continuous-training")
    runs = svc.find_runs(
        [exp.experiment_id],
        "tags.`modelyard.pipeline` = 'continuous-training' and tags.`modelyard.trigger` != ''",
        order_by=["attributes.start_time DESC"],
        max_results=5,
    )
    parents = [r for r in runs if "modelyard.step" not in r.data.tags]
    if not parents:
        raise DemoFailed("the agent started no pipeline run")
    return parents[0].info.run_id


def print_end(console: Console, timeline: Timeline, out: Path) -> None:
    console.print(timeline.table())
    console.print(timeline.phase_table())
    console.print(
        "\nInspect it:\n"
        f"  modelyard pipelines runs                      # what ran and why\n"
        f"  modelyard deploy history {DEPLOYMENT}                # every rollout step and gate\n"
        f"  modelyard models history {MODEL}                 # versions, aliases, approvals\n"
        f"  modelyard data lineage models:/{MODEL}@production   # model -> run -> data\n"
        f"  modelyard monitor alerts --model {MODEL}\n"
        f"  open {out / 'drift-report.html'}\n"
    )
