"""modelyard side of the tracking benchmark: one workload per call, one JSON line out.

    MODELYARD_HOME=/tmp/x python workloads_modelyard.py log_metric --json
    MODELYARD_HOME=/tmp/x MODELYARD_TRACKING_URI=http://127.0.0.1:5002 \
        python workloads_modelyard.py log_batch --json

Where the data goes is only the ``MODELYARD_*`` environment (a local store in
``MODELYARD_HOME`` or a server), so the same body measures the local store and
HTTP. The bodies mirror ``workloads_mlflow.py`` call for call and use the same
seeded data. modelyard is imported inside each workload, never at module level,
so ``import`` measures a cold import. Setup (creating the store and the
experiment) is outside every timer; verification reads happen after it stops.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

# A new experiment per process: repeats against one server must not see each other's runs.
EXPERIMENT = f"bench-{os.getpid()}-{time.time_ns()}"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_now_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _setup():
    import modelyard as my

    svc = my.tracking() if hasattr(my, "tracking") else my.client()
    exp_id = svc.get_or_create_experiment(EXPERIMENT).experiment_id
    return my, svc, exp_id


def log_metric(points: int, synchronous: bool = False, max_seconds: float = 0) -> dict:
    """One ``my.log_metric`` call per point; timed until ``end_run`` returns (all
    points durable), the run itself started before the timer as for MLflow.

    With ``max_seconds``, stops early once that much time has passed (checked every
    100 points) and reports the rate over the points it did log."""
    my, svc, _ = _setup()
    run = my.start_run(experiment=EXPERIMENT, run_name="log-metric", synchronous=synchronous)
    run_id = run.info.run_id
    start = time.perf_counter()
    logged = 0
    for i in range(points):
        my.log_metric("loss", 1.0 / (i + 1), step=i)
        logged += 1
        if max_seconds and i % 100 == 99 and time.perf_counter() - start > max_seconds:
            break
    my.end_run()
    seconds = time.perf_counter() - start
    stored = len(svc.get_metric_history(run_id, "loss"))
    return {
        "points": logged,
        "requested": points,
        "capped": logged < points,
        "seconds": seconds,
        "points_per_s": logged / seconds,
        "stored": stored,
        "verified": stored == logged,
    }


def _batch_metrics(my, batch: int, size: int, keys: int = 10):
    ts = _now_ms()
    steps = size // keys
    return [
        my.Metric(f"m{k}", (batch * steps + s) * 1e-3 + k, ts, batch * steps + s)
        for s in range(steps)
        for k in range(keys)
    ]


def log_batch(batches: int, size: int) -> dict:
    """``svc.log_batch`` of ``size`` points (10 keys), ``batches`` times."""
    my, svc, exp_id = _setup()
    run_id = svc.create_run(exp_id, run_name="log-batch").info.run_id
    payload = [_batch_metrics(my, b, size) for b in range(batches)]  # built outside the timer
    start = time.perf_counter()
    for metrics in payload:
        svc.log_batch(run_id, metrics=metrics)
    svc.end_run(run_id)
    seconds = time.perf_counter() - start
    points = batches * size
    stored = sum(len(svc.get_metric_history(run_id, f"m{k}")) for k in range(10))
    return {
        "points": points,
        "seconds": seconds,
        "points_per_s": points / seconds,
        "stored": stored,
        "verified": stored == points,
    }


def runs_search(runs: int, searches: int = 11) -> dict:
    """``runs`` fluent runs with 10 params and 10 metrics each, then a filtered search
    (same seeded data as the MLflow workload, so both must find the same runs)."""
    import random

    my, svc, exp_id = _setup()
    rng = random.Random(42)
    data = [
        (
            {f"p{j}": ("x" if (i + j) % 3 == 0 else f"v{i % 7}") for j in range(10)},
            {f"m{j}": rng.random() for j in range(10)},
        )
        for i in range(runs)
    ]
    start = time.perf_counter()
    for i, (params, metrics) in enumerate(data):
        with my.start_run(experiment=EXPERIMENT, run_name=f"r{i}"):
            my.log_params(params)
            my.log_metrics(metrics)
    create_s = time.perf_counter() - start
    filter_string = "metrics.m0 > 0.5 and params.p0 = 'x'"
    expected = sum(1 for p, m in data if m["m0"] > 0.5 and p["p0"] == "x")
    times, found = [], -1
    for _ in range(searches):
        t = time.perf_counter()
        page = svc.search_runs([exp_id], filter_string=filter_string, max_results=1000)
        times.append(time.perf_counter() - t)
        found = len(page.items)
    warm = times[1:]  # the first search also warms statement caches
    return {
        "runs": runs,
        "create_s": create_s,
        "create_ms_per_run": create_s * 1000 / runs,
        "first_search_s": times[0],
        "search_s": statistics.median(warm),
        "search_mean_s": statistics.mean(warm),
        "search_all_s": times,
        "found": found,
        "expected": expected,
        "verified": found == expected,
    }


def history(points: int, reads: int = 11) -> dict:
    """Read back a ``points``-long metric history (written by log_batch beforehand)."""
    my, svc, exp_id = _setup()
    run_id = svc.create_run(exp_id, run_name="history").info.run_id
    ts = _now_ms()
    for lo in range(0, points, 1000):
        svc.log_batch(
            run_id,
            metrics=[
                my.Metric("loss", 1.0 / (i + 1), ts, i) for i in range(lo, min(points, lo + 1000))
            ],
        )
    svc.end_run(run_id)
    times, n = [], -1
    for _ in range(reads):
        t = time.perf_counter()
        n = len(svc.get_metric_history(run_id, "loss"))
        times.append(time.perf_counter() - t)
    warm = times[1:]
    return {
        "points": points,
        "first_read_s": times[0],
        "read_s": statistics.median(warm),
        "read_mean_s": statistics.mean(warm),
        "read_all_s": times,
        "stored": n,
        "verified": n == points,
    }


def million(points: int) -> dict:
    """``points`` async ``my.log_metric`` calls into one run: time until ``end_run``
    returns, and the client's peak RSS (measured before the verification read)."""
    my, svc, _ = _setup()
    run = my.start_run(experiment=EXPERIMENT, run_name="million")
    run_id = run.info.run_id
    rss_before = _rss_now_mb()
    start = time.perf_counter()
    log = my.log_metric
    for i in range(points):
        log("loss", 1.0 / (i + 1), step=i)
    logged_s = time.perf_counter() - start
    my.end_run()
    seconds = time.perf_counter() - start
    peak = _peak_rss_mb()
    stored = len(svc.get_metric_history(run_id, "loss"))
    return {
        "points": points,
        "seconds": seconds,
        "calls_s": logged_s,
        "points_per_s": points / seconds,
        "rss_before_mb": rss_before,
        "client_peak_rss_mb": peak,
        "stored": stored,
        "verified": stored == points,
    }


def import_time(tries: int = 5) -> dict:
    """``import modelyard`` in a fresh interpreter, best of ``tries``: the import
    alone (timed inside the child) and the whole process."""
    import subprocess

    code = "import time; t = time.perf_counter(); import modelyard; print(time.perf_counter() - t)"
    # The package root is lazy: the SDK (SQLAlchemy, pydantic...) loads on first use.
    sdk_code = (
        "import time; t = time.perf_counter(); import modelyard; modelyard.log_metric; "
        "print(time.perf_counter() - t)"
    )
    imports, procs, sdk = [], [], []
    for _ in range(tries):
        t = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        procs.append(time.perf_counter() - t)
        imports.append(float(out.stdout.strip().splitlines()[-1]))
        out = subprocess.run(
            [sys.executable, "-c", sdk_code], capture_output=True, text=True, check=True
        )
        sdk.append(float(out.stdout.strip().splitlines()[-1]))
    return {
        "import_s": min(imports),
        "process_s": min(procs),
        "all_import_s": imports,
        "import_with_sdk_s": min(sdk),
    }


WORKLOADS = {
    "log_metric": lambda a: log_metric(
        a.points, synchronous=a.synchronous, max_seconds=a.max_seconds
    ),
    "log_batch": lambda a: log_batch(a.batches, a.batch_size),
    "runs_search": lambda a: runs_search(a.runs),
    "history": lambda a: history(a.points),
    "million": lambda a: million(a.points),
    "import": lambda a: import_time(),
}


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument(
        "--max-seconds", type=float, default=0, help="log_metric: stop early after this long"
    )
    parser.add_argument(
        "--synchronous", action="store_true", help="start_run(synchronous=True): one write per call"
    )
    args = parser.parse_args(argv)
    result = WORKLOADS[args.workload](args)
    result |= {"tool": "modelyard", "workload": args.workload, "peak_rss_mb": _peak_rss_mb()}
    print(json.dumps(result) if args.json else result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
