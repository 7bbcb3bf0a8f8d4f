"""The unmodified `mlflow` client's model registry against a real `modelyard` server.

MLflow's own ``register_model`` and ``MlflowClient`` drive the server over HTTP; the
answers are checked, and so is what the server's registry store holds afterwards.
The server logs every MLflow endpoint it does not implement: these flows must not
hit one.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import mlflow.tracking.fluent as mlflow_fluent
import pytest
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException

from infra.server import ServerProcess, tracking_server  # noqa: F401 - fixture
from modelyard.core.errors import InvalidParameter
from modelyard.core.store.engine import open_engine
from modelyard.registry.entities import ModelVersion
from modelyard.registry.sql_store import SqlRegistryStore
from modelyard.server.mlflow_compat.registry_translate import (
    MODEL_KEYS,
    VERSION_KEYS,
    Clause,
    matches,
    parse_filter,
)

API = "/api/2.0/mlflow"


@pytest.fixture
def server(
    tracking_server: ServerProcess,  # noqa: F811 - the imported fixture
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[ServerProcess]:
    """The server, with the mlflow client pointed at it and its global state isolated."""
    for key in list(os.environ):
        if key.startswith("MLFLOW_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server.url)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.setattr(mlflow_fluent, "_active_experiment_id", None)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    yield tracking_server
    while mlflow.active_run() is not None:
        mlflow.end_run()
    assert not (tmp_path / "mlruns").exists(), "the client fell back to a local store"
    log = (tmp_path / "server.log").read_text()
    assert "not implemented" not in log, log


@pytest.fixture
def server_registry(db_url: str) -> Iterator[SqlRegistryStore]:
    """The server's registry store, opened directly, to check what really landed."""
    store = SqlRegistryStore(open_engine(db_url))
    yield store
    store.close()


def _error_code(exc: pytest.ExceptionInfo[MlflowException]) -> str:
    return exc.value.error_code


def logged_run(tmp_path: Path, accuracy: float = 0.9) -> str:
    """A run with a metric and a model folder at ``model/`` as MLflow lays one out
    (an MLmodel file beside the weights), logged by the mlflow client."""
    folder = tmp_path / f"model-src-{accuracy}"
    folder.mkdir()
    (folder / "MLmodel").write_text("artifact_path: model\nflavors:\n  python_function: {}\n")
    (folder / "model.pkl").write_bytes(os.urandom(2048))
    mlflow.set_experiment("churn-mlflow")
    with mlflow.start_run() as run:
        mlflow.log_metric("accuracy", accuracy)
        mlflow.log_artifacts(str(folder), artifact_path="model")
    return run.info.run_id


def test_register_alias_search_stage_delete(server, server_registry, tmp_path):
    run_id = logged_run(tmp_path)
    client = MlflowClient()

    v1 = mlflow.register_model(f"runs:/{run_id}/model", "churn")
    v2 = mlflow.register_model(f"runs:/{run_id}/model", "churn")
    assert (v1.name, v1.version, v2.version) == ("churn", "1", "2")
    assert v1.run_id == run_id and v1.status == "READY" and v1.current_stage == "None"
    assert v1.source == f"runs:/{run_id}/model"
    stored = server_registry.get_model_version("churn", 1)
    assert stored.run_id == run_id and stored.metrics == {"accuracy": 0.9}
    assert stored.user_id == "anonymous" and stored.flavor is None  # MLflow's own layout
    assert stored.artifact_uri.startswith(str(tmp_path / "server-artifacts"))

    client.set_registered_model_alias("churn", "champion", "1")
    by_alias = client.get_model_version_by_alias("churn", "champion")
    assert (by_alias.version, by_alias.aliases) == ("1", ["champion"])
    assert server_registry.get_alias("churn", "champion") == 1

    found = client.search_model_versions("name='churn'")
    assert [(v.name, v.version) for v in found] == [("churn", "2"), ("churn", "1")]
    assert [v.version for v in client.search_model_versions(f"run_id = '{run_id}'")] == ["2", "1"]
    assert client.search_model_versions("name='other'") == []

    model = client.get_registered_model("churn")
    assert model.name == "churn" and model.aliases == {"champion": "1"}
    assert [v.version for v in model.latest_versions] == ["2"]

    with warnings.catch_warnings():  # stages are deprecated in MLflow: still served
        warnings.simplefilter("ignore")
        client.transition_model_version_stage("churn", "1", "Production")
        moved = client.transition_model_version_stage(
            "churn", "2", "production", archive_existing_versions=True
        )
        latest = client.get_latest_versions("churn", stages=["Production"])
    assert moved.current_stage == "Production"
    assert client.get_model_version("churn", "1").current_stage == "Archived"
    assert [v.version for v in latest] == ["2"]
    periods = server_registry.assignments("churn", "stage", "Production")
    assert [(p.version, p.ended_at is None) for p in periods] == [(1, False), (2, True)]

    uri = client.get_model_version_download_uri("churn", "2")
    assert uri.startswith("mlflow-artifacts:/") and uri.endswith(f"/{run_id}/artifacts/model")
    fetched = Path(download_artifacts(artifact_uri=uri, dst_path=str(tmp_path / "dl")))
    assert sorted(p.name for p in fetched.iterdir()) == ["MLmodel", "model.pkl"]

    client.delete_model_version("churn", "1")
    with pytest.raises(MlflowException) as gone:
        client.get_model_version_by_alias("churn", "champion")
    assert _error_code(gone) == "RESOURCE_DOES_NOT_EXIST"
    assert server_registry.get_registered_model("churn").aliases == {}
    assert [v.version for v in client.search_model_versions("name='churn'")] == ["2"]
    assert server_registry.audit_events("churn")[-1]["action"] == "delete_version"


def test_unknown_names_are_resource_does_not_exist(server, server_registry, tmp_path):
    client = MlflowClient()
    with pytest.raises(MlflowException) as missing:
        client.get_registered_model("nope")
    assert _error_code(missing) == "RESOURCE_DOES_NOT_EXIST"
    run_id = logged_run(tmp_path)
    mlflow.register_model(f"runs:/{run_id}/model", "churn")
    for call in (
        lambda: client.get_model_version("churn", "9"),
        lambda: client.set_registered_model_alias("churn", "champion", "9"),
        lambda: client.get_model_version_by_alias("churn", "nobody"),
        lambda: client.delete_model_version("nope", "1"),
    ):
        with pytest.raises(MlflowException) as err:
            call()
        assert _error_code(err) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as bad:
        client.set_registered_model_alias("churn", "bad alias!", "1")
    assert _error_code(bad) == "INVALID_PARAMETER_VALUE"
    assert server_registry.get_registered_model("churn").aliases == {}


def test_policy_refusal_names_the_policy(server, server_registry, tmp_path):
    client = MlflowClient()
    run_id = logged_run(tmp_path, accuracy=0.7)
    mlflow.register_model(f"runs:/{run_id}/model", "churn")
    policy = {"required_approvals": 1, "metric_floors": {"accuracy": 0.8}}
    assert httpx.put(f"{server.url}/api/v1/models/churn/policy", json=policy).status_code == 200

    with pytest.raises(MlflowException, match="approval policy of 'churn'") as refused:
        client.set_registered_model_alias("churn", "production", "1")
    assert _error_code(refused) == "INVALID_STATE"
    assert "needs 1 approval(s)" in str(refused.value) and "'accuracy' = 0.7" in str(refused.value)
    with warnings.catch_warnings(), pytest.raises(MlflowException, match="approval policy"):
        warnings.simplefilter("ignore")
        client.transition_model_version_stage("churn", "1", "Production")
    client.set_registered_model_alias("churn", "challenger", "1")  # not protected
    stored = server_registry.get_model_version("churn", 1)
    assert stored.aliases == ["challenger"] and stored.stage == "None"


def test_registered_models_crud_and_search(server, server_registry, tmp_path):
    client = MlflowClient()
    created = client.create_registered_model("churn", tags={"team": "risk"}, description="d")
    assert (created.name, created.description, created.tags) == ("churn", "d", {"team": "risk"})
    with pytest.raises(MlflowException) as dup:
        client.create_registered_model("churn")
    assert _error_code(dup) == "RESOURCE_ALREADY_EXISTS"
    for name in ("Churn-EU", "fraud", "fraud_v2", "fraudXv2"):
        client.create_registered_model(name)

    names = [m.name for m in client.search_registered_models()]
    assert names == ["Churn-EU", "churn", "fraud", "fraudXv2", "fraud_v2"]
    assert [m.name for m in client.search_registered_models("name LIKE 'ch%'")] == ["churn"]
    insensitive = client.search_registered_models("name ILIKE 'ch%'")
    assert [m.name for m in insensitive] == ["Churn-EU", "churn"]
    assert [m.name for m in client.search_registered_models("name = 'fraud_v2'")] == ["fraud_v2"]
    assert [m.name for m in client.search_registered_models("tags.team = 'risk'")] == ["churn"]
    newest_first = client.search_registered_models(order_by=["last_updated_timestamp DESC"])
    assert newest_first[0].name == "fraudXv2"

    page = client.search_registered_models(max_results=2)
    assert [m.name for m in page] == ["Churn-EU", "churn"] and page.token
    rest = client.search_registered_models(max_results=10, page_token=page.token)
    assert [m.name for m in rest] == ["fraud", "fraudXv2", "fraud_v2"] and not rest.token

    with pytest.raises(MlflowException, match="Invalid filter key 'owner'") as bad:
        client.search_registered_models("owner = 'x'")
    assert _error_code(bad) == "INVALID_PARAMETER_VALUE"

    assert client.update_registered_model("churn", description="new").description == "new"
    client.set_registered_model_tag("churn", "tier", "gold")
    client.delete_registered_model_tag("churn", "team")
    assert client.get_registered_model("churn").tags == {"tier": "gold"}
    client.rename_registered_model("fraud", "fraud-v1")
    assert client.get_registered_model("fraud-v1").name == "fraud-v1"
    client.delete_registered_model("fraud-v1")
    assert [m.name for m in client.search_registered_models("name LIKE 'fraud%'")] == [
        "fraudXv2",
        "fraud_v2",
    ]
    assert server_registry.get_registered_model("churn").tags == {"tier": "gold"}


def test_model_versions_details(server, server_registry, tmp_path):
    client = MlflowClient()
    run_id = logged_run(tmp_path)
    run = client.get_run(run_id)
    client.create_registered_model("churn")

    # The run's artifact location with its run id: recorded as a runs:/ source.
    mv = client.create_model_version(
        "churn", f"{run.info.artifact_uri}/model", run_id, tags={"k": "v"}, description="x"
    )
    assert (mv.version, mv.source, mv.tags, mv.description) == (
        "1",
        f"runs:/{run_id}/model",
        {"k": "v"},
        "x",
    )
    # Any mlflow-artifacts location without a run: kept as given.
    raw = client.create_model_version("churn", "mlflow-artifacts:/shared/models/churn")
    assert raw.source == "mlflow-artifacts:/shared/models/churn" and not raw.run_id
    stored = server_registry.get_model_version("churn", 2)
    assert stored.artifact_uri == str(tmp_path / "server-artifacts" / "shared/models/churn")
    assert client.get_model_version_download_uri("churn", "2") == raw.source

    with pytest.raises(MlflowException, match="does not record MLflow logged models") as lm:
        client.create_model_version("churn", "models:/m-0123abcd")
    assert _error_code(lm) == "INVALID_PARAMETER_VALUE"

    updated = client.update_model_version("churn", "1", description="tuned")
    assert updated.description == "tuned"
    client.set_model_version_tag("churn", "1", "validated", "yes")
    client.delete_model_version_tag("churn", "1", "k")
    assert client.get_model_version("churn", "1").tags == {"validated": "yes"}

    assert [v.version for v in client.search_model_versions("name LIKE 'ch%'")] == ["2", "1"]
    ordered = client.search_model_versions("name='churn'", order_by=["version_number ASC"])
    assert [v.version for v in ordered] == ["1", "2"]
    both = client.search_model_versions(f"name = 'churn' AND run_id IN ('{run_id}', 'x')")
    assert [v.version for v in both] == ["1"]
    with pytest.raises(MlflowException, match="Invalid filter") as bad:
        client.search_model_versions("name = 'churn' OR run_id = 'x'")
    assert _error_code(bad) == "INVALID_PARAMETER_VALUE"
    assert server_registry.get_model_version("churn", 1).metrics == {"accuracy": 0.9}


def test_registry_wire_shapes(server, tmp_path):
    """GET with query parameters, DELETE with a JSON body, versions as strings."""
    url = f"{server.url}{API}"
    created = httpx.post(f"{url}/registered-models/create", json={"name": "m"}).json()
    assert created["registered_model"]["name"] == "m"
    got = httpx.get(f"{url}/registered-models/get", params={"name": "m"}).json()
    assert set(got["registered_model"]) >= {"name", "creation_timestamp", "tags", "aliases"}
    body = {"name": "m", "source": "mlflow-artifacts:/x"}
    mv = httpx.post(f"{url}/model-versions/create", json=body).json()["model_version"]
    assert (mv["version"], mv["status"], mv["current_stage"]) == ("1", "READY", "None")
    alias = {"name": "m", "alias": "a", "version": 1}  # a number where MLflow sends a string
    assert httpx.post(f"{url}/registered-models/alias", json=alias).json() == {}
    got = httpx.get(f"{url}/registered-models/get", params={"name": "m"}).json()
    assert got["registered_model"]["aliases"] == [{"alias": "a", "version": "1"}]
    gone = httpx.request(
        "DELETE", f"{url}/registered-models/alias", json={"name": "m", "alias": "a"}
    )
    assert gone.status_code == 200
    missing = httpx.get(f"{url}/registered-models/alias", params={"name": "m", "alias": "a"})
    assert (missing.status_code, missing.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


# -- the search language, without a server ----------------------------------------------
def test_filter_parsing_and_matching():
    clauses = parse_filter(
        "name LIKE 'churn\\_%' AND tag.`mlflow.prompt.is_prompt` != 'true' AND "
        "version_number >= 2 AND run_id NOT IN ('a', 'b')",
        VERSION_KEYS,
        "model versions",
    )
    assert clauses == [
        Clause("name", "LIKE", "churn\\_%"),
        Clause("tags.mlflow.prompt.is_prompt", "!=", "true"),
        Clause("version_number", ">=", 2),
        Clause("run_id", "NOT IN", ("a", "b")),
    ]
    keep = matches(clauses)

    def version(name: str, number: int, run_id: str | None, **tags: str) -> ModelVersion:
        return ModelVersion(
            name,
            number,
            "s",
            "u",
            run_id,
            "None",
            "READY",
            None,
            "",
            None,
            None,
            {},
            [],
            0,
            0,
            tags,
        )

    assert keep(version("churn_eu", 2, "c"))
    assert not keep(version("churnXeu", 2, "c"))  # the escaped _ is literal
    assert not keep(version("churn_eu", 1, "c"))
    assert not keep(version("churn_eu", 2, "a"))
    assert not keep(version("churn_eu", 2, None))  # NOT IN needs a value, as in SQL
    assert not keep(version("churn_eu", 3, "c", **{"mlflow.prompt.is_prompt": "true"}))
    assert parse_filter("", MODEL_KEYS, "registered models") == []
    assert parse_filter('name = "it\'s"', MODEL_KEYS, "m") == [Clause("name", "=", "it's")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name = 'a' OR name = 'b'", "clauses join with AND"),
        ("name > 'a'", "only for version_number"),
        ("version_number = 'x'", "compares to a number"),
        ("name = ", "ends too early"),
        ("name = 'a' AND", "nothing after AND"),
        ("stage = 'x'", "Invalid filter key 'stage'"),
        ("name IN 'a'", "IN needs a (list)"),
        ("name ~ 'a'", "cannot read it"),
    ],
)
def test_filter_errors_say_what_is_wrong(text, message):
    with pytest.raises(InvalidParameter, match=re.escape(message)):
        parse_filter(text, VERSION_KEYS, "model versions")
