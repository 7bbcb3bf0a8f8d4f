"""The two command lines of the data benchmark, driven as a user would drive them,
and the S3-compatible server they push to.

- `Modelyard`: ``.venv/bin/modelyard data add|push|pull``, a plain project folder,
  ``MODELYARD_HOME=<project>/.modelyard`` (its cache under ``data/cache`` there).
- `Dvc`: ``.venv-dvc/bin/dvc add|push|pull`` in ``git init`` + ``dvc init``; DVC's
  defaults except what a benchmark needs off (analytics, the update check, which
  starts a daemon that goes online) and ``core.autostage false``. ``link_type``
  sets ``cache.type`` (the "dvc (hardlink)" rows); None keeps DVC's default
  (``reflink,copy``).
- `MotoServer`: ``moto_server`` from our venv on a free loopback port, one bucket.

Every command runs in a fresh subprocess of the tool's own interpreter, stdout and
stderr to files (not a terminal: neither tool draws progress bars), and is timed
wall-clock from ``Popen`` to exit. Nothing here imports modelyard or DVC.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _harness as h

__all__ = ["Dvc", "Modelyard", "MotoServer", "Project", "Remote", "Timed", "Tool", "run_cli"]

S3_BUCKET = "bench"
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
COMMAND_TIMEOUT_S = 4 * 3600.0


@dataclass
class Timed:
    """One command: its wall time and the last lines it printed."""

    cmd: list[str]
    seconds: float
    stdout: str
    stderr: str

    def summary(self, lines: int = 4) -> dict[str, Any]:
        tail = (self.stdout.strip() or self.stderr.strip()).splitlines()[-lines:]
        return {"cmd": self.cmd, "seconds": self.seconds, "said": tail}


def run_cli(
    cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float = COMMAND_TIMEOUT_S
) -> Timed:
    """Run ``cmd`` in ``cwd`` with exactly ``env`` (plus the harness's base: PATH,
    HOME, LANG, no telemetry) after flushing the page cache's dirty pages (so no
    command pays for the writes of the step before it); raise `h.BenchError` with
    the tail of its output when it exits non-zero."""
    full_env = h._base_env() | env
    os.sync()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=full_env,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise h.BenchError(f"timed out after {timeout:.0f} s: {' '.join(cmd)}") from None
        except BaseException:
            _kill_group(proc)
            raise
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        timed = Timed(
            cmd, seconds, out.read().decode(errors="replace"), err.read().decode(errors="replace")
        )
    if code != 0:
        said = "\n".join((timed.stderr.strip() or timed.stdout.strip()).splitlines()[-25:])
        raise h.BenchError(f"`{' '.join(cmd)}` exited {code} after {seconds:.1f} s:\n{said}")
    return timed


def _kill_group(proc: subprocess.Popen) -> None:
    h._kill_group(proc.pid)
    proc.wait()


def quiet(cmd: list[str], *, cwd: Path, env: dict[str, str]) -> str:
    """An untimed set-up command; its stdout."""
    return run_cli(cmd, cwd=cwd, env=env, timeout=600).stdout


# -- remotes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Remote:
    """Where a tool pushes: ``kind`` "local" (a folder) or "s3" (a bucket prefix)."""

    kind: str
    url: str  # a folder path or s3://bucket/prefix
    endpoint: str | None = None  # the S3 server's URL
    server_pid: int | None = None  # the S3 server's process (for its CPU time)

    def server_cpu_s(self) -> float | None:
        return None if self.server_pid is None else h.server_cpu_s(self.server_pid)

    def env(self) -> dict[str, str]:
        if self.kind != "s3":
            return {}
        assert self.endpoint is not None
        return S3_CREDENTIALS | {"FSSPEC_S3_ENDPOINT_URL": self.endpoint}

    def stored_bytes(self) -> tuple[int, int]:
        """(objects, bytes) the remote holds now."""
        if self.kind == "local":
            count = total = 0
            for folder, _, files in os.walk(self.url):
                for name in files:
                    count += 1
                    total += os.lstat(os.path.join(folder, name)).st_size
            return count, total
        import boto3

        bucket, _, prefix = self.url.removeprefix("s3://").partition("/")
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=S3_CREDENTIALS["AWS_DEFAULT_REGION"],
        )
        count = total = 0
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix.rstrip("/") + "/"
        ):
            for obj in page.get("Contents", []):
                count += 1
                total += obj["Size"]
        return count, total


class MotoServer:
    """``moto_server`` on a free loopback port, with bucket `S3_BUCKET`, until
    `stop` (started in its own session, stopped by its own pid).

    Example::

        with MotoServer(Path(".venv/bin/moto_server"), log_dir) as s3:
            remote = Remote("s3", f"s3://{S3_BUCKET}/dvc", s3.endpoint)
    """

    def __init__(self, executable: Path, log_dir: Path) -> None:
        self.executable = executable
        self.port = h.free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = log_dir / f"moto-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [str(self.executable), "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=h._base_env(),
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise h.BenchError(f"moto_server exited {self.proc.returncode}: {self._tail()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.1)
        else:
            self.stop()
            raise h.BenchError(f"moto_server did not listen within 60 s: {self._tail()}")
        import boto3

        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=S3_CREDENTIALS["AWS_DEFAULT_REGION"],
        ).create_bucket(Bucket=S3_BUCKET)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def _tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-10:])
        except OSError:
            return ""


# -- the tools ------------------------------------------------------------------------------


class Tool:
    """One side of the benchmark: how to set up a project and spell each command."""

    key: str  # "modelyard", "dvc", "dvc-hardlink"
    label: str
    pointer_suffix: str

    def __init__(self, executable: Path) -> None:
        self.executable = executable

    def env(self, project: Path) -> dict[str, str]:
        raise NotImplementedError

    def setup(self, project: Path) -> None:
        """Prepare a fresh project folder (untimed)."""
        raise NotImplementedError

    def add_remote(self, project: Path, remote: Remote) -> None:
        """Make ``remote`` known to the project, when the tool needs that (untimed)."""

    def cache_dir(self, project: Path) -> Path:
        raise NotImplementedError

    def add(self, target: str) -> list[str]:
        raise NotImplementedError

    def push(self, target: str, remote: Remote) -> list[str]:
        raise NotImplementedError

    def pull(self, target: str, remote: Remote) -> list[str]:
        raise NotImplementedError

    def version(self) -> str:
        try:
            out = subprocess.run(
                [str(self.executable), "--version"],
                capture_output=True, text=True, timeout=120, check=True,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError) as exc:
            return f"? ({exc})"
        said = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "?"
        return said.removeprefix("modelyard ")

    def version_cmd(self) -> list[str]:
        return [str(self.executable), "--version"]


class Modelyard(Tool):
    key = "modelyard"
    label = "modelyard"
    pointer_suffix = ".yard"

    def env(self, project: Path) -> dict[str, str]:
        return {"MODELYARD_HOME": str(project / ".modelyard")}

    def setup(self, project: Path) -> None:
        project.mkdir(parents=True, exist_ok=True)

    def cache_dir(self, project: Path) -> Path:
        return project / ".modelyard" / "data" / "cache"

    def add(self, target: str) -> list[str]:
        return [str(self.executable), "data", "add", target]

    def push(self, target: str, remote: Remote) -> list[str]:
        return [str(self.executable), "data", "push", target + ".yard", "--remote", remote.url]

    def pull(self, target: str, remote: Remote) -> list[str]:
        return [str(self.executable), "data", "pull", target + ".yard", "--remote", remote.url]

    def missing(self) -> str | None:
        """None when ``modelyard data add/push/pull`` exist, else why not."""
        if not self.executable.exists():
            return f"no {self.executable}"
        for sub in ("add", "push", "pull"):
            out = subprocess.run(
                [str(self.executable), "data", sub, "--help"],
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            if out.returncode != 0:
                said = (out.stderr or out.stdout).strip().splitlines() or [f"exit {out.returncode}"]
                why = next((ln.strip(" │") for ln in said if "No such" in ln), said[-1])
                return f"`modelyard data {sub}` is not available: {why}"
        return None


class Dvc(Tool):
    """DVC, with its default cache link type or ``link_type``."""

    pointer_suffix = ".dvc"

    def __init__(self, executable: Path, link_type: str | None = None) -> None:
        super().__init__(executable)
        self.link_type = link_type
        self.key = "dvc" if link_type is None else f"dvc-{link_type}"
        self.label = "dvc" if link_type is None else f"dvc ({link_type})"

    def env(self, project: Path) -> dict[str, str]:
        # Nothing from the developer's global or system DVC config; the site cache
        # (DVC's indexes, normally under /var/tmp/dvc) inside the project folder.
        return {
            "DVC_NO_ANALYTICS": "1",
            "DVC_GLOBAL_CONFIG_DIR": str(project / ".dvc-global"),
            "DVC_SYSTEM_CONFIG_DIR": str(project / ".dvc-system"),
            "DVC_SITE_CACHE_DIR": str(project / ".dvc-site-cache"),
        }

    def _dvc(self, project: Path, *args: str) -> str:
        return quiet([str(self.executable), *args], cwd=project, env=self.env(project))

    def setup(self, project: Path) -> None:
        project.mkdir(parents=True, exist_ok=True)
        quiet(["git", "init", "-q"], cwd=project, env={})
        (project / ".git" / "info" / "exclude").write_text(
            ".dvc-global/\n.dvc-system/\n.dvc-site-cache/\n"
        )
        self._dvc(project, "init", "-q")
        self._dvc(project, "config", "core.autostage", "false")
        self._dvc(project, "config", "core.analytics", "false")
        self._dvc(project, "config", "core.check_update", "false")
        if self.link_type is not None:
            self._dvc(project, "config", "cache.type", self.link_type)

    def add_remote(self, project: Path, remote: Remote) -> None:
        self._dvc(project, "remote", "add", "-f", remote.kind, remote.url)
        if remote.endpoint:
            self._dvc(project, "remote", "modify", remote.kind, "endpointurl", remote.endpoint)

    def cache_dir(self, project: Path) -> Path:
        return project / ".dvc" / "cache"

    def add(self, target: str) -> list[str]:
        return [str(self.executable), "add", target]

    def push(self, target: str, remote: Remote) -> list[str]:
        return [str(self.executable), "push", "-r", remote.kind, target + ".dvc"]

    def pull(self, target: str, remote: Remote) -> list[str]:
        return [str(self.executable), "pull", "-r", remote.kind, target + ".dvc"]


@dataclass
class Project:
    """One tool's fresh project folder, and the commands run in it."""

    tool: Tool
    root: Path
    remotes: dict[str, Remote] = field(default_factory=dict)
    failed: str | None = None  # set after a command failed: later steps are skipped
    stored: dict[str, tuple[int, int]] = field(default_factory=dict)  # remote -> objects, bytes

    def run(self, cmd: list[str], remote: Remote | None = None) -> Timed:
        env = self.tool.env(self.root) | (remote.env() if remote else {})
        return run_cli(cmd, cwd=self.root, env=env)

    def pointer(self, target: str) -> Path:
        return self.root / (target + self.tool.pointer_suffix)

    def remove_data_and_cache(self, target: str) -> None:
        """What a pull starts from: no workspace copy, no local cache."""
        cache = self.tool.cache_dir(self.root)
        if not cache.is_dir():
            raise h.BenchError(f"{self.tool.label}: no cache at {cache} to remove before the pull")
        _rmtree(self.root / target)
        _rmtree(cache)

    def remove(self) -> None:
        _rmtree(self.root)


def _rmtree(path: Path) -> None:
    """Remove a tree, read-only cache objects included (``rm -rf``: several times
    faster than ``shutil.rmtree`` on a million files)."""
    if path.exists():
        subprocess.run(["rm", "-rf", "--", str(path)], check=True, timeout=3600)
