"""Shared helpers for the benchmarks: run a workload in a fresh subprocess, start and
stop servers on free loopback ports, measure process trees, print a rich table.

Nothing here imports modelyard or MLflow: each tool runs in its own interpreter
(the dev venv for modelyard, ``.venv-bench`` for MLflow), so their imports, caches
and memory never mix. Only the standard library is needed (``rich`` for the table
and the progress line, optional; ``psutil`` is used when installed, ``/proc``
otherwise).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
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
    "Server",
    "WorkloadResult",
    "free_port",
    "median_of",
    "process_tree",
    "progress",
    "render_table",
    "run_workload",
    "temp_home",
    "tree_memory",
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
