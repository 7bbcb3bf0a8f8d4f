"""The pipelines agent: a long-running process that fires pipelines on their
triggers, each event exactly once, within each pipeline's concurrency limit.

Its configuration is an `AgentConfig` (YAML; see `agent_config`); its tables are
`SqlAgentStore`'s; each run is a worker process (`agent_worker`).

One pass (`Agent.tick`):

1. each trigger reads what happened since its stored state and records its new
   events as ``pending`` (unique per pipeline, trigger and event key, so an event is
   recorded once however often it is seen, by however many agents);
2. per pipeline, while fewer than ``max_concurrent`` of its events are active, the
   oldest pending event is claimed (a compare-and-swap) and its run started in a
   worker process. Events beyond the limit wait, pending, and fire later. A trigger
   with ``coalesce`` (the default for schedules and datasets, not for alerts) keeps
   only its newest waiting event and marks the older ones ``skipped``: training on
   churn@5 makes a waiting run on churn@4 moot. Each alert runs once unless its
   trigger says ``coalesce: true``;
3. workers that ended are reaped; each worker records its own outcome.

Why a process per run, not a thread: the tracking API keeps the active run per
process and steps log through it, so two pipelines in threads would log into each
other's runs; a process also keeps a crashing or leaking pipeline from taking the
agent down, and can be interrupted. Workers get their own session, so a Ctrl+C
meant for the agent does not kill runs mid-step.

Stopping and crashes: SIGTERM or SIGINT stops claiming and waits for the running
workers; a second signal interrupts them (their runs end KILLED). An agent that
dies (SIGKILL, a crash, a lost machine) leaves active events behind, and the next
agent takes them over: a worker still alive on this machine is adopted (its run
goes on and records itself); otherwise the run is marked FAILED with the tag
``modelyard.interrupted`` and the event ``failed``, never fired again. An agent is
gone when it stopped, its process is dead (same machine), or its heartbeat is older
than three polls plus 30 s.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from modelyard.core.config import Settings, load_settings
from modelyard.core.errors import ModelyardError
from modelyard.core.ids import new_id, now_ms
from modelyard.pipelines.agent_config import AgentConfig, PipelineSpec
from modelyard.pipelines.agent_store import (
    ACTIVE,
    AgentRecord,
    EventRecord,
    EventStatus,
    SqlAgentStore,
)
from modelyard.pipelines.agent_worker import (
    Launcher,
    ProcessLauncher,
    Worker,
    engine_of,
    find_run,
    is_worker_of,
    pid_alive,
)
from modelyard.pipelines.runner import TAG_ERROR
from modelyard.pipelines.triggers import StoreSources, Trigger, TriggerSources
from modelyard.tracking.backends import open_tracking
from modelyard.tracking.entities import Run
from modelyard.tracking.service import TrackingService

__all__ = ["INTERRUPTED", "TAG_INTERRUPTED", "Agent", "TickReport", "open_agent"]

log = logging.getLogger("modelyard.agent")

TAG_INTERRUPTED = "modelyard.interrupted"
INTERRUPTED = "interrupted: agent stopped"


@dataclass
class TickReport:
    """What one pass did: triggers armed (pipeline, trigger: seen for the first time,
    so what exists now is history), events recorded (pipeline, key), events launched,
    events taken over from a gone agent (adopted or marked failed), errors."""

    armed: list[tuple[str, str]] = field(default_factory=list)
    recorded: list[tuple[str, str]] = field(default_factory=list)
    launched: list[EventRecord] = field(default_factory=list)
    recovered: list[EventRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Agent:
    """Fires the pipelines of ``config`` on their triggers.

    - ``store``: the agent's tables; ``tracking``: where the runs are (to mark an
      interrupted run FAILED); ``sources``: what the triggers read;
    - ``launcher``: starts a run for a claimed event (default: a worker process);
    - ``poll_seconds``: the pause between passes of `run_forever` (and the
      heartbeat other agents judge this one by).

    Example::

        agent = open_agent(AgentConfig.load("agent.yaml"))
        agent.tick()           # one pass: record new events, claim, launch
        agent.wait()           # until the launched runs ended
        agent.close()
        # or: agent.run_forever(10.0)  (until SIGTERM / SIGINT)
    """

    def __init__(
        self,
        config: AgentConfig,
        store: SqlAgentStore,
        tracking: TrackingService,
        sources: TriggerSources,
        *,
        launcher: Launcher | None = None,
        poll_seconds: float = 10.0,
    ) -> None:
        self.config = config
        self.store = store
        self.tracking = tracking
        self.sources = sources
        self.launcher = launcher or ProcessLauncher()
        self.poll_seconds = poll_seconds
        self.hostname = socket.gethostname()[:120]
        self.pid = os.getpid()
        self.id = f"{self.hostname[:40]}:{self.pid}:{new_id()[:8]}"
        self.workers: dict[str, Worker] = {}
        self.adopted: dict[str, int] = {}  # event id -> pid of a gone agent's worker
        self.stopping = False
        self._started = False
        self._closed = False
        self._force = False

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> list[EventRecord]:
        """Register this agent and take over what gone agents left active."""
        if not self._started:
            self.store.register_agent(self.id, self.hostname, self.pid, self.poll_seconds)
            self._started = True
        return self._take_over()

    def close(self) -> None:
        """Mark this agent stopped (its active events are then any agent's to take
        over); does not wait for runs (see `wait`)."""
        if self._started and not self._closed:
            self.store.stop_agent(self.id)
            self._closed = True

    @property
    def busy(self) -> bool:
        return bool(self.workers or self.adopted)

    # -- one pass ----------------------------------------------------------------------
    def tick(self, now: datetime | None = None) -> TickReport:
        """One evaluation pass at ``now`` (default: the clock; naive means UTC)."""
        now = datetime.now(UTC) if now is None else now
        now = now if now.tzinfo else now.replace(tzinfo=UTC)
        report = TickReport()
        if not self._started:
            report.recovered += self.start()
        else:
            self.store.heartbeat(self.id)
            report.recovered += self._take_over()
        self._reap()
        self._resolve_runs()
        for spec in self.config.pipelines:
            for trigger in spec.triggers:
                try:
                    self._poll(spec, trigger, now, report)
                except Exception as exc:  # noqa: BLE001 - one broken source stops no other
                    text = exc.message if isinstance(exc, ModelyardError) else repr(exc)
                    log.error("%s: trigger %s failed: %s", spec.name, trigger.name, text)
                    report.errors.append(f"{spec.name}: {trigger.name}: {text}")
        if not self.stopping:
            for spec in self.config.pipelines:
                report.launched += self._launch(spec)
        return report

    def _poll(
        self, spec: PipelineSpec, trigger: Trigger, now: datetime, report: TickReport
    ) -> None:
        state = self.store.trigger_state(spec.name, trigger.name)
        if state is None:
            self.store.arm(spec.name, trigger.name, trigger.kind, trigger.arm(now, self.sources))
            log.info("%s: armed trigger %s", spec.name, trigger.name)
            report.armed.append((spec.name, trigger.name))
            return
        events, new_state = trigger.events(state, now, self.sources)
        if not events and new_state == state:
            return
        added = self.store.record(spec.name, trigger.name, trigger.kind, events, new_state)
        for key in added:
            log.info("%s: %s -> event %s", spec.name, trigger.name, key)
        report.recorded += [(spec.name, key) for key in added]

    def _launch(self, spec: PipelineSpec) -> list[EventRecord]:
        coalesce = {t.name for t in spec.triggers if t.coalesce}
        launched = []
        while True:
            record = self.store.claim_next(
                spec.name,
                max_concurrent=spec.max_concurrent,
                coalesce=coalesce,
                agent_id=self.id,
            )
            if record is None:
                return launched
            try:
                worker = self.launcher.start(spec, record)
            except Exception as exc:  # noqa: BLE001 - recorded on the event
                log.error("%s: could not start a run for %s: %s", spec.name, record.event_key, exc)
                self.store.finish(
                    record.event_id, EventStatus.FAILED, error=f"could not start the run: {exc}"
                )
                continue
            self.store.set_worker(record.event_id, worker.pid)
            self.workers[record.event_id] = worker
            log.info("%s: started a run for %s (pid %d)", spec.name, record.event_key, worker.pid)
            launched.append(record)

    def _resolve_runs(self) -> None:
        """claimed -> running once the run the worker started is found."""
        for record in self.store.active():
            if record.agent_id == self.id and record.status == EventStatus.CLAIMED:
                run = find_run(self.tracking, record.pipeline, record.event_id)
                if run is not None:
                    self.store.set_running(record.event_id, run.info.run_id)

    def _reap(self) -> list[str]:
        """Forget workers that ended; an event a worker left active is marked."""
        ended = []
        for event_id, worker in list(self.workers.items()):
            code = worker.poll()
            if code is None:
                continue
            del self.workers[event_id]
            ended.append(event_id)
            self._settle(event_id, f"the run's worker process exited with code {code}")
        for event_id, pid in list(self.adopted.items()):
            if pid_alive(pid):
                continue
            del self.adopted[event_id]
            ended.append(event_id)
            self._settle(event_id, "the run's worker process ended without recording it")
        return ended

    def _settle(self, event_id: str, reason: str) -> None:
        record = self.store.get(event_id)
        if record is not None and record.status in ACTIVE:
            self._interrupt(record, f"interrupted: {reason}")

    # -- taking over from a gone agent -------------------------------------------------
    def _gone(self, owner: AgentRecord | None) -> bool:
        if owner is None or owner.stopped_at is not None:
            return True
        stale = now_ms() - owner.heartbeat_at > (3 * owner.poll_seconds + 30) * 1000
        if owner.hostname == self.hostname:
            return stale or not pid_alive(owner.pid)
        return stale

    def _take_over(self) -> list[EventRecord]:
        others = [
            r
            for r in self.store.active()
            if r.agent_id != self.id and r.event_id not in self.adopted
        ]
        if not others:
            return []
        owners = self.store.agents({r.agent_id for r in others if r.agent_id})
        taken = []
        for record in others:
            owner = owners.get(record.agent_id or "")
            if not self._gone(owner):
                continue
            pid = record.worker_pid
            same_host = owner is not None and owner.hostname == self.hostname
            if pid and same_host and is_worker_of(pid, record.event_id):
                if self.store.adopt(record.event_id, record.agent_id, self.id):
                    self.adopted[record.event_id] = pid
                    log.info(
                        "%s: adopted the running worker of %s", record.pipeline, record.event_key
                    )
                    taken.append(record)
                continue
            log.warning(
                "%s: the run of %s was interrupted (agent %s is gone)",
                record.pipeline,
                record.event_key,
                record.agent_id,
            )
            self._interrupt(record, INTERRUPTED)
            taken.append(record)
        return taken

    def _interrupt(self, record: EventRecord, reason: str) -> None:
        """End an event whose worker is gone: its unfinished run is marked FAILED
        (tagged with ``reason``); a run that did end gives the event its outcome."""
        run = None
        if record.run_id:
            run = self.tracking.get_run(record.run_id)
        else:
            run = find_run(self.tracking, record.pipeline, record.event_id)
        status, error = EventStatus.FAILED, reason
        if run is not None:
            state = run.info.status
            if state == "FINISHED":
                status, error = EventStatus.FINISHED, None
            elif state in ("FAILED", "KILLED"):
                error = run.data.tags.get(TAG_ERROR) or f"the run ended {state}"
            else:
                self._fail_run(run, reason)
        self.store.finish(
            record.event_id, status, run_id=run.info.run_id if run else None, error=error
        )

    def _fail_run(self, run: Run, reason: str) -> None:
        run_id = run.info.run_id
        children = self.tracking.find_runs(
            [run.info.experiment_id],
            f"tags.`mlflow.parentRunId` = '{run_id}' AND attributes.status = 'RUNNING'",
        )
        for child in [*children, run]:
            cid = child.info.run_id
            self.tracking.log_batch(cid, tags={TAG_INTERRUPTED: reason, TAG_ERROR: reason})
            self.tracking.end_run(cid, "FAILED")

    # -- waiting and stopping ----------------------------------------------------------
    def wait(self, timeout: float | None = None, interval: float = 0.2) -> bool:
        """Wait until every run this agent started or adopted ended; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last_resolve = 0.0
        while True:
            self._reap()
            if not self.busy:
                return True
            if time.monotonic() - last_resolve > 1.0:  # and stay visibly alive
                self._resolve_runs()
                if self._started and not self._closed:
                    self.store.heartbeat(self.id)
                last_resolve = time.monotonic()
            if self._force:
                self.interrupt()
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(interval)

    def interrupt(self, grace_seconds: float = 10.0) -> None:
        """Stop every run of this agent now: SIGTERM (the run ends KILLED), then
        SIGKILL after ``grace_seconds``; their events end failed."""
        self._force = False
        for event_id, worker in self.workers.items():
            log.warning("interrupting the run of event %s (pid %d)", event_id, worker.pid)
            worker.terminate()
        for event_id, pid in self.adopted.items():
            if is_worker_of(pid, event_id):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while self.busy and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.1)
        for worker in self.workers.values():
            worker.kill()
        for event_id, pid in self.adopted.items():
            if is_worker_of(pid, event_id):
                os.kill(pid, signal.SIGKILL)
        for worker in self.workers.values():
            if hasattr(worker, "wait"):
                worker.wait()
        self._reap()

    def run_forever(self, poll_seconds: float | None = None) -> None:
        """Tick every ``poll_seconds`` until SIGTERM or SIGINT; then stop claiming and
        wait for the running workers (a second signal interrupts them)."""
        poll = self.poll_seconds if poll_seconds is None else poll_seconds
        stop = threading.Event()
        signals = 0

        def on_signal(signum: int, frame: Any) -> None:
            nonlocal signals
            signals += 1
            self.stopping = True
            stop.set()
            if signals > 1:
                self._force = True

        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, on_signal)
        try:
            self.start()
            while not stop.is_set():
                began = time.monotonic()
                try:
                    self.tick()
                except ModelyardError as exc:
                    log.error("agent pass failed: %s", exc.message)
                stop.wait(max(0.0, poll - (time.monotonic() - began)))
            if self.busy:
                log.info(
                    "stopping: no new runs; waiting for %d running (signal again to "
                    "interrupt them)",
                    len(self.workers) + len(self.adopted),
                )
                self.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.close()


def open_agent(
    config: AgentConfig,
    settings: Settings | None = None,
    *,
    poll_seconds: float = 10.0,
    launcher: Launcher | None = None,
) -> Agent:
    """An agent on the metadata database and artifacts the settings name."""
    settings = settings or load_settings()
    tracking = open_tracking(settings)
    engine = engine_of(tracking)
    sources = StoreSources(engine)
    return Agent(
        config,
        SqlAgentStore(engine),
        tracking,
        sources,
        launcher=launcher or ProcessLauncher(settings),
        poll_seconds=poll_seconds,
    )
