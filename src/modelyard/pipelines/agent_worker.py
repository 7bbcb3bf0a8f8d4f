"""The agent's worker processes: one per run, so runs never share a process's
tracking state, and a crashing run cannot take the agent down.

`ProcessLauncher` starts ``python -c <run_event> EVENT_ID JOB`` in its own session
(a Ctrl+C meant for the agent does not reach it) with the agent's settings in its
environment; `run_event` runs the event's pipeline there and records the outcome on
the event. `find_run` finds the run an event started through the event id in the
run's ``modelyard.trigger`` tag, so it is found even if the agent died before
learning it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine

from modelyard.core.config import Settings, load_settings
from modelyard.core.errors import InvalidParameter, ModelyardError
from modelyard.pipelines.agent_config import PipelineSpec, render_params, trigger_document
from modelyard.pipelines.agent_store import ACTIVE, EventRecord, EventStatus, SqlAgentStore
from modelyard.pipelines.runner import TAG_TRIGGER, run_pipeline
from modelyard.tracking.backends import open_tracking
from modelyard.tracking.entities import Run
from modelyard.tracking.service import TrackingService
from modelyard.tracking.sql_store import SqlTrackingStore

__all__ = [
    "Launcher",
    "ProcessLauncher",
    "Worker",
    "engine_of",
    "execute_event",
    "find_run",
    "is_worker_of",
    "job_for",
    "pid_alive",
    "run_event",
]

log = logging.getLogger("modelyard.agent")


class Worker(Protocol):
    """A started run: ``poll`` is None while it runs, then its exit code."""

    pid: int

    def poll(self) -> int | None: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...


class Launcher(Protocol):
    def start(self, spec: PipelineSpec, record: EventRecord) -> Worker: ...


_WORKER = (
    "import sys; from modelyard.pipelines.agent_worker import run_event; "
    "sys.exit(run_event(sys.argv[1], sys.argv[2]))"
)


class ProcessLauncher:
    """Starts each run as ``python -c <run_event> EVENT_ID SPEC`` in its own session,
    with the agent's settings in its environment (so it writes where the agent reads)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        s = self.settings
        if s is not None:
            env["MODELYARD_HOME"] = str(s.home.resolve())
            env["MODELYARD_DB_URL"] = s.resolved_db_url
            env["MODELYARD_ARTIFACTS"] = s.resolved_artifacts
            for key, value in (("TRACKING_URI", s.tracking_uri), ("DATA_REMOTE", s.data_remote)):
                if value:
                    env[f"MODELYARD_{key}"] = value
        return env

    def start(self, spec: PipelineSpec, record: EventRecord) -> subprocess.Popen:
        job = json.dumps(job_for(spec, record), default=str)
        return subprocess.Popen(
            [sys.executable, "-c", _WORKER, record.event_id, job],
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def job_for(spec: PipelineSpec, record: EventRecord) -> dict[str, Any]:
    """What a worker runs for an event: the target, its parameters with the event's
    fields filled in, and the executor."""
    return {
        "target": spec.target,
        "params": render_params(spec.params, trigger_document(record)),
        "executor": spec.executor,
        "workers": spec.workers,
        "ray_address": spec.ray_address,
    }


def _interrupt_signal(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_event(event_id: str, job: str) -> int:
    """The worker process's entry: SIGTERM interrupts the run (it ends KILLED), a
    Ctrl+C meant for the agent is ignored; see `execute_event` for the rest."""
    signal.signal(signal.SIGTERM, _interrupt_signal)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tracking = open_tracking(load_settings())
    return execute_event(SqlAgentStore(engine_of(tracking)), tracking, event_id, json.loads(job))


def execute_event(
    store: SqlAgentStore, tracking: TrackingService, event_id: str, job: dict[str, Any]
) -> int:
    """Run a claimed event's pipeline and record how it ended on the event.

    Returns 0 when recorded (finished or failed), 3 when the event was no longer
    active (not run), 130 when interrupted."""
    record = store.get(event_id)
    if record is None or record.status not in ACTIVE:
        log.error("event %s is not active any more; not running it", event_id)
        return 3
    try:
        run = run_pipeline(
            job["target"],
            job["params"],
            trigger=trigger_document(record),
            executor=job["executor"],
            workers=job.get("workers", 1),
            ray_address=job.get("ray_address"),
        )
    except KeyboardInterrupt:
        found = find_run(tracking, record.pipeline, event_id)
        store.finish(
            event_id,
            EventStatus.FAILED,
            run_id=found.info.run_id if found else None,
            error="interrupted: the agent stopped it",
        )
        return 130
    except Exception as exc:  # noqa: BLE001 - the failure is the event's outcome
        found = find_run(tracking, record.pipeline, event_id)
        message = exc.message if isinstance(exc, ModelyardError) else f"{type(exc).__name__}: {exc}"
        store.finish(
            event_id,
            EventStatus.FAILED,
            run_id=found.info.run_id if found else None,
            error=message,
        )
        return 0
    status = EventStatus.FINISHED if run.status == "FINISHED" else EventStatus.FAILED
    store.finish(event_id, status, run_id=run.run_id, error=run.error)
    return 0


def find_run(tracking: TrackingService, pipeline: str, event_id: str) -> Run | None:
    """The pipeline run an event started (its trigger tag names the event), if any."""
    experiment = tracking.get_experiment_by_name(pipeline)
    if experiment is None:
        return None
    page = tracking.search_runs(
        [experiment.experiment_id],
        f"tags.`{TAG_TRIGGER}` LIKE '%{event_id}%'",
        max_results=1,
    )
    return page.items[0] if page.items else None


def engine_of(tracking: TrackingService) -> Engine:
    store = tracking.store
    if not isinstance(store, SqlTrackingStore):
        raise InvalidParameter(
            "The pipelines agent needs the metadata database itself (MODELYARD_DB_URL), "
            f"not a tracking server ({type(store).__name__})"
        )
    return store.engine


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead: Linux says so in /proc
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def is_worker_of(pid: int, event_id: str) -> bool:
    """True when process ``pid`` is the worker of ``event_id`` (its command line
    names the event); False where that cannot be checked, so no stranger is touched."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return event_id.encode() in cmdline.split(b"\0") and pid_alive(pid)
