"""A real modelyard server in a subprocess on a free loopback port, for tests that
talk over the wire (and kill it with SIGKILL when they must)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`start()`, `kill()` (SIGKILL), `restart()` on the same port and store."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int | None = None) -> None:
        self.env = env
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> ServerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "modelyard.server", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not come up:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> ServerProcess:
        self.kill()
        return self.start()


@contextmanager
def running_server(env_overrides: dict[str, str], log_path: Path) -> Iterator[ServerProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env.update(env_overrides)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    server = ServerProcess(env, log_path).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tracking_server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server over this test's database and a local artifact root."""
    env = {
        "MODELYARD_HOME": str(tmp_path / "server-home"),
        "MODELYARD_DB_URL": db_url,
        "MODELYARD_ARTIFACTS": str(tmp_path / "server-artifacts"),
    }
    with running_server(env, tmp_path / "server.log") as server:
        yield server
