"""Shared helpers for the benchmarks: run a workload in a fresh subprocess, start and
stop servers on free loopback ports, load them with ``wrk`` (``serving_wrk.lua``),
measure process trees and CPU shares, print a rich table.

Nothing here imports modelyard or MLflow: each tool runs in its own interpreter
(the dev venv for modelyard, ``.venv-bench`` for MLflow), so their imports, caches
and memory never mix. Only the standard library is needed (``rich`` for the table
and the progress line, optional; ``psutil`` is used when installed, ``/proc``
otherwise).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BenchError",
    "RunClock",
    "Server",
    "WorkloadResult",
    "cli_available",
    "finish",
    "free_port",
    "machine_busy_s",
    "measure_load",
    "median_of",
    "modelyard_request",
    "positive_ints",
    "post",
    "predictions",
    "process_tree",
    "progress",
    "render_table",
    "run_main",
    "run_workload",
    "run_wrk",
    "server_cpu_s",
    "temp_home",
    "terminate_cleanly",
    "tree_memory",
    "wrk_missing",
]

HERE = Path(__file__).resolve().parent


class BenchError(RuntimeError):
    """A workload or a server failed; the message carries the tail of its stderr."""


# -- workloads in subprocesses ------------------------------------------------------------


@dataclass
class WorkloadResult:
    """One subprocess run: what the workload printed, plus what the parent measured."""

    data: dict[str, Any]
    wall_s: float  # the whole subprocess, interpreter start to exit
    peak_rss_mb: float  # ru_maxrss of that one child (from wait4), not of its children


def run_workload(
    python: str | os.PathLike,
    script: str | os.PathLike,
    workload: str,
    *,
    env: dict[str, str],
    cwd: str | os.PathLike,
    args: Sequence[str] = (),
    timeout: float = 1800,
) -> WorkloadResult:
    """Run ``python script workload --json [args]`` in ``cwd`` with exactly ``env``
    (plus PATH/HOME/LANG from ours), and return its last stdout line parsed as JSON.

    The child's own peak RSS comes from ``os.wait4`` (per-process, unlike
    ``RUSAGE_CHILDREN``, which is a maximum over every child ever reaped).
    """
    full_env = _base_env() | env
    cmd = [str(python), str(script), workload, "--json", *args]
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    out, err = _communicate(proc, timeout)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise BenchError(
            f"{Path(script).name} {workload} {' '.join(args)} exited {proc.returncode}:\n"
            + _tail(err)
        )
    lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.startswith("{")]
    if not lines:
        raise BenchError(f"{Path(script).name} {workload} printed no JSON:\n{_tail(err)}")
    return WorkloadResult(json.loads(lines[-1]), wall, usage.ru_maxrss / 1024)


def _communicate(proc: subprocess.Popen, timeout: float) -> tuple[bytes, bytes]:
    """Read stdout/stderr to EOF without reaping the child (so wait4 still can)."""
    import selectors

    sel = selectors.DefaultSelector()
    bufs: dict[int, list[bytes]] = {}
    for stream in (proc.stdout, proc.stderr):
        assert stream is not None
        sel.register(stream, selectors.EVENT_READ)
        bufs[stream.fileno()] = []
    deadline = time.monotonic() + timeout
    open_streams = 2
    while open_streams:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            _kill_group(proc.pid)
            proc.wait()
            raise BenchError(f"workload timed out after {timeout:.0f} s: {proc.args}")
        for key, _ in sel.select(timeout=min(remaining, 1.0)):
            chunk = os.read(key.fd, 65536)
            if chunk:
                bufs[key.fd].append(chunk)
            else:
                sel.unregister(key.fileobj)
                open_streams -= 1
    sel.close()
    assert proc.stdout is not None and proc.stderr is not None
    out = b"".join(bufs[proc.stdout.fileno()])
    err = b"".join(bufs[proc.stderr.fileno()])
    proc.stdout.close()
    proc.stderr.close()
    return out, err


def _base_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TERM")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    # Neither tool may phone home or pick up a developer's settings.
    env |= {
        "PYTHONDONTWRITEBYTECODE": "0",
        "PYTHONUNBUFFERED": "1",
        "DO_NOT_TRACK": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    return env


def _tail(err: bytes, lines: int = 25) -> str:
    return "\n".join(err.decode(errors="replace").splitlines()[-lines:])


def median_of(
    run: Callable[[], WorkloadResult],
    key: str,
    *,
    repeat: int = 3,
    short_s: float = 10.0,
) -> tuple[WorkloadResult, list[WorkloadResult]]:
    """Run once; if that took under ``short_s`` seconds, run ``repeat - 1`` more and
    return the run whose ``data[key]`` is the median (and all runs).

    Long workloads (the slow MLflow ones take 20-60 s) are measured once: their
    noise is small next to their length, and the whole benchmark must stay short.
    """
    first = run()
    runs = [first]
    if first.wall_s < short_s:
        runs += [run() for _ in range(repeat - 1)]
    ordered = sorted(runs, key=lambda r: r.data[key])
    return ordered[len(ordered) // 2], runs


@contextlib.contextmanager
def temp_home(prefix: str) -> Iterator[Path]:
    """A fresh temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{prefix}-") as d:
        yield Path(d)


# -- servers ----------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A server process started in its own session (so its whole tree can be stopped
    by our own pid), ready once ``health_path`` answers 200.

    Example::

        with Server([py, "-m", "modelyard.server", "--port", str(p)], p, env, cwd) as srv:
            print(srv.url, srv.startup_s)
    """

    cmd: list[str]
    port: int
    env: dict[str, str]
    cwd: str | os.PathLike
    health_path: str = "/health"
    start_timeout: float = 120.0
    proc: subprocess.Popen | None = None
    startup_s: float = 0.0
    log_path: Path | None = None
    _log: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        self.log_path = Path(self.cwd) / f"server-{self.port}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        start = time.perf_counter()
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=self.cwd,
            env=_base_env() | self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"server exited {self.proc.returncode}:\n{self.log_tail()}")
            if _http_ok(self.url + self.health_path):
                break
            if time.monotonic() > deadline:
                self.stop()
                raise BenchError(
                    f"server not ready in {self.start_timeout:.0f} s:\n{self.log_tail()}"
                )
            time.sleep(0.05)
        self.startup_s = time.perf_counter() - start
        return self

    def log_tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return _tail(self.log_path.read_bytes())

    def stop(self) -> None:
        """SIGTERM to the server's own process group, SIGKILL after 10 s."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _kill_group(self.proc.pid)
                self.proc.wait(timeout=10)
        # Workers that outlived their parent still carry its process group.
        _kill_group(self.proc.pid)
        if self._log is not None:
            self._log.close()
        self.proc = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


# -- HTTP clients and the wrk load generator -----------------------------------------------

WRK_LUA = HERE / "serving_wrk.lua"
WRK_TIMEOUT = "10s"  # a slower response counts in the latency, not as a timeout
CLK_TCK = os.sysconf("SC_CLK_TCK")


def post(
    url: str, body: bytes, timeout: float = 30, headers: dict[str, str] | None = None
) -> tuple[int, Any, dict[str, str]]:
    """POST a JSON body: (status, the parsed answer or its text, the response headers
    with lower-case names); error statuses are returned, not raised."""
    req = urllib.request.Request(
        url,
        data=body,
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            head = {k.lower(): v for k, v in resp.headers.items()}
            return resp.status, json.loads(resp.read()), head
    except urllib.error.HTTPError as exc:
        head = {k.lower(): v for k, v in exc.headers.items()}
        text = exc.read().decode(errors="replace")
        with contextlib.suppress(json.JSONDecodeError):
            return exc.code, json.loads(text), head
        return exc.code, text, head


def modelyard_request(
    path: str, row: dict[str, float], model: str, *, named: bool = False
) -> tuple[str, bytes]:
    """The URL path and JSON body of one single-row request to a modelyard model
    server (or gateway) serving ``model``: ``tensor``, an Open Inference Protocol FP64
    [1, n] tensor to ``/v2/models/{model}/infer``; ``records``, ``{"dataframe_records":
    [row]}`` to ``/predict`` (``/predict/{model}`` with ``named``)."""
    if path == "tensor":
        values = list(row.values())
        tensor = {"name": "input-0", "shape": [1, len(values)], "datatype": "FP64", "data": values}
        return f"/v2/models/{model}/infer", json.dumps({"inputs": [tensor]}).encode()
    url = f"/predict/{model}" if named else "/predict"
    return url, json.dumps({"dataframe_records": [row]}).encode()


def predictions(answer: Any) -> list[Any]:
    """The predicted values in a response body: MLflow's ``{"predictions": [...]}``,
    an inference response's first output, or a plain list; nested lists flattened."""
    if isinstance(answer, dict):
        for key in ("predictions", "prediction", "outputs", "data"):
            if key in answer:
                answer = answer[key]
                break
        else:
            raise BenchError(f"no predictions in the answer {json.dumps(answer)[:300]}")
        if isinstance(answer, list) and answer and isinstance(answer[0], dict):
            if "data" in answer[0]:  # Open Inference Protocol: outputs[0].data
                answer = answer[0]["data"]
            else:  # records: [{"prediction": 1}, ...]
                answer = [next(iter(r.values())) for r in answer]
    out: list[Any] = []

    def flat(v: Any) -> None:
        if isinstance(v, list):
            for x in v:
                flat(x)
        else:
            out.append(v)

    flat(answer)
    return out


def server_cpu_s(root: int) -> float:
    """CPU seconds (user + system) of ``root``'s process tree so far, counting the
    children it has reaped (their time is in its ``cutime``/``cstime``)."""
    ticks = 0
    for pid in process_tree(root):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        # the fields after the command name: state ppid ... utime(11) stime cutime cstime
        fields = stat.rsplit(")", 1)[1].split()
        ticks += sum(int(x) for x in fields[11:15])
    return ticks / CLK_TCK


def machine_busy_s() -> float:
    """CPU seconds all cores of the machine have spent busy since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:9]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / CLK_TCK


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk_threads(clients: int) -> int:
    return min(clients, 2)


def wrk_missing() -> bool:
    """True (and says so on stderr) when the ``wrk`` load generator is not installed."""
    if shutil.which("wrk") is not None:
        return False
    print(
        "error: wrk (the load generator) is not installed: run `make bench-tools` "
        "(installs Debian's wrk package)",
        file=sys.stderr,
    )
    return True


def run_wrk(
    url: str,
    body_file: Path,
    clients: int,
    seconds: int,
    *,
    timeout: str = WRK_TIMEOUT,
    paths: Sequence[str] | None = None,
) -> dict[str, Any]:
    """``wrk --latency`` with ``serving_wrk.lua`` (POSTs the body in ``body_file``) for
    ``seconds``; its summary (the script's ``WRK_JSON`` line) plus its own CPU share:
    CPU seconds of the wrk process (the ``RUSAGE_CHILDREN`` delta around it: nothing
    else of ours ends meanwhile) over the wall-clock seconds it ran. ``paths``: URL
    paths on ``url``'s server that each wrk thread's requests take in turn (the
    script's ``WRK_PATHS``: ``["/a", "/a", "/a", "/b"]`` sends every 4th to ``/b``);
    without, every request goes to ``url``."""
    threads = wrk_threads(clients)
    cmd = [
        "wrk", f"-t{threads}", f"-c{clients}", f"-d{seconds}s", "--latency",
        "--timeout", timeout, "-s", str(WRK_LUA), url,
    ]  # fmt: skip
    env = os.environ | {"WRK_BODY": str(body_file)}
    if paths:
        if any("," in p for p in paths):
            raise BenchError(f"a wrk path may not hold a comma: {paths}")
        env["WRK_PATHS"] = ",".join(paths)
    cpu0, t0 = children_cpu_s(), time.perf_counter()
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    wall, cpu = time.perf_counter() - t0, children_cpu_s() - cpu0
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise BenchError(f"wrk exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    errors = {k: data[k] for k in ("non_2xx", "connect_errors", "read_errors", "write_errors")}
    errors["timeouts"] = data["timeouts"]
    return data | {
        "threads": threads,
        "rps": data["requests"] / (data["duration_us"] / 1e6),
        "p50_ms": data["p50_us"] / 1e3,
        "p99_ms": data["p99_us"] / 1e3,
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "wrk_cpu_s": cpu,
        "wrk_wall_s": wall,
        "wrk_cpu_pct": 100 * cpu / wall,
        "text": proc.stdout,
    }


def measure_load(
    server: Server,
    url: str,
    body_file: Path,
    clients: int,
    *,
    warmup: int,
    duration: int,
    paths: Sequence[str] | None = None,
) -> dict[str, Any]:
    """``warmup`` seconds of wrk load (not measured), then ``duration`` seconds
    measured: wrk's summary plus the CPU shares of the server's process tree and of
    everything else on the machine over the measured seconds. Raises BenchError when
    wrk fails or the server died meanwhile. ``paths``: as ``run_wrk``'s."""
    pid = server.proc.pid if server.proc else -1
    if warmup:
        run_wrk(url, body_file, clients, warmup, paths=paths)
    busy0, cpu0, t0 = machine_busy_s(), server_cpu_s(pid), time.perf_counter()
    data = run_wrk(url, body_file, clients, duration, paths=paths)
    wall = time.perf_counter() - t0
    cpu, busy = server_cpu_s(pid) - cpu0, machine_busy_s() - busy0
    data["server_cpu_s"] = cpu
    data["server_cpu_pct"] = 100 * cpu / wall
    # whatever else ran on the machine meanwhile (other users, our own parent)
    data["others_cpu_pct"] = max(0.0, 100 * (busy - cpu - data["wrk_cpu_s"]) / wall)
    if server.proc is None or server.proc.poll() is not None:
        raise BenchError(f"the server exited:\n{server.log_tail()}")
    return data


def cli_available(python: str, *command: str) -> str | None:
    """None when ``python -m modelyard.cli.main COMMAND --help`` works, else why not."""
    try:
        out = subprocess.run(
            [python, "-m", "modelyard.cli.main", *command, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if out.returncode == 0:
        return None
    said = (out.stderr or out.stdout).strip().splitlines()
    return said[-1] if said else f"exit {out.returncode}"


@contextlib.contextmanager
def terminate_cleanly() -> Iterator[None]:
    """SIGTERM and SIGHUP end the run like Ctrl+C: every ``finally`` (server stops)
    runs."""

    def raise_exit(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    old = {s: signal.signal(s, raise_exit) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


# -- process trees and memory -----------------------------------------------------------


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (psutil if installed, else ``/proc``)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            p = psutil.Process(root)
            return [root, *(c.pid for c in p.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # the command name may hold spaces or parentheses: split after the last ')'
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if Path(f"/proc/{pid}").exists():
            out.append(pid)
            todo.extend(children.get(pid, []))
    return out


def tree_memory(root: int) -> dict[str, float]:
    """Process count, summed RSS and summed PSS (shared pages split fairly) in MB."""
    pids = process_tree(root)
    rss = pss = 0.0
    for pid in pids:
        rss += _proc_kb(f"/proc/{pid}/status", "VmRSS:") / 1024
        pss += _proc_kb(f"/proc/{pid}/smaps_rollup", "Pss:") / 1024
    return {"processes": len(pids), "rss_mb": rss, "pss_mb": pss}


def _proc_kb(path: str, field_name: str) -> float:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field_name):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


# -- output -----------------------------------------------------------------------------


@contextlib.contextmanager
def progress(total: int, enabled: bool | None = None) -> Iterator[Callable[[str], None]]:
    """A rich progress line on a terminal (plain lines on stderr otherwise); yields
    ``step(description)``, called once as each workload starts."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        count = [0]

        def plain(desc: str) -> None:
            count[0] += 1
            print(f"[{count[0]}/{total}] {desc}", file=sys.stderr, flush=True)

        yield plain
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=total)
        started = [False]

        def step(desc: str) -> None:
            if started[0]:
                bar.advance(task)
            started[0] = True
            bar.update(task, description=desc)

        yield step
        bar.update(task, completed=total)


def render_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a rich table to stdout (plain text when rich is missing or not a TTY)."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        Console = None
    if Console is None:
        print(title)
        print(" | ".join(columns))
        for row in rows:
            print(" | ".join(row))
        return
    table = Table(title=title, show_lines=False)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i in (0, len(columns) - 2) else "right")
    for row in rows:
        table.add_row(*row)
    # On a terminal rich fits the table to it; piped, it gets room for one line per row.
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(table)


def fmt_ms(x: float) -> str:
    """Milliseconds with 2, 1 or 0 decimals by size."""
    return f"{x:,.2f}" if x < 10 else f"{x:,.1f}" if x < 100 else f"{x:,.0f}"


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "—"
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def fmt_rate(r: float | None) -> str:
    if r is None:
        return "—"
    if r >= 1e6:
        return f"{r / 1e6:.2f} M pts/s"
    if r >= 1e3:
        return f"{r / 1e3:.1f} k pts/s"
    return f"{r:.0f} pts/s"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "—"
    return f"{r:,.0f}×" if r >= 100 else f"{r:.1f}×"


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def mlflow_version(python: str | None) -> str:
    """The mlflow version installed for ``python`` ("(not run)" without one)."""
    if python is None:
        return "(not run)"
    try:
        out = subprocess.run(
            [python, "-c", "from importlib.metadata import version; print(version('mlflow'))"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return out.stdout.strip()
    except (subprocess.SubprocessError, OSError):
        return "?"


def positive_ints(text: str) -> tuple[int, ...]:
    """An argparse ``type``: comma-separated positive integers (``"1,8,64"``)."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers like 1,8,64, got {text!r}")
    return values


def add_common_args(parser, groups, results) -> None:
    """The options both benchmark scripts take."""
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes)")
    parser.add_argument(
        "--only", nargs="+", choices=groups, metavar="GROUP", help=f"a subset: {' '.join(groups)}"
    )
    parser.add_argument(
        "--mlflow-python",
        default=str(Path(__file__).resolve().parents[1] / ".venv-bench" / "bin" / "python"),
        help="the interpreter with the full mlflow package (default: .venv-bench)",
    )
    parser.add_argument("--no-mlflow", action="store_true", help="run modelyard only")
    parser.add_argument("--out", type=Path, default=results, help="where the JSON goes")


def anchor_python(args) -> str | None:
    """The MLflow interpreter to use, or None (said on stderr) to run ours alone."""
    if args.no_mlflow:
        return None
    if not Path(args.mlflow_python).exists():
        print(
            f"no MLflow interpreter at {args.mlflow_python} (make bench-venv); modelyard only",
            file=sys.stderr,
        )
        return None
    return args.mlflow_python


@dataclass
class Row:
    """One line of a benchmark table (and of its JSON)."""

    workload: str
    ours: str
    theirs: str
    ratio: float | None
    goal: str
    met: bool | None  # None: information only, no goal
    ours_raw: dict[str, Any] | None = None
    theirs_raw: dict[str, Any] | None = None
    note: str = ""

    def cells(self) -> list[str]:
        met = "—" if self.met is None else ("yes" if self.met else "NO")
        return [self.workload, self.ours, self.theirs, fmt_ratio(self.ratio), self.goal, met]


class RunClock:
    """A run's wall time and the machine's load average before and after it."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.load_before = os.getloadavg()
        self.elapsed_s = 0.0
        self.load_after = self.load_before

    def stop(self) -> None:
        self.elapsed_s = time.perf_counter() - self.started
        self.load_after = os.getloadavg()

    def note(self) -> str:
        """The first line of a run's notes: machine, cores, Python, time, load."""
        return (
            f"{platform.node()} · {os.cpu_count()} cores · Python "
            f"{platform.python_version()} · took {self.elapsed_s / 60:.1f} min · load "
            f"average {self.load_before[0]:.1f} before, {self.load_after[0]:.1f} after"
        )

    def meta(self) -> dict[str, Any]:
        return {
            "elapsed_s": self.elapsed_s,
            "loadavg_before": self.load_before,
            "loadavg_after": self.load_after,
        }


def finish(path: Path, meta: dict[str, Any], errors: list[str], **sections: Any) -> int:
    """``write_results``, say where they went; the exit code: 1 after any error."""
    write_results(path, meta, errors, **sections)
    print(f"results: {path}")
    return 1 if errors else 0


def run_main(main: Callable[[], int]) -> None:
    """Exit with ``main()``'s code; Ctrl+C (after the servers were stopped by the
    ``with`` blocks it unwound) exits 130."""
    try:
        code = main()
    except KeyboardInterrupt:
        print("interrupted: servers stopped", file=sys.stderr)
        code = 130
    sys.exit(code)


def write_results(path: Path, meta: dict[str, Any], errors: list[str], **sections: Any) -> None:
    """Print the run's errors and save it as JSON: ``meta`` (with the date, cores and
    Python version added), then ``sections``, then ``errors``."""
    for err in errors:
        print(f"! {err}", file=sys.stderr)
    stamp = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }
    doc = {"meta": stamp | meta, **sections, "errors": errors}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=str))
