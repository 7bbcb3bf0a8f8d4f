"""Experiment tracking, modelyard vs MLflow, on the same workloads in one run.

    .venv/bin/python benchmarks/tracking_vs_mlflow.py            # full (~10 min on 2 cores)
    .venv/bin/python benchmarks/tracking_vs_mlflow.py --quick    # smaller sizes (~3 min)

modelyard runs under this interpreter; MLflow under ``.venv-bench/bin/python`` (the
full ``mlflow`` package, in its own virtual environment). Every measurement is a
fresh subprocess in a fresh temporary directory; every HTTP workload gets its own
freshly started server per tool, in that tool's default setup. Prints one table
(workload | modelyard | MLflow | ratio | goal | met?) where the ratio is always a
speed-up, higher is better for modelyard: MLflow's time ÷ ours, or our points/s ÷
theirs, or (idle server) their memory ÷ ours. The goals are those of issue 2.
Results also go to ``benchmarks/results/tracking_vs_mlflow.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _harness as h  # noqa: E402

REPO = HERE.parent
OURS_SCRIPT = HERE / "workloads_modelyard.py"
THEIRS_SCRIPT = HERE / "workloads_mlflow.py"
RESULTS = HERE / "results" / "tracking_vs_mlflow.json"


@dataclass(frozen=True)
class Sizes:
    points: int = 10_000  # one call per point, local and ours over HTTP
    mlflow_http_points: int = 500  # MLflow's default server takes ~50 ms per call
    mlflow_local_points: int = 10_000
    batches: int = 100
    batch_size: int = 1000
    runs: int = 200
    history: int = 10_000
    million: int = 1_000_000
    idle_s: float = 5.0
    cap_s: float = 60.0  # one-call-per-point rows other than ours-async stop after this

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            points=2_000,
            mlflow_http_points=100,
            mlflow_local_points=1_000,
            batches=10,
            runs=50,
            history=10_000,
            million=200_000,
            idle_s=5.0,
            cap_s=20.0,
        )


Row = h.Row


@dataclass
class Bench:
    sizes: Sizes
    ours_python: str
    theirs_python: str | None
    progress: Callable[[str], None] = lambda desc: None
    raw: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    # -- running one side -----------------------------------------------------------
    def _env(self, tool: str, home: Path, uri: str | None) -> dict[str, str]:
        if tool == "modelyard":
            env = {"MODELYARD_HOME": str(home), "PYTHONPATH": str(REPO / "src")}
            if uri:
                env["MODELYARD_TRACKING_URI"] = uri
            return env
        return {"MLFLOW_TRACKING_URI": uri or f"sqlite:///{home}/mlflow.db"}

    def _script(self, tool: str) -> tuple[str, Path]:
        if tool == "modelyard":
            return self.ours_python, OURS_SCRIPT
        assert self.theirs_python is not None
        return self.theirs_python, THEIRS_SCRIPT

    def measure(
        self,
        label: str,
        tool: str,
        workload: str,
        args: list[str],
        key: str,
        *,
        uri: str | None = None,
        repeat: bool = True,
    ) -> dict[str, Any] | None:
        """The median (over 3 runs when short) of ``data[key]``, each in a fresh
        subprocess and fresh temp dir; None (and an error noted) if it failed."""
        if tool == "mlflow" and self.theirs_python is None:
            return None
        self.progress(f"{label} — {tool}")
        python, script = self._script(tool)

        def once() -> h.WorkloadResult:
            with h.temp_home(tool) as home:
                return h.run_workload(
                    python, script, workload, env=self._env(tool, home, uri), cwd=home, args=args
                )

        try:
            best, runs = h.median_of(once, key, repeat=3 if repeat else 1)
        except h.BenchError as exc:
            self.errors.append(f"{label} ({tool}): {exc}")
            self.raw.setdefault(label, {})[tool] = {"error": str(exc)}
            return None
        data = best.data | {
            "wall_s": best.wall_s,
            "child_peak_rss_mb": best.peak_rss_mb,
            "repeats": len(runs),
            f"all_{key}": [r.data[key] for r in runs],
        }
        if data.get("verified") is False:
            self.errors.append(
                f"{label} ({tool}): verification failed: "
                + ", ".join(
                    f"{k}={data[k]}" for k in ("points", "stored", "found", "expected") if k in data
                )
            )
        self.raw.setdefault(label, {})[tool] = data
        return data

    def server(self, tool: str, home: Path, workers: int | None = None) -> h.Server:
        port = h.free_port()
        if tool == "modelyard":
            cmd = [
                self.ours_python,
                "-m",
                "modelyard.server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ]
        else:
            assert self.theirs_python is not None
            mlflow_cli = str(Path(self.theirs_python).with_name("mlflow"))
            cmd = [
                mlflow_cli, "server",
                "--backend-store-uri", f"sqlite:///{home}/mlflow.db",
                "--host", "127.0.0.1", "--port", str(port),
            ]  # fmt: skip
            if workers is not None:
                cmd += ["--workers", str(workers)]
        return h.Server(cmd, port, self._env(tool, home, None), home)

    def measure_http(
        self,
        label: str,
        tool: str,
        workload: str,
        args: list[str],
        key: str,
        *,
        workers: int | None = None,
        repeat: bool = True,
    ) -> dict[str, Any] | None:
        """As ``measure``, against a server of our own started for this workload
        (repeats reuse it, each in a new run)."""
        if tool == "mlflow" and self.theirs_python is None:
            return None
        with h.temp_home(f"{tool}-server") as home:
            srv = self.server(tool, home, workers)
            try:
                srv.start()
            except h.BenchError as exc:
                self.errors.append(f"{label} ({tool}) server: {exc}")
                return None
            try:
                return self.measure(label, tool, workload, args, key, uri=srv.url, repeat=repeat)
            finally:
                srv.stop()

    def idle(self, tool: str) -> dict[str, Any] | None:
        if tool == "mlflow" and self.theirs_python is None:
            return None
        self.progress(f"idle server — {tool}")
        with h.temp_home(f"{tool}-idle") as home:
            srv = self.server(tool, home)
            try:
                srv.start()
                time.sleep(self.sizes.idle_s)
                assert srv.proc is not None
                mem = h.tree_memory(srv.proc.pid)
            except h.BenchError as exc:
                self.errors.append(f"idle server ({tool}): {exc}")
                return None
            finally:
                srv.stop()
        data = mem | {"startup_s": srv.startup_s, "idle_s": self.sizes.idle_s}
        self.raw.setdefault("idle server", {})[tool] = data
        return data


# -- rows ------------------------------------------------------------------------------


def _speedup(ours: float | None, theirs: float | None, higher_is_better: bool) -> float | None:
    if not ours or not theirs:
        return None
    return ours / theirs if higher_is_better else theirs / ours


def _time_cell(d: dict | None, key: str = "seconds", n_key: str | None = "points") -> str:
    if d is None:
        return "error"
    s = h.fmt_seconds(d[key])
    if n_key and "points_per_s" in d:
        s += f" ({h.fmt_rate(d['points_per_s'])})"
    return s


def _rate_cell(d: dict | None) -> str:
    if d is None:
        return "error"
    if d.get("capped"):
        return f"{h.fmt_rate(d['points_per_s'])} ({d['points']:,} pts, cut at {d['seconds']:.0f} s)"
    return f"{h.fmt_rate(d['points_per_s'])} ({d['points']:,} pts)"


def _search_cell(d: dict | None) -> str:
    if d is None:
        return "error"
    return f"{h.fmt_seconds(d['search_s'])} ({d['found']} runs)"


def _goal(ratio: float | None, goal: float | None) -> bool | None:
    if goal is None:
        return None
    return ratio is not None and ratio >= goal


def build_rows(b: Bench, only: set[str] | None) -> list[Row]:
    s = b.sizes
    rows: list[Row] = []

    def want(name: str) -> bool:
        return only is None or name in only

    def ratio_row(
        name: str,
        ours: dict | None,
        theirs: dict | None,
        key: str,
        higher_is_better: bool,
        goal: float | None,
        cell: Callable[[dict | None], str],
        note: str = "",
    ) -> None:
        r = _speedup(ours and ours[key], theirs and theirs[key], higher_is_better)
        rows.append(
            Row(
                name,
                cell(ours),
                cell(theirs) if b.theirs_python else "not run",
                r,
                f"≥ {goal:g}×" if goal else "info",
                _goal(r, goal),
                ours,
                theirs,
                note,
            )
        )

    pts = ["--points", str(s.points)]
    cap = ["--max-seconds", f"{s.cap_s:g}"]
    # 1. one call per point, local store -----------------------------------------------
    if want("log_metric"):
        label = f"log_metric ×{s.points:,}, local"
        ours = b.measure(label, "modelyard", "log_metric", pts, "points_per_s")
        ours_sync = b.measure(
            label + " (sync)",
            "modelyard",
            "log_metric",
            [*pts, "--synchronous", *cap],
            "points_per_s",
        )
        theirs = b.measure(
            label,
            "mlflow",
            "log_metric",
            ["--points", str(s.mlflow_local_points), *cap],
            "points_per_s",
        )
        ratio_row(
            f"1. log_metric ×{s.points // 1000}k, local, ours async",
            ours, theirs, "points_per_s", True, 100, _rate_cell,
        )  # fmt: skip
        ratio_row(
            f"1b. log_metric ×{s.points // 1000}k, local, ours sync",
            ours_sync, theirs, "points_per_s", True, None, _rate_cell,
        )  # fmt: skip

    # 2. one call per point, HTTP ------------------------------------------------------
    if want("log_metric_http"):
        label = "log_metric, HTTP"
        theirs_pts = ["--points", str(s.mlflow_http_points), *cap]
        ours = b.measure_http(label, "modelyard", "log_metric", pts, "points_per_s")
        ours_sync = b.measure_http(
            label + " (sync)",
            "modelyard",
            "log_metric",
            [*pts, "--synchronous", *cap],
            "points_per_s",
        )
        theirs = b.measure_http(label, "mlflow", "log_metric", theirs_pts, "points_per_s")
        theirs_w1 = b.measure_http(
            label + " (--workers 1)", "mlflow", "log_metric", theirs_pts, "points_per_s", workers=1
        )
        ratio_row(
            "2. log_metric, HTTP, ours async",
            ours, theirs, "points_per_s", True, 100, _rate_cell,
        )  # fmt: skip
        ratio_row(
            "2b. log_metric, HTTP, ours sync",
            ours_sync, theirs, "points_per_s", True, None, _rate_cell,
        )  # fmt: skip
        ratio_row(
            "2c. log_metric, HTTP, ours async vs mlflow --workers 1",
            ours, theirs_w1, "points_per_s", True, None, _rate_cell,
        )  # fmt: skip
        ratio_row(
            "2d. log_metric, HTTP, ours sync vs mlflow --workers 1",
            ours_sync, theirs_w1, "points_per_s", True, None, _rate_cell,
        )  # fmt: skip

    # 3. batches of 1,000 --------------------------------------------------------------
    bargs = ["--batches", str(s.batches), "--batch-size", str(s.batch_size)]
    if want("log_batch"):
        label = f"log_batch {s.batches}×{s.batch_size:,}, local"
        ours = b.measure(label, "modelyard", "log_batch", bargs, "seconds")
        theirs = b.measure(label, "mlflow", "log_batch", bargs, "seconds")
        ratio_row(
            f"3. log_batch {s.batches}×{s.batch_size:,}, local",
            ours, theirs, "points_per_s", True, 10, _rate_cell,
        )  # fmt: skip
    if want("log_batch_http"):
        label = f"log_batch {s.batches}×{s.batch_size:,}, HTTP"
        ours = b.measure_http(label, "modelyard", "log_batch", bargs, "seconds")
        theirs = b.measure_http(label, "mlflow", "log_batch", bargs, "seconds")
        ratio_row(
            f"3b. log_batch {s.batches}×{s.batch_size:,}, HTTP",
            ours, theirs, "points_per_s", True, 10, _rate_cell,
        )  # fmt: skip

    # 4. runs and search ---------------------------------------------------------------
    rargs = ["--runs", str(s.runs)]
    for where, http in (("local", False), ("HTTP", True)):
        if not want("runs_search_http" if http else "runs_search"):
            continue
        label = f"{s.runs} runs + search, {where}"
        run = b.measure_http if http else b.measure
        ours = run(label, "modelyard", "runs_search", rargs, "create_s")
        theirs = run(label, "mlflow", "runs_search", rargs, "create_s")
        n = "4b" if http else "4"
        ratio_row(
            f"{n}. {s.runs} runs × (10 params + 10 metrics), {where}",
            ours, theirs, "create_ms_per_run", False, 10,
            lambda d: "error" if d is None else f"{d['create_ms_per_run']:.2f} ms/run",
        )  # fmt: skip
        ratio_row(
            f"{n}. then filtered search_runs, {where}",
            ours, theirs, "search_s", False, 5,
            _search_cell,
        )  # fmt: skip

    # 5. metric history ----------------------------------------------------------------
    hargs = ["--points", str(s.history)]
    for where, http in (("local", False), ("HTTP", True)):
        if not want("history_http" if http else "history"):
            continue
        label = f"history {s.history:,}, {where}"
        run = b.measure_http if http else b.measure
        ours = run(label, "modelyard", "history", hargs, "read_s")
        theirs = run(label, "mlflow", "history", hargs, "read_s")
        ratio_row(
            f"{'5b' if http else '5'}. get_metric_history {s.history // 1000}k pts, {where}",
            ours, theirs, "read_s", False, 5,
            lambda d: "error" if d is None else h.fmt_seconds(d["read_s"]),
        )  # fmt: skip

    # 6. a million points ---------------------------------------------------------------
    if want("million"):
        label = f"{s.million:,} points, one run"
        ours = b.measure(
            label, "modelyard", "million", ["--points", str(s.million)], "seconds", repeat=False
        )
        mlflow_rate = (b.raw.get(f"log_metric ×{s.points:,}, local") or {}).get("mlflow") or {}
        if "points_per_s" in mlflow_rate:
            eta = s.million / mlflow_rate["points_per_s"] / 60
            theirs_cell = f"skipped (~{eta:.0f} min at its row-1 rate)"
        else:
            theirs_cell = "skipped (≥ 30 min at ~440 pts/s)"
        met = None
        cell = "error"
        if ours is not None:
            met = bool(ours["verified"] and ours["client_peak_rss_mb"] < 200)
            cell = (
                f"{h.fmt_seconds(ours['seconds'])} ({h.fmt_rate(ours['points_per_s'])}), "
                f"peak RSS {ours['client_peak_rss_mb']:.0f} MB"
            )
        rows.append(
            Row(
                f"6. log_metric ×{s.million:,}, one run, local, async",
                cell,
                theirs_cell,
                None,
                "finishes, RSS < 200 MB",
                met,
                ours,
                None,
            )
        )

    # 7. idle server ------------------------------------------------------------------
    if want("idle"):
        ours = b.idle("modelyard")
        theirs = b.idle("mlflow")

        def idle_cell(d: dict | None) -> str:
            if d is None:
                return "error"
            return f"{d['processes']} proc, {d['rss_mb']:.0f} MB RSS ({d['pss_mb']:.0f} PSS)"

        r = _speedup(ours and ours["rss_mb"], theirs and theirs["rss_mb"], False)
        met = None if ours is None else bool(ours["processes"] == 1 and ours["rss_mb"] < 150)
        rows.append(
            Row(
                f"7. idle server (start + {s.idle_s:g} s)",
                idle_cell(ours),
                idle_cell(theirs) if b.theirs_python else "not run",
                r,
                "1 process, < 150 MB",
                met,
                ours,
                theirs,
            )
        )

    # 8. import time ------------------------------------------------------------------
    if want("import"):
        ours = b.measure("import", "modelyard", "import", [], "import_s", repeat=False)
        theirs = b.measure("import", "mlflow", "import", [], "import_s", repeat=False)
        r = _speedup(ours and ours["import_s"], theirs and theirs["import_s"], False)
        rows.append(
            Row(
                "8. import (best of 5)",
                "error"
                if ours is None
                else f"{h.fmt_seconds(ours['import_s'])} "
                f"(with SDK loaded: {h.fmt_seconds(ours['import_with_sdk_s'])})",
                "not run"
                if b.theirs_python is None
                else ("error" if theirs is None else h.fmt_seconds(theirs["import_s"])),
                r,
                "< 0.3 s",
                None if ours is None else ours["import_s"] < 0.3,
                ours,
                theirs,
            )
        )
    return rows


GROUPS = [
    "log_metric", "log_metric_http", "log_batch", "log_batch_http", "runs_search",
    "runs_search_http", "history", "history_http", "million", "idle", "import",
]  # fmt: skip
# measurements per group, for the progress bar
STEPS = {
    "log_metric": 3, "log_metric_http": 4, "log_batch": 2, "log_batch_http": 2,
    "runs_search": 2, "runs_search_http": 2, "history": 2, "history_http": 2,
    "million": 1, "idle": 2, "import": 2,
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    h.add_common_args(parser, GROUPS, RESULTS)
    args = parser.parse_args(argv)

    theirs_python = h.anchor_python(args)
    sizes = Sizes.quick() if args.quick else Sizes()
    only = set(args.only) if args.only else None
    total = sum(STEPS[g] for g in GROUPS if only is None or g in only)
    started = time.perf_counter()
    load_before = os.getloadavg()
    with h.progress(total) as step:
        bench = Bench(sizes, sys.executable, theirs_python, step)
        rows = build_rows(bench, only)
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()

    title = (
        f"modelyard vs MLflow {h.mlflow_version(theirs_python)} — experiment tracking"
        f"{' (--quick)' if args.quick else ''}; ratio = speed-up (higher is better for modelyard)"
    )
    h.render_table(
        title,
        ["workload", "modelyard", "MLflow", "ratio", "goal", "met?"],
        [r.cells() for r in rows],
    )
    print(
        f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
        f"took {elapsed / 60:.1f} min · load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after · medians of 3 fresh subprocesses where one takes < 10 s"
    )
    h.write_results(
        args.out,
        {
            "quick": args.quick,
            "sizes": asdict(sizes),
            "mlflow": h.mlflow_version(theirs_python),
            "elapsed_s": elapsed,
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        },
        bench.errors,
        rows=[asdict(r) for r in rows],
    )
    print(f"results: {args.out}")
    return 1 if bench.errors else 0


if __name__ == "__main__":
    sys.exit(main())
