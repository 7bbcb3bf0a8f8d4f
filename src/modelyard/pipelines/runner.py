"""Running a pipeline: one tracked parent run, one child run per step, cached.

The runner builds and checks the graph first (nothing runs when a definition is
wrong), then walks it in dependency order, handing each ready step to the
executor. Per step:

- its **cache key** is the hash of its code, its name and its inputs (constants by
  value, upstream outputs by the hash of their stored files) — or of the step's
  own ``cache_key`` function's answer. An earlier successful run of the same key in
  the pipeline's experiment, younger than ``cache_ttl`` and whose output files still
  exist, is reused and the step is reported ``cached``;
- otherwise it runs (with retries and exponential backoff), its output is stored as
  the child run's ``outputs/`` artifact and its log as ``logs/step.log``;
- a step that fails for good stops its dependents (``skipped``) and the parent run
  is FAILED with the error; `resume_pipeline` reruns from there, reusing every
  step that had succeeded.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tempfile
import time
import traceback
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelyard.core.errors import InvalidParameter, InvalidState, ModelyardError
from modelyard.core.ids import now_ms
from modelyard.pipelines.graph import Graph, Output, replace
from modelyard.pipelines.pipeline import Pipeline, load_pipeline
from modelyard.pipelines.values import hash_folder, read_value, write_value

__all__ = ["PipelineRun", "StepResult", "resume_pipeline", "run_pipeline"]

TAG_PIPELINE = "modelyard.pipeline"
TAG_TARGET = "modelyard.pipeline.target"
TAG_TRIGGER = "modelyard.trigger"
TAG_RESUMED = "modelyard.pipeline.resumed_from"
TAG_STEP = "modelyard.step"
TAG_KEY = "modelyard.step.cache_key"
TAG_HASH = "modelyard.step.output_hash"
TAG_STATE = "modelyard.step.state"  # ran, cached, reused, failed, skipped
TAG_FROM = "modelyard.step.output_run"
TAG_ERROR = "modelyard.error"
PARENT = "mlflow.parentRunId"


@dataclass
class StepResult:
    name: str
    state: str  # ran, cached, reused, failed, skipped
    run_id: str | None = None
    output_run: str | None = None  # the run whose artifacts hold the output
    output_hash: str | None = None
    error: str | None = None
    attempts: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.state in ("ran", "cached", "reused")


@dataclass
class PipelineRun:
    run_id: str
    name: str
    status: str  # FINISHED or FAILED
    steps: dict[str, StepResult] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    _graph: Graph | None = field(default=None, repr=False)
    _values: dict[str, Any] = field(default_factory=dict, repr=False)

    def output(self, step: str) -> Any:
        """The value step ``step`` returned (loaded from its stored files if need be)."""
        if step in self._values:
            return self._values[step]
        result = self.steps.get(step)
        if result is None or not result.ok:
            raise InvalidState(f"Step {step!r} of run {self.run_id} has no output")
        node = self._graph.nodes[step] if self._graph else None
        value = load_output(result.output_run, node.step.allow_pickle if node else False)
        self._values[step] = value
        return value

    @property
    def result(self) -> Any:
        """What the pipeline function returned, with outputs replaced by values."""
        if self._graph is None:
            return None
        return replace(self._graph.result, Output, lambda ref: _pick(self.output(ref.node), ref))


# --- executing one step (in this process or a worker) ---------------------------------


@dataclass
class StepTask:
    """Everything a worker needs to run one step and store its output."""

    step: Any  # a Step (pickled by reference)
    node: str
    args: tuple
    kwargs: dict
    run_id: str
    settings: dict[str, Any]


@dataclass(frozen=True)
class InputRef:
    """An upstream output a worker loads from its run's artifacts."""

    run_id: str
    key: Any
    allow_pickle: bool


@dataclass
class Outcome:
    ok: bool
    output_hash: str | None
    error: str | None
    attempts: int
    seconds: float
    value: Any = None  # only when run in this process (kept for the next steps)


def load_output(run_id: str, allow_pickle: bool = False) -> Any:
    from modelyard.sdk import fluent

    with tempfile.TemporaryDirectory(prefix="my-step-in-") as tmp:
        folder = fluent.client().download_artifacts(run_id, "outputs", tmp)
        return read_value(Path(folder), allow_pickle=allow_pickle)


def _pick(value: Any, ref: Output) -> Any:
    return value if ref.key is None else value[ref.key]


def execute(task: StepTask, keep_value: bool = False) -> Outcome:
    """Run a step with its retries inside its (already created) child run, store its
    output and log, and end the run. Runs in the driver or in a worker process."""
    from modelyard.sdk import fluent

    _configure_worker(task.settings)
    step = task.step
    began = time.perf_counter()
    memo: dict[str, Any] = {}

    def resolve(value: Any) -> Any:
        if isinstance(value, InputRef):
            if value.run_id not in memo:
                memo[value.run_id] = load_output(value.run_id, value.allow_pickle)
            loaded = memo[value.run_id]
            return loaded if value.key is None else loaded[value.key]
        return value

    service = fluent.client()
    log = io.StringIO()
    error, attempts, result = None, 0, None
    fluent.start_run(run_id=task.run_id, nested=True)
    try:
        args = tuple(replace(a, InputRef, resolve) for a in task.args)
        kwargs = {k: replace(v, InputRef, resolve) for k, v in task.kwargs.items()}
        delay = step.retry_backoff
        while True:
            attempts += 1
            try:
                with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                    result = step.fn(*args, **kwargs)
                error = None
                break
            except Exception as exc:  # noqa: BLE001 - a step's failure is data
                error = f"{type(exc).__name__}: {exc}"
                log.write(f"--- attempt {attempts} failed ---\n{traceback.format_exc()}")
                if attempts > step.retries:
                    break
                time.sleep(delay)
                delay *= 2
        output_hash = None
        if error is None:
            with tempfile.TemporaryDirectory(prefix="my-step-out-") as tmp:
                folder = Path(tmp) / "outputs"
                try:
                    write_value(result, folder, allow_pickle=step.allow_pickle, what=task.node)
                except ModelyardError as exc:
                    error = exc.message
                else:
                    output_hash = hash_folder(folder)
                    service.log_artifact(task.run_id, folder)
    except ModelyardError as exc:  # an input that cannot be loaded
        error, output_hash = exc.message, None
    finally:
        text = log.getvalue()
        if text:
            service.log_text(task.run_id, text, "logs/step.log")
    tags = {TAG_STATE: "ran" if error is None else "failed", "modelyard.step.attempts": attempts}
    if error is None:
        tags |= {TAG_HASH: output_hash, TAG_FROM: task.run_id}
    else:
        tags[TAG_ERROR] = error[:4000]
    service.log_batch(task.run_id, tags=service._tags(tags))
    fluent.end_run("FINISHED" if error is None else "FAILED")
    return Outcome(
        error is None,
        output_hash,
        error,
        attempts,
        time.perf_counter() - began,
        result if keep_value and error is None else None,
    )


_configured: dict[str, Any] | None = None


def _cache_store(service: Any) -> Any:
    """The step-cache table beside a SQL tracking store; None for a tracking server."""
    from modelyard.pipelines.cache_store import SqlStepCache
    from modelyard.tracking.sql_store import SqlTrackingStore

    store = service.store
    return SqlStepCache(store.engine) if isinstance(store, SqlTrackingStore) else None


def worker_settings() -> dict[str, Any]:
    """The driver's store, as `fluent.configure` arguments for a worker process."""
    from modelyard.sdk import fluent

    s = fluent._current().settings
    return {
        "home": str(s.home.resolve()),
        "db_url": s.resolved_db_url,
        "artifacts": s.resolved_artifacts,
        "tracking_uri": s.tracking_uri,
    }


def _configure_worker(settings: dict[str, Any]) -> None:
    """In a worker process, point the fluent API at the driver's store (once)."""
    global _configured
    from modelyard.sdk import fluent

    if fluent._tracker is not None and _configured is None:
        return  # the driver's own process: already configured
    if _configured != settings:
        fluent.configure(**settings)
        _configured = settings


# --- the driver ------------------------------------------------------------------------


def _json_hash(value: Any) -> str | None:
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(text.encode()).hexdigest()


def _value_hash(value: Any) -> str:
    quick = _json_hash(value)
    if quick is not None:
        return quick
    from modelyard.pipelines.values import hash_value

    with tempfile.TemporaryDirectory(prefix="my-step-key-") as tmp:
        return hash_value(value, Path(tmp) / "v")


class _Driver:
    def __init__(
        self,
        pipe: Pipeline,
        graph: Graph,
        *,
        no_cache: bool,
        invalidate: Sequence[str],
        reuse: Mapping[str, StepResult],
    ) -> None:
        from modelyard.sdk import fluent

        self.pipe = pipe
        self.graph = graph
        self.no_cache = no_cache
        self.invalidate = set(invalidate)
        self.reuse = dict(reuse)
        self.service = fluent.client()
        self.settings = worker_settings()
        unknown = self.invalidate - set(graph.nodes)
        if unknown:
            raise InvalidParameter(
                f"--invalidate names no step of {pipe.name!r}: {', '.join(sorted(unknown))} "
                f"(steps: {', '.join(graph.nodes)})"
            )
        self.experiment_id = self.service.get_or_create_experiment(pipe.name).experiment_id
        self.cache_rows = _cache_store(self.service)
        self.results: dict[str, StepResult] = {}
        self.values: dict[str, Any] = {}

    def cache_key(self, name: str) -> str:
        node = self.graph.nodes[name]
        step = node.step

        def as_hash(ref: Output) -> str:
            upstream = self.results[ref.node].output_hash
            return f"{upstream}:{ref.key!r}"

        if step.cache_key is not None:
            import inspect

            bound = inspect.signature(step.fn).bind(*node.args, **node.kwargs)
            bound.apply_defaults()
            custom = step.cache_key(**replace(dict(bound.arguments), Output, as_hash))
            parts = {"custom": _value_hash(custom)}
        else:
            args = [_value_hash(replace(a, Output, as_hash)) for a in node.args]
            kwargs = {k: _value_hash(replace(v, Output, as_hash)) for k, v in node.kwargs.items()}
            parts = {"args": args, "kwargs": kwargs}
        body = {"step": step.name, "code": step.code_hash, **parts}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]

    def find_cached(self, name: str, key: str) -> tuple[str, str] | None:
        """(run id, output hash) of the newest earlier run of this key that is young
        enough and whose output files still exist."""
        step = self.graph.nodes[name].step
        if not step.cache or self.no_cache or name in self.invalidate:
            return None
        oldest = now_ms() - step.cache_ttl * 1000 if step.cache_ttl is not None else None
        for run_id, output_hash, finished in self._candidates(key):
            if oldest is not None and finished < oldest:
                continue
            try:
                listed = self.service.list_artifacts(run_id, "outputs")
            except ModelyardError:
                continue
            if any(f.path.endswith("value.json") for f in listed):
                return run_id, output_hash
        return None

    def _candidates(self, key: str) -> list[tuple[str, str, int]]:
        if self.cache_rows is not None:
            return self.cache_rows.candidates(key)
        runs = self.service.find_runs(  # a tracking server: search by the run tag
            [self.experiment_id],
            f"tags.`{TAG_KEY}` = '{key}'",
            order_by=["attributes.start_time DESC"],
            max_results=20,
        )
        return [
            (r.info.run_id, r.data.tags.get(TAG_HASH, ""), r.info.end_time or 0)
            for r in runs
            if r.info.status == "FINISHED" and r.data.tags.get(TAG_STATE) == "ran"
        ]

    def remember(self, name: str, key: str, result: StepResult) -> None:
        if self.cache_rows is not None and result.output_hash:
            self.cache_rows.add(key, result.run_id, self.pipe.name, name, result.output_hash)

    def child(self, parent: str, name: str, tags: dict[str, str]) -> str:
        run = self.service.create_run(
            self.experiment_id,
            run_name=name,
            tags={TAG_STEP: name, TAG_PIPELINE: self.pipe.name, **tags},
            parent_run_id=parent,
        )
        return run.info.run_id

    def settle(self, parent: str, name: str, state: str, source: Any, **tags: str) -> None:
        """Record a step that did not run: cached, reused or skipped."""
        extra = {TAG_STATE: state, **tags}
        run_id = self.child(parent, name, extra)
        status = "KILLED" if state == "skipped" else "FINISHED"
        self.service.end_run(run_id, status)
        result = StepResult(name, state, run_id)
        if source is not None:
            result.output_run = source.output_run
            result.output_hash = source.output_hash
        self.results[name] = result

    def task(self, parent: str, name: str, key: str) -> StepTask:
        node = self.graph.nodes[name]
        run_id = self.child(parent, name, {TAG_KEY: key})

        def ref(out: Output) -> Any:
            if out.node in self.values:
                return _pick(self.values[out.node], out)
            allow = self.graph.nodes[out.node].step.allow_pickle
            return InputRef(self.results[out.node].output_run, out.key, allow)

        args = tuple(replace(a, Output, ref) for a in node.args)
        kwargs = {k: replace(v, Output, ref) for k, v in node.kwargs.items()}
        self.results[name] = StepResult(name, "running", run_id)
        return StepTask(node.step, name, args, kwargs, run_id, self.settings)


class _LazyExecutor:
    """Opens the executor on the first step that runs: a fully cached run never
    starts worker processes or Ray."""

    def __init__(self, opener) -> None:  # noqa: ANN001 - () -> Executor
        self.opener = opener
        self.executor = None

    def submit(self, task: StepTask) -> Future:
        if self.executor is None:
            self.executor = self.opener()
        return self.executor.submit(task)

    def close(self) -> None:
        if self.executor is not None:
            self.executor.close()


def run_pipeline(
    target: Pipeline | str,
    params: Mapping[str, Any] | None = None,
    *,
    trigger: Mapping[str, Any] | None = None,
    executor: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
    no_cache: bool = False,
    invalidate: Sequence[str] = (),
    _reuse: Mapping[str, StepResult] | None = None,
    _resumed_from: str | None = None,
) -> PipelineRun:
    """Run a pipeline (an object or ``package.module:attr``) with ``params``.

    - ``executor``: ``local`` (in this process with ``workers=1``; parallel branches in
      ``workers`` subprocesses otherwise) or ``ray`` (``ray_address``: ``auto``,
      ``ray://host:port``, or None for a local Ray).
    - ``no_cache``: run every step; ``invalidate``: run these steps (and so, through
      their new outputs' hashes where they change, what depends on them).
    - ``trigger``: why it runs (recorded on the parent run: schedule, data, alert...).
    """
    from modelyard.pipelines.executors import open_executor

    began = time.perf_counter()
    pipe = load_pipeline(target)
    values = pipe.params(params)
    graph = pipe.build(values)  # a bad definition fails here, before any run exists
    order = graph.check()
    driver = _Driver(pipe, graph, no_cache=no_cache, invalidate=invalidate, reuse=_reuse or {})
    ex = _LazyExecutor(lambda: open_executor(executor, workers=workers, ray_address=ray_address))
    if executor not in ("local", "ray") or workers < 1:
        raise InvalidParameter(
            f"Unknown executor {executor!r} or workers {workers}: use local or ray"
        )
    if executor == "ray" and ray_address:
        ex.executor = ex.opener()  # an unreachable cluster fails before any run exists
    tags = {TAG_PIPELINE: pipe.name, "mlflow.runName": pipe.name}
    if pipe.ref:
        tags[TAG_TARGET] = pipe.ref
    if trigger is not None:
        tags[TAG_TRIGGER] = json.dumps(dict(trigger), sort_keys=True, default=str)
    if _resumed_from:
        tags[TAG_RESUMED] = _resumed_from
    parent = driver.service.create_run(driver.experiment_id, run_name=pipe.name, tags=tags)
    parent_id = parent.info.run_id
    params_doc = _json_hash(values) is not None
    if params_doc:
        driver.service.log_dict(parent_id, values, "pipeline/params.json")
        driver.service.log_batch(
            parent_id, params=driver.service._params({k: str(v)[:6000] for k, v in values.items()})
        )
    failed: list[str] = []
    try:
        running: dict[Future, str] = {}
        keys: dict[str, str] = {}
        pending = list(order)
        while pending or running:
            progressed = False
            for name in list(pending):
                upstream = graph.nodes[name].upstream
                if any(
                    u not in driver.results or driver.results[u].state == "running"
                    for u in upstream
                ):
                    continue
                pending.remove(name)
                progressed = True
                if any(not driver.results[u].ok for u in upstream):
                    driver.settle(parent_id, name, "skipped", None)
                    continue
                if name in driver.reuse:
                    old = driver.reuse[name]
                    driver.settle(parent_id, name, "reused", old, **{TAG_FROM: old.output_run})
                    continue
                key = driver.cache_key(name)
                hit = driver.find_cached(name, key)
                if hit is not None:
                    source = StepResult(name, "ran", output_run=hit[0], output_hash=hit[1])
                    driver.settle(
                        parent_id,
                        name,
                        "cached",
                        source,
                        **{
                            TAG_KEY: key,
                            TAG_FROM: hit[0],
                            TAG_HASH: source.output_hash or "",
                        },
                    )
                    continue
                task = driver.task(parent_id, name, key)
                keys[name] = key
                running[ex.submit(task)] = name
            if not running:
                if not progressed and pending:  # pragma: no cover - check() prevents it
                    raise InvalidState(f"Steps that can never run: {pending}")
                continue
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                result = driver.results[name]
                try:
                    outcome: Outcome = future.result()
                except Exception as exc:  # noqa: BLE001 - a worker died or Ray failed
                    outcome = Outcome(False, None, f"{type(exc).__name__}: {exc}", 0, 0.0)
                    with contextlib.suppress(ModelyardError):
                        driver.service.set_tag(result.run_id, TAG_ERROR, outcome.error[:4000])
                        driver.service.end_run(result.run_id, "FAILED")
                result.state = "ran" if outcome.ok else "failed"
                result.output_hash = outcome.output_hash
                result.output_run = result.run_id if outcome.ok else None
                result.error = outcome.error
                result.attempts = outcome.attempts
                result.seconds = outcome.seconds
                if outcome.ok:
                    driver.remember(name, keys[name], result)
                if outcome.ok and outcome.value is not None:
                    driver.values[name] = outcome.value
                if not outcome.ok:
                    failed.append(name)
    except BaseException as exc:
        driver.service.set_tag(parent_id, TAG_ERROR, f"{type(exc).__name__}: {exc}"[:4000])
        driver.service.end_run(
            parent_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        )
        raise
    finally:
        ex.close()
    error = None
    if failed:
        first = driver.results[failed[0]]
        error = f"step {first.name!r} failed: {first.error}"
        driver.service.set_tag(parent_id, TAG_ERROR, error[:4000])
    status = "FAILED" if failed else "FINISHED"
    driver.service.end_run(parent_id, status)
    return PipelineRun(
        parent_id,
        pipe.name,
        status,
        driver.results,
        error,
        time.perf_counter() - began,
        graph,
        dict(driver.values),
    )


def resume_pipeline(run_id: str, **options: Any) -> PipelineRun:
    """Run a failed pipeline run again: the steps that succeeded in it are reused,
    the failed one and everything after it run."""
    from modelyard.sdk import fluent

    service = fluent.client()
    run = service.get_run(run_id)
    tags = run.data.tags
    if TAG_STEP in tags:
        raise InvalidParameter(
            f"Run {run_id} is a step of pipeline run {tags.get(PARENT)}; resume that run"
        )
    if TAG_PIPELINE not in tags:
        raise InvalidParameter(f"Run {run_id} is not a pipeline run")
    if run.info.status == "FINISHED":
        raise InvalidState(f"Pipeline run {run_id} finished; there is nothing to resume")
    target = tags.get(TAG_TARGET)
    if not target:
        raise InvalidState(
            f"Pipeline run {run_id} does not say where its pipeline is defined; run it again"
        )
    try:
        params = json.loads(service.read_artifact(run_id, "pipeline/params.json"))
    except ModelyardError:
        raise InvalidState(
            f"Pipeline run {run_id} has no stored parameters (they were not JSON); run it again"
        ) from None
    children = service.find_runs(
        [run.info.experiment_id], f"tags.`{PARENT}` = '{run_id}'", max_results=10_000
    )
    reuse = {}
    for child in children:
        t = child.data.tags
        if child.info.status == "FINISHED" and t.get(TAG_STATE) in ("ran", "cached", "reused"):
            reuse[t[TAG_STEP]] = StepResult(
                t[TAG_STEP], "reused", child.info.run_id, t.get(TAG_FROM), t.get(TAG_HASH)
            )
    return run_pipeline(target, params, _reuse=reuse, _resumed_from=run_id, **options)
