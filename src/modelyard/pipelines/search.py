"""Hyper-parameter search as a step: trials fanned out, each a child run.

    @my.step
    def tune(df):
        found = my.search(fit_and_score, {"C": [0.1, 1, 10]}, data={"df": df},
                          goal="max", executor="local", workers=2)
        return found.best_params

``objective(params, **data)`` returns a number (or a dict of metrics holding
``metric``). ``grid`` tries every combination of the lists in ``space``; ``random``
draws ``n_trials`` combinations with ``seed`` (a list is sampled uniformly, a
``(low, high)`` tuple of floats or ints as a uniform range, ``("log", low, high)``
log-uniformly). Each trial is a child run of the active run (the step's) with its
params and metrics; the best is the one with the highest (``goal="max"``) or
lowest metric, and failed trials are recorded, not fatal, unless all fail.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelyard.core.errors import InvalidParameter, InvalidState

__all__ = ["SearchResult", "Trial", "search"]


@dataclass
class Trial:
    number: int
    params: dict[str, Any]
    value: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    error: str | None = None


@dataclass
class SearchResult:
    best: Trial
    trials: list[Trial]
    metric: str
    goal: str

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best.params)

    @property
    def best_value(self) -> float:
        return float(self.best.value)  # type: ignore[arg-type]


def _grid(space: Mapping[str, Any]) -> list[dict[str, Any]]:
    for key, values in space.items():
        if not isinstance(values, list) or not values:
            raise InvalidParameter(f"search: a grid needs a non-empty list for {key!r}")
    keys = list(space)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*space.values())]


def _draw(spec: Any, rng: random.Random, key: str) -> Any:
    if isinstance(spec, list) and spec:
        return rng.choice(spec)
    if isinstance(spec, tuple) and len(spec) == 3 and spec[0] == "log":
        low, high = float(spec[1]), float(spec[2])
        if low <= 0 or high <= low:
            raise InvalidParameter(f"search: ('log', low, high) needs 0 < low < high for {key!r}")
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    if isinstance(spec, tuple) and len(spec) == 2:
        low, high = spec
        if isinstance(low, int) and isinstance(high, int):
            return rng.randint(low, high)
        return rng.uniform(float(low), float(high))
    raise InvalidParameter(
        f"search: {key!r} must be a list, a (low, high) range or ('log', low, high), got {spec!r}"
    )


def _trial(
    objective: Callable[..., Any],
    params: dict[str, Any],
    data: Mapping[str, Any],
    run_id: str,
    metric: str,
    settings: dict[str, Any] | None,
) -> tuple[float | None, dict[str, float], str | None]:
    """One trial inside its child run (in this process or a worker)."""
    from modelyard.pipelines.runner import _configure_worker
    from modelyard.sdk import fluent

    if settings is not None:
        _configure_worker(settings)
    fluent.start_run(run_id=run_id, nested=True)
    try:
        answer = objective(params, **data)
        metrics = dict(answer) if isinstance(answer, Mapping) else {metric: answer}
        if metric not in metrics:
            raise InvalidParameter(f"the objective returned no {metric!r} (got {sorted(metrics)})")
        metrics = {k: float(v) for k, v in metrics.items()}
        fluent.log_metrics(metrics)
    except Exception as exc:  # noqa: BLE001 - a failed trial is recorded
        fluent.set_tag("modelyard.error", f"{type(exc).__name__}: {exc}"[:4000])
        fluent.end_run("FAILED")
        return None, {}, f"{type(exc).__name__}: {exc}"
    fluent.end_run("FINISHED")
    return metrics[metric], metrics, None


def search(
    objective: Callable[..., Any],
    space: Mapping[str, Any],
    *,
    data: Mapping[str, Any] | None = None,
    mode: str = "grid",
    n_trials: int = 10,
    seed: int = 0,
    metric: str = "score",
    goal: str = "max",
    executor: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
) -> SearchResult:
    """Try parameter combinations of ``objective`` on the executor; return the best."""
    from modelyard.pipelines.runner import TAG_STEP
    from modelyard.sdk import fluent

    if goal not in ("max", "min"):
        raise InvalidParameter(f"search: goal is 'max' or 'min', not {goal!r}")
    if mode == "grid":
        combos = _grid(space)
    elif mode == "random":
        if n_trials < 1:
            raise InvalidParameter("search: n_trials must be 1 or more")
        rng = random.Random(seed)
        combos = [{k: _draw(v, rng, k) for k, v in space.items()} for _ in range(n_trials)]
    else:
        raise InvalidParameter(f"search: mode is 'grid' or 'random', not {mode!r}")
    parent = fluent.active_run()
    if parent is None:
        raise InvalidState("my.search runs inside a step (or an active run): start a run first")
    service = fluent.client()
    trials = []
    for i, params in enumerate(combos):
        run = service.create_run(
            parent.info.experiment_id,
            run_name=f"trial-{i}",
            tags={"modelyard.search.trial": str(i), TAG_STEP + ".trial_of": parent.run_id},
            parent_run_id=parent.run_id,
        )
        service.log_batch(
            run.info.run_id, params=service._params({k: str(v) for k, v in params.items()})
        )
        trials.append(Trial(i, params, run_id=run.info.run_id))
    answers = _run_trials(objective, trials, data or {}, metric, executor, workers, ray_address)
    for trial, (value, metrics, error) in zip(trials, answers, strict=True):
        trial.value, trial.metrics, trial.error = value, metrics, error
    done = [t for t in trials if t.value is not None and math.isfinite(t.value)]
    if not done:
        first = trials[0].error if trials else "no trials"
        raise InvalidState(f"search: every trial failed (first: {first})")
    best = (max if goal == "max" else min)(done, key=lambda t: t.value)
    fluent.log_params({f"best.{k}": v for k, v in best.params.items()})
    fluent.log_metric(f"best_{metric}", best.value)
    fluent.set_tag("modelyard.search.best_run", best.run_id)
    return SearchResult(best, trials, metric, goal)


def _run_trials(objective, trials, data, metric, executor, workers, ray_address) -> list:  # noqa: ANN001
    from modelyard.pipelines.runner import worker_settings

    if executor == "local" and workers == 1:
        return [_trial(objective, t.params, data, t.run_id, metric, None) for t in trials]
    settings = worker_settings()
    if executor == "local":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            futures = [
                pool.submit(_trial, objective, t.params, data, t.run_id, metric, settings)
                for t in trials
            ]
            return [f.result() for f in futures]
    if executor == "ray":
        from modelyard.pipelines.executors import RayExecutor

        ray_ex = RayExecutor(ray_address)
        try:
            remote = ray_ex.ray.remote(_trial)
            data_ref = ray_ex.ray.put(dict(data))  # once, not per trial
            refs = [
                remote.remote(objective, t.params, data_ref, t.run_id, metric, settings)
                for t in trials
            ]
            return ray_ex.ray.get(refs)
        finally:
            ray_ex.close()
    raise InvalidParameter(f"search: unknown executor {executor!r}: use local or ray")
