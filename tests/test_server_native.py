"""The native REST API (``/api/v1``) over the wire, against a real server subprocess.

Every rejected call is checked twice: the error (status, code, a message that names
the culprit) and the store afterwards (nothing of the rejected request was written).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import httpx
import pytest
from pydantic import BaseModel

from infra.server import ServerProcess, tracking_server  # noqa: F401
from modelyard.server.schemas import (
    ArtifactList,
    ExperimentOut,
    ExperimentPage,
    MetricHistory,
    RunInfoOut,
    RunOut,
    RunPage,
)

T0 = 1_700_000_000_000
MAX_FLOAT = 1.7976931348623157e308


@pytest.fixture
def api(tracking_server: ServerProcess) -> Iterator[httpx.Client]:  # noqa: F811
    with httpx.Client(base_url=f"{tracking_server.url}/api/v1", timeout=30) as client:
        yield client


def ok(resp: httpx.Response) -> dict:
    assert resp.status_code == 200, resp.text
    return resp.json()


def conforms(model: type[BaseModel], data: dict) -> dict:
    """The documented response model describes ``data`` exactly: no field more or less."""
    assert model.model_validate(data).model_dump(mode="json") == data
    return data


def error(resp: httpx.Response, status: int, code: str) -> str:
    """Assert the error status and code; return the message."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error_code", "message"}, body
    assert body["error_code"] == code, body
    assert body["message"], body
    return body["message"]


def new_run(api: httpx.Client, experiment_id: str = "0", **fields: object) -> dict:
    return conforms(RunOut, ok(api.post("/runs", json={"experiment_id": experiment_id, **fields})))


def metric(key: str, value: object, step: int = 0) -> dict:
    return {"key": key, "value": value, "timestamp": T0 + step, "step": step}


def history(api: httpx.Client, run_id: str, key: str, **params: object) -> list[dict]:
    found = ok(api.get(f"/runs/{run_id}/metrics/{key}/history", params=params))
    return conforms(MetricHistory, found)["metrics"]


def run_data(api: httpx.Client, run_id: str) -> dict:
    return conforms(RunOut, ok(api.get(f"/runs/{run_id}")))["data"]


# -- experiments ---------------------------------------------------------------------


def test_create_get_and_list_experiments_refusing_a_taken_name(api: httpx.Client) -> None:
    created = ok(api.post("/experiments", json={"name": "churn", "tags": {"team": "ml"}}))
    exp_id = created["experiment_id"]
    assert isinstance(exp_id, str) and exp_id != "0"

    exp = conforms(ExperimentOut, ok(api.get(f"/experiments/{exp_id}")))
    assert exp["name"] == "churn"
    assert exp["tags"] == {"team": "ml"}
    assert exp["lifecycle_stage"] == "active"
    assert exp["artifact_location"].endswith(f"/{exp_id}")
    assert ok(api.get("/experiments/by-name/churn")) == exp

    msg = error(api.post("/experiments", json={"name": "churn"}), 400, "RESOURCE_ALREADY_EXISTS")
    assert "churn" in msg
    listed = conforms(ExperimentPage, ok(api.get("/experiments")))
    assert [e["name"] for e in listed["experiments"]] == ["Default", "churn"]
    assert listed["next_page_token"] is None
    assert ok(api.get(f"/experiments/{exp_id}"))["tags"] == {"team": "ml"}

    msg = error(api.post("/experiments", json={"name": "  "}), 400, "INVALID_PARAMETER_VALUE")
    assert "name" in msg
    assert len(ok(api.get("/experiments"))["experiments"]) == 2


def test_experiment_lookups_that_miss(api: httpx.Client) -> None:
    msg = error(api.get("/experiments/by-name/nope"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert "nope" in msg
    msg = error(api.get("/experiments/4242"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert "4242" in msg
    msg = error(api.get("/experiments/abc"), 400, "INVALID_PARAMETER_VALUE")
    assert "abc" in msg
    msg = error(api.get("/experiments", params={"view": "gone"}), 400, "INVALID_PARAMETER_VALUE")
    assert "view" in msg


def test_experiment_names_with_slashes_resolve_by_name(api: httpx.Client) -> None:
    exp_id = ok(api.post("/experiments", json={"name": "team/churn v2"}))["experiment_id"]
    assert ok(api.get("/experiments/by-name/team/churn v2"))["experiment_id"] == exp_id


def test_rename_delete_restore_and_tag_an_experiment(api: httpx.Client) -> None:
    exp_id = ok(api.post("/experiments", json={"name": "a"}))["experiment_id"]
    ok(api.post("/experiments", json={"name": "taken"}))
    run = new_run(api, exp_id)

    renamed = ok(api.patch(f"/experiments/{exp_id}", json={"new_name": "b"}))
    assert renamed["name"] == "b"
    msg = error(
        api.patch(f"/experiments/{exp_id}", json={"new_name": "taken"}),
        400,
        "RESOURCE_ALREADY_EXISTS",
    )
    assert "taken" in msg
    assert ok(api.get(f"/experiments/{exp_id}"))["name"] == "b"

    deleted = ok(api.patch(f"/experiments/{exp_id}", json={"lifecycle_stage": "deleted"}))
    assert deleted["lifecycle_stage"] == "deleted"
    names = [
        e["name"] for e in ok(api.get("/experiments", params={"view": "deleted"}))["experiments"]
    ]
    assert names == ["b"]
    assert "b" not in [e["name"] for e in ok(api.get("/experiments"))["experiments"]]
    assert ok(api.get(f"/runs/{run['info']['run_id']}"))["info"]["lifecycle_stage"] == "deleted"
    error(api.post("/runs", json={"experiment_id": exp_id}), 400, "INVALID_STATE")

    restored = ok(api.patch(f"/experiments/{exp_id}", json={"lifecycle_stage": "active"}))
    assert restored["lifecycle_stage"] == "active"
    assert ok(api.get(f"/runs/{run['info']['run_id']}"))["info"]["lifecycle_stage"] == "active"

    msg = error(
        api.patch(f"/experiments/{exp_id}", json={"lifecycle_stage": "archived"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "lifecycle_stage" in msg
    msg = error(
        api.patch("/experiments/0", json={"lifecycle_stage": "deleted"}), 400, "INVALID_STATE"
    )
    assert "Default" in msg
    assert ok(api.get("/experiments/0"))["lifecycle_stage"] == "active"

    assert ok(api.put(f"/experiments/{exp_id}/tags/owner/team", json={"value": "ml"})) == {}
    assert ok(api.put(f"/experiments/{exp_id}/tags/owner/team", json={"value": "ds"})) == {}
    assert ok(api.get(f"/experiments/{exp_id}"))["tags"] == {"owner/team": "ds"}
    error(api.put("/experiments/999/tags/k", json={"value": "v"}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_list_experiments_pages_and_filters_by_name(api: httpx.Client) -> None:
    for name in ("exp-1", "exp-2", "other", "exp-3"):
        ok(api.post("/experiments", json={"name": name}))
    seen, token, pages = [], None, 0
    while True:
        params = {"max_results": 2, "name_like": "exp-%"}
        if token:
            params["page_token"] = token
        page = ok(api.get("/experiments", params=params))
        pages += 1
        assert len(page["experiments"]) <= 2
        seen += [e["name"] for e in page["experiments"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert seen == ["exp-1", "exp-2", "exp-3"]
    assert pages == 2
    msg = error(api.get("/experiments", params={"max_results": 0}), 400, "INVALID_PARAMETER_VALUE")
    assert "max_results" in msg
    error(api.get("/experiments", params={"page_token": "garbage"}), 400, "INVALID_PARAMETER_VALUE")


# -- runs ------------------------------------------------------------------------------


def test_run_lifecycle_create_end_reopen_delete_restore(api: httpx.Client) -> None:
    exp_id = ok(api.post("/experiments", json={"name": "life"}))["experiment_id"]
    run = new_run(api, exp_id, run_name="base", start_time=T0, tags={"k": "v"}, user_id="ann")
    info = run["info"]
    run_id = info["run_id"]
    assert len(run_id) == 32 and info["status"] == "RUNNING" and info["end_time"] is None
    assert (info["run_name"], info["start_time"], info["user_id"]) == ("base", T0, "ann")
    assert run["data"]["tags"]["k"] == "v"
    assert run["data"]["tags"]["mlflow.runName"] == "base"

    child = new_run(api, exp_id, parent_run_id=run_id)
    assert child["info"]["parent_run_id"] == run_id
    assert run_data(api, child["info"]["run_id"])["tags"]["mlflow.parentRunId"] == run_id

    ended = ok(api.patch(f"/runs/{run_id}", json={"status": "FINISHED", "end_time": T0 + 5}))
    conforms(RunInfoOut, ended)
    assert (ended["status"], ended["end_time"]) == ("FINISHED", T0 + 5)
    assert ok(api.get(f"/runs/{run_id}"))["info"] == ended
    reopened = ok(api.patch(f"/runs/{run_id}", json={"status": "RUNNING", "run_name": "again"}))
    assert (reopened["status"], reopened["end_time"], reopened["run_name"]) == (
        "RUNNING",
        None,
        "again",
    )
    msg = error(
        api.patch(f"/runs/{run_id}", json={"status": "DONE"}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert "status" in msg
    assert ok(api.get(f"/runs/{run_id}"))["info"]["status"] == "RUNNING"

    assert ok(api.put(f"/runs/{run_id}/lifecycle", json={"lifecycle_stage": "deleted"})) == {}
    assert ok(api.get(f"/runs/{run_id}"))["info"]["lifecycle_stage"] == "deleted"
    search = {"experiment_ids": [exp_id], "view": "deleted"}
    deleted = ok(api.post("/runs/search", json=search))["runs"]
    assert [r["info"]["run_id"] for r in deleted] == [run_id]
    assert ok(api.put(f"/runs/{run_id}/lifecycle", json={"lifecycle_stage": "active"})) == {}
    assert ok(api.get(f"/runs/{run_id}"))["info"]["lifecycle_stage"] == "active"


def test_create_run_errors(api: httpx.Client) -> None:
    msg = error(api.post("/runs", json={"experiment_id": "77"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert "77" in msg
    msg = error(api.post("/runs", json={}), 400, "INVALID_PARAMETER_VALUE")
    assert "experiment_id" in msg
    msg = error(
        api.post("/runs", json={"experiment_id": "0", "run_name": "x" * 300}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "250" in msg
    assert ok(api.post("/runs/search", json={"experiment_ids": ["0"]}))["runs"] == []


def test_log_batch_and_read_it_back(api: httpx.Client) -> None:
    run_id = new_run(api)["info"]["run_id"]
    batch = {
        "metrics": [metric("loss", 1.0 / (s + 1), s) for s in range(5)] + [metric("acc", 0.5)],
        "params": [{"key": "lr", "value": "0.1"}, {"key": "model/depth", "value": "3"}],
        "tags": [{"key": "stage", "value": "dev"}, {"key": "note", "value": ""}],
    }
    assert ok(api.post(f"/runs/{run_id}/batch", json=batch)) == {}
    assert ok(api.post(f"/runs/{run_id}/batch", json=batch)) == {}  # resending is harmless

    data = run_data(api, run_id)
    assert data["params"] == {"lr": "0.1", "model/depth": "3"}
    assert data["tags"]["stage"] == "dev" and data["tags"]["note"] == ""
    latest = {m["key"]: m for m in data["metrics"]}
    assert latest["loss"] == metric("loss", 0.2, 4)
    assert latest["acc"] == metric("acc", 0.5)
    assert history(api, run_id, "loss") == batch["metrics"][:5]

    assert ok(api.delete(f"/runs/{run_id}/tags/stage")) == {}
    assert "stage" not in run_data(api, run_id)["tags"]
    msg = error(api.delete(f"/runs/{run_id}/tags/stage"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert "stage" in msg

    inputs = [
        {"dataset_name": "train", "dataset_digest": "abc123", "context": "training"},
        {"dataset_name": "eval", "dataset_digest": "def456", "dataset_uri": "s3://b/eval"},
    ]
    assert ok(api.post(f"/runs/{run_id}/inputs", json={"inputs": inputs})) == {}
    got = ok(api.get(f"/runs/{run_id}"))["inputs"]
    assert got == [
        {**inputs[0], "dataset_uri": None},
        {**inputs[1], "context": None},
    ]
    msg = error(
        api.post(f"/runs/{run_id}/inputs", json={"inputs": [{"dataset_name": "x"}]}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "dataset_digest" in msg
    assert len(ok(api.get(f"/runs/{run_id}"))["inputs"]) == 2


def test_params_are_immutable_and_a_rejected_batch_writes_nothing(api: httpx.Client) -> None:
    run_id = new_run(api)["info"]["run_id"]
    ok(api.post(f"/runs/{run_id}/batch", json={"params": [{"key": "lr", "value": "0.1"}]}))

    batch = {
        "metrics": [metric("loss", 0.3)],
        "params": [{"key": "epochs", "value": "10"}, {"key": "lr", "value": "0.2"}],
        "tags": [{"key": "t", "value": "x"}],
    }
    msg = error(api.post(f"/runs/{run_id}/batch", json=batch), 400, "INVALID_PARAMETER_VALUE")
    assert "'lr'" in msg and "0.1" in msg and "immutable" in msg

    data = run_data(api, run_id)
    assert data["params"] == {"lr": "0.1"}
    assert "t" not in data["tags"]
    assert data["metrics"] == []
    assert history(api, run_id, "loss") == []
    # the same value again is a no-op, not an error
    again = {"params": [{"key": "lr", "value": "0.1"}]}
    assert ok(api.post(f"/runs/{run_id}/batch", json=again)) == {}
    assert run_data(api, run_id)["params"] == {"lr": "0.1"}


def test_logging_to_a_finished_run_is_refused(api: httpx.Client) -> None:
    run_id = new_run(api)["info"]["run_id"]
    ok(api.patch(f"/runs/{run_id}", json={"status": "FINISHED"}))
    batch = {"metrics": [metric("m", 1.0)], "params": [{"key": "p", "value": "1"}]}
    msg = error(api.post(f"/runs/{run_id}/batch", json=batch), 400, "INVALID_STATE")
    assert run_id in msg and "FINISHED" in msg
    error(api.delete(f"/runs/{run_id}/tags/mlflow.runName"), 400, "INVALID_STATE")
    data = run_data(api, run_id)
    assert data["params"] == {} and data["metrics"] == []
    assert "mlflow.runName" in data["tags"]
    assert history(api, run_id, "m") == []


def test_logging_to_a_deleted_run_is_refused(api: httpx.Client) -> None:
    run_id = new_run(api)["info"]["run_id"]
    ok(api.put(f"/runs/{run_id}/lifecycle", json={"lifecycle_stage": "deleted"}))
    batch = {"metrics": [metric("m", 1.0)], "tags": [{"key": "t", "value": "v"}]}
    msg = error(api.post(f"/runs/{run_id}/batch", json=batch), 400, "INVALID_STATE")
    assert "deleted" in msg
    inputs = {"inputs": [{"dataset_name": "d", "dataset_digest": "x"}]}
    error(api.post(f"/runs/{run_id}/inputs", json=inputs), 400, "INVALID_STATE")
    run = ok(api.get(f"/runs/{run_id}"))
    assert run["data"]["metrics"] == [] and "t" not in run["data"]["tags"]
    assert run["inputs"] == []


def test_unknown_and_malformed_run_ids(api: httpx.Client) -> None:
    missing = "0123456789abcdef0123456789abcdef"
    for resp in (
        api.get(f"/runs/{missing}"),
        api.post(f"/runs/{missing}/batch", json={"metrics": [metric("m", 1.0)]}),
        api.patch(f"/runs/{missing}", json={"status": "FINISHED"}),
        api.put(f"/runs/{missing}/lifecycle", json={"lifecycle_stage": "deleted"}),
        api.get(f"/runs/{missing}/metrics/m/history"),
        api.get(f"/runs/{missing}/artifacts"),
    ):
        msg = error(resp, 404, "RESOURCE_DOES_NOT_EXIST")
        assert missing in msg and "not found" in msg
    msg = error(api.get("/runs/not-a-run"), 400, "INVALID_PARAMETER_VALUE")
    assert "not-a-run" in msg and "32" in msg


def test_malformed_batch_bodies_are_400_with_a_reason(api: httpx.Client) -> None:
    run_id = new_run(api)["info"]["run_id"]
    url = f"/runs/{run_id}/batch"

    msg = error(api.post(url, json={"metrics": "x"}), 400, "INVALID_PARAMETER_VALUE")
    assert "metrics" in msg and "list" in msg

    for bad in ("abc", True, None, "1.5"):
        batch = {"metrics": [metric("good", 1.0), metric("bad", bad)]}
        msg = error(api.post(url, json=batch), 400, "INVALID_PARAMETER_VALUE")
        assert "metrics.1.value" in msg and "number" in msg and "'NaN'" in msg, bad

    msg = error(
        api.post(url, json={"metrics": [{"key": "m", "value": 1}]}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert "timestamp" in msg

    msg = error(api.post(url, json={"metric": [metric("m", 1.0)]}), 400, "INVALID_PARAMETER_VALUE")
    assert "metric" in msg and "not permitted" in msg

    as_json = {"content-type": "application/json"}
    for raw in (b'{"metrics": [', b'{"tags": [{"key": "t", "value": "\xff"}]}'):
        resp = api.post(url, content=raw, headers=as_json)
        assert "JSON" in error(resp, 400, "INVALID_PARAMETER_VALUE")

    msg = error(
        api.post(url, json={"metrics": [metric("bad key!", 1.0)]}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert "bad key!" in msg

    assert run_data(api, run_id)["metrics"] == []
    assert history(api, run_id, "good") == []


def test_oversized_param_is_refused_with_its_limit(api: httpx.Client) -> None:
    run_id = new_run(api)["info"]["run_id"]
    batch = {
        "metrics": [metric("m", 1.0)],
        "params": [{"key": "ok", "value": "1"}, {"key": "big", "value": "x" * 6001}],
    }
    msg = error(api.post(f"/runs/{run_id}/batch", json=batch), 400, "INVALID_PARAMETER_VALUE")
    assert "'big'" in msg and "6001" in msg and "6000" in msg
    data = run_data(api, run_id)
    assert data["params"] == {} and data["metrics"] == []

    batch["params"][1]["value"] = "x" * 6000
    ok(api.post(f"/runs/{run_id}/batch", json=batch))
    assert len(run_data(api, run_id)["params"]["big"]) == 6000


def test_nan_and_infinite_metrics_round_trip(api: httpx.Client) -> None:
    run_id = new_run(api)["info"]["run_id"]
    batch = {
        "metrics": [
            metric("x", "NaN", 0),
            metric("x", "Infinity", 1),
            metric("x", "-Infinity", 2),
            metric("x", 2.5, 3),
        ]
    }
    ok(api.post(f"/runs/{run_id}/batch", json=batch))
    values = [m["value"] for m in history(api, run_id, "x")]
    assert values == ["NaN", MAX_FLOAT, -MAX_FLOAT, 2.5]  # infinities are clamped

    # A bare NaN literal, as Python's json.dumps writes it, is accepted too.
    raw = json.dumps({"metrics": [metric("y", math.nan, 0)]})
    assert "NaN" in raw
    resp = api.post(
        f"/runs/{run_id}/batch", content=raw, headers={"content-type": "application/json"}
    )
    assert ok(resp) == {}
    assert history(api, run_id, "y") == [metric("y", "NaN", 0)]
    latest = {m["key"]: m["value"] for m in run_data(api, run_id)["metrics"]}
    assert latest == {"x": 2.5, "y": "NaN"}


def test_metric_history_downsamples_keeping_extremes(api: httpx.Client) -> None:
    run_id = new_run(api)["info"]["run_id"]
    points = [metric("loss", 1.0, s) for s in range(1000)]
    points[437] = metric("loss", 50.0, 437)
    points[612] = metric("loss", -7.0, 612)
    ok(api.post(f"/runs/{run_id}/batch", json={"metrics": points}))

    assert history(api, run_id, "loss") == points
    small = history(api, run_id, "loss", max_points=20)
    assert 2 <= len(small) <= 20
    steps = [m["step"] for m in small]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == 999
    assert points[437] in small and points[612] in small
    msg = error(
        api.get(f"/runs/{run_id}/metrics/loss/history", params={"max_points": 2}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "max_points" in msg
    assert history(api, run_id, "nothing") == []


def test_metric_keys_with_slashes(api: httpx.Client) -> None:
    run_id = new_run(api)["info"]["run_id"]
    ok(api.post(f"/runs/{run_id}/batch", json={"metrics": [metric("val/loss", 0.5, 3)]}))
    assert history(api, run_id, "val/loss") == [metric("val/loss", 0.5, 3)]


def test_search_runs_with_filter_order_and_paging(api: httpx.Client) -> None:
    exp_id = ok(api.post("/experiments", json={"name": "search"}))["experiment_id"]
    other = ok(api.post("/experiments", json={"name": "other"}))["experiment_id"]
    ids = {}
    for i in range(6):
        run_id = new_run(api, exp_id, run_name=f"r{i}")["info"]["run_id"]
        ids[run_id] = i
        batch = {
            "metrics": [metric("acc", i / 10)],
            "params": [{"key": "model", "value": "rf" if i % 2 else "lr"}],
        }
        ok(api.post(f"/runs/{run_id}/batch", json=batch))
    new_run(api, other, run_name="elsewhere")

    body = {
        "experiment_ids": [exp_id],
        "filter": "metrics.acc > 0.15 AND params.model = 'rf'",
        "order_by": ["metrics.acc DESC"],
    }
    found = conforms(RunPage, ok(api.post("/runs/search", json=body)))
    assert [r["info"]["run_name"] for r in found["runs"]] == ["r5", "r3"]
    assert found["next_page_token"] is None
    assert found["runs"][0]["data"]["params"] == {"model": "rf"}

    seen, token = [], None
    for _ in range(10):
        page = ok(
            api.post(
                "/runs/search",
                json={
                    "experiment_ids": [exp_id],
                    "order_by": ["metrics.acc ASC"],
                    "max_results": 4,
                    "page_token": token,
                },
            )
        )
        assert len(page["runs"]) <= 4
        seen += [r["info"]["run_name"] for r in page["runs"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert seen == [f"r{i}" for i in range(6)]

    both = ok(api.post("/runs/search", json={"experiment_ids": [exp_id, other]}))["runs"]
    assert len(both) == 7

    msg = error(
        api.post("/runs/search", json={"experiment_ids": [exp_id], "filter": "metrics.acc >> 1"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "acc" in msg or ">>" in msg
    msg = error(
        api.post("/runs/search", json={"experiment_ids": []}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert "experiment id" in msg


# -- artifacts and docs -------------------------------------------------------------


def test_list_artifacts(api: httpx.Client) -> None:
    run = new_run(api)
    run_id = run["info"]["run_id"]
    assert ok(api.get(f"/runs/{run_id}/artifacts")) == {"files": []}
    uri = run["info"]["artifact_uri"]
    assert uri.startswith("mlflow-artifacts:/") and uri.endswith(f"/{run_id}/artifacts")
    proxy = f"/api/2.0/mlflow-artifacts/artifacts/{uri.split(':', 1)[1].lstrip('/')}"
    base = str(api.base_url).split("/api/")[0]
    for path, body in (("model/weights.bin", b"hello"), ("config.json", b"{}")):
        assert httpx.put(f"{base}{proxy}/{path}", content=body).status_code == 200

    files = conforms(ArtifactList, ok(api.get(f"/runs/{run_id}/artifacts")))["files"]
    assert files == [
        {"path": "config.json", "is_dir": False, "file_size": 2},
        {"path": "model", "is_dir": True, "file_size": None},
    ]
    inner = ok(api.get(f"/runs/{run_id}/artifacts", params={"path": "model"}))["files"]
    assert inner == [{"path": "model/weights.bin", "is_dir": False, "file_size": 5}]
    msg = error(
        api.get(f"/runs/{run_id}/artifacts", params={"path": "../../etc"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "../../etc" in msg


def test_openapi_lists_every_native_route_with_a_summary(
    tracking_server: ServerProcess,  # noqa: F811
) -> None:
    spec = ok(httpx.get(f"{tracking_server.url}/openapi.json"))
    paths = spec["paths"]
    expected = {
        ("post", "/api/v1/experiments"),
        ("get", "/api/v1/experiments"),
        ("get", "/api/v1/experiments/{experiment_id}"),
        ("get", "/api/v1/experiments/by-name/{name}"),
        ("patch", "/api/v1/experiments/{experiment_id}"),
        ("put", "/api/v1/experiments/{experiment_id}/tags/{key}"),
        ("post", "/api/v1/runs"),
        ("get", "/api/v1/runs/{run_id}"),
        ("patch", "/api/v1/runs/{run_id}"),
        ("put", "/api/v1/runs/{run_id}/lifecycle"),
        ("post", "/api/v1/runs/{run_id}/batch"),
        ("delete", "/api/v1/runs/{run_id}/tags/{key}"),
        ("post", "/api/v1/runs/{run_id}/inputs"),
        ("get", "/api/v1/runs/{run_id}/metrics/{key}/history"),
        ("post", "/api/v1/runs/search"),
        ("get", "/api/v1/runs/{run_id}/artifacts"),
    }
    # The tracking routes (the registry's are checked in test_registry_http.py).
    tracking = ("/api/v1/experiments", "/api/v1/runs")
    listed = {(m, p) for p, ops in paths.items() for m in ops if p.startswith(tracking)}
    assert listed == expected
    for method, path in expected:
        op = paths[path][method]
        assert op["summary"] and op["description"], (method, path)
    batch = paths["/api/v1/runs/{run_id}/batch"]["post"]
    ref = batch["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/LogBatchRequest"  # not clashing with MLflow's
    schema = spec["components"]["schemas"]["LogBatchRequest"]
    assert set(schema["properties"]) == {"metrics", "params", "tags"}
    error_ref = batch["responses"]["400"]["content"]["application/json"]["schema"]["$ref"]
    assert set(spec["components"]["schemas"][error_ref.rsplit("/", 1)[1]]["properties"]) == {
        "error_code",
        "message",
    }
    docs = httpx.get(f"{tracking_server.url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
