"""Online serving, modelyard vs MLflow, on the same model under the same load.

    .venv/bin/python benchmarks/serving_vs_mlflow.py            # 15 s per cell (~5 min)
    .venv/bin/python benchmarks/serving_vs_mlflow.py --quick    # 3 s per cell (~2 min)
    .venv/bin/python benchmarks/serving_vs_mlflow.py --only records --clients 8

One seeded scikit-learn LogisticRegression trained on a DataFrame of 20 float
columns ``f0``..``f19`` (``make_classification``, written once to a Parquet file
both sides read) is served on loopback by ``mlflow models serve --env-manager
local`` (its defaults: one uvicorn worker) and by ``modelyard serve`` (one process,
micro-batching on; an extra row with ``--workers 2``), and both are driven by the
same load generator, ``wrk`` (``make bench-tools`` installs it): single-row POSTs on
keep-alive connections, at 1, 8 and 64 concurrent clients, after a short warm-up.
Two request paths, each for both tools:

- tensor: MLflow ``/invocations`` ``{"inputs": [[20 floats]]}`` (from the same fitted
  model saved with a tensor signature: MLflow rejects that body under a columns
  signature); modelyard ``/v2/models/bench/infer`` with an Open Inference Protocol
  FP64 [1, 20] tensor;
- records: MLflow ``/invocations`` ``{"dataframe_records": [{...}]}``; modelyard
  ``/predict`` with the same body.

Before any load, every endpoint must answer the model's own predictions for the
same rows (the run stops otherwise). Prints rps, p50, p99, errors, the CPU share of
wrk, of the server and of everything else on the machine, the ratios and the goals
of issue 4 (see benchmarks/README.md). Results also go to
``benchmarks/results/serving_vs_mlflow.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _harness as h  # noqa: E402

WORKER = HERE / "serving_workloads.py"
RESULTS = HERE / "results" / "serving_vs_mlflow.json"
PATHS = ["tensor", "records"]
MODEL_NAME = "bench"  # modelyard: registered as models:/bench/1
ROWS, FEATURES = 10_000, 20
CHECK_ROWS = 8  # rows whose predictions every endpoint must return before the load
MAX_BATCH_SIZE, MAX_LATENCY_MS = 64, 2

# The reference for MLflow 3.17 on this kind of machine.
REFERENCE = (
    '{"inputs": [[...]]} 991 rps at 1 client (p50 0.93 ms), 1,201 rps at 8 clients '
    "(p99 11 ms); dataframe_records 282 rps at 8 clients (p99 50 ms)"
)
# 8 clients: modelyard's rps ÷ MLflow's at least this, and a lower p99.
GOAL_RATIO = {"tensor": 3.0, "records": 10.0}
GOAL_P99_MS_64 = 50.0


@dataclass(frozen=True)
class Plan:
    duration: int = 15  # seconds per measured cell
    warmup: int = 2  # seconds of the same load before each cell, not measured
    clients: tuple[int, ...] = (1, 8, 64)
    paths: tuple[str, ...] = tuple(PATHS)
    workers2: bool = True  # an extra row: modelyard --workers 2 at the largest client count


# -- request bodies ----------------------------------------------------------------------


def request(tool: str, path: str, row: dict[str, float]) -> tuple[str, bytes]:
    """The URL path and JSON body of one single-row request."""
    values = list(row.values())
    if tool == "mlflow":
        body = {"inputs": [values]} if path == "tensor" else {"dataframe_records": [row]}
        return "/invocations", json.dumps(body).encode()
    return h.modelyard_request(path, row, MODEL_NAME)


# -- one server and its endpoints -------------------------------------------------------


@dataclass
class Target:
    """One running server of one tool, and the request paths it is measured on."""

    label: str  # the tool column: "mlflow", "modelyard", "modelyard, 2 workers"
    tool: str  # "mlflow" | "modelyard": which body format it takes
    server: h.Server
    paths: tuple[str, ...]

    def url(self, path: str, row: dict[str, float]) -> tuple[str, bytes]:
        url_path, body = request(self.tool, path, row)
        return self.server.url + url_path, body


# -- the benchmark ------------------------------------------------------------------------


@dataclass
class Cell:
    path: str
    clients: int
    tool: str
    data: dict[str, Any] | None  # None: failed (the error is in Bench.errors)


@dataclass
class Bench:
    plan: Plan
    data_path: Path
    ours_python: str
    theirs_python: str | None
    run_ours: bool
    progress: Callable[[str], None] = lambda desc: None
    cells: list[Cell] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    # -- set-up ----------------------------------------------------------------------

    def train(self, tool: str, home: Path) -> dict[str, Any]:
        """Train and save (MLflow) or log and register (modelyard) in a subprocess."""
        self.progress(f"training and saving the model — {tool}")
        if tool == "mlflow":
            assert self.theirs_python is not None
            python, env = self.theirs_python, {}
            args = ["--out", str(home / "model")]
        else:
            python, env = self.ours_python, {"MODELYARD_HOME": str(home)}
            args = []
        args += ["--tool", tool, "--data", str(self.data_path), "--check", str(CHECK_ROWS)]
        return h.run_workload(python, WORKER, "save", env=env, cwd=home, args=args).data

    def mlflow_server(self, home: Path, model_uri: str) -> h.Server:
        assert self.theirs_python is not None
        bindir = Path(self.theirs_python).parent
        port = h.free_port()
        cmd = [
            str(bindir / "mlflow"), "models", "serve", "-m", model_uri,
            "--env-manager", "local", "--host", "127.0.0.1", "-p", str(port),
        ]  # fmt: skip
        # `mlflow models serve` execs `uvicorn` from PATH: the anchor venv's.
        env = {"PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
        return h.Server(cmd, port, env, home, health_path="/health")

    def modelyard_server(self, home: Path, model_uri: str, workers: int = 1) -> h.Server:
        port = h.free_port()
        # `python -m modelyard.cli.main` is the `modelyard` command (the same main());
        # its command line does not match a `pkill -f "modelyard serve"` run nearby.
        cmd = [
            self.ours_python, "-m", "modelyard.cli.main", "serve", model_uri,
            "--host", "127.0.0.1", "--port", str(port),
            "--max-batch-size", str(MAX_BATCH_SIZE), "--max-latency-ms", str(MAX_LATENCY_MS),
        ]  # fmt: skip
        if workers != 1:
            cmd += ["--workers", str(workers)]
        return h.Server(cmd, port, {"MODELYARD_HOME": str(home)}, home, "/v2/health/ready")

    def start(self, stack: contextlib.ExitStack, target: Target) -> Target:
        """Start the server (stopped by ``stack`` whatever happens), then note its
        start-up time and, for MLflow, the command it ran (its default workers)."""
        name = f"{target.label} ({', '.join(target.paths)})"
        self.progress(f"starting {name}, waiting until it is ready")
        stack.callback(target.server.stop)
        try:
            target.server.start()
        except h.BenchError as exc:
            raise h.BenchError(f"starting {name}: {exc}") from None
        info = {"startup_s": target.server.startup_s, "cmd": target.server.cmd}
        match = re.search(r"Running command '([^']*)'", target.server.log_tail())
        if match:
            info["ran"] = match.group(1)
        self.meta.setdefault("servers", {})[name] = info
        return target

    def check(self, target: Target, rows: list[dict[str, float]], expected: list[int]) -> None:
        """Every path of ``target`` answers ``expected`` for the check rows, one request
        per row; raises BenchError otherwise (the run stops before any load)."""
        for path in target.paths:
            got: list[Any] = []
            for row in rows:
                url, body = target.url(path, row)
                status, answer, _ = h.post(url, body)
                if status != 200:
                    raise h.BenchError(
                        f"{target.label} {path}: POST {url} answered {status}: "
                        f"{json.dumps(answer)[:600]}"
                    )
                values = h.predictions(answer)
                if len(values) != 1:
                    raise h.BenchError(
                        f"{target.label} {path}: expected 1 prediction, got {answer}"
                    )
                got.append(values[0])
            if got != expected:  # JSON numbers: 1 == 1.0
                raise h.BenchError(
                    f"{target.label} {path}: predictions {got} differ from the model's "
                    f"{expected} for the same {len(rows)} rows"
                )
            self.meta.setdefault("checked", []).append(
                {"tool": target.label, "path": path, "predictions": got}
            )

    # -- measurements --------------------------------------------------------------

    def measure(
        self, target: Target, path: str, clients: int, row: dict[str, float], tmp: Path
    ) -> None:
        self.progress(f"{path}, {clients} clients — {target.label}")
        url, body = target.url(path, row)
        body_file = tmp / f"body-{target.tool}-{path}.json"
        body_file.write_bytes(body)
        try:
            data = h.measure_load(
                target.server,
                url,
                body_file,
                clients,
                warmup=self.plan.warmup,
                duration=self.plan.duration,
            )
        except (h.BenchError, subprocess.TimeoutExpired) as exc:
            self.errors.append(f"{path}, {clients} clients ({target.label}): {exc}")
            self.cells.append(Cell(path, clients, target.label, None))
            return
        data["url"] = url
        self.cells.append(Cell(path, clients, target.label, data))

    def cell(self, path: str, clients: int, tool: str) -> dict[str, Any] | None:
        """The measurement of that cell (None when it failed or did not run)."""
        for c in self.cells:
            if (c.path, c.clients, c.tool) == (path, clients, tool):
                return c.data
        return None

    def measured(self, path: str, clients: int, tool: str) -> bool:
        return any((c.path, c.clients, c.tool) == (path, clients, tool) for c in self.cells)

    def run(self, tmp: Path) -> None:
        plan = self.plan
        with contextlib.ExitStack() as stack:
            theirs_home = stack.enter_context(h.temp_home("serving-mlflow"))
            ours_home = stack.enter_context(h.temp_home("serving-modelyard"))
            trained = {}
            if self.theirs_python:
                trained["mlflow"] = self.train("mlflow", theirs_home)
            if self.run_ours:
                trained["modelyard"] = self.train("modelyard", ours_home)
            expected = [d["expected"] for d in trained.values()]
            if any(e != expected[0] for e in expected):
                raise h.BenchError(f"the two trained models predict differently: {expected}")
            self.meta["expected"] = expected[0]
            self.meta["trained"] = trained

            import pandas as pd

            frame = pd.read_parquet(self.data_path).drop(columns="y")
            rows = [{k: float(v) for k, v in frame.iloc[i].items()} for i in range(CHECK_ROWS)]
            load_row = rows[0]  # the row every load request carries

            targets: list[Target] = []
            if self.theirs_python:
                # one server per path: the tensor path needs the tensor-signature package
                for path in plan.paths:
                    uri = trained["mlflow"]["model_uris"][path]
                    srv = self.mlflow_server(theirs_home, uri)
                    targets.append(self.start(stack, Target("mlflow", "mlflow", srv, (path,))))
            ours: Target | None = None
            ours_uri = trained.get("modelyard", {}).get("model_uris", {}).get(plan.paths[0])
            if ours_uri:
                srv = self.modelyard_server(ours_home, ours_uri)
                ours = self.start(stack, Target("modelyard", "modelyard", srv, plan.paths))
                targets.append(ours)
            self.progress("checking every endpoint's predictions")
            for t in targets:
                self.check(t, rows, expected[0])

            for path in plan.paths:
                for clients in plan.clients:
                    for t in targets:
                        if path in t.paths:
                            self.measure(t, path, clients, load_row, tmp)

            top = max(plan.clients)
            if plan.workers2 and ours is not None and ours_uri and top >= 8:
                ours.server.stop()  # one modelyard server at a time
                srv = self.modelyard_server(ours_home, ours_uri, workers=2)
                label = "modelyard, 2 workers"
                two = self.start(stack, Target(label, "modelyard", srv, plan.paths))
                self.check(two, rows, expected[0])
                for path in plan.paths:
                    self.measure(two, path, top, load_row, tmp)


# -- the table ------------------------------------------------------------------------------


def _errors(d: dict[str, Any]) -> str:
    if not d["errors"]:
        return "0"
    kinds = ", ".join(f"{k.replace('_errors', '')} {v}" for k, v in d["error_kinds"].items() if v)
    return f"{d['errors']:,} ({kinds})"


def _times(r: float | None) -> str:
    return h.fmt_ratio(r) if r is not None else "—"


def _ours_vs_theirs(d: dict[str, Any] | None) -> str:
    if d is None:
        return "—"
    return f"{d['rps']:,.0f} rps, p99 {h.fmt_ms(d['p99_ms'])} ms, {d['errors']:,} errors"


def _goal_8(path: str, ours: dict[str, Any], theirs: dict[str, Any]) -> h.Row:
    need = GOAL_RATIO[path]
    ratio = ours["rps"] / theirs["rps"] if theirs["rps"] else None
    met = ratio is not None and ratio >= need and ours["p99_ms"] < theirs["p99_ms"]
    return h.Row(
        f"{path}, 8 clients: throughput and p99",
        _ours_vs_theirs(ours),
        _ours_vs_theirs(theirs),
        ratio,
        f"≥ {need:.0f}× rps, lower p99",
        met,
    )


def _goal_top(
    path: str, clients: int, ours: dict[str, Any], theirs: dict[str, Any] | None
) -> h.Row:
    met = ours["p99_ms"] < GOAL_P99_MS_64 and ours["errors"] == 0
    ratio = theirs["p99_ms"] / ours["p99_ms"] if theirs and ours["p99_ms"] else None
    return h.Row(
        f"{path}, {clients} clients, batching on: p99 and errors",
        _ours_vs_theirs(ours),
        _ours_vs_theirs(theirs),
        ratio,
        f"p99 < {GOAL_P99_MS_64:.0f} ms, 0 errors",
        met,
        note="ratio: MLflow's p99 ÷ modelyard's",
    )


def _yes(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "NO")


def _cells(path: str, clients: int, label: str, d: dict[str, Any] | None) -> list[str]:
    if d is None:
        return [path, str(clients), label, "error", "", "", "", "", "", ""]
    return [
        path,
        str(clients),
        label,
        f"{d['rps']:,.0f}",
        h.fmt_ms(d["p50_ms"]),
        h.fmt_ms(d["p99_ms"]),
        _errors(d),
        f"{d['wrk_cpu_pct']:.0f}%",
        f"{d['server_cpu_pct']:.0f}%",
        f"{d['others_cpu_pct']:.0f}%",
    ]


def _ratio_cells(
    path: str, clients: int, ours: dict[str, Any], theirs: dict[str, Any]
) -> list[str]:
    def lower(key: str) -> str:
        return f"{_times(theirs[key] / ours[key])} lower" if ours[key] else "—"

    rps = _times(ours["rps"] / theirs["rps"]) if theirs["rps"] else "—"
    return [
        path,
        str(clients),
        "× modelyard/mlflow",
        rps,
        lower("p50_ms"),
        lower("p99_ms"),
        "",
        "",
        "",
        "",
    ]


def build_table(b: Bench) -> tuple[list[list[str]], list[h.Row]]:
    """The table's rows (a goal and whether it is met on the rows that carry one),
    and the goals of issue 4 as harness rows (for the JSON)."""
    table: list[list[str]] = []
    goals: list[h.Row] = []
    top = max(b.plan.clients)
    labels = ["mlflow", "modelyard", "modelyard, 2 workers"]
    for path in b.plan.paths:
        for clients in b.plan.clients:
            ours, theirs = b.cell(path, clients, "modelyard"), b.cell(path, clients, "mlflow")
            for label in labels:
                if not b.measured(path, clients, label):
                    continue
                d = b.cell(path, clients, label)
                goal = None
                if label == "modelyard" and clients == top and top >= 64 and d is not None:
                    goal = _goal_top(path, clients, d, theirs)
                    goals.append(goal)
                table.append(
                    _cells(path, clients, label, d)
                    + ([goal.goal, _yes(goal.met)] if goal else ["", ""])
                )
            if ours is None or theirs is None:
                continue
            goal = _goal_8(path, ours, theirs) if clients == 8 else None
            if goal:
                goals.append(goal)
            table.append(
                _ratio_cells(path, clients, ours, theirs)
                + ([goal.goal, _yes(goal.met)] if goal else ["", ""])
            )
    return table, goals


# -- main ---------------------------------------------------------------------------------


def write_data(path: Path) -> None:
    """``make_classification`` (seeded) as Parquet: float columns f0..f19 and y."""
    import pandas as pd
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=ROWS, n_features=FEATURES, n_informative=10, random_state=0
    )
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(FEATURES)])
    df["y"] = y
    df.to_parquet(path, index=False)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    h.add_common_args(parser, PATHS, RESULTS)
    parser.add_argument("--duration", type=int, help="seconds per measured cell (default 15)")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up load per cell (default 2)")
    parser.add_argument(
        "--clients",
        default="1,8,64",
        help="concurrent keep-alive connections, comma-separated (default 1,8,64)",
    )
    parser.add_argument(
        "--no-workers2",
        action="store_true",
        help="skip the extra row: modelyard --workers 2 at the largest client count",
    )
    parser.add_argument(
        "--no-modelyard", action="store_true", help="run MLflow alone (checks the harness)"
    )
    args = parser.parse_args(argv)
    try:
        args.clients = tuple(int(c) for c in args.clients.split(","))
        if any(c < 1 for c in args.clients):
            raise ValueError
    except ValueError:
        parser.error(f"--clients: expected positive integers like 1,8,64, got {args.clients!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "error: wrk (the load generator) is not installed: run `make bench-tools` "
            "(installs Debian's wrk package)",
            file=sys.stderr,
        )
        return 2
    theirs_python = h.anchor_python(args)
    run_ours = not args.no_modelyard
    if run_ours and (why := h.cli_available(sys.executable, "serve")):
        print(
            f"error: `modelyard serve` is not available in {Path(sys.executable).parent}: {why}\n"
            "(--no-modelyard runs MLflow alone)",
            file=sys.stderr,
        )
        return 2
    if not run_ours and theirs_python is None:
        print("error: nothing to run (--no-modelyard and no MLflow)", file=sys.stderr)
        return 2
    quick = Plan(duration=3, warmup=1)
    plan = Plan(
        duration=args.duration or (quick.duration if args.quick else Plan.duration),
        warmup=args.warmup if args.warmup is not None else (quick.warmup if args.quick else 2),
        clients=args.clients,
        paths=tuple(p for p in PATHS if not args.only or p in args.only),
        workers2=not args.no_workers2,
    )
    tools = (1 if theirs_python else 0) + (1 if run_ours else 0)
    cells = len(plan.paths) * len(plan.clients) * tools
    extra = 1 + len(plan.paths) if plan.workers2 and run_ours and max(plan.clients) >= 8 else 0
    # train each tool, start each server (MLflow: one per path), check the answers
    setup = tools + (len(plan.paths) if theirs_python else 0) + (1 if run_ours else 0) + 1
    started, load_before = time.perf_counter(), os.getloadavg()
    with h.terminate_cleanly(), h.temp_home("serving") as tmp:
        data = tmp / "data.parquet"
        write_data(data)
        with h.progress(cells + extra + setup) as step:
            bench = Bench(plan, data, sys.executable, theirs_python, run_ours, step)
            try:
                bench.run(tmp)
            except h.BenchError as exc:
                bench.errors.append(str(exc))
                print(f"error: {exc}", file=sys.stderr)
    elapsed, load_after = time.perf_counter() - started, os.getloadavg()

    table, goals = build_table(bench)
    version = h.mlflow_version(theirs_python)
    h.render_table(
        f"modelyard vs MLflow {version} — online serving, LogisticRegression on "
        f"{FEATURES} features, single-row requests on keep-alive connections, "
        f"{plan.duration} s per cell{' (--quick)' if args.quick else ''}",
        [
            "path", "clients", "tool", "rps", "p50 ms", "p99 ms", "errors",
            "wrk CPU", "server CPU", "others CPU", "goal", "met?",
        ],
        table,
    )  # fmt: skip
    servers = bench.meta.get("servers", {})
    ran = next(
        (s["ran"] for k, s in servers.items() if k.startswith("mlflow") and "ran" in s), None
    )
    wrk_cpu = [c.data["wrk_cpu_pct"] for c in bench.cells if c.data]
    notes = [
        f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
        f"took {elapsed / 60:.1f} min · load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after",
        f"load: wrk 4 (threads = min(clients, 2), --timeout {h.WRK_TIMEOUT}), "
        f"{plan.warmup} s warm-up then {plan.duration} s measured per cell; "
        "the same single row in every request; p50/p99 from wrk's latency histogram",
        "wrk CPU / server CPU / others CPU: CPU seconds (user + system) of the wrk "
        "process / of the server's process tree / of everything else on the machine "
        f"(/proc/stat), over the cell's wall seconds; 100% = one core of {os.cpu_count()}"
        + (f"; wrk used {min(wrk_cpu):.0f}–{max(wrk_cpu):.0f}%" if wrk_cpu else ""),
        "mlflow: `mlflow models serve -m PATH --env-manager local` with its defaults"
        + (f" (it ran `{ran}`: 1 uvicorn worker, 60 s request timeout)" if ran else "")
        + "; the tensor path serves the same fitted model saved with an array example "
        "(tensor signature): with the DataFrame's columns signature MLflow 3.17 rejects "
        '{"inputs": [[...]]} ("Model is missing inputs")',
        f"modelyard: `modelyard serve models:/{MODEL_NAME}/1 --max-batch-size "
        f"{MAX_BATCH_SIZE} --max-latency-ms {MAX_LATENCY_MS}` (one process; "
        "'2 workers' adds --workers 2)",
        "errors: non-2xx responses + socket errors (connect, read, write, timeout) "
        "counted by wrk; × rows: modelyard's rps ÷ MLflow's, MLflow's latency ÷ modelyard's",
        f"issue 4's reference for MLflow 3.17 here: {REFERENCE}",
    ]
    for n in notes:
        print(n)
    if goals:
        met = sum(1 for g in goals if g.met)
        print(f"goals met: {met} of {len(goals)}")
    h.write_results(
        args.out,
        bench.meta
        | {
            "quick": args.quick,
            "plan": asdict(plan),
            "mlflow": version,
            "elapsed_s": elapsed,
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "notes": notes,
        },
        bench.errors,
        cells=[asdict(c) for c in bench.cells],
        goals=[asdict(g) for g in goals],
    )
    print(f"results: {args.out}")
    return 1 if bench.errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the servers are stopped by then (ExitStack)
        print("interrupted: servers stopped", file=sys.stderr)
        sys.exit(130)
