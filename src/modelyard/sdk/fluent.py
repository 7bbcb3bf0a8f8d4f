"""The fluent tracking API: `my.start_run()`, `my.log_metric()`, ... on an active run.

One `Tracker` per process holds the settings, the tracking service and the stack of
active runs; `configure()` replaces it (tests and notebooks switch stores that way).
"""

from __future__ import annotations

import io
import os
import posixpath
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelyard.core.config import Settings, load_settings
from modelyard.core.errors import InvalidParameter, InvalidState, ModelyardError
from modelyard.core.ids import current_user, now_ms
from modelyard.sdk.context import run_context_tags
from modelyard.tracking.async_logging import AsyncMetricLogger
from modelyard.tracking.backends import open_tracking
from modelyard.tracking.entities import Metric, Param, Run, RunStatus, RunTag
from modelyard.tracking.service import TrackingService
from modelyard.tracking.validation import check_key, check_metric

__all__ = [
    "ActiveRun",
    "active_run",
    "client",
    "compare_runs",
    "configure",
    "end_run",
    "flush",
    "get_metric_history",
    "get_run",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "start_run",
]


class ActiveRun:
    """A started run; use it as a context manager to end it (FAILED on an exception).

    ``info`` and ``run_id`` describe it; ``synchronous`` says whether metric calls
    write through at once or go through the background queue.
    """

    def __init__(self, run: Run, tracker: Tracker, synchronous: bool) -> None:
        self._run = run
        self._tracker = tracker
        self.synchronous = synchronous

    @property
    def info(self):
        return self._run.info

    @property
    def run_id(self) -> str:
        return self._run.info.run_id

    @property
    def data(self):
        """The run's data as stored now (flushes pending metrics first)."""
        self._tracker.logger.flush()
        return self._tracker.service.get_run(self.run_id).data

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        self._tracker.end_run(status, run_id=self.run_id)

    def __repr__(self) -> str:
        return f"<ActiveRun {self.info.run_name!r} {self.run_id}>"


class Tracker:
    """The process's tracking state: settings, service, active runs, metric queue."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._service: TrackingService | None = None
        self._logger: AsyncMetricLogger | None = None
        self._stack: list[ActiveRun] = []
        self._lock = threading.RLock()
        self.experiment_name: str | None = None
        self._valid_keys: set[str] = set()
        self._experiment_ids: dict[str, str] = {}

    @property
    def service(self) -> TrackingService:
        if self._service is None:
            with self._lock:
                if self._service is None:
                    self._service = open_tracking(self.settings)
        return self._service

    @property
    def logger(self) -> AsyncMetricLogger:
        if self._logger is None:
            with self._lock:
                if self._logger is None:
                    svc = self.service
                    self._logger = AsyncMetricLogger(
                        lambda run_id, points: svc.store.log_batch(run_id, metrics=points)
                    )
        return self._logger

    def active(self) -> ActiveRun:
        if not self._stack:
            raise InvalidState(
                "No active run: call my.start_run() first (or use `with my.start_run():`)"
            )
        return self._stack[-1]

    def start_run(
        self,
        experiment: str | None,
        run_name: str | None,
        tags: dict[str, Any] | None,
        nested: bool,
        run_id: str | None,
        synchronous: bool,
        description: str | None,
    ) -> ActiveRun:
        svc = self.service
        if self._stack and not nested:
            raise InvalidState(
                f"Run {self._stack[-1].run_id} is already active. End it with my.end_run(), "
                "or start a nested run with my.start_run(nested=True)"
            )
        if run_id is not None:
            run = svc.get_run(run_id)
            if RunStatus(run.info.status).is_terminated:
                svc.update_run(run_id, status=RunStatus.RUNNING)
                run = svc.get_run(run_id)
        else:
            # A child joins its parent's experiment unless told otherwise (as in MLflow).
            parent_exp = self._stack[-1].info.experiment_id if self._stack else None
            name = experiment or self.experiment_name or os.environ.get("MODELYARD_EXPERIMENT")
            if experiment:
                exp_id = self._experiment_id(experiment)
            elif parent_exp is not None:
                exp_id = parent_exp
            else:
                exp_id = self._experiment_id(name) if name else "0"
            all_tags = run_context_tags() | {k: str(v) for k, v in (tags or {}).items()}
            if description:
                all_tags["mlflow.note.content"] = description
            parent = self._stack[-1].run_id if self._stack else None
            run = svc.create_run(
                exp_id,
                run_name=run_name,
                tags=all_tags,
                user_id=current_user(),
                parent_run_id=parent,
            )
        active = ActiveRun(run, self, synchronous)
        self._stack.append(active)
        return active

    def _experiment_id(self, name: str) -> str:
        exp_id = self._experiment_ids.get(name)
        if exp_id is None:
            exp_id = self.service.get_or_create_experiment(name).experiment_id
            self._experiment_ids[name] = exp_id
        return exp_id

    def end_run(self, status: str = RunStatus.FINISHED, run_id: str | None = None) -> None:
        """End ``run_id`` (default: the innermost run), ending its open children as KILLED.

        A run that is no longer on the stack (ended inside its own ``with`` block) is
        left alone, and an invalid status is refused before anything changes."""
        try:
            status = RunStatus(status)
        except ValueError:
            raise InvalidParameter(
                f"Invalid run status {status!r}: expected one of "
                f"{', '.join(s.value for s in RunStatus)}"
            ) from None
        if not self._stack:
            return
        target = run_id or self._stack[-1].run_id
        if all(a.run_id != target for a in self._stack):
            return
        while self._stack:
            active = self._stack.pop()
            flush_error: BaseException | None = None
            try:
                if self._logger is not None:
                    self._logger.flush()
            except ModelyardError as exc:
                flush_error = exc
            try:
                child_status = status if active.run_id == target else RunStatus.KILLED
                self.service.end_run(active.run_id, child_status)
            except ModelyardError:
                if flush_error is None:
                    raise
            if flush_error is not None:
                raise flush_error  # lost points matter more than a failed status change
            if active.run_id == target:
                break

    def log_metric(self, key: str, value: float, step: int | None, timestamp: int | None) -> None:
        active = self.active()
        if key not in self._valid_keys:
            check_key(key, "metric key")
            self._valid_keys.add(key)
        value, ts, st = check_metric(key, value, timestamp or now_ms(), step or 0)
        point = Metric(key, value, ts, st)
        if active.synchronous:
            self.service.store.log_batch(active.run_id, metrics=[point])
        else:
            self.logger.put(active.run_id, point)


_tracker: Tracker | None = None
_tracker_lock = threading.Lock()


def _current() -> Tracker:
    global _tracker
    if _tracker is None:
        with _tracker_lock:
            if _tracker is None:
                _tracker = Tracker(load_settings())
    return _tracker


# -- public API ------------------------------------------------------------------
def configure(
    *,
    home: str | os.PathLike | None = None,
    db_url: str | None = None,
    artifacts: str | None = None,
    tracking_uri: str | None = None,
) -> Settings:
    """Point the fluent API at another store (ends nothing; call between runs)."""
    global _tracker
    with _tracker_lock:
        if _tracker is not None and _tracker._stack:
            raise InvalidState("End the active run before calling my.configure()")
        if _tracker is not None and _tracker._logger is not None:
            _tracker._logger.close()
        if _tracker is not None and _tracker._service is not None:
            _tracker._service.store.close()
        _tracker = Tracker(
            load_settings(home=home, db_url=db_url, artifacts=artifacts, tracking_uri=tracking_uri)
        )
        return _tracker.settings


def client() -> TrackingService:
    """The tracking service behind the fluent API (for client-style calls)."""
    return _current().service


def set_experiment(name: str) -> str:
    """Make ``name`` the experiment of the next runs (created if needed); returns its id."""
    tr = _current()
    exp = tr.service.get_or_create_experiment(name)
    tr.experiment_name = name
    return exp.experiment_id


def start_run(
    experiment: str | None = None,
    run_name: str | None = None,
    tags: dict[str, Any] | None = None,
    *,
    nested: bool = False,
    run_id: str | None = None,
    synchronous: bool = False,
    description: str | None = None,
) -> ActiveRun:
    """Start (or resume, with ``run_id``) a run and make it the active one.

    Example::

        with my.start_run(experiment="churn", run_name="xgb", tags={"team": "growth"}):
            my.log_params({"max_depth": 6})
            my.log_metric("auc", 0.91, step=1)

    - ``experiment``: name, created on first use (default: ``set_experiment`` or "Default").
    - ``nested``: start a child of the active run instead of refusing.
    - ``synchronous``: write each metric call through at once instead of queueing it.
    """
    return _current().start_run(
        experiment, run_name, tags, nested, run_id, synchronous, description
    )


def active_run() -> ActiveRun | None:
    tr = _current()
    return tr._stack[-1] if tr._stack else None


def end_run(status: str = RunStatus.FINISHED) -> None:
    """Flush pending metrics and end the active run with ``status``."""
    _current().end_run(status)


def flush() -> None:
    """Wait until every queued metric point is stored."""
    tr = _current()
    if tr._logger is not None:
        tr._logger.flush()


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None
) -> None:
    """Log one point; returns at once (the write happens in the background)."""
    _current().log_metric(key, value, step, timestamp)


def log_metrics(
    metrics: dict[str, float], step: int | None = None, timestamp: int | None = None
) -> None:
    tr = _current()
    ts = timestamp or now_ms()
    for key, value in metrics.items():
        tr.log_metric(key, value, step, ts)


def log_param(key: str, value: Any) -> None:
    """Log a param; params are immutable (the same key with another value is an error)."""
    log_params({key: value})


def log_params(params: dict[str, Any]) -> None:
    tr = _current()
    tr.service.log_batch(tr.active().run_id, params=[Param(k, v) for k, v in params.items()])


def set_tag(key: str, value: Any) -> None:
    set_tags({key: value})


def set_tags(tags: dict[str, Any]) -> None:
    tr = _current()
    tr.service.log_batch(tr.active().run_id, tags=[RunTag(k, v) for k, v in tags.items()])


def log_artifact(local_path: str | os.PathLike, artifact_path: str | None = None) -> str:
    """Upload a file (or a folder) into the active run's artifacts."""
    tr = _current()
    return tr.service.log_artifact(tr.active().run_id, local_path, artifact_path)


def log_artifacts(local_dir: str | os.PathLike, artifact_path: str | None = None) -> int:
    """Upload the contents of a folder (not the folder itself); returns the file count."""
    src = Path(local_dir)
    if not src.is_dir():
        raise InvalidParameter(f"log_artifacts needs a folder, got {str(src)!r}")
    tr = _current()
    count = 0
    for child in sorted(src.iterdir()):
        tr.service.log_artifact(tr.active().run_id, child, artifact_path)
        count += sum(1 for p in child.rglob("*") if p.is_file()) if child.is_dir() else 1
    return count


def log_text(text: str, artifact_file: str) -> str:
    tr = _current()
    return tr.service.log_text(tr.active().run_id, text, artifact_file)


def log_dict(data: dict, artifact_file: str) -> str:
    """Store a dict as JSON (or YAML when the file name ends in .yaml/.yml)."""
    tr = _current()
    return tr.service.log_dict(tr.active().run_id, data, artifact_file)


def log_figure(figure: Any, artifact_file: str) -> str:
    """Store a matplotlib (or plotly) figure; the format follows the file extension."""
    ext = posixpath.splitext(artifact_file)[1].lstrip(".").lower() or "png"
    buf = io.BytesIO()
    if hasattr(figure, "savefig"):
        figure.savefig(buf, format=ext)
        data = buf.getvalue()
    elif hasattr(figure, "to_html") and ext == "html":
        data = figure.to_html(include_plotlyjs="cdn").encode()
    elif hasattr(figure, "write_image"):
        figure.write_image(buf, format=ext)
        data = buf.getvalue()
    else:
        raise InvalidParameter(
            f"log_figure takes a matplotlib or plotly figure, got {type(figure).__name__}"
        )
    tr = _current()
    return tr.service.log_bytes(tr.active().run_id, data, artifact_file)


def get_run(run_id: str) -> Run:
    flush()
    return _current().service.get_run(run_id)


def get_metric_history(run_id: str, key: str, max_points: int | None = None) -> list[Metric]:
    """All points of a metric, or at most ``max_points`` keeping peaks and dips."""
    flush()
    return _current().service.get_metric_history(run_id, key, max_points)


def search_runs(
    experiment_names: Sequence[str] | None = None,
    filter_string: str = "",
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
    *,
    experiment_ids: Sequence[str] | None = None,
    view: str = "active",
    output: str = "pandas",
):
    """Runs matching ``filter_string`` (MLflow syntax plus OR, parentheses, IN,
    BETWEEN, LIKE) as a DataFrame (``output="pandas"``) or a list of Run."""
    flush()
    svc = _current().service
    ids = list(experiment_ids or [])
    for name in experiment_names or []:
        ids.append(svc.require_experiment(name).experiment_id)
    if not ids:
        ids = [e.experiment_id for e in svc.all_experiments()]
    runs = svc.find_runs(ids, filter_string, view, max_results, order_by)
    if output == "list":
        return runs
    if output != "pandas":
        raise InvalidParameter(f"output must be 'pandas' or 'list', got {output!r}")
    return _runs_frame(runs)


def _runs_frame(runs: Sequence[Run]):
    import pandas as pd

    rows = []
    for r in runs:
        row: dict[str, Any] = {
            "run_id": r.info.run_id,
            "run_name": r.info.run_name,
            "experiment_id": r.info.experiment_id,
            "status": r.info.status,
            "start_time": pd.to_datetime(r.info.start_time, unit="ms", utc=True),
            "end_time": (
                pd.to_datetime(r.info.end_time, unit="ms", utc=True) if r.info.end_time else pd.NaT
            ),
        }
        row |= {f"metrics.{k}": v for k, v in r.data.metrics.items()}
        row |= {f"params.{k}": v for k, v in r.data.params.items()}
        row |= {f"tags.{k}": v for k, v in r.data.tags.items()}
        rows.append(row)
    return pd.DataFrame(rows)


def compare_runs(run_ids: Sequence[str], diff_only: bool = False):
    """Side-by-side DataFrame of runs; ``diff_only`` keeps rows that differ."""
    flush()
    return _current().service.compare_runs(run_ids, diff_only=diff_only)
