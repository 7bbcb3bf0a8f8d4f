"""A real model server (``modelyard serve``) in a subprocess on a free loopback port,
over models registered in a throwaway store, for tests that talk over the wire.

- ``build_models(root)`` trains and registers the test models in a store under
  ``root`` and returns them (``TrainedModels``) with their local predictors.
- ``ModelServer(env, log_path, args)``: ``start()`` waits for ``GET
  /v2/health/ready`` == 200, ``stop()`` sends SIGTERM (a clean shutdown),
  ``kill()`` SIGKILL.
- ``running_model_server(trained, log_path, *args)``: start, yield, stop.
- Fixtures: ``trained_models`` (module scope, trains once) and ``model_server``
  (module scope: churn, tensor_model and boom behind one server, 0.01 MB body limit).
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import modelyard as my
from infra.ports import free_port

__all__ = [
    "FEATURES",
    "TENSOR_WIDTH",
    "ModelServer",
    "TrainedModels",
    "build_models",
    "model_server",
    "running_model_server",
    "server_env",
    "trained_models",
]

SRC = Path(__file__).resolve().parents[2] / "src"
FEATURES = [f"f{i}" for i in range(20)]
TENSOR_WIDTH = 6

# The custom model, saved from a module written to a temporary folder (the pyfunc
# flavor stores the class's source with the package and imports it at load).
BOOM_SOURCE = '''
import numpy as np


class Boom:
    """Doubles ``amount``; raises on a negative amount (a model that fails)."""

    def load_context(self, context):
        pass

    def predict(self, context, model_input):
        amount = model_input["amount"].to_numpy()
        if (amount < 0).any():
            raise ValueError("boom: negative amount")
        return amount * 2.0
'''


@dataclass
class TrainedModels:
    """The registered test models: where the store is, and local copies to compare.

    - ``settings``: ``MODELYARD_HOME`` / ``MODELYARD_DB_URL`` / ``MODELYARD_ARTIFACTS``
      of the store that holds them (what a server process needs).
    - ``churn``: ``my.load_model("models:/churn/1")`` (20 float columns f0..f19,
      alias ``production``); ``tensor``: ``models:/tensor_model/1`` (a
      [-1, TENSOR_WIDTH] float64 tensor); ``boom``: ``models:/boom/1`` (column
      ``amount``; raises on a negative amount).
    - ``frame``: rows for churn; ``matrix``: rows for tensor_model.
    """

    root: Path
    settings: dict[str, str]
    churn: Any
    tensor: Any
    boom: Any
    frame: pd.DataFrame
    matrix: np.ndarray
    uris: dict[str, str] = field(default_factory=dict)


def build_models(root: Path) -> TrainedModels:
    """Train and register churn, tensor_model and boom in a store under ``root``."""
    settings = {
        "MODELYARD_HOME": str(root / "home"),
        "MODELYARD_DB_URL": f"sqlite:///{root / 'modelyard.db'}",
        "MODELYARD_ARTIFACTS": str(root / "artifacts"),
    }
    my.configure(
        home=settings["MODELYARD_HOME"],
        db_url=settings["MODELYARD_DB_URL"],
        artifacts=settings["MODELYARD_ARTIFACTS"],
    )
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.standard_normal((300, len(FEATURES))), columns=FEATURES)
    y = (frame.f0 + 0.5 * frame.f1 - frame.f2 > 0).astype("int64")
    matrix = rng.standard_normal((300, TENSOR_WIDTH))
    y_matrix = (matrix[:, 0] - matrix[:, 1] > 0).astype("int64")

    with my.start_run(experiment="serving-tests"):
        churn = LogisticRegression(max_iter=1000).fit(frame, y)
        my.log_model(churn, "model", input_example=frame.head(3), registered_model_name="churn")
    my.set_alias("churn", "production", 1)

    with my.start_run(experiment="serving-tests"):
        tensor = LogisticRegression(max_iter=1000).fit(matrix, y_matrix)
        my.log_model(
            tensor, "model", input_example=matrix[:3], registered_model_name="tensor_model"
        )

    code = root / "code"
    code.mkdir()
    (code / "serving_boom_model.py").write_text(BOOM_SOURCE)
    sys.path.insert(0, str(code))
    try:
        module = importlib.import_module("serving_boom_model")
        with my.start_run(experiment="serving-tests"):
            my.log_model(
                module.Boom(),
                "model",
                input_example=pd.DataFrame({"amount": [1.0, 2.5, 10.0]}),
                registered_model_name="boom",
            )
    finally:
        sys.path.remove(str(code))
        sys.modules.pop("serving_boom_model", None)

    return TrainedModels(
        root=root,
        settings=settings,
        churn=my.load_model("models:/churn/1"),
        tensor=my.load_model("models:/tensor_model/1"),
        boom=my.load_model("models:/boom/1"),
        frame=frame,
        matrix=matrix,
        uris={
            "churn": "models:/churn@production",
            "tensor_model": "models:/tensor_model/1",
            "boom": "models:/boom/1",
        },
    )


def server_env(settings: dict[str, str]) -> dict[str, str]:
    """This process's environment without MODELYARD_*, plus ``settings`` and src/."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(settings)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return env


class _PortTaken(Exception):
    pass


class ModelServer:
    """``python -m modelyard.cli.main serve <args> --port <free>`` in a subprocess.

    Example::

        server = ModelServer(env, tmp / "serve.log", ["models:/churn/1"]).start()
        httpx.get(f"{server.url}/v2/health/ready")
        server.stop()
    """

    def __init__(
        self, env: dict[str, str], log_path: Path, args: list[str], cwd: Path | None = None
    ) -> None:
        self.env, self.log_path, self.args = env, log_path, list(args)
        self.cwd = cwd or log_path.parent
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.loading_answers: list[httpx.Response] = []  # not-ready answers at start

    @property
    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "modelyard.cli.main",
            "serve",
            *self.args,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(
        self,
        timeout: float = 60,
        while_loading: Callable[[ModelServer, httpx.Response], None] | None = None,
    ) -> ModelServer:
        """Start and wait until ``GET /v2/health/ready`` answers 200.

        ``while_loading(server, answer)`` is called once, with the first not-ready
        answer, when the server is seen up but still loading its models. A port
        taken in the meantime by another process is replaced by a new free one."""
        for _ in range(3):
            try:
                return self._start(timeout, while_loading)
            except _PortTaken:
                self.port = free_port()
                self.url = f"http://127.0.0.1:{self.port}"
        raise RuntimeError(f"no free port could be listened on:\n{self.log()[-3000:]}")

    def _start(
        self,
        timeout: float,
        while_loading: Callable[[ModelServer, httpx.Response], None] | None,
    ) -> ModelServer:
        offset = len(self.log())
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if "cannot listen" in self.log()[offset:]:
                    raise _PortTaken
                raise RuntimeError(
                    f"model server exited early ({self.proc.returncode}):\n{self.log()[-3000:]}"
                )
            try:
                answer = httpx.get(f"{self.url}/v2/health/ready", timeout=1)
            except httpx.HTTPError:
                time.sleep(0.1)
                continue
            if answer.status_code == 200:
                return self
            self.loading_answers.append(answer)
            if while_loading is not None and len(self.loading_answers) == 1:
                while_loading(self, answer)
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"model server did not become ready:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM and wait for a clean exit (SIGKILL after ``timeout``); the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode


@contextmanager
def running_model_server(
    trained: TrainedModels,
    log_path: Path,
    *args: str,
    models: dict[str, str] | None = None,
    while_loading: Callable[[ModelServer, httpx.Response], None] | None = None,
) -> Iterator[ModelServer]:
    """A server for ``models`` (served name -> URI; all trained models by default)
    with the extra command-line ``args``; stopped with SIGTERM at the end."""
    served = trained.uris if models is None else models
    specs = [f"{name}={uri}" for name, uri in served.items()]
    server = ModelServer(server_env(trained.settings), log_path, [*specs, *args], trained.root)
    server.start(while_loading=while_loading)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def trained_models(tmp_path_factory: pytest.TempPathFactory) -> TrainedModels:
    """The test models, trained and registered once per module."""
    return build_models(tmp_path_factory.mktemp("served-models"))


@pytest.fixture(scope="module")
def model_server(trained_models: TrainedModels) -> Iterator[ModelServer]:
    """churn, tensor_model and boom behind one server; bodies over 0.01 MB get 413."""
    log_path = trained_models.root / "serve.log"
    with running_model_server(
        trained_models, log_path, "--max-body-mb", "0.01", "--poll-seconds", "0"
    ) as server:
        yield server
