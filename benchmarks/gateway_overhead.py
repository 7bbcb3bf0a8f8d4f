"""The deployment gateway's cost: a canary split against the model server directly,
under the same load; and how soon a canary whose gate fails stops getting traffic.

    .venv/bin/python benchmarks/gateway_overhead.py            # 5 s per cell, 4 rounds (~18 min)
    .venv/bin/python benchmarks/gateway_overhead.py --quick    # 3 s per cell, 1 round (~4 min)
    .venv/bin/python benchmarks/gateway_overhead.py --only overhead --sides split,canary --clients 8
    .venv/bin/python benchmarks/gateway_overhead.py --only rollback --repeats 5

One store in a temporary folder holds ``bench`` v1 and v2: the same seeded
``LogisticRegression(max_iter=1000)`` on 20 float columns ``f0``..``f19``
(``make_classification``, seed 0), each version fitted on its own bootstrap sample
of the rows (seeds 0 and 1, so their coefficients differ); and ``bench_failing`` v1,
the candidate with a bug: a scikit-learn pipeline that one-hot encodes the same 20
float columns (``OneHotEncoder``, unknown values an error) before a logistic
regression, fitted on the last 20 rows only. Its input example (2 of those rows)
passes the server's warm-up; every request of the rollback part (other rows) makes
the encoder raise inside the model: a 500.

1. Overhead. Five servers, one process each, the same micro-batching (64 rows /
   2 ms), prediction log off, a free loopback port, one up at a time:

   - "direct, one model": ``modelyard serve models:/bench/1``;
   - "direct, same split": ``modelyard serve bench1=models:/bench/1
     bench2=models:/bench/2``, both models in one process, each with its own batcher
     and inference thread as in the gateway; wrk sends every 4th request to
     ``bench2``'s path, the others to ``bench1``'s (25%, deterministic);
   - "gateway canary": ``modelyard gateway bench`` for deployment ``bench``, v1
     stable and a canary of v2 held at 25% (steps 25, 100; the step never ends)
     under the error-rate gate of a default canary (loosened to 0.5 so that 503s
     under overload cannot end it), evaluated every 0.1 s;
   - "gateway canary + gates": the same with the p99 (≤ 60 s) and prediction-drift
     (PSI ≤ 10) gates as well (they never fail here);
   - "gateway, v1 only": the deployment with no rollout.

   Judged against the issue's goals (added p50 ≤ 1 ms, ≥ 90% of the throughput):
   the gateway canary against direct, same split (the same two models, the same
   25%: what the gateway adds to canarying), and the gateway with v1 only against
   direct, one model. The other pairs inform: canary + gates against the same
   split (what the extra gates cost), and the canary against one model (the whole
   cost of running a canary, the second model's work included).

   Before any load each endpoint must answer the right predictions (the direct
   split: v1's on ``bench1``, v2's on ``bench2``; the gateway: the predictions of the
   version its ``x-model-version`` header names, both variants seen, the candidate's
   share within 4 σ of 25%). Then ``wrk`` (``serving_wrk.lua``, its ``WRK_PATHS``
   cycle for every server) drives each with the same single-row body on the V2
   tensor path ``/v2/models/NAME/infer`` and the records path ``/predict/NAME``, at
   1, 8 and 64 keep-alive connections, a warm-up then ``--duration`` seconds per
   cell; afterwards v2's share of the answers under load is read from the server's
   ``/metrics``. With ``--rounds 4`` (the default) every server runs four times, the
   order reversed every other round (each anchor next to the gateway it is judged
   against); each cell shows the median of the rounds. On a VM the same cell moves by
   ±0.2 in throughput ratio from run to run: more, shorter rounds beat fewer long ones.
2. Rollback. ``modelyard gateway bench2-N`` for a fresh deployment (v1 stable);
   client threads post single rows and record each request's send and receive
   times, status and ``x-deployment-variant``; after 1 s a canary of
   ``bench_failing`` starts (steps 5, 25, 50, 100; min_requests 100; max_error_rate
   0.01; 60 s steps). The failure is certain at the candidate's 2nd error
   (floor(0.01 × 100) + 1: more errors than 100 requests may have); "to 0%" is the
   send time of the last request the candidate answered minus the receive time of
   that 2nd error. Also: the audit trail's times (canary started → rolled back), the
   candidate's share of the requests sent meanwhile, and how many user requests
   failed. ``--repeats`` (3) fresh deployments, each behind its own gateway.

Without the ``modelyard gateway`` command (an older checkout) the gateway runs as
``python -c`` calling ``serve_gateway(GatewayOptions([...], prediction_log=None))``,
the runner that command calls. Results also go to
``benchmarks/results/gateway_overhead.json``; exits 1 if a server failed, answered
wrongly, or a measurement failed.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _harness as h  # noqa: E402

RESULTS = HERE / "results" / "gateway_overhead.json"
PARTS = ["overhead", "rollback"]
PATHS = ["tensor", "records"]
MODEL = "bench"  # registered model and deployment of the overhead part
FAILING = "bench_failing"  # the candidate that fails on every real request
FAILING_ROWS = 20  # the failing candidate's training rows: the frame's last ones
ROWS, FEATURES = 10_000, 20
CHECK_ROWS = 8  # rows whose predictions every endpoint must return before the load
SPLIT_REQUESTS = 200  # per path: the gateway's variant split checked before the load
MAX_BATCH_SIZE, MAX_LATENCY_MS = 64, 2.0
# a line of the servers' request counter: modelyard_requests_total{model=..,version=..,..}
METRIC_LINE = re.compile(
    r'^modelyard_requests_total\{(?=[^}]*version="(?P<version>[^"]*)")'
    r'(?=[^}]*status="(?P<status>[^"]*)")[^}]*\}\s+(?P<value>\S+)'
)

# The overhead part's servers. The anchors: "direct", the model server with v1 alone;
# "split", the model server with v1 and v2 under the names below, wrk sending every
# 4th request to v2's. The gateway configurations (deployment `bench`): "canary", v2
# at 25% (the step never ends) under the error-rate gate of a default canary,
# loosened so that an overloaded server's 503s cannot end it; the gates are evaluated
# every tick (0.1 s) and never fail. "gates": the same canary with the p99 and
# prediction-drift gates too. "single": v1 alone, no rollout.
CANARY_STEPS = (25.0, 100.0)
HOLD_SECONDS = 1e9
GATEWAYS: dict[str, dict[str, Any] | None] = {
    "canary": {"min_requests": 200, "max_error_rate": 0.5},
    "gates": {
        "min_requests": 200,
        "max_error_rate": 0.5,
        "max_p99_ms": 60_000.0,
        "max_prediction_drift": 10.0,
    },
    "single": None,
}
# the direct servers' models: name -> version; the split's wrk cycle of names (25% v2)
ANCHORS = {"direct": {MODEL: "1"}, "split": {"bench1": "1", "bench2": "2"}}
SPLIT_CYCLE = ("bench1", "bench1", "bench1", "bench2")
# every side in the order of a round (each anchor next to the gateway judged against it)
SIDES = ("direct", "single", "split", "canary", "gates")
LABELS = {
    "direct": "direct, one model",
    "split": "direct, same split",
    "canary": "gateway canary",
    "gates": "gateway canary + gates",
    "single": "gateway, v1 only",
}
# (gateway, anchor, judged): the goals are judged for the first two pairs
PAIRS = (
    ("canary", "split", True),  # the gateway's cost over canarying itself
    ("single", "direct", True),  # the gateway's cost with one model
    ("gates", "split", False),  # what the p99 and drift gates add
    ("canary", "direct", False),  # the canary's whole cost, the second model's work too
)

# The rollback part's canary: the steps and gates, a failing candidate.
ROLLBACK_STEPS = (5.0, 25.0, 50.0, 100.0)
ROLLBACK_GATES = {"min_requests": 100, "max_error_rate": 0.01}
ROLLBACK_STEP_SECONDS = 60.0
ROLLBACK_TIMEOUT_S = 60.0  # the canary must be rolled back within this
BEFORE_S, AFTER_S = 1.0, 1.0  # client traffic before the canary starts / after it ends

# issue: added p50 ≤ 1 ms, throughput ≥ 90% of direct; failed gate to 0% ≤ 1 s.
GOAL_ADDED_P50_MS = 1.0
GOAL_RPS_RATIO = 0.90
GOAL_TO_ZERO_MS = 1000.0
GOAL_SHARE_PCT = 5.0

# The gateway process without the `modelyard gateway` command (an older checkout):
# the runner that command calls, prediction log off.
GATEWAY_CODE = """\
import sys
from modelyard.server.inference.gateway_app import GatewayOptions
from modelyard.server.inference.run import serve_gateway
from modelyard.serving.batching import BatchPolicy

port, rows, ms, *names = sys.argv[1:]
options = GatewayOptions(names, prediction_log=None, policy=BatchPolicy(int(rows), float(ms)))
serve_gateway(options, "127.0.0.1", int(port))
"""


@dataclass(frozen=True)
class Plan:
    duration: int = 5  # seconds per measured cell
    warmup: int = 2  # seconds of the same load before each cell, not measured
    clients: tuple[int, ...] = (1, 8, 64)
    paths: tuple[str, ...] = tuple(PATHS)
    rounds: int = 4  # each server started this many times, the order alternating
    sides: tuple[str, ...] = SIDES  # the servers measured (anchors and gateways)
    repeats: int = 3  # rollback runs
    threads: int = 4  # client threads of the rollback part
    parts: tuple[str, ...] = tuple(PARTS)


# -- the store ------------------------------------------------------------------------------


@dataclass
class Store:
    """The temporary store and what the checks compare against."""

    root: Path
    settings: dict[str, str]  # MODELYARD_HOME / _DB_URL / _ARTIFACTS: what a server needs
    rows: list[dict[str, float]]  # the check rows (the first is every load request's row)
    expected: dict[str, list[int]]  # version -> its predictions for the check rows
    traffic_rows: list[dict[str, float]]  # what the rollback part's clients send
    train_s: float = 0.0


def build_store(root: Path) -> Store:
    """Register ``bench`` v1 and v2 and ``bench_failing`` v1 in a store under ``root``
    (this process's fluent API points at it from here on)."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    import modelyard as my

    started = time.perf_counter()
    where = {
        "home": str(root / "home"),
        "db_url": f"sqlite:///{root / 'modelyard.db'}",
        "artifacts": str(root / "artifacts"),
    }
    my.configure(**where)  # this process; the servers get the same in their environment
    settings = {f"MODELYARD_{key.upper()}": value for key, value in where.items()}
    X, y = make_classification(
        n_samples=ROWS, n_features=FEATURES, n_informative=10, random_state=0
    )
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(FEATURES)])
    fitted = {}
    for version, seed in (("1", 0), ("2", 1)):
        sample = np.random.default_rng(seed).integers(0, ROWS, ROWS)  # a bootstrap sample
        model = LogisticRegression(max_iter=1000, random_state=seed)
        model.fit(frame.iloc[sample], y[sample])
        with my.start_run(experiment="bench-gateway"):
            my.log_model(model, "model", input_example=frame.head(2), registered_model_name=MODEL)
        if str(my.get_model_version(MODEL, int(version)).version) != version:
            raise h.BenchError(f"{MODEL} was not registered as version {version}")
        fitted[version] = model

    # The failing candidate: its one-hot encoder knows only the values of the last
    # FAILING_ROWS rows (its input example, the warm-up, is two of them); a value it
    # has not seen raises ValueError inside the model, so every traffic row must
    # hold one (make_classification's floats never repeat; checked all the same).
    seen = frame.tail(FAILING_ROWS)
    traffic_frame = frame.head(200)
    if not (~traffic_frame.isin(seen.to_dict("list"))).any(axis=1).all():
        raise h.BenchError(f"a traffic row holds only values {FAILING} was fitted on")
    failing = make_pipeline(OneHotEncoder(), LogisticRegression(max_iter=1000))
    failing.fit(seen, y[-FAILING_ROWS:])
    with my.start_run(experiment="bench-gateway"):
        my.log_model(failing, "model", input_example=seen.head(2), registered_model_name=FAILING)

    # The check rows: the first ones, and two where v1 and v2 disagree (so that a
    # variant answering with the other's model is caught).
    p1, p2 = fitted["1"].predict(frame), fitted["2"].predict(frame)
    differ = [int(i) for i in np.flatnonzero(p1 != p2)[:2]]
    chosen = list(range(CHECK_ROWS - len(differ))) + differ
    rows = [{k: float(v) for k, v in frame.iloc[i].items()} for i in chosen]
    expected = {
        version: [int(v) for v in model.predict(frame.iloc[chosen])]
        for version, model in fitted.items()
    }
    traffic = [{k: float(v) for k, v in row.items()} for _, row in traffic_frame.iterrows()]
    store = Store(root, settings, rows, expected, traffic)
    store.train_s = time.perf_counter() - started
    return store


# -- servers ---------------------------------------------------------------------------------


def direct_server(python: str, store: Store, side: str) -> h.Server:
    """``modelyard serve`` with the models of anchor ``side``: ``models:/bench/1``
    (served as ``bench``), or ``bench1=models:/bench/1 bench2=models:/bench/2``."""
    port = h.free_port()
    models = ANCHORS[side]
    if len(models) == 1:
        args = [f"models:/{MODEL}/{v}" for v in models.values()]
    else:
        args = [f"{name}=models:/{MODEL}/{v}" for name, v in models.items()]
    # `python -m modelyard.cli.main` is the `modelyard` command (the same main()).
    cmd = [
        python, "-m", "modelyard.cli.main", "serve", *args,
        "--host", "127.0.0.1", "--port", str(port),
        "--max-batch-size", str(MAX_BATCH_SIZE), "--max-latency-ms", str(MAX_LATENCY_MS),
    ]  # fmt: skip
    return h.Server(cmd, port, store.settings, store.root, "/v2/health/ready")


def gateway_server(python: str, store: Store, names: list[str], cli: bool = True) -> h.Server:
    """``modelyard gateway NAMES --no-log-predictions`` (``cli``), else ``python -c``
    calling the runner that command calls, also without the prediction log."""
    port = h.free_port()
    if cli:
        cmd = [
            python, "-m", "modelyard.cli.main", "gateway", *names,
            "--host", "127.0.0.1", "--port", str(port), "--no-log-predictions",
            "--max-batch-size", str(MAX_BATCH_SIZE), "--max-latency-ms", str(MAX_LATENCY_MS),
        ]  # fmt: skip
    else:
        cmd = [python, "-c", GATEWAY_CODE, str(port), str(MAX_BATCH_SIZE), str(MAX_LATENCY_MS)]
        cmd += names
    return h.Server(cmd, port, store.settings, store.root, "/v2/health/ready")


# -- the rollback part's client -----------------------------------------------------------


@dataclass
class Answer:
    sent: float  # time.time() (the audit trail's clock), seconds
    received: float
    status: int  # 0: no answer (connection error)
    variant: str | None


class Traffic:
    """``threads`` clients, each on one keep-alive connection, posting single rows to
    ``path`` back to back until stopped; every answer is kept."""

    def __init__(self, port: int, path: str, bodies: list[bytes], threads: int) -> None:
        self.port, self.path, self.bodies, self.threads = port, path, bodies, threads
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="traffic")
        self._clients: list[Future[None]] = []

    def __enter__(self) -> Traffic:
        self._clients = [self._pool.submit(self._run, i) for i in range(self.threads)]
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the clients; one that died of an error of its own raises it here."""
        self._stop.set()
        try:
            for client in self._clients:
                client.result(timeout=15)
        except Exception as exc:  # a client's own error or a hang: this run fails
            raise h.BenchError(f"a rollback client failed: {exc!r}") from None
        finally:
            self._pool.shutdown(wait=False)

    def _run(self, offset: int) -> None:
        headers = {"Content-Type": "application/json"}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        i = offset
        while not self._stop.is_set():
            body = self.bodies[i % len(self.bodies)]
            i += self.threads
            sent = time.time()
            try:
                conn.request("POST", self.path, body, headers)
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException):
                self.answers.append(Answer(sent, time.time(), 0, None))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                continue
            self.answers.append(
                Answer(sent, time.time(), resp.status, resp.getheader("x-deployment-variant"))
            )
        conn.close()


def analyse_rollback(answers: list[Answer], events: list[dict], canary_call: float) -> dict:
    """The figures of one rollback run from the client's record and the audit trail."""
    by_action = {e["action"]: e["created_at"] / 1000 for e in events}
    started = by_action.get("rollout.canary.started")
    ended = by_action.get("rollout.rolled_back")
    if started is None or ended is None:
        raise h.BenchError(f"no canary start and rollback in the audit trail: {list(by_action)}")
    cand = [a for a in answers if a.variant == "candidate"]
    errors = sorted((a for a in cand if a.status >= 500), key=lambda a: a.received)
    need = math.floor(ROLLBACK_GATES["max_error_rate"] * ROLLBACK_GATES["min_requests"]) + 1
    if len(errors) < need:
        raise h.BenchError(
            f"the candidate answered {len(cand)} requests with {len(errors)} errors, "
            f"fewer than the {need} that make the failure certain"
        )
    certain = errors[need - 1].received
    zero = max(a.sent for a in cand)
    during = [a for a in answers if started <= a.sent <= ended]
    during_cand = sum(1 for a in during if a.variant == "candidate")
    first, last = min(a.sent for a in answers), max(a.received for a in answers)
    failed = [a for a in answers if a.status != 200]
    return {
        "requests": len(answers),
        "client_rps": len(answers) / (last - first) if last > first else None,
        "candidate_requests": len(cand),
        "candidate_errors": sum(1 for a in cand if a.status >= 500),
        "candidate_ok": sum(1 for a in cand if a.status == 200),
        "requests_during_rollout": len(during),
        "candidate_share_pct": 100 * during_cand / len(during) if during else None,
        "failed_requests": len(failed),
        "failed_not_candidate": sum(1 for a in failed if a.variant != "candidate"),
        "errors_to_certain": need,
        "to_zero_ms": (zero - certain) * 1000,
        "to_recorded_ms": (ended - certain) * 1000,
        "first_candidate_s": min(a.sent for a in cand) - started,
        "certain_after_start_s": certain - started,
        "started_to_rolled_back_s": ended - started,
        "canary_call_to_started_ms": (started - canary_call) * 1000,
        "last_candidate_before_recorded_ms": (ended - zero) * 1000,
        "candidate_after_recorded": sum(1 for a in cand if a.sent > ended),
    }


# -- the benchmark ------------------------------------------------------------------------


@dataclass
class Bench:
    plan: Plan
    python: str
    store: Store
    gateway_cli: bool = True  # `modelyard gateway` exists (else `python -c`, the same runner)
    progress: Callable[[str], None] = lambda desc: None
    # (side, path, clients) -> one wrk summary per round (None: that round failed)
    cells: dict[tuple[str, str, int], list[dict[str, Any] | None]] = field(default_factory=dict)
    splits: list[dict[str, Any]] = field(default_factory=list)
    rollbacks: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def start(self, stack: contextlib.ExitStack, server: h.Server, label: str) -> h.Server:
        self.progress(f"starting the {label}, waiting until it is ready")
        stack.callback(server.stop)
        try:
            server.start()
        except h.BenchError as exc:
            raise h.BenchError(f"starting the {label}: {exc}") from None
        self.meta.setdefault("servers", {}).setdefault(label, []).append(
            {"startup_s": server.startup_s, "cmd": server.cmd[:2] + ["..."] + server.cmd[-4:]}
        )
        return server

    # -- checks ----------------------------------------------------------------------

    def ask(
        self, server: h.Server, path: str, i: int, name: str = MODEL
    ) -> tuple[Any, dict[str, str]]:
        """Check row ``i`` on ``path`` of model ``name``: (the one prediction, the
        response headers)."""
        url_path, body = h.modelyard_request(path, self.store.rows[i], name, named=True)
        status, answer, head = h.post(server.url + url_path, body)
        if status != 200:
            raise h.BenchError(
                f"POST {server.url}{url_path} answered {status}: {json.dumps(answer)[:600]}"
            )
        values = h.predictions(answer)
        if len(values) != 1:
            raise h.BenchError(f"{path}: expected 1 prediction, got {answer}")
        return values[0], head

    def check_direct(self, server: h.Server, side: str) -> None:
        """Each model of the anchor answers its version's predictions."""
        for name, version in ANCHORS[side].items():
            want = self.store.expected[version]
            for path in self.plan.paths:
                got = [self.ask(server, path, i, name)[0] for i in range(len(self.store.rows))]
                if got != want:  # JSON numbers: 1 == 1.0
                    raise h.BenchError(
                        f"{LABELS[side]} {path}, {name}: predictions {got}, "
                        f"v{version} predicts {want}"
                    )

    def check_gateway(self, server: h.Server, side: str) -> dict[str, Any]:
        """Every answer is its version's prediction, stable is v1 and candidate v2,
        and the candidate's share is within 4 σ of the canary's weight (0: none)."""
        counts: Counter[str] = Counter()
        want_version = {"stable": "1", "candidate": "2"}
        n_rows = len(self.store.rows)
        for path in self.plan.paths:
            for k in range(SPLIT_REQUESTS):
                value, head = self.ask(server, path, k % n_rows)
                variant, version = head.get("x-deployment-variant"), head.get("x-model-version")
                if variant not in want_version or version != want_version[variant]:
                    raise h.BenchError(
                        f"gateway {path}: answered by variant {variant!r} version {version!r} "
                        f"(expected stable = 1, candidate = 2)"
                    )
                want = self.store.expected[version][k % n_rows]
                if value != want:
                    raise h.BenchError(
                        f"gateway {path}: version {version} answered {value} for check row "
                        f"{k % n_rows}, that version predicts {want}"
                    )
                counts[variant] += 1
        total = sum(counts.values())
        share = 100 * counts["candidate"] / total
        weight = CANARY_STEPS[0] if GATEWAYS[side] is not None else 0.0
        sigma = 100 * math.sqrt(weight / 100 * (1 - weight / 100) / total)
        both = counts["stable"] and (counts["candidate"] or not weight)
        if not both or abs(share - weight) > 4 * sigma:
            raise h.BenchError(
                f"gateway: {dict(counts)} over {total} requests: the candidate got "
                f"{share:.1f}%, the canary's weight is {weight:g}% (± {4 * sigma:.1f})"
            )
        return {"requests": total, "by_variant": dict(counts), "candidate_pct": share}

    # -- part 1: overhead ----------------------------------------------------------

    def measure(self, server: h.Server, side: str, path: str, clients: int, tmp: Path) -> None:
        """One cell: wrk with the same body on every server, through the script's
        path cycle on every server (one path, or the split's 3 × bench1, 1 × bench2)."""
        self.progress(f"{path}, {clients} clients — {LABELS[side]}")
        names = SPLIT_CYCLE if side == "split" else (MODEL,)
        requests = [h.modelyard_request(path, self.store.rows[0], n, named=True) for n in names]
        body = requests[0][1]
        if any(b != body for _, b in requests):
            raise h.BenchError(f"{path}: the split's models need different bodies")
        url_paths = [u for u, _ in requests]
        body_file = tmp / f"body-{path}.json"
        body_file.write_bytes(body)
        key = (side, path, clients)
        try:
            data = h.measure_load(
                server,
                server.url + url_paths[0],
                body_file,
                clients,
                warmup=self.plan.warmup,
                duration=self.plan.duration,
                paths=url_paths,
            )
        except (h.BenchError, OSError, subprocess.TimeoutExpired) as exc:
            self.errors.append(f"{path}, {clients} clients ({side}): {exc}")
            self.cells.setdefault(key, []).append(None)
            return
        data["url_paths"] = url_paths
        self.cells.setdefault(key, []).append(data)

    @staticmethod
    def answered(server: h.Server) -> Counter[str]:
        """The server's 2xx answers so far by model version (its /metrics)."""
        try:
            with urllib.request.urlopen(server.url + "/metrics", timeout=10) as resp:
                text = resp.read().decode()
        except OSError as exc:
            raise h.BenchError(f"GET {server.url}/metrics: {exc}") from None
        counts: Counter[str] = Counter()
        for line in text.splitlines():
            found = METRIC_LINE.match(line)
            if found and found["status"] == "2xx":
                counts[found["version"]] += int(float(found["value"]))
        return counts

    def under_load_split(self, side: str) -> dict[str, Any]:
        """The gateway's own counts per variant (its live figures, written every
        second), and a check that the canary is still held at its first step."""
        import modelyard as my

        time.sleep(1.5)  # the gateway writes its live figures every second
        dep = my.get_deployment(MODEL)
        r = dep.rollout
        held = r is not None and r.status == "running" and r.step == 0
        if GATEWAYS[side] is None:
            held = r is None or not r.running
        if not held:
            raise h.BenchError(
                f"the canary of {MODEL!r} did not hold at its first step: "
                f"{r.status if r else None}, step {r.step if r else None}, "
                f"{r.reason if r else ''}"
            )
        variants = (dep.live or {}).get("variants", {})
        counts = {name: v.get("requests", 0) for name, v in variants.items()}
        total = sum(counts.values())
        return {
            "by_variant": counts,
            "candidate_pct": 100 * counts.get("candidate", 0) / total if total else None,
            "gates": (dep.live or {}).get("gates"),
        }

    def canary(self, side: str) -> None:
        """Deployment ``bench`` as ``side`` has it: v1 stable and a canary of v2 held
        at 25% with that side's gates, or v1 alone (a running canary of another
        configuration is rolled back first)."""
        import modelyard as my

        dep = my.get_deployment(MODEL)
        if dep.rollout is not None and dep.rollout.running:
            my.rollback_deployment(MODEL, "benchmark: the next gateway configuration")
        gates = GATEWAYS[side]
        if gates is None:
            return
        my.start_canary(
            MODEL,
            f"models:/{MODEL}/2",
            steps=CANARY_STEPS,
            step_seconds=HOLD_SECONDS,
            promote_alias=None,
            **gates,
        )

    def overhead(self, tmp: Path) -> None:
        import modelyard as my

        my.create_deployment(MODEL, f"models:/{MODEL}/1")
        sides = list(self.plan.sides)
        for rnd in range(self.plan.rounds):
            for side in sides if rnd % 2 == 0 else sides[::-1]:
                with contextlib.ExitStack() as stack:  # one server at a time
                    split: dict[str, Any] = {"side": side, "round": rnd + 1}
                    if side in ANCHORS:
                        server = direct_server(self.python, self.store, side)
                        srv = self.start(stack, server, LABELS[side])
                        self.check_direct(srv, side)
                    else:
                        self.canary(side)
                        server = gateway_server(self.python, self.store, [MODEL], self.gateway_cli)
                        srv = self.start(stack, server, LABELS[side])
                        split["check"] = self.check_gateway(srv, side)
                    before = self.answered(srv)
                    for path in self.plan.paths:
                        for clients in self.plan.clients:
                            self.measure(srv, side, path, clients, tmp)
                    try:
                        served = self.answered(srv) - before
                        total = sum(served.values())
                        split["served"] = {
                            "by_version": dict(served),
                            "v2_pct": 100 * served["2"] / total if total else None,
                        }
                        if side in GATEWAYS:
                            split["under_load"] = self.under_load_split(side)
                    except h.BenchError as exc:
                        self.errors.append(f"{LABELS[side]}: {exc}")
                    self.splits.append(split)

    def cell(self, side: str, path: str, clients: int) -> dict[str, Any] | None:
        """The median over the rounds of one cell (None when any round failed)."""
        runs = self.cells.get((side, path, clients), [])
        if not runs or any(r is None for r in runs):
            return None
        out: dict[str, Any] = {"rounds": len(runs)}
        for k in ("rps", "p50_ms", "p99_ms", "errors", "server_cpu_pct", "others_cpu_pct"):
            out[k] = statistics.median(r[k] for r in runs)  # type: ignore[index]
        # the server's CPU per answered request: what contention for the cores changes least
        out["cpu_us_per_request"] = statistics.median(
            1e6 * r["server_cpu_s"] / max(1, r["requests"])  # type: ignore[index]
            for r in runs
        )
        return out

    # -- part 2: rollback ------------------------------------------------------------

    def rollback_once(self, n: int) -> dict[str, Any]:
        import modelyard as my

        name = f"bench2-{n}"
        self.progress(f"rollback run {n}: gateway for {name!r}, canary of {FAILING}")
        my.create_deployment(name, f"models:/{MODEL}/1")
        with contextlib.ExitStack() as stack:
            server = gateway_server(self.python, self.store, [name], self.gateway_cli)
            srv = self.start(stack, server, "rollback")
            bodies = [
                json.dumps({"dataframe_records": [row]}).encode() for row in self.store.traffic_rows
            ]
            with Traffic(srv.port, f"/predict/{name}", bodies, self.plan.threads) as traffic:
                time.sleep(BEFORE_S)
                call = time.time()
                my.start_canary(
                    name,
                    f"models:/{FAILING}/1",
                    steps=ROLLBACK_STEPS,
                    step_seconds=ROLLBACK_STEP_SECONDS,
                    promote_alias=None,
                    **ROLLBACK_GATES,
                )
                deadline = call + ROLLBACK_TIMEOUT_S
                dep = my.get_deployment(name)
                while dep.rollout is not None and dep.rollout.running and time.time() < deadline:
                    time.sleep(0.1)
                    dep = my.get_deployment(name)
                time.sleep(AFTER_S)
            if srv.proc is None or srv.proc.poll() is not None:
                raise h.BenchError(f"the gateway exited:\n{srv.log_tail()}")
        r = dep.rollout
        if r is None or r.status != "rolled_back":
            raise h.BenchError(
                f"{name}: the canary of {FAILING} was not rolled back within "
                f"{ROLLBACK_TIMEOUT_S:.0f} s (status {r.status if r else None})"
            )
        events = my.deployment_service().history(name)
        result = analyse_rollback(traffic.answers, events, call)
        return result | {
            "run": n,
            "deployment": name,
            "reason": r.reason,
            "gates": r.last_gates,
            "events": [
                {k: e[k] for k in ("action", "created_at")}
                for e in events
                if e["action"].startswith("rollout")
            ],
        }

    def rollback(self) -> None:
        for n in range(1, self.plan.repeats + 1):
            try:
                self.rollbacks.append(self.rollback_once(n))
            except h.BenchError as exc:
                self.errors.append(f"rollback run {n}: {exc}")

    def run(self, tmp: Path) -> None:
        if "overhead" in self.plan.parts:
            self.overhead(tmp)
        if "rollback" in self.plan.parts:
            self.rollback()


# -- the tables -----------------------------------------------------------------------------


def _yes(met: bool | None, judged: bool = True) -> str:
    if met is None:
        return ""
    if judged:
        return "yes" if met else "NO"
    return "(yes)" if met else "(no)"


SHORT = {
    "direct": "one model",
    "split": "same split",
    "canary": "canary",
    "gates": "canary + gates",
    "single": "v1 only",
}
GOAL_TEXT = f"+p50 ≤ {GOAL_ADDED_P50_MS:g} ms, rps ratio ≥ {GOAL_RPS_RATIO:.2f}"


def measured_pairs(plan: Plan) -> list[tuple[str, str, bool]]:
    """The PAIRS whose two servers the plan measures."""
    return [p for p in PAIRS if p[0] in plan.sides and p[1] in plan.sides]


def overhead_table(b: Bench) -> tuple[list[list[str]], list[h.Row]]:
    """A row per (path, clients, pair of PAIRS measured): the judged pairs' goals are
    the issue's, the other pairs show the same figures for information."""
    table: list[list[str]] = []
    goals: list[h.Row] = []
    pairs = measured_pairs(b.plan)
    for path in b.plan.paths:
        for clients in b.plan.clients:
            for side, anchor, judged in pairs:
                d, g = b.cell(anchor, path, clients), b.cell(side, path, clients)
                head = [path, str(clients), SHORT[side], SHORT[anchor]]
                goal = "judged" if judged else "info"
                if d is None or g is None:
                    table.append([*head, *(["error"] * 10), goal, ""])
                    continue
                added = g["p50_ms"] - d["p50_ms"]
                ratio = g["rps"] / d["rps"] if d["rps"] else 0.0
                met = added <= GOAL_ADDED_P50_MS and ratio >= GOAL_RPS_RATIO
                errors = int(d["errors"] + g["errors"])
                table.append(
                    [
                        *head,
                        f"{d['rps']:,.0f}",
                        h.fmt_ms(d["p50_ms"]),
                        h.fmt_ms(d["p99_ms"]),
                        f"{g['rps']:,.0f}",
                        h.fmt_ms(g["p50_ms"]),
                        h.fmt_ms(g["p99_ms"]),
                        f"{added:+.2f}",
                        f"{ratio:.2f}",
                        f"{d['cpu_us_per_request']:,.0f} → {g['cpu_us_per_request']:,.0f}",
                        f"{errors:,}",
                        f"{d['others_cpu_pct']:.0f}% / {g['others_cpu_pct']:.0f}%",
                        goal,
                        _yes(met, judged),
                    ]
                )
                goals.append(
                    h.Row(
                        f"overhead {path}, {clients} clients: {LABELS[side]} vs {LABELS[anchor]}",
                        f"{g['rps']:,.0f} rps, p50 {g['p50_ms']:.2f} ms",
                        f"{d['rps']:,.0f} rps, p50 {d['p50_ms']:.2f} ms",
                        ratio,
                        GOAL_TEXT if judged else f"information (would meet: {met})",
                        met if judged else None,
                        ours_raw=g,
                        theirs_raw=d,
                        note=f"added p50 {added:+.3f} ms; canary gates {GATEWAYS[side]}",
                    )
                )
    return table, goals


def _s(x: float) -> str:
    return f"{x:.2f}"


def rollback_table(b: Bench) -> tuple[list[list[str]], list[h.Row]]:
    table: list[list[str]] = []
    goals: list[h.Row] = []
    goal = f"to 0% ≤ {GOAL_TO_ZERO_MS / 1000:g} s, share ≤ {GOAL_SHARE_PCT:g}%"
    for r in b.rollbacks:
        met = r["to_zero_ms"] <= GOAL_TO_ZERO_MS and r["candidate_share_pct"] <= GOAL_SHARE_PCT
        table.append(
            [
                f"run {r['run']}",
                f"{r['client_rps']:,.0f}",
                f"{r['candidate_requests']} ({r['candidate_errors']})",
                f"{r['candidate_share_pct']:.1f}%",
                str(r["failed_requests"]),
                _s(r["first_candidate_s"]),
                _s(r["certain_after_start_s"]),
                f"{r['to_zero_ms']:.0f}",
                f"{r['to_recorded_ms']:.0f}",
                _s(r["started_to_rolled_back_s"]),
                goal,
                _yes(met),
            ]
        )
        goals.append(
            h.Row(
                f"rollback run {r['run']}: failed gate to 0% candidate traffic",
                f"{r['to_zero_ms']:.0f} ms, candidate share {r['candidate_share_pct']:.1f}%",
                "",
                None,
                goal,
                met,
                ours_raw={k: v for k, v in r.items() if k not in ("events", "gates")},
            )
        )
    if len(b.rollbacks) > 1:
        for label, fn in (("median", statistics.median), ("max", max)):

            def agg(key: str, fn: Callable = fn) -> float:
                return fn(r[key] for r in b.rollbacks)

            met = None
            if label == "max":
                met = (
                    agg("to_zero_ms") <= GOAL_TO_ZERO_MS
                    and agg("candidate_share_pct") <= GOAL_SHARE_PCT
                )
            table.append(
                [
                    label,
                    f"{agg('client_rps'):,.0f}",
                    f"{agg('candidate_requests'):.0f} ({agg('candidate_errors'):.0f})",
                    f"{agg('candidate_share_pct'):.1f}%",
                    f"{agg('failed_requests'):.0f}",
                    _s(agg("first_candidate_s")),
                    _s(agg("certain_after_start_s")),
                    f"{agg('to_zero_ms'):.0f}",
                    f"{agg('to_recorded_ms'):.0f}",
                    _s(agg("started_to_rolled_back_s")),
                    goal if met is not None else "",
                    _yes(met),
                ]
            )
    return table, goals


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s cells, 1 round (~4 min)")
    parser.add_argument(
        "--only", nargs="+", choices=PARTS, metavar="PART", help=f"a subset: {' '.join(PARTS)}"
    )
    parser.add_argument("--paths", default="tensor,records", help="overhead: request paths")
    parser.add_argument("--duration", type=int, help="seconds per measured cell (default 5)")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up load per cell (default 2)")
    parser.add_argument(
        "--clients",
        type=h.positive_ints,
        default=(1, 8, 64),
        help="concurrent connections, comma-separated (default 1,8,64)",
    )
    parser.add_argument("--rounds", type=int, help="overhead: server starts per side (4; quick 1)")
    parser.add_argument(
        "--sides",
        default=",".join(SIDES),
        help="overhead: the servers, comma-separated (default all: "
        + "; ".join(f"{k} = {v}" for k, v in LABELS.items())
        + "); a pair is shown when both of its servers ran",
    )
    parser.add_argument("--repeats", type=int, default=3, help="rollback runs (default 3)")
    parser.add_argument("--threads", type=int, default=4, help="rollback: client threads")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args(argv)
    for option, allowed in (("sides", SIDES), ("paths", PATHS)):
        chosen = [x for x in getattr(args, option).split(",") if x]
        if not chosen or set(chosen) - set(allowed):
            parser.error(f"--{option}: a comma-separated subset of {','.join(allowed)}")
        setattr(args, option, tuple(x for x in allowed if x in chosen))
    return args


def overhead_notes(bench: Bench) -> list[str]:
    plan = bench.plan

    def shares(kind: str, key: str) -> str:
        """Per side, each start's figure: "gateway canary 25.0/25.0%"."""
        by_side: dict[str, list[str]] = {}
        for s in bench.splits:
            if s.get(kind, {}).get(key) is not None:
                by_side.setdefault(s["side"], []).append(f"{s[kind][key]:.1f}")
        said = [f"{LABELS[side]} {'/'.join(v)}%" for side, v in by_side.items()]
        return ", ".join(said) or "none"

    gateway = (
        f"`modelyard gateway {MODEL} --no-log-predictions`"
        if bench.gateway_cli
        else f"serve_gateway(GatewayOptions(['{MODEL}'], prediction_log=None)) (no "
        "`modelyard gateway` command here)"
    )
    gates = "; ".join(
        f"{LABELS[g]}: {', '.join(f'{k} {v:g}' for k, v in conf.items())}"
        for g, conf in GATEWAYS.items()
        if conf is not None and g in plan.sides
    )
    batching = f"--max-batch-size {MAX_BATCH_SIZE} --max-latency-ms {MAX_LATENCY_MS:g}"
    judged = " and ".join(f"{LABELS[g]} vs {LABELS[a]}" for g, a, j in measured_pairs(plan) if j)
    return [
        f"overhead: wrk (threads = min(clients, 2), --timeout {h.WRK_TIMEOUT}, its "
        "request() path cycle for every server), "
        f"{plan.warmup} s warm-up then {plan.duration} s measured per cell, the same "
        "row in every request; p50/p99 from wrk's histogram; each server started "
        f"{plan.rounds}× (one at a time, order alternating), the median shown; "
        "+p50 = gateway p50 − direct p50; rps ratio = gateway ÷ direct; CPU µs/req = "
        "the server's CPU seconds (all its threads) per answered request, direct → "
        "gateway; others CPU = everything else busy on the machine (/proc/stat) during "
        "the direct / gateway cell, 100% = one core (a high figure: a noisy cell)",
        f"servers ({batching} each): one model = `modelyard serve models:/{MODEL}/1`; "
        f"same split = `modelyard serve bench1=models:/{MODEL}/1 bench2=models:/{MODEL}/2`"
        f", wrk sending requests {'/'.join(SPLIT_CYCLE)} in turn; gateway = {gateway}, "
        f"canary: v1 stable + v2 candidate at {CANARY_STEPS[0]:g}%, the step held, the "
        f"gates evaluated every 0.1 s ({gates}); v1 only: the deployment without a rollout",
        f"judged: {judged} (the goals: {GOAL_TEXT}); the other pairs, and every "
        "(yes)/(no), are for information",
        f"v2's share of the answers: check before the load {shares('check', 'candidate_pct')}"
        f"; under load (/metrics) {shares('served', 'v2_pct')}; the gateway's own counts "
        f"{shares('under_load', 'candidate_pct')}",
    ]


ROLLBACK_NOTE = (
    "rollback: {threads} client threads, each on a keep-alive connection; "
    "start = the rollout.canary.started audit event; certain = the client's "
    "receive time of the candidate's error no. {need} (floor(max_error_rate × "
    "min_requests) + 1); 0% = the send time of the last request the candidate "
    "answered (negative: its last request was sent before that error came back); "
    "recorded = the rollout.rolled_back audit event (written after the "
    "in-memory switch: an upper bound); candidate share = of the requests sent "
    "from start to recorded; failed req = non-200 answers seen by the clients"
)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    parts = tuple(p for p in PARTS if not args.only or p in args.only)
    if "overhead" in parts and h.wrk_missing():
        return 2
    if why := h.cli_available(sys.executable, "serve"):
        print(f"error: `modelyard serve` is not available: {why}", file=sys.stderr)
        return 2
    gateway_cli = h.cli_available(sys.executable, "gateway") is None
    plan = Plan(
        duration=args.duration or (3 if args.quick else Plan.duration),
        warmup=args.warmup if args.warmup is not None else (1 if args.quick else Plan.warmup),
        clients=args.clients,
        paths=args.paths,
        rounds=args.rounds or (1 if args.quick else Plan.rounds),
        sides=args.sides,
        repeats=args.repeats,
        threads=args.threads,
        parts=parts,
    )
    steps = 1
    if "overhead" in parts:
        steps += plan.rounds * len(plan.sides) * (1 + len(plan.paths) * len(plan.clients))
    if "rollback" in parts:
        steps += plan.repeats * 2
    clock = h.RunClock()
    with h.terminate_cleanly(), h.temp_home("gateway") as tmp, h.progress(steps) as step:
        step("training and registering bench v1, v2 and bench_failing")
        bench: Bench | None = None
        errors: list[str] = []
        try:
            store = build_store(tmp)
            bench = Bench(plan, sys.executable, store, gateway_cli, step)
            bench.run(tmp)
        except h.BenchError as exc:
            (bench.errors if bench else errors).append(str(exc))
            print(f"error: {exc}", file=sys.stderr)
    clock.stop()
    if bench is None:
        return h.finish(args.out, {"quick": args.quick}, errors)

    quick = " (--quick)" if args.quick else ""
    judged = "; ".join(f"{SHORT[g]} vs {SHORT[a]}" for g, a, j in measured_pairs(plan) if j)
    tables = {
        "overhead": (
            overhead_table,
            "deployment gateway vs the model server directly — LogisticRegression on "
            f"{FEATURES} features, single-row requests, {plan.duration} s per cell, median "
            f"of {plan.rounds} round(s){quick}. Goals ({GOAL_TEXT}) judged for: {judged}; "
            "the other rows inform",
            [
                "path", "clients", "gateway", "vs direct", "direct rps", "p50 ms",
                "p99 ms", "gateway rps", "p50 ms", "p99 ms", "+p50 ms", "rps ratio",
                "CPU µs/req", "errors", "others CPU", "goal", "met?",
            ],
        ),
        "rollback": (
            rollback_table,
            f"failing canary ({FAILING}, steps {', '.join(f'{s:g}' for s in ROLLBACK_STEPS)}; "
            f"min_requests {ROLLBACK_GATES['min_requests']}, max_error_rate "
            f"{ROLLBACK_GATES['max_error_rate']:g}): from the failed gate to 0% candidate "
            f"traffic, {plan.repeats} fresh deployment(s){quick}",
            [
                "run", "client rps", "cand. req (errors)", "cand. share", "failed req",
                "→ 1st cand. s", "→ certain s", "certain → 0% ms", "certain → recorded ms",
                "→ rolled back s", "goal", "met?",
            ],
        ),
    }  # fmt: skip
    goals: list[h.Row] = []
    said = []
    for part in parts:
        build, title, columns = tables[part]
        table, rows = build(bench)
        h.render_table(title, columns, table)
        goals += rows
        judged_rows = [g for g in rows if g.met is not None]
        said.append(f"{part} {sum(1 for g in judged_rows if g.met)} of {len(judged_rows)}")
    notes = [clock.note()]
    if "overhead" in parts:
        notes += overhead_notes(bench)
    if "rollback" in parts:
        need = math.floor(ROLLBACK_GATES["max_error_rate"] * ROLLBACK_GATES["min_requests"]) + 1
        notes.append(ROLLBACK_NOTE.format(threads=plan.threads, need=need))
    for n in notes:
        print(n)
    print("goals met (judged rows): " + "; ".join(said))
    cells = [
        {"side": side, "path": path, "clients": clients, "round": i + 1, "data": d}
        for (side, path, clients), runs in bench.cells.items()
        for i, d in enumerate(runs)
    ]
    meta = {"quick": args.quick, "plan": asdict(plan), "train_s": bench.store.train_s}
    return h.finish(
        args.out,
        bench.meta | meta | clock.meta() | {"notes": notes},
        bench.errors,
        cells=cells,
        splits=bench.splits,
        rollbacks=bench.rollbacks,
        goals=[asdict(g) for g in goals],
    )


if __name__ == "__main__":
    h.run_main(main)
