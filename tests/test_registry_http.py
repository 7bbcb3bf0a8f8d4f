"""The model registry over HTTP, against a real server subprocess: the SDK in remote
mode (its registry calls go through `RestRegistryStore` to ``/api/v1/models``) and raw
calls for the wire details. What landed is checked in the server's own store."""

from __future__ import annotations

import getpass
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from pydantic import BaseModel

import modelyard as my
from infra.server import ServerProcess, tracking_server  # noqa: F401 - fixture
from modelyard.core.errors import (
    InvalidParameter,
    PolicyViolation,
    ResourceNotFound,
)
from modelyard.core.store.engine import open_engine
from modelyard.registry.rest_store import RestRegistryStore
from modelyard.registry.sql_store import SqlRegistryStore
from modelyard.server.registry_schemas import (
    ApprovalOut,
    AuditLog,
    History,
    ModelPage,
    ModelVersionOut,
    PolicyOut,
    RegisteredModelOut,
    VersionPage,
)
from modelyard.tracking.entities import RunInput

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
BAD, MISSING, REFUSED = "INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "INVALID_STATE"
SIGNATURE = {
    "kind": "columns",
    "inputs": [{"name": "age", "dtype": "int64"}, {"name": "plan", "dtype": "str"}],
    "outputs": [{"name": "churn", "dtype": "int64"}],
}


@pytest.fixture
def server_registry(db_url: str) -> Iterator[SqlRegistryStore]:
    """The server's registry store, opened directly, to check what really landed."""
    store = SqlRegistryStore(open_engine(db_url))
    yield store
    store.close()


@pytest.fixture
def remote(tracking_server: ServerProcess, tmp_path: Path) -> Iterator[ServerProcess]:  # noqa: F811
    my.configure(home=tmp_path / "client-home", tracking_uri=tracking_server.url)
    yield tracking_server
    while my.active_run():
        my.end_run()
    my.configure(home=tmp_path / "unused")


@pytest.fixture
def api(tracking_server: ServerProcess) -> Iterator[httpx.Client]:  # noqa: F811
    with httpx.Client(base_url=f"{tracking_server.url}/api/v1", timeout=30) as client:
        yield client


def ok(resp: httpx.Response) -> dict:
    assert resp.status_code == 200, resp.text
    return resp.json()


def conforms(model: type[BaseModel], data: dict) -> dict:
    """The documented response model describes ``data`` exactly."""
    assert model.model_validate(data).model_dump(mode="json") == data
    return data


def error(resp: httpx.Response, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error_code", "message"} and body["error_code"] == code, body
    return body["message"]


def _package(folder: Path) -> Path:
    """A minimal model package: the manifest the registry reads, and one file."""
    folder.mkdir(parents=True)
    (folder / "modelyard-model.yaml").write_text(
        yaml.safe_dump({"format_version": 1, "flavor": "sklearn", "signature": SIGNATURE})
    )
    (folder / "model.skops").write_bytes(b"not really weights")
    return folder


def logged_run(tmp_path: Path, accuracy: float = 0.9, with_model: bool = True) -> str:
    """A finished run (through the SDK, remote) with a metric, a dataset input and,
    unless told otherwise, a model package at ``model/``."""
    with my.start_run(experiment="churn") as run:
        my.log_metric("accuracy", accuracy)
        dataset = RunInput("churn-train", "d1g3st", "s3://data/churn", "train")
        my.client().log_inputs(run.run_id, [dataset])
        if with_model:
            my.log_artifact(_package(tmp_path / f"pkg-{time.monotonic_ns()}" / "model"))
        else:
            my.log_text("no model here", "model/README.txt")
    return run.run_id


# -- the SDK, remote ------------------------------------------------------------------
def test_sdk_registry_over_http(remote, server_registry, tmp_path):
    good = logged_run(tmp_path, accuracy=0.91)
    v1 = my.register_model(f"runs:/{good}/model", "churn", description="baseline")
    v2 = my.register_model(f"runs:/{good}/model", "churn", tags={"team": "risk"})
    assert (v1.version, v2.version) == (1, 2)
    assert v1.run_id == good and v1.flavor == "sklearn" and v1.signature == SIGNATURE
    assert v1.metrics == {"accuracy": 0.91}
    assert v1.lineage == [
        {
            "dataset_name": "churn-train",
            "dataset_digest": "d1g3st",
            "dataset_uri": "s3://data/churn",
            "context": "train",
        }
    ]
    # Artifact locations come back through the server's proxy, readable by the client.
    assert v1.artifact_uri.startswith("mlflow-artifacts:/")
    assert v1.artifact_uri.endswith(f"/{good}/artifacts/model")
    assert v1.user_id == getpass.getuser()

    stored = server_registry.get_model_version("churn", 2)
    assert stored.tags == {"team": "risk"} and stored.metrics == {"accuracy": 0.91}
    assert stored.artifact_uri.startswith(str(tmp_path / "server-artifacts"))
    assert server_registry.get_registered_model("churn").description is None
    assert server_registry.get_model_version("churn", 1).description == "baseline"

    # Policy: one approval before production, checked by the server too.
    policy = my.set_policy("churn", required_approvals=1, metric_floors={"accuracy": 0.8})
    assert policy.required_approvals == 1 and policy.protected == ["production", "Production"]
    assert server_registry.get_policy("churn").metric_floors == {"accuracy": 0.8}
    with pytest.raises(PolicyViolation, match="approval policy of 'churn'.*needs 1 approval"):
        my.set_alias("churn", "production", 1)
    approval = my.approve("churn", 1, reason="reviewed the card")
    assert (approval.actor, approval.decision) == (getpass.getuser(), "approved")
    assert my.set_alias("churn", "production", 1, reason="first").aliases == ["production"]
    my.approve("churn", 2, reason="better recall")
    my.set_alias("churn", "production", 2)
    assert server_registry.get_alias("churn", "production") == 2

    # History and rollback, recorded as the local user.
    back = my.rollback("churn", "production")
    assert back.version == 1 and back.aliases == ["production"]
    periods = my.model_history("churn", alias="production")
    assert [(p.version, p.ended_at is None) for p in periods] == [(1, False), (2, False), (1, True)]
    assert periods[0].reason == "first" and periods[2].reason == "rollback from version 2"
    assert {p.started_by for p in periods} == {getpass.getuser()}
    assert periods == server_registry.assignments("churn", "alias", "production")
    registry = my.model_registry()
    assert registry.version_at("churn", "production", periods[1].started_at) == 2
    assert registry.resolve("models:/churn@production").version == 1

    # Stages, with the policy on Production as well.
    moved = my.transition_stage("churn", 2, "Staging")
    assert moved.stage == "Staging"
    assert server_registry.get_model_version("churn", 2).stage == "Staging"

    # Deleting a version leaves no alias behind.
    assert my.delete_model_version("churn", 1) == ["production"]
    assert server_registry.get_registered_model("churn").aliases == {}

    actions = [(e["action"], e["actor"]) for e in registry.audit("churn")]
    assert ("approve", getpass.getuser()) in actions
    assert actions[-1] == ("delete_version", getpass.getuser())
    assert actions == [(e["action"], e["actor"]) for e in server_registry.audit_events("churn")]


def test_sdk_errors_over_http_are_typed(remote, server_registry, tmp_path):
    without = logged_run(tmp_path, with_model=False)
    with pytest.raises(InvalidParameter, match="No model found in run .*modelyard-model.yaml"):
        my.register_model(f"runs:/{without}/model", "churn")
    with_model = logged_run(tmp_path)
    my.register_model(f"runs:/{with_model}/model", "churn")
    with pytest.raises(ResourceNotFound, match="has no version 7"):
        my.set_alias("churn", "champion", 7)
    with pytest.raises(ResourceNotFound, match="'nope' not found"):
        my.get_registered_model("nope")
    with pytest.raises(InvalidParameter, match="Invalid alias"):
        my.set_alias("churn", "bad alias!", 1)
    assert server_registry.get_registered_model("churn").aliases == {}


def test_rest_store_mirrors_the_sql_store(remote, server_registry, tmp_path):
    """The calls the service does not make on its own: tags, search, rename, deletes."""
    rid = logged_run(tmp_path)
    registry = my.model_registry()
    rest = registry.store
    assert isinstance(rest, RestRegistryStore) and rest.actor == getpass.getuser()

    registry.create_registered_model("fraud.v2 eu", "EU fraud", {"owner": "ana"})
    registry.register_model(f"runs:/{rid}/model", "fraud.v2 eu")
    registry.register_model(f"runs:/{rid}/model", "churn")
    registry.set_registered_model_tag("fraud.v2 eu", "tier/level", "gold")
    registry.set_registered_model_tag("fraud.v2 eu", "owner", None)
    registry.set_model_version_tag("fraud.v2 eu", 1, "validated", "yes")
    assert server_registry.get_registered_model("fraud.v2 eu").tags == {"tier/level": "gold"}
    assert server_registry.get_model_version("fraud.v2 eu", 1).tags == {"validated": "yes"}
    registry.set_model_version_tag("fraud.v2 eu", 1, "validated", None)
    assert server_registry.get_model_version("fraud.v2 eu", 1).tags == {}

    models, more = registry.search_registered_models(max_results=1)
    assert [m.name for m in models] == ["churn"] and more
    models, more = registry.search_registered_models(max_results=1, offset=1)
    assert [m.name for m in models] == ["fraud.v2 eu"] and not more
    assert [m.name for m in registry.search_registered_models("fraud%")[0]] == ["fraud.v2 eu"]
    by_run, _ = registry.search_model_versions(run_id=rid)
    assert sorted((v.name, v.version) for v in by_run) == [("churn", 1), ("fraud.v2 eu", 1)]

    assert registry.update_model_version("churn", 1, "tuned").description == "tuned"
    assert registry.update_registered_model("churn", "the churn model").description == (
        "the churn model"
    )
    renamed = registry.rename_registered_model("fraud.v2 eu", "fraud")
    assert renamed.name == "fraud" and renamed.description == "EU fraud"
    assert server_registry.get_model_version("fraud", 1).run_id == rid
    registry.set_alias("fraud", "champion", 1)
    registry.delete_alias("fraud", "champion")
    assert server_registry.get_registered_model("fraud").aliases == {}
    assert registry.get_policy("fraud") is None
    registry.delete_registered_model("fraud")
    with pytest.raises(ResourceNotFound):
        server_registry.get_registered_model("fraud")
    assert registry.approvals("churn") == []


# -- raw HTTP -------------------------------------------------------------------------
def _raw_run(server: ServerProcess, tmp_path: Path, with_model: bool = True) -> str:
    my.configure(home=tmp_path / "raw-client", tracking_uri=server.url)
    try:
        return logged_run(tmp_path, with_model=with_model)
    finally:
        my.configure(home=tmp_path / "unused")


def test_native_api_wire_and_errors(tracking_server, api, server_registry, tmp_path):  # noqa: F811
    rid = _raw_run(tracking_server, tmp_path)
    without = _raw_run(tracking_server, tmp_path, with_model=False)
    alice = {"X-Modelyard-User": "alice"}

    # A run without a model: 400 naming the missing manifest, nothing created.
    msg = error(
        api.post("/models/churn/versions", json={"source": f"runs:/{without}/model"}), 400, BAD
    )
    assert "modelyard-model.yaml" in msg and without in msg
    error(api.get("/models/churn"), 404, MISSING)

    source = {"source": f"runs:/{rid}/model"}
    v1 = conforms(
        ModelVersionOut, ok(api.post("/models/churn/versions", json=source, headers=alice))
    )
    assert (v1["version"], v1["user_id"], v1["status"]) == (1, "alice", "READY")
    assert v1["artifact_uri"].startswith("mlflow-artifacts:/")
    # The proxy serves what the version's URI names, and that URI registers again.
    path = v1["artifact_uri"].split(":", 1)[1].lstrip("/")
    manifest = httpx.get(f"{tracking_server.url}{ARTIFACTS}/{path}/modelyard-model.yaml")
    assert yaml.safe_load(manifest.content)["flavor"] == "sklearn"
    ok(api.post("/models/churn/versions", json={"source": v1["artifact_uri"]}))
    first, second = (server_registry.get_model_version("churn", n) for n in (1, 2))
    assert second.artifact_uri == first.artifact_uri and second.run_id is None
    conforms(RegisteredModelOut, ok(api.get("/models/churn")))
    conforms(ModelPage, ok(api.get("/models", params={"name_like": "ch%"})))
    conforms(VersionPage, ok(api.get("/models/churn/versions")))

    # Alias or stage on a missing version: 404, nothing written.
    msg = error(api.put("/models/churn/aliases/champion", json={"version": 9}), 404, MISSING)
    assert "no version 9" in msg
    assert server_registry.get_registered_model("churn").aliases == {}
    staging = {"stage": "Staging"}
    error(api.post("/models/churn/versions/9/stage", json=staging), 404, MISSING)
    msg = error(api.post("/models/churn/versions/nine/stage", json=staging), 400, BAD)
    assert "Invalid version 'nine'" in msg
    error(api.put("/models/churn/aliases/x", json={"version": 1, "extra": 1}), 400, BAD)
    assert server_registry.get_model_version("churn", 1).stage == "None"

    # Promotion without approvals: 409 naming the policy, nothing written.
    policy = {"required_approvals": 2, "metric_floors": {"accuracy": 0.95}}
    conforms(PolicyOut, ok(api.put("/models/churn/policy", json=policy, headers=alice)))
    production = {"version": 1}
    msg = error(api.put("/models/churn/aliases/production", json=production), 409, REFUSED)
    assert "approval policy of 'churn'" in msg
    assert "needs 2 approval(s) and has 0" in msg and "'accuracy' = 0.9 is below" in msg
    stage = {"stage": "production"}
    msg = error(api.post("/models/churn/versions/1/stage", json=stage), 409, REFUSED)
    assert "approval policy of 'churn'" in msg
    assert server_registry.get_model_version("churn", 1).stage == "None"
    assert server_registry.get_registered_model("churn").aliases == {}

    # Approvals record the header's user; without the header, "anonymous".
    approvals = "/models/churn/versions/1/approvals"
    yes = {"decision": "approved", "reason": "looks fine"}
    no = {"decision": "rejected", "reason": "bias"}
    mine = conforms(ApprovalOut, ok(api.post(approvals, json=yes, headers=alice)))
    assert mine["actor"] == "alice"
    ok(api.post(approvals, json=no))
    ok(api.post(approvals, json=yes, headers={"X-Modelyard-User": "b%C3%B8b"}))  # UTF-8, encoded
    stored = [(a.actor, a.decision, a.reason) for a in server_registry.approvals("churn", 1)]
    assert stored == [
        ("alice", "approved", "looks fine"),
        ("anonymous", "rejected", "bias"),
        ("bøb", "approved", "looks fine"),
    ]
    assert [a["actor"] for a in ok(api.get(approvals))["approvals"]] == [
        "alice",
        "anonymous",
        "bøb",
    ]
    msg = error(api.put("/models/churn/aliases/production", json=production), 409, REFUSED)
    assert "rejected by anonymous" in msg
    error(api.post(approvals, json={"decision": "maybe"}), 400, BAD)

    # The rejection withdrawn, the metric floor dropped: promote twice, roll back.
    ok(api.post(approvals, json=yes))
    ok(api.put("/models/churn/policy", json={"required_approvals": 2}))
    ok(api.put("/models/churn/aliases/production", json=production, headers=alice))
    ok(api.post("/models/churn/versions/2/approvals", json=yes, headers=alice))
    ok(api.post("/models/churn/versions/2/approvals", json=yes))
    v2 = {"version": 2, "reason": "v2"}
    ok(api.put("/models/churn/aliases/production", json=v2, headers=alice))
    rollback = api.post("/models/churn/aliases/production/rollback", headers=alice)
    assert conforms(ModelVersionOut, ok(rollback))["version"] == 1

    # History, the time machine, the resolver.
    history = ok(api.get("/models/churn/history", params={"alias": "production"}))
    periods = conforms(History, history)["history"]
    assert [p["version"] for p in periods] == [1, 2, 1]
    assert periods[2]["reason"] == "rollback from version 2"
    assert periods[2]["started_by"] == "alice"
    at = "/models/churn/aliases/production/at"
    assert ok(api.get(at, params={"time_ms": periods[1]["started_at"]})) == {"version": 2}
    assert ok(api.get(at, params={"time_ms": 0})) == {"version": None}
    resolved = ok(api.get("/models/resolve", params={"uri": "models:/churn@production"}))
    assert resolved["version"] == 1
    error(api.get("/models/resolve", params={"uri": "churn"}), 400, BAD)

    # Deleting a version returns (and removes) its aliases; the audit log saw everything.
    assert ok(api.delete("/models/churn/versions/1", headers=alice)) == {"aliases": ["production"]}
    error(api.get("/models/churn/aliases/production"), 404, MISSING)
    audit = conforms(AuditLog, ok(api.get("/models/churn/audit")))["events"]
    assert audit[-1]["action"] == "delete_version" and audit[-1]["actor"] == "alice"
    assert [e["event_id"] for e in audit] == [
        e["event_id"] for e in server_registry.audit_events("churn")
    ]


def test_openapi_documents_every_registry_route(tracking_server):  # noqa: F811
    spec = ok(httpx.get(f"{tracking_server.url}/openapi.json"))
    routes = {
        (method, path)
        for path, ops in spec["paths"].items()
        if path.startswith("/api/v1/models")
        for method in ops
    }
    assert {
        ("post", "/api/v1/models/{name}/versions"),
        ("put", "/api/v1/models/{name}/aliases/{alias}"),
        ("post", "/api/v1/models/{name}/versions/{version}/stage"),
        ("post", "/api/v1/models/{name}/versions/{version}/approvals"),
        ("post", "/api/v1/models/{name}/aliases/{alias}/rollback"),
        ("get", "/api/v1/models/{name}/aliases/{alias}/at"),
        ("get", "/api/v1/models/resolve"),
    } <= routes
    assert len(routes) == 30  # 28 registry routes + the card and the gates
    assert {
        ("get", "/api/v1/models/{name}/versions/{version}/card"),
        ("post", "/api/v1/models/check"),
    } <= routes
    for method, path in routes:
        op = spec["paths"][path][method]
        assert op["summary"] and op["description"], (method, path)
    alias = spec["paths"]["/api/v1/models/{name}/aliases/{alias}"]["put"]
    assert {"404", "409"} <= set(alias["responses"])
