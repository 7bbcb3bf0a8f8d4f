"""The unmodified `mlflow` client (mlflow-skinny) against a real `modelyard` server.

Each test starts the server in a subprocess (``tracking_server``) and drives it with
MLflow's own fluent API and ``MlflowClient`` over HTTP, then checks what came back
and, for artifacts, what landed under the server's artifact root.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path

import httpx
import mlflow
import mlflow.tracking.fluent as mlflow_fluent
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException

from infra.server import ServerProcess, tracking_server  # noqa: F401 - fixture

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture
def server(
    tracking_server: ServerProcess,  # noqa: F811 - the imported fixture
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> ServerProcess:
    """The server, with the mlflow client pointed at it and its global state isolated."""
    for key in list(os.environ):
        if key.startswith("MLFLOW_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server.url)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    # set_experiment writes MLFLOW_EXPERIMENT_ID and a module global: both restored after.
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.setattr(mlflow_fluent, "_active_experiment_id", None)
    (tmp_path / "tmp").mkdir()  # the client's temporary files (log_text, log_dict...)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    yield tracking_server
    while mlflow.active_run() is not None:
        mlflow.end_run()
    assert not (tmp_path / "mlruns").exists(), "the client fell back to a local store"


def _server_artifact_root(tmp_path: Path) -> Path:
    return tmp_path / "server-artifacts"  # MODELYARD_ARTIFACTS of the tracking_server fixture


def _error_code(exc: pytest.ExceptionInfo[MlflowException]) -> str:
    return exc.value.error_code


# -- the whole fluent workflow ----------------------------------------------------------
def test_fluent_run_round_trip(server: ServerProcess, tmp_path: Path) -> None:
    exp = mlflow.set_experiment("mlflow-compat")
    assert exp.name == "mlflow-compat"
    assert exp.artifact_location == f"mlflow-artifacts:/{exp.experiment_id}"

    src = tmp_path / "src"
    src.mkdir()
    model = src / "model.bin"
    model.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # spans several 1 MiB chunks
    empty = src / "empty.txt"
    empty.write_bytes(b"")

    with mlflow.start_run(run_name="baseline") as active:
        run_id = active.info.run_id
        assert active.info.artifact_uri.startswith("mlflow-artifacts:/")
        mlflow.log_param("lr", 0.1)
        mlflow.log_params({"depth": 6, "model": "gbt"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.91, "f1": 0.8}, step=4)
        MlflowClient().log_batch(
            run_id,
            metrics=[Metric("auc", 0.95, 1_700_000_000_000, 2)],
            params=[Param("seed", "42")],
            tags=[RunTag("team", "ml")],
        )
        mlflow.set_tag("stage", "dev")
        mlflow.set_tags({"owner": "ana", "purpose": "compat"})
        mlflow.log_artifact(str(model))
        mlflow.log_artifact(str(empty), artifact_path="sub/dir")
        mlflow.log_text("héllo\nworld\n", "notes/readme.txt")
        mlflow.log_dict({"layers": [64, 32], "act": "relu"}, "config.json")

    with mlflow.start_run(run_name="other"):
        mlflow.log_param("lr", 0.5)
        mlflow.log_metric("loss", 2.0)

    client = MlflowClient()
    run = client.get_run(run_id)
    assert run.info.status == RunStatus.to_string(RunStatus.FINISHED)
    assert run.info.run_name == "baseline"
    assert run.info.experiment_id == exp.experiment_id
    assert run.info.end_time is not None and run.info.end_time >= run.info.start_time
    assert run.info.lifecycle_stage == "active"
    assert run.data.params == {"lr": "0.1", "depth": "6", "model": "gbt", "seed": "42"}
    assert run.data.metrics == {"loss": 0.2, "acc": 0.91, "f1": 0.8, "auc": 0.95}
    assert run.data.tags["team"] == "ml"
    assert run.data.tags["stage"] == "dev"
    assert run.data.tags["owner"] == "ana"
    assert run.data.tags["purpose"] == "compat"
    assert run.data.tags["mlflow.runName"] == "baseline"

    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, 1.0 / (s + 1)) for s in range(5)]
    assert all(m.timestamp > 0 for m in history)

    found = mlflow.search_runs(
        experiment_ids=[exp.experiment_id],
        filter_string="params.lr = '0.1' and metrics.loss < 1",
    )
    assert list(found["run_id"]) == [run_id]
    assert found.loc[0, "metrics.auc"] == 0.95
    assert found.loc[0, "params.model"] == "gbt"
    assert found.loc[0, "tags.team"] == "ml"
    everything = mlflow.search_runs(experiment_ids=[exp.experiment_id], order_by=["params.lr"])
    assert list(everything["tags.mlflow.runName"]) == ["baseline", "other"]

    top = {f.path: f for f in client.list_artifacts(run_id)}
    assert set(top) == {"model.bin", "sub", "notes", "config.json"}
    assert top["model.bin"].file_size == model.stat().st_size and not top["model.bin"].is_dir
    assert top["sub"].is_dir and top["sub"].file_size is None
    assert [f.path for f in client.list_artifacts(run_id, "sub/dir")] == ["sub/dir/empty.txt"]

    dest = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "dl")))
    assert (dest / "model.bin").read_bytes() == model.read_bytes()
    assert (dest / "sub" / "dir" / "empty.txt").read_bytes() == b""
    assert (dest / "notes" / "readme.txt").read_text(encoding="utf-8") == "héllo\nworld\n"
    assert json.loads((dest / "config.json").read_text()) == {"layers": [64, 32], "act": "relu"}
    one = client.download_artifacts(run_id, "notes/readme.txt", str(tmp_path / "one"))
    assert Path(one).read_bytes() == "héllo\nworld\n".encode()

    # The proxy wrote where the run's artifact URI says, under the server's root.
    rel = run.info.artifact_uri.removeprefix("mlflow-artifacts:/")
    stored = _server_artifact_root(tmp_path) / rel
    assert (stored / "model.bin").read_bytes() == model.read_bytes()


def test_experiments_api(server: ServerProcess) -> None:
    client = MlflowClient()
    exp_id = client.create_experiment("exp-a", tags={"team": "ml"})
    client.create_experiment("exp-b")
    assert client.get_experiment_by_name("missing") is None
    assert client.get_experiment(exp_id).tags == {"team": "ml"}

    client.set_experiment_tag(exp_id, "phase", "2")
    client.rename_experiment(exp_id, "exp-a2")
    exp = client.get_experiment_by_name("exp-a2")
    assert exp is not None and exp.experiment_id == exp_id
    assert exp.tags == {"team": "ml", "phase": "2"}

    names = [e.name for e in client.search_experiments(filter_string="name LIKE 'exp-%'")]
    assert sorted(names) == ["exp-a2", "exp-b"]
    tagged = client.search_experiments(filter_string="tags.team = 'ml'")
    assert [e.experiment_id for e in tagged] == [exp_id]
    ordered = client.search_experiments(order_by=["name DESC"])
    assert [e.name for e in ordered] == ["exp-b", "exp-a2", "Default"]
    first = client.search_experiments(max_results=2, order_by=["name"])
    assert [e.name for e in first] == ["Default", "exp-a2"] and first.token
    rest = client.search_experiments(max_results=2, order_by=["name"], page_token=first.token)
    assert [e.name for e in rest] == ["exp-b"] and not rest.token

    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"
    assert exp_id not in [e.experiment_id for e in client.search_experiments()]
    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"

    with pytest.raises(MlflowException) as taken:
        client.create_experiment("exp-b")
    assert _error_code(taken) == "RESOURCE_ALREADY_EXISTS"


def test_run_lifecycle_tags_and_inputs(server: ServerProcess) -> None:
    import pandas as pd

    mlflow.set_experiment("lifecycle")
    with mlflow.start_run() as active:
        run_id = active.info.run_id
        mlflow.set_tag("temp", "x")
        MlflowClient().delete_tag(run_id, "temp")
        dataset = mlflow.data.from_pandas(
            pd.DataFrame({"a": [1.0, 2.0, 3.0]}), source="s3://bucket/train.parquet", name="train"
        )
        mlflow.log_input(dataset, context="training")

    client = MlflowClient()
    run = client.get_run(run_id)
    assert "temp" not in run.data.tags
    [item] = run.inputs.dataset_inputs
    assert item.dataset.name == "train"
    assert item.dataset.digest == dataset.digest
    assert "s3://bucket/train.parquet" in item.dataset.source
    assert {t.key: t.value for t in item.tags}["mlflow.data.context"] == "training"

    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    assert mlflow.search_runs(experiment_names=["lifecycle"]).empty
    client.restore_run(run_id)
    assert list(mlflow.search_runs(experiment_names=["lifecycle"])["run_id"]) == [run_id]

    client.update_run(run_id, status="KILLED", name="renamed")
    info = client.get_run(run_id).info
    assert (info.status, info.run_name) == ("KILLED", "renamed")


# -- errors carry MLflow's codes and leave the data as it was --------------------------
def test_unknown_run_is_resource_does_not_exist(server: ServerProcess) -> None:
    client = MlflowClient()
    missing = uuid.uuid4().hex
    with pytest.raises(MlflowException) as got:
        client.get_run(missing)
    assert _error_code(got) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as logged:
        client.log_param(missing, "a", "1")
    assert _error_code(logged) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as history:
        client.get_metric_history(missing, "loss")
    assert _error_code(history) == "RESOURCE_DOES_NOT_EXIST"


def test_rejected_writes_leave_the_run_intact(server: ServerProcess) -> None:
    client = MlflowClient()
    exp_id = client.create_experiment("rejects")
    run_id = client.create_run(exp_id, run_name="r").info.run_id
    client.log_param(run_id, "lr", "0.1")
    client.log_metric(run_id, "loss", 0.5, step=1)

    with pytest.raises(MlflowException) as too_long:
        client.log_param(run_id, "big", "x" * 6001)
    assert _error_code(too_long) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as changed:
        client.log_param(run_id, "lr", "0.2")
    assert _error_code(changed) == "INVALID_PARAMETER_VALUE"

    # One bad item fails the whole batch: nothing of it is written.
    body = {
        "run_id": run_id,
        "metrics": [{"key": "loss", "value": 0.1, "timestamp": "1700000000000", "step": "2"}],
        "params": [{"key": "big", "value": "x" * 6001}],
        "tags": [{"key": "t", "value": "v"}],
    }
    url = f"{server.url}{API}"
    resp = httpx.post(f"{url}/runs/log-batch", json=body)
    assert resp.status_code == 400
    assert resp.json()["error_code"] == "INVALID_PARAMETER_VALUE"

    too_many = {
        "run_id": run_id,
        "metrics": [{"key": "m", "value": i, "timestamp": 1, "step": i} for i in range(1001)],
    }
    resp = httpx.post(f"{url}/runs/log-batch", json=too_many)
    assert resp.status_code == 400
    assert resp.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "1000 metrics" in resp.json()["message"]
    params = [{"key": f"p{i}", "value": "v"} for i in range(101)]
    resp = httpx.post(
        f"{server.url}{API}/runs/log-batch", json={"run_id": run_id, "params": params}
    )
    assert (resp.status_code, resp.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")

    run = client.get_run(run_id)
    assert run.data.params == {"lr": "0.1"}
    assert run.data.metrics == {"loss": 0.5}
    assert "t" not in run.data.tags
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")] == [(1, 0.5)]
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "m")] == []


def test_wire_details(server: ServerProcess) -> None:
    """Proto-JSON quirks: int64 as strings, NaN as a string, run_uuid, paged history."""
    url = f"{server.url}{API}"
    created = httpx.post(f"{url}/runs/create", json={"experiment_id": 0, "start_time": "5"})
    assert created.status_code == 200, created.text
    info = created.json()["run"]["info"]
    run_id = info["run_id"]
    assert info["run_uuid"] == run_id and info["start_time"] == 5
    assert info["artifact_uri"] == f"mlflow-artifacts:/0/{run_id}/artifacts"

    points = [{"key": "x", "value": "NaN", "timestamp": "10", "step": str(i)} for i in range(5)]
    httpx.post(f"{url}/runs/log-batch", json={"run_id": run_id, "metrics": points})
    page = httpx.get(
        f"{url}/metrics/get-history",
        params={"run_uuid": run_id, "metric_key": "x", "max_results": 2},
    ).json()
    assert [m["step"] for m in page["metrics"]] == [0, 1]
    assert page["metrics"][0]["value"] == "NaN"
    tail = httpx.get(
        f"{url}/metrics/get-history",
        params={
            "run_id": run_id,
            "metric_key": "x",
            "max_results": 2,
            "page_token": page["next_page_token"],
        },
    ).json()
    assert [m["step"] for m in tail["metrics"]] == [2, 3]

    got = httpx.get(f"{url}/experiments/search", params={"filter": "name = 'Default'"}).json()
    assert [e["experiment_id"] for e in got["experiments"]] == ["0"]
    found = httpx.post(f"{url}/runs/search", json={"experiment_ids": ["0"]}).json()
    assert [r["info"]["run_id"] for r in found["runs"]] == [run_id]

    missing = httpx.post(f"{url}/runs/get-nothing", json={})
    assert (missing.status_code, missing.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    no_id = httpx.post(f"{url}/runs/update", json={"status": "FINISHED"})
    assert (no_id.status_code, no_id.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    info = httpx.get(f"{server.url}/api/3.0/mlflow/server-info").json()
    assert info["multipart_uploads_enabled"] is False


# -- the artifact proxy --------------------------------------------------------------
def test_artifact_proxy_is_generic_and_safe(server: ServerProcess, tmp_path: Path) -> None:
    url = f"{server.url}{ARTIFACTS}"
    root = _server_artifact_root(tmp_path)
    payload = os.urandom(200_000)
    assert httpx.put(f"{url}/shared/data/blob.bin", content=payload).status_code == 200
    assert (root / "shared" / "data" / "blob.bin").read_bytes() == payload
    assert httpx.get(f"{url}/shared/data/blob.bin").content == payload

    listing = httpx.get(url, params={"path": "shared"}).json()
    assert listing == {"files": [{"path": "data", "is_dir": True}]}
    listing = httpx.get(url, params={"path": "shared/data"}).json()
    assert listing == {"files": [{"path": "blob.bin", "is_dir": False, "file_size": 200_000}]}
    assert httpx.get(url, params={"path": "shared/data/blob.bin"}).json() == {"files": []}

    missing = httpx.get(f"{url}/shared/nothing.bin")
    assert (missing.status_code, missing.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")

    for bad in ("%2E%2E/%2E%2E/escape.txt", "shared/%2E%2E/%2E%2E/escape.txt"):
        resp = httpx.put(f"{url}/{bad}", content=b"nope")
        assert (resp.status_code, resp.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert not (tmp_path / "escape.txt").exists()
    assert httpx.get(url, params={"path": "../.."}).status_code == 400
    sidecar = httpx.put(f"{url}/shared/data/.blob.bin.my-meta", content=b"{}")
    assert sidecar.status_code == 400
    assert httpx.get(f"{url}/shared/data/blob.bin").content == payload

    # Bytes changed behind the store's back: the download is cut, never silently wrong.
    stored = root / "shared" / "data" / "blob.bin"
    stored.write_bytes(bytes(b ^ 0xFF for b in payload))
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/shared/data/blob.bin")

    assert httpx.delete(f"{url}/shared/data/blob.bin").status_code == 200
    assert httpx.get(f"{url}/shared/data/blob.bin").status_code == 404
    assert httpx.delete(f"{url}/shared/data/blob.bin").status_code == 404
