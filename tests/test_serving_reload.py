"""Zero-downtime reload, failed loads, start-up failures and the prediction log,
against a real `modelyard serve` process."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import orjson
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families
from sklearn.linear_model import LogisticRegression

import modelyard as my
from infra.model_server import (  # noqa: F401 - fixtures
    FEATURES,
    running_model_server,
    server_env,
    trained_models,
)
from infra.ports import free_port
from modelyard.serving.prediction_log import PredictionLog, PredictionRecord


def _metric(server, name: str, **labels: str) -> float | None:
    text = httpx.get(f"{server.url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def _wait(condition, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Traffic:
    """A client thread sending one-row requests until stopped; keeps every answer."""

    def __init__(self, url: str, row: dict) -> None:
        self.url, self.row = url, row
        self.answers: list[tuple[int, str | None, list]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                r = client.post(f"{self.url}/predict", json={"records": [self.row]})
                body = r.json()
                self.answers.append(
                    (r.status_code, r.headers.get("x-model-version"), body.get("predictions"))
                )

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(15)

    def versions(self) -> list[str | None]:
        return [v for _, v, _ in self.answers]


def _configure(trained) -> None:
    s = trained.settings
    my.configure(
        home=s["MODELYARD_HOME"], db_url=s["MODELYARD_DB_URL"], artifacts=s["MODELYARD_ARTIFACTS"]
    )


class NotAFlavor:
    """Only pickle can store this: a version the server refuses to load."""

    def predict(self, X):
        return np.zeros(len(X))


def test_moving_the_alias_swaps_versions_without_a_failed_request(
    trained_models,  # noqa: F811
    tmp_path,
):
    _configure(trained_models)
    frame = trained_models.frame
    flipped = LogisticRegression(max_iter=1000).fit(frame, (frame.f0 < 0).astype("int64"))
    with my.start_run(experiment="serving-tests"):
        my.log_model(flipped, "model", input_example=frame.head(3), registered_model_name="churn")
    row = {c: float(frame.iloc[0][c]) for c in FEATURES}
    expected_v2 = flipped.predict(frame.head(1)).tolist()
    expected_v1 = trained_models.churn.predict(frame.head(1)).tolist()
    assert expected_v1 != expected_v2  # the swap is visible in the answers

    models = {"churn": "models:/churn@production"}
    with running_model_server(
        trained_models, tmp_path / "serve.log", "--poll-seconds", "0.2", models=models
    ) as server:
        with Traffic(server.url, row) as traffic:
            _wait(lambda: len(traffic.answers) > 20, what="traffic on version 1")
            my.set_alias("churn", "production", 2)
            _wait(lambda: "2" in traffic.versions()[-5:], what="version 2 to serve")
            _wait(lambda: traffic.versions()[-20:].count("2") == 20, what="20 answers from v2")

        statuses = {s for s, _, _ in traffic.answers}
        assert statuses == {200}  # not one request failed during the swap
        versions = traffic.versions()
        first_v2 = versions.index("2")
        assert set(versions[:first_v2]) == {"1"} and set(versions[first_v2:]) == {"2"}
        for _, version, predictions in traffic.answers:
            assert predictions == (expected_v1 if version == "1" else expected_v2)

        assert _metric(server, "modelyard_model_serving", model="churn", version="2") == 1
        assert _metric(server, "modelyard_model_serving", model="churn", version="1") == 0
        meta = httpx.get(f"{server.url}/v2/models/churn").json()
        assert meta["versions"] == ["2"]
        assert httpx.get(f"{server.url}/v2/models/churn/versions/1").status_code == 404

        # A version that cannot load (pickle, not allowed) leaves version 2 serving.
        with my.start_run(experiment="serving-tests"):
            my.log_model(NotAFlavor(), "model", allow_pickle=True, registered_model_name="churn")
        my.set_alias("churn", "production", 3)
        _wait(
            lambda: (
                (_metric(server, "modelyard_model_load_failures_total", model="churn") or 0) >= 1
            ),
            what="the failed load to be counted",
        )
        r = httpx.post(f"{server.url}/predict", json={"records": [row]})
        assert r.status_code == 200 and r.headers["x-model-version"] == "2"
        assert r.json()["predictions"] == expected_v2
        assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200

    events = my.model_registry().audit("churn")
    actions = [e["action"] for e in events]
    assert "serving.swapped" in actions
    failed = [e for e in events if e["action"] == "serving.load_failed"]
    assert failed, actions
    details = orjson.loads(failed[-1]["after"])
    assert details["version"] == "3" and details["still_serving"] == "2"
    assert "pickle" in details["error"]


def test_a_model_that_cannot_be_served_ends_the_command_with_a_clear_error(tmp_path):
    env = server_env({"MODELYARD_HOME": str(tmp_path / "home")})
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelyard.cli.main",
            "serve",
            "models:/nope/1",
            "--port",
            str(free_port()),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "error: Cannot serve 'models:/nope/1'" in proc.stderr
    assert "nope" in proc.stderr and "Traceback" not in proc.stderr


def test_every_answered_request_lands_in_the_prediction_log(
    trained_models,  # noqa: F811
    tmp_path,
):
    log_dir = tmp_path / "predictions"
    frame = trained_models.frame
    sent: dict[str, tuple[str, list]] = {}
    with running_model_server(
        trained_models,
        tmp_path / "serve.log",
        "--log-predictions",
        str(log_dir),
        models={"churn": "models:/churn/1"},
    ) as server:
        with httpx.Client(base_url=server.url) as client:
            for i in range(30):
                rows = frame.iloc[i : i + 2]
                if i % 2:
                    r = client.post("/predict", json={"records": rows.to_dict("records")})
                    outputs = r.json()["predictions"]
                else:
                    body = {
                        "inputs": [
                            {
                                "name": "x",
                                "shape": [2, 20],
                                "datatype": "FP64",
                                "data": rows.to_numpy().ravel().tolist(),
                            }
                        ]
                    }
                    r = client.post("/v2/models/churn/infer", json=body)
                    outputs = r.json()["outputs"][0]["data"]
                assert r.status_code == 200
                sent[r.headers["x-request-id"]] = ("predict" if i % 2 else "v2/infer", outputs)
            bad = client.post("/predict", json={"records": [{"f0": 1}]})
            assert bad.status_code == 400
        assert server.stop() in (0, -15)  # a clean shutdown drains the log queue

    files = sorted(log_dir.rglob("*.parquet"))
    assert files and all("model=churn" in str(f) for f in files)
    logged = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    assert sorted(logged.request_id) == sorted(sent)  # every good request, once; not the bad
    for rec in logged.itertuples():
        endpoint, outputs = sent[rec.request_id]
        assert rec.endpoint == endpoint and rec.model == "churn" and rec.version == "1"
        assert orjson.loads(rec.outputs) in (outputs, {"predict": outputs})
        inputs = np.asarray(orjson.loads(rec.inputs), dtype=float)
        assert inputs.shape == (2, 20)
        assert rec.latency_ms > 0


def test_a_full_prediction_log_drops_and_counts_and_never_blocks():
    release = threading.Event()
    written: list[PredictionRecord] = []

    def slow_sink(records):
        release.wait(30)
        written.extend(records)

    drops = []
    log = PredictionLog(slow_sink, max_queue=5, chunk=1, on_drop=lambda: drops.append(1))
    rec = PredictionRecord("r", 0, "m", "1", "predict", np.zeros((1, 2)), np.zeros(1), 1.0)
    started = time.perf_counter()
    accepted = sum(log.record(rec) for _ in range(50))
    elapsed = time.perf_counter() - started
    assert 5 <= accepted <= 6  # the queue, plus at most one the writer took first
    assert log.dropped == 50 - accepted == len(drops)
    assert elapsed < 5  # never waited for the blocked sink (30 s)
    release.set()
    log.close()
    assert len(written) == accepted


def test_records_are_written_as_json_rows():
    frame = pd.DataFrame({"a": [1.5, 2.0], "b": ["x", "y"]})
    rec = PredictionRecord("id1", 5, "m", "2", "predict", frame, np.array([0, 1]), 3.5)
    row = rec.to_row()
    assert orjson.loads(row["inputs"]) == [{"a": 1.5, "b": "x"}, {"a": 2.0, "b": "y"}]
    assert orjson.loads(row["outputs"]) == [0, 1]
    assert row["request_id"] == "id1" and row["latency_ms"] == 3.5


def test_prediction_log_files_are_partitioned_by_model_and_hour(tmp_path: Path):
    from modelyard.serving.prediction_log import ParquetSink

    sink = ParquetSink(str(tmp_path))
    hour = 1_790_000_000_000
    recs = [
        PredictionRecord(f"r{i}", hour + i * 3_600_000, "churn", "1", "predict", [i], [i], 1.0)
        for i in range(3)
    ]
    sink.write(recs)
    parts = sorted(str(p.relative_to(tmp_path).parent) for p in tmp_path.rglob("*.parquet"))
    assert len(parts) == 3 and all(p.startswith("model=churn/date=") for p in parts)
    assert len({p.split("hour=")[1] for p in parts}) == 3


def test_a_trickle_of_records_is_written_in_few_files_and_close_loses_none():
    calls: list[int] = []
    log = PredictionLog(lambda records: calls.append(len(records)), flush_seconds=0.5)
    for i in range(40):
        log.record(PredictionRecord(f"r{i}", i, "m", "1", "predict", [i], [i], 1.0))
        time.sleep(0.01)
    log.close()
    assert sum(calls) == 40
    assert len(calls) <= 3  # one chunk per half second, not one per handful of records


def test_find_prediction_searches_the_named_models_only(tmp_path: Path):
    from modelyard.serving.prediction_log import ParquetSink, find_prediction

    sink = ParquetSink(str(tmp_path))
    now = 1_790_000_000_000
    for model in ("churn", "fraud"):
        sink.write(
            [
                PredictionRecord(f"{model}-{i}", now + i, model, "3", "predict", [i], [i * 2], 1.0)
                for i in range(5)
            ]
        )
    hit = find_prediction(str(tmp_path), "fraud-4", "fraud")
    assert hit == {
        "model": "fraud",
        "variant": None,
        "version": "3",
        "prediction": [8],
        "predicted_at": now + 4,
    }
    assert find_prediction(str(tmp_path), "fraud-4", ["churn"]) is None
    assert find_prediction(str(tmp_path), "fraud-4")["model"] == "fraud"
    assert find_prediction(str(tmp_path), "nope") is None
    assert find_prediction(str(tmp_path / "missing"), "fraud-4") is None
