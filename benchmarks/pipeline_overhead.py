"""Pipeline orchestration overhead: trivial steps run by modelyard's runner (in
process, in worker processes, on Ray) against the same functions called directly.

    .venv/bin/python benchmarks/pipeline_overhead.py                # 20 steps, 5 reps (~2-4 min)
    .venv/bin/python benchmarks/pipeline_overhead.py --skip-ray     # local executors only
    .venv/bin/python benchmarks/pipeline_overhead.py --profile      # + where a step's time goes
    .venv/bin/python benchmarks/pipeline_overhead.py --steps 50 --reps 9 --json /tmp/p.json

The steps (``_pipeline_steps.py``) do nothing: ``inc(x) = x + 1``. ``chain`` calls it
``--steps`` times in a row (each on the previous output: no parallelism), ``wide``
calls ``--steps`` independent ``leaf(n, i)`` then one ``join`` of them all. The
anchor is the same functions called directly (``Step.fn``), timed over enough loops
to be measurable.

Every pipeline run goes through ``run_pipeline`` on one store in a temporary folder
(SQLite + a local artifact folder, the embedded default): a parent tracking run, one
child run per step with its output stored as an artifact. Timed: the whole
``run_pipeline`` call (``time.perf_counter``); checked after the timer: the run
FINISHED, every step's state (``ran`` or ``cached``) and the result.

- **cold**: a fresh input each run (``n`` a million apart), so every step looks its
  cache up, misses, runs and stores its output — what a run on new data costs;
- **warm**: the same input as the cold run just before: every step is ``cached``
  (the executor is never opened, so this is the same for every executor);
- **no_cache**: ``no_cache=True``, every step runs without a cache lookup;
- executors: ``local`` in process; ``local`` with ``--workers`` (2) spawned worker
  processes — a new pool per run, so its start is a per-run cost, and a chain has no
  parallelism: this is the dispatch cost; ``ray``: a local Ray
  (``ray.init(num_cpus=2)``, the executor's own default) started once before the
  timing (its start and the first run, whose Ray workers import modelyard, are
  reported apart).

Per step = a run's time ÷ its steps (``wide``: ``--steps`` + 1); overhead per step =
(ours − plain) ÷ steps. Each chain is also run with 1 step, interleaved with the
long one, which splits a run's time into a fixed part (parent run, graph, executor
start) and a marginal cost per step: (t(N) − t(1)) ÷ (N − 1). The issue's goal:
overhead ≤ 20 ms per step, local in-process, cold cache. Every row is the median
(and the 90th percentile, nearest rank) of ``--reps`` runs, after one untimed run
that pays the imports and the store's schema.

All rows share one store, as a project does, so cache lookups search a history that
grows through the run. Last, ``--history`` (5,000) step runs are added to the chain's
experiment (~250 earlier runs of a 20-step pipeline) and the cold in-process chain is
timed again.

``--profile`` runs ``--reps`` more cold in-process chains under one cProfile and
prints where the time goes (each call from the runner to code outside it, with the
time under it), the 10 modelyard functions with the most cumulative time and the 10
functions of any code with the most own time (ms per step beside each; cProfile
slows Python code more than C code, so read the shares). Results go to ``--json``
(default ``benchmarks/results/pipeline_overhead.json``); exits 1 when a run failed
or returned a wrong result.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import itertools
import math
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# Only the standard library and the harness at the top: the spawned worker processes
# of the `workers` executor run this module's top level again (as __mp_main__), and
# anything imported here would count in their start. modelyard, the steps and Ray are
# imported where they are used.
import _harness as h  # noqa: E402

RESULTS = HERE / "results" / "pipeline_overhead.json"
GOAL_MS = 20.0  # the goal: local in-process orchestration overhead per step
SPACING = 1_000_000  # cold inputs this far apart: no step of a run can hit another's cache
PLAIN_MIN_S = 0.05  # each plain repetition loops until it lasts at least this long
PROFILE_TOP = 10  # rows of each profile table (--profile-top)
CACHE_LABELS = {
    "cold": "cold (fresh input)",  # every step looks its cache up, misses and runs
    "warm": "warm (all cached)",  # the input of the cold run just before
    "no_cache": "no_cache=True",  # every step runs, no lookup
}


@dataclass(frozen=True)
class Spec:
    """One kind of timed run."""

    key: str
    shape: str  # chain or wide
    steps: int  # steps the pipeline function calls (wide: + 1 join)
    executor: str = "local"
    workers: int = 1
    cache: str = "cold"  # cold, warm or no_cache
    history: int = 0  # step runs added to the pipeline's experiment before these runs

    @property
    def units(self) -> int:
        """The steps a run executes."""
        return self.steps + (1 if self.shape == "wide" else 0)

    @property
    def cache_label(self) -> str:
        if self.history:
            return f"cold, +{self.history:,} older step runs"
        return CACHE_LABELS[self.cache]

    @property
    def where(self) -> str:
        if self.executor == "ray":
            return "ray (local, 2 CPUs)"
        return "local, in process" if self.workers == 1 else f"local, {self.workers} workers"


@dataclass
class Timing:
    spec: Spec | None  # None: the plain calls
    seconds: list[float] = field(default_factory=list)  # per run

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def p90(self) -> float:
        ordered = sorted(self.seconds)
        return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


class Bench:
    """Runs the specs, keeps every time, the one-off costs and the errors."""

    def __init__(self, steps: int, reps: int, workers: int) -> None:
        self.steps = steps
        self.reps = reps
        self.workers = workers
        self.timings: dict[str, Timing] = {}
        self.once: dict[str, float] = {}  # one-off costs, seconds
        self.errors: list[str] = []
        self.profile: dict[str, Any] | None = None
        self._inputs = itertools.count(1)
        self._last_cold: dict[tuple[str, int], int] = {}

    def fresh(self) -> int:
        return next(self._inputs) * SPACING

    # -- the anchor ---------------------------------------------------------------------

    def plain(self, shape: str) -> None:
        """The same functions called directly: ``reps`` repetitions, each looping
        until it lasts ``PLAIN_MIN_S``; seconds per run of ``steps`` calls."""
        import _pipeline_steps as ps

        fn = ps.plain_chain if shape == "chain" else ps.plain_wide
        expected = ps.expected_chain if shape == "chain" else ps.expected_wide
        if fn(7, self.steps) != expected(7, self.steps):
            self.errors.append(f"plain {shape}: wrong result")
        loops = 1
        while True:
            began = time.perf_counter()
            for _ in range(loops):
                fn(7, self.steps)
            if time.perf_counter() - began >= PLAIN_MIN_S:
                break
            loops *= 4
        timing = Timing(None)
        for _ in range(self.reps):
            began = time.perf_counter()
            for _ in range(loops):
                fn(7, self.steps)
            timing.seconds.append((time.perf_counter() - began) / loops)
        self.timings[f"plain {shape}"] = timing

    # -- ours ---------------------------------------------------------------------------

    def run(self, spec: Spec, n: int | None = None) -> float | None:
        """One timed run of ``spec`` (a fresh input unless ``n``), checked; its seconds,
        or None after an error (recorded)."""
        import _pipeline_steps as ps

        from modelyard.pipelines import run_pipeline

        pipe = ps.chain if spec.shape == "chain" else ps.wide
        expected = ps.expected_chain if spec.shape == "chain" else ps.expected_wide
        if n is None:
            n = self.fresh() if spec.cache == "cold" else self._last_cold[(spec.shape, spec.steps)]
        began = time.perf_counter()
        try:
            run = run_pipeline(
                pipe,
                {"n": n, "steps": spec.steps},
                executor=spec.executor,
                workers=spec.workers,
                no_cache=spec.cache == "no_cache",
            )
        except Exception as exc:  # noqa: BLE001 - reported, the other rows still run
            self.errors.append(f"{spec.key}: {type(exc).__name__}: {exc}")
            return None
        seconds = time.perf_counter() - began
        want = "cached" if spec.cache == "warm" else "ran"
        states = sorted({s.state for s in run.steps.values()})
        problem = None
        if run.status != "FINISHED":
            problem = f"status {run.status}: {run.error}"
        elif states != [want] or len(run.steps) != spec.units:
            problem = f"{len(run.steps)} steps in states {states}, expected {spec.units} {want}"
        else:
            try:
                result = run.result
            except Exception as exc:  # noqa: BLE001
                result = f"{type(exc).__name__}: {exc}"
            if result != expected(n, spec.steps):
                problem = f"result {result!r}, expected {expected(n, spec.steps)}"
        if problem:
            self.errors.append(f"{spec.key}: {problem}")
            return None
        if spec.cache == "cold":
            self._last_cold[(spec.shape, spec.steps)] = n
        return seconds

    def measure(self, section: str, specs: list[Spec], step: Callable[[str], None]) -> None:
        """``reps`` rounds, each running every spec once in order (interleaved, so a
        slow spell of the machine hits all of them alike)."""
        for spec in specs:
            self.timings.setdefault(spec.key, Timing(spec))
        for rep in range(self.reps):
            step(f"{section}: round {rep + 1}/{self.reps}")
            for spec in specs:
                seconds = self.run(spec)
                if seconds is not None:
                    self.timings[spec.key].seconds.append(seconds)

    def first_run(self, key: str, spec: Spec) -> None:
        """An untimed-in-the-rows run that pays one-off costs; its time is reported."""
        seconds = self.run(spec)
        if seconds is not None:
            self.once[key] = seconds

    def specs(self, executor: str, workers: int, *, cache_rows: bool) -> list[Spec]:
        name = "ray" if executor == "ray" else ("local" if workers == 1 else f"workers{workers}")
        out = [
            Spec(f"chain {name} cold", "chain", self.steps, executor, workers),
            Spec(f"chain1 {name} cold", "chain", 1, executor, workers),
        ]
        if cache_rows:
            out += [
                Spec(f"chain {name} warm", "chain", self.steps, executor, workers, "warm"),
                Spec(f"chain {name} no_cache", "chain", self.steps, executor, workers, "no_cache"),
            ]
        return out

    def wide(self, executor: str, workers: int) -> list[Spec]:
        name = "ray" if executor == "ray" else ("local" if workers == 1 else f"workers{workers}")
        return [Spec(f"wide {name} cold", "wide", self.steps, executor, workers)]

    def add_history(self, runs: int) -> None:
        """``runs`` step runs in the chain pipeline's experiment, tagged as a step's run
        is (each with its own cache key): the history of ``runs`` ÷ 20 earlier runs of a
        20-step pipeline, which every cache lookup searches."""
        import uuid

        import modelyard as my

        service = my.client()
        experiment = service.get_or_create_experiment("chain").experiment_id
        began = time.perf_counter()
        for _ in range(runs):
            tags = {
                "modelyard.step": "inc",
                "modelyard.pipeline": "chain",
                "modelyard.step.cache_key": uuid.uuid4().hex,
                "modelyard.step.state": "ran",
            }
            run = service.create_run(experiment, run_name="inc", tags=tags)
            service.end_run(run.info.run_id, "FINISHED")
        self.once["history"] = time.perf_counter() - began

    def run_profile(self, top: int, step: Callable[[str], None]) -> None:
        """``reps`` cold in-process chains under one cProfile (one run alone is at the
        mercy of a WAL checkpoint or a busy neighbour): the runner's calls out of itself
        (a partition of the runs' time by phase), the modelyard functions with the most
        cumulative time and the functions of any code with the most own time."""
        import modelyard

        spec = Spec("chain local cold (profiled)", "chain", self.steps)
        profiler = cProfile.Profile()
        seconds = 0.0
        for rep in range(self.reps):
            step(f"profiling cold in-process runs: {rep + 1}/{self.reps}")
            profiler.enable()
            took = self.run(spec)
            profiler.disable()
            if took is None:
                return
            seconds += took
        stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
        package = str(Path(modelyard.__file__).resolve().parent)
        runtime = tuple(str(Path(package, "pipelines", f)) for f in ("runner.py", "executors.py"))
        name = functools.partial(_function_name, package)

        # Every call from the runner (runner.py, executors.py) to code outside it, with
        # the time spent under that call: together with the runner's own time, the run.
        phases, runner_own = [], 0.0
        for callee, (_, _, own, _, callers) in stats.items():
            if callee[0] in runtime:
                runner_own += own
                continue
            for caller, (calls, _, _, cumulative) in callers.items():
                if caller[0] in runtime:
                    phases.append({
                        "caller": caller[2], "function": name(callee), "calls": calls,
                        "cumulative_s": cumulative,
                    })  # fmt: skip
        phases.sort(key=lambda e: e["cumulative_s"], reverse=True)

        def entry(key: tuple[str, int, str], value: tuple) -> dict[str, Any]:
            _, calls, own, cumulative, _ = value
            return {"function": name(key), "calls": calls, "own_s": own, "cumulative_s": cumulative}

        ours = sorted(
            (kv for kv in stats.items() if kv[0][0].startswith(package)),
            key=lambda kv: kv[1][3],
            reverse=True,
        )
        own = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)
        self.profile = {
            "seconds_profiled": seconds,
            "runs": self.reps,
            "steps": self.steps * self.reps,
            "runner_own_s": runner_own,
            "phases": phases,
            "top_cumulative_modelyard": [entry(*kv) for kv in ours[:top]],
            "top_own_time": [entry(*kv) for kv in own[:top]],
            "top": top,
        }


def _function_name(package: str, key: tuple[str, int, str]) -> str:
    """``modelyard/tracking/service.py:358(log_artifact)``, ``sqlalchemy/...``."""
    filename, line, func = key
    if filename.startswith(package):
        where = "modelyard/" + filename[len(package) + 1 :]
    elif "site-packages/" in filename:
        where = filename.split("site-packages/", 1)[1]
    elif filename.startswith(("~", "<")):
        return f"{func}" if filename == "~" else f"{filename}:{line}({func})"
    else:
        where = Path(filename).name
    return f"{where}:{line}({func})"


# -- Ray ---------------------------------------------------------------------------------


def start_ray() -> tuple[Any, float] | str:
    """Ray started the way the executor starts it (so the executor reuses it and leaves
    it running), with this folder on the workers' PYTHONPATH; (ray, seconds) or why not."""
    try:
        import ray
    except ImportError:
        return "Ray is not installed (pip install 'modelyard[ray]')"
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), path) if p)
    began = time.perf_counter()
    try:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    except Exception as exc:  # noqa: BLE001 - reported, the local rows still stand
        return f"ray.init failed: {type(exc).__name__}: {exc}"
    return ray, time.perf_counter() - began


# -- the tables --------------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else h.fmt_ms(seconds * 1e3)


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.2f} µs" if seconds < 1e-3 else f"{seconds * 1e3:,.2f} ms"


def split(bench: Bench, key: str) -> tuple[float, float] | None:
    """(fixed seconds per run, marginal seconds per step) of a chain row, from its
    1-step companion; None without one."""
    if not key.startswith("chain ") or not key.endswith(" cold"):
        return None
    long, short = bench.timings.get(key), bench.timings.get(key.replace("chain ", "chain1 ", 1))
    if not long or not short or not long.seconds or not short.seconds or bench.steps < 2:
        return None
    marginal = (long.median - short.median) / (bench.steps - 1)
    return short.median - marginal, marginal


def rows(bench: Bench) -> list[dict[str, Any]]:
    """The table's rows (and the JSON's), plain first per shape."""
    out = []
    for shape in ("chain", "wide"):
        plain = bench.timings.get(f"plain {shape}")
        if plain is None:
            continue
        units = bench.steps + (1 if shape == "wide" else 0)
        plain_step = plain.median / units
        out.append({
            "key": f"plain {shape}", "shape": shape, "executor": "plain function calls",
            "cache": "—", "units": units, "runs": len(plain.seconds),
            "median_s": plain.median, "p90_s": plain.p90, "per_step_s": plain_step,
            "overhead_step_s": None, "times_plain": 1.0, "split": None, "goal": "anchor",
            "met": None,
        })  # fmt: skip
        for key, timing in bench.timings.items():
            spec = timing.spec
            if spec is None or spec.shape != shape or spec.steps != bench.steps:
                continue
            if not timing.seconds:
                out.append({"key": key, "shape": shape, "executor": spec.where,
                            "cache": spec.cache_label, "units": units, "runs": 0,
                            "goal": "info", "met": None, "error": True})  # fmt: skip
                continue
            per_step = timing.median / units
            overhead = (timing.median - plain.median) / units
            judged = spec.executor == "local" and spec.workers == 1 and spec.cache == "cold"
            judged = judged and shape == "chain" and not spec.history
            out.append({
                "key": key, "shape": shape, "executor": spec.where,
                "cache": spec.cache_label, "units": units, "runs": len(timing.seconds),
                "median_s": timing.median, "p90_s": timing.p90, "per_step_s": per_step,
                "overhead_step_s": overhead, "times_plain": per_step / plain_step,
                "split": split(bench, key),
                "goal": f"≤ {GOAL_MS:g} ms/step" if judged else "info",
                "met": overhead * 1e3 <= GOAL_MS if judged else None,
                "all_s": timing.seconds,
            })  # fmt: skip
    return out


def render(bench: Bench, table: list[dict[str, Any]]) -> None:
    cells = []
    for r in table:
        if r.get("error"):
            failed = [r["shape"], r["executor"], r["cache"], "0", *["error"] * 6]
            cells.append([*failed, r["goal"], "NO"])
            continue
        fixed = "—"
        if r["split"] is not None:
            fixed = f"{_ms(r['split'][0])} + {_ms(r['split'][1])}/step"
        plain = r["key"].startswith("plain")
        cells.append([
            f"{r['shape']} ({r['units']} steps)" if plain else r["shape"],
            r["executor"], r["cache"], str(r["runs"]),
            _us(r["median_s"]) if plain else _ms(r["median_s"]),
            _us(r["p90_s"]) if plain else _ms(r["p90_s"]),
            _us(r["per_step_s"]) if plain else _ms(r["per_step_s"]),
            "—" if r["overhead_step_s"] is None else _ms(r["overhead_step_s"]),
            "1×" if plain else h.fmt_ratio(r["times_plain"]),
            fixed, r["goal"],
            "—" if r["met"] is None else ("yes" if r["met"] else "NO"),
        ])  # fmt: skip
    h.render_table(
        f"pipeline orchestration overhead: trivial steps, modelyard's runner vs plain "
        f"function calls — median of {bench.reps} run{'s' if bench.reps > 1 else ''} (ms unless "
        "marked)",
        [
            "pipeline", "executor", "cache", "runs", "per run", "p90", "per step",
            "overhead/step", "× plain", "fixed + marginal", "goal", "met?",
        ],
        cells,
    )  # fmt: skip


ONCE_LABELS = {
    "first local run": "first in-process run (imports, store schema), untimed in the rows",
    "ray start": "ray.init(num_cpus=2), once before the Ray rows",
    "first ray run": "first Ray run (its workers import modelyard), untimed in the rows",
    "history": "adding the older step runs (create_run + end_run each), untimed in the rows",
}


def render_once(bench: Bench) -> None:
    cells = [[ONCE_LABELS[k], h.fmt_seconds(v)] for k, v in bench.once.items()]
    local = split(bench, "chain local cold")
    pool = split(bench, f"chain workers{bench.workers} cold")
    if local and pool:
        cells.append([
            f"the {bench.workers}-worker pool's start per run (fixed cost, workers − in process; "
            "a chain starts one process: the pool spawns on demand)",
            h.fmt_seconds(pool[0] - local[0]),
        ])  # fmt: skip
    if cells:
        h.render_table("one-off and per-run costs", ["what", "seconds"], cells)


def render_profile(bench: Bench) -> None:
    prof = bench.profile
    if prof is None:
        return
    steps, top, total = prof["steps"], prof["top"], prof["seconds_profiled"]
    cold = bench.timings.get("chain local cold")
    unprofiled = f", {h.fmt_ms(cold.median / bench.steps * 1e3)} without" if cold else ""
    head = (
        f"profile: {prof['runs']} cold in-process chains of {bench.steps} steps under cProfile, "
        f"{h.fmt_ms(total / steps * 1e3)} ms per step{unprofiled} (cProfile slows Python code "
        "more than C code: read the shares)"
    )

    def ms(seconds: float) -> list[str]:
        return [h.fmt_ms(seconds * 1e3), h.fmt_ms(seconds * 1e3 / steps), f"{seconds / total:.0%}"]

    shown = prof["phases"][:top]
    cells = [[e["caller"], e["function"], f"{e['calls']:,}", *ms(e["cumulative_s"])] for e in shown]
    rest = sum(e["cumulative_s"] for e in prof["phases"][top:])
    cells.append(["(the rest)", f"{len(prof['phases']) - len(shown)} other callees", "", *ms(rest)])
    cells.append(["(runner.py, executors.py)", "their own code", "", *ms(prof["runner_own_s"])])
    h.render_table(
        f"{head} — where the time goes: the runner's calls out of itself",
        ["runner function", "calls out to", "times", "ms", "ms/step", "share"],
        cells,
    )
    for key, title, col in (
        ("top_cumulative_modelyard", "modelyard functions by cumulative time", "cumulative_s"),
        ("top_own_time", "all functions by own time (where the time lands)", "own_s"),
    ):
        other = "own_s" if col == "cumulative_s" else "cumulative_s"
        cells = [
            [e["function"], f"{e['calls']:,}", *ms(e[col]), h.fmt_ms(e[other] * 1e3)]
            for e in prof[key]
        ]
        h.render_table(
            f"{head} — {title}",
            [
                "function", "calls", f"{col.split('_')[0]} ms", "ms/step", "share",
                f"{other.split('_')[0]} ms",
            ],
            cells,
        )  # fmt: skip


# -- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--steps", type=int, default=20, help="steps per pipeline (20)")
    parser.add_argument("--reps", type=int, default=5, help="timed runs per row (5)")
    parser.add_argument("--workers", type=int, default=2, help="the worker rows' processes (2)")
    parser.add_argument("--skip-ray", action="store_true", help="no Ray rows")
    parser.add_argument("--skip-wide", action="store_true", help="no wide (fan-out) rows")
    parser.add_argument(
        "--history",
        type=int,
        default=5_000,
        help="finally, time the cold in-process chain again after adding this many step runs "
        "to its experiment (5,000; 0: skip)",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile a cold local run")
    parser.add_argument(
        "--profile-top", type=int, default=PROFILE_TOP, help="rows per profile table (10)"
    )
    parser.add_argument("--json", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args(argv)
    if args.steps < 2 or args.reps < 1 or args.workers < 2 or args.history < 0:
        parser.error(
            "--steps must be 2 or more, --reps 1 or more, --workers 2 or more, --history 0 or more"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = Bench(args.steps, args.reps, args.workers)
    wide = not args.skip_wide
    rounds = 1 + args.reps * (2 if args.skip_ray else 3) + (0 if args.skip_ray else 1)
    rounds += args.reps if args.profile else 0
    rounds += 1 + args.reps if args.history else 0
    ray_note = "skipped (--skip-ray)" if args.skip_ray else ""
    clock = h.RunClock()
    with h.terminate_cleanly(), h.temp_home("pipeline") as tmp, h.progress(rounds) as step:
        import modelyard as my

        my.configure(home=tmp / "home", artifacts=str(tmp / "artifacts"))
        step("plain function calls; a first in-process run")
        bench.plain("chain")
        if wide:
            bench.plain("wide")
        bench.first_run("first local run", Spec("first", "chain", args.steps))
        local = bench.specs("local", 1, cache_rows=True) + (bench.wide("local", 1) if wide else [])
        bench.measure("local, in process", local, step)
        pool = bench.specs("local", args.workers, cache_rows=False)
        pool += bench.wide("local", args.workers) if wide else []
        bench.measure(f"local, {args.workers} workers", pool, step)
        if not args.skip_ray:
            step("starting Ray")
            started = start_ray()
            if isinstance(started, str):
                ray_note = started
                print(f"no Ray rows: {started}", file=sys.stderr)
            else:
                ray, bench.once["ray start"] = started
                try:
                    bench.first_run("first ray run", Spec("first ray", "chain", args.steps, "ray"))
                    specs = bench.specs("ray", 1, cache_rows=False)
                    bench.measure("ray", specs + (bench.wide("ray", 1) if wide else []), step)
                finally:
                    ray.shutdown()
        if args.profile:
            bench.run_profile(args.profile_top, step)
        if args.history:
            step(f"adding {args.history:,} step runs to the chain pipeline's experiment")
            bench.add_history(args.history)
            old = [
                Spec(f"chain{n} local-history cold", "chain", s, history=args.history)
                for n, s in (("", args.steps), ("1", 1))
            ]
            bench.measure("after the history", old, step)
        my.client().store.close()
    clock.stop()

    table = rows(bench)
    render(bench, table)
    render_once(bench)
    render_profile(bench)
    import modelyard

    notes = [
        clock.note(),
        f"modelyard {modelyard.__version__} · one SQLite store + local artifact folder in a "
        "temporary directory, shared by every row (cache lookups search a growing history) · "
        "per step = a run's time ÷ its steps; overhead = (ours − plain) ÷ steps; fixed + "
        "marginal from the 1-step chain run interleaved with each row: (t(N) − t(1)) ÷ (N − 1)",
    ]
    if ray_note:
        notes.append(f"Ray: {ray_note}")
    for n in notes:
        print(n)
    meta = {"steps": args.steps, "reps": args.reps, "workers": args.workers, "notes": notes}
    extra = {k: v.seconds for k, v in bench.timings.items() if k.startswith("chain1 ")}
    return h.finish(
        args.json,
        meta | clock.meta(),
        bench.errors,
        rows=table,
        one_step_runs=extra,
        once=bench.once,
        profile=bench.profile,
    )


if __name__ == "__main__":
    h.run_main(main)
