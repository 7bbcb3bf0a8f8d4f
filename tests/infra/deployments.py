"""Test support for deployments: candidate models that misbehave, a gateway in a
subprocess, and a traffic generator that records who answered each request.

``build_deploy_models(root)`` registers, beside ``build_models``' churn v1:

- churn v2: a good candidate (same task, another regularisation);
- churn v3: shifted (predicts 1 for ~85% of rows where v1 says ~50%);
- churn v4: slow (a custom model: right answers, 25 ms each);
- churn v5: failing (a custom model that raises on every request);
- churn v6: unloadable (registered, then its files deleted).
"""

from __future__ import annotations

import importlib
import shutil
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import modelyard as my
from infra.model_server import ModelServer, TrainedModels, build_models, server_env

__all__ = ["GatewayServer", "Traffic", "build_deploy_models", "running_gateway"]

CUSTOM_SOURCE = '''
import time

import numpy as np


class Slow:
    """The right answers, 25 ms late."""

    def load_context(self, context):
        pass

    def predict(self, context, model_input):
        time.sleep(0.025)
        return (model_input["f0"].to_numpy() > 0).astype("int64")


class Failing:
    """Raises on every real request (all-zero rows, its warm-up, pass)."""

    def load_context(self, context):
        pass

    def predict(self, context, model_input):
        if np.abs(model_input.to_numpy(dtype="float64")).sum() > 0:
            raise RuntimeError("candidate bug: index out of range")
        return np.zeros(len(model_input), dtype="int64")
'''


def _log(model, example: pd.DataFrame, name: str = "churn") -> None:
    with my.start_run(experiment="deploy-tests"):
        my.log_model(model, "model", input_example=example.head(3), registered_model_name=name)


def build_deploy_models(root: Path) -> TrainedModels:
    trained = build_models(root)
    frame = trained.frame
    y = (frame.f0 + 0.5 * frame.f1 - frame.f2 > 0).astype("int64")
    _log(LogisticRegression(C=0.5, max_iter=1000).fit(frame, y), frame)  # v2 good
    shifted = (frame.f0 > -1.0).astype("int64")
    _log(LogisticRegression(max_iter=1000).fit(frame, shifted), frame)  # v3 shifted
    code = root / "deploy_code"
    code.mkdir()
    (code / "deploy_custom_models.py").write_text(CUSTOM_SOURCE)
    sys.path.insert(0, str(code))
    try:
        module = importlib.import_module("deploy_custom_models")
        _log(module.Slow(), frame)  # v4
        _log(module.Failing(), frame.head(3) * 0.0)  # v5
    finally:
        sys.path.remove(str(code))
        sys.modules.pop("deploy_custom_models", None)
    _log(LogisticRegression(max_iter=1000).fit(frame, y), frame)  # v6, made unloadable
    mv = my.get_model_version("churn", 6)
    location = urlparse(mv.artifact_uri).path if "://" in mv.artifact_uri else mv.artifact_uri
    shutil.rmtree(location)
    return trained


class GatewayServer(ModelServer):
    """``modelyard gateway <deployments> --port <free>`` in a subprocess."""

    @property
    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "modelyard.cli.main",
            "gateway",
            *self.args,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]


def running_gateway(trained: TrainedModels, log_path: Path, *args: str) -> GatewayServer:
    server = GatewayServer(server_env(trained.settings), log_path, list(args), trained.root)
    return server.start()


@dataclass
class Answer:
    sent: float
    received: float
    status: int
    variant: str | None
    version: str | None
    request_id: str | None


@dataclass
class Traffic:
    """``threads`` clients posting single rows to ``url`` until stopped; every
    answer is kept (time, status, variant)."""

    url: str
    frame: pd.DataFrame
    threads: int = 3
    headers: dict[str, str] = field(default_factory=dict)
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Traffic:
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._workers:
            t.join(10)

    def _run(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        records = self.frame.to_dict(orient="records")
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                row = records[int(rng.integers(len(records)))]
                sent = time.monotonic()
                try:
                    r = client.post(
                        self.url, json={"dataframe_records": [row]}, headers=self.headers
                    )
                except httpx.HTTPError:
                    continue
                self.answers.append(
                    Answer(
                        sent,
                        time.monotonic(),
                        r.status_code,
                        r.headers.get("x-deployment-variant"),
                        r.headers.get("x-model-version"),
                        r.headers.get("x-request-id"),
                    )
                )

    def by_variant(self, since: float = 0.0) -> Counter:
        return Counter(a.variant for a in list(self.answers) if a.sent >= since)

    def wait_for(self, n: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        start = len(self.answers)
        while len(self.answers) - start < n and time.monotonic() < deadline:
            time.sleep(0.02)
