"""The registry service on the local store (SQLite, and PostgreSQL in that pass)."""

from __future__ import annotations

import threading
import time

import pytest
import yaml

from modelyard.core.artifacts import open_artifact_store
from modelyard.core.errors import (
    InvalidParameter,
    PolicyViolation,
    ResourceNotFound,
)
from modelyard.core.store.engine import open_engine
from modelyard.registry.backends import open_registry
from modelyard.registry.service import parse_models_uri
from modelyard.tracking.entities import Metric, RunInput
from modelyard.tracking.service import TrackingService
from modelyard.tracking.sql_store import SqlTrackingStore

MANIFEST = {
    "format_version": 1,
    "flavor": "sklearn",
    "signature": {
        "kind": "columns",
        "inputs": [{"name": "age", "dtype": "int64"}],
        "outputs": [{"name": "prediction", "dtype": "int64"}],
    },
}


@pytest.fixture
def tracking(db_url, tmp_path):
    store = SqlTrackingStore(open_engine(db_url), str(tmp_path / "art"), actor="ann")
    yield TrackingService(store, open_artifact_store)
    store.close()


@pytest.fixture
def reg(tracking):
    return open_registry(tracking)


def _run_with_model(tracking, tmp_path, accuracy=0.9, with_model=True):
    run = tracking.create_run("0")
    rid = run.info.run_id
    tracking.log_batch(rid, metrics=[Metric("accuracy", accuracy, 1, 0)], params={"C": "1.0"})
    tracking.log_inputs(rid, [RunInput("churn", "d1g3st", "s3://data/churn", "train")])
    if with_model:
        folder = tmp_path / f"pkg-{rid[:6]}" / "model"
        folder.mkdir(parents=True)
        (folder / "modelyard-model.yaml").write_text(yaml.safe_dump(MANIFEST))
        (folder / "model.skops").write_bytes(b"weights")
        tracking.log_artifact(rid, folder)
    return rid


def test_register_snapshots_run_and_manifest(reg, tracking, tmp_path):
    rid = _run_with_model(tracking, tmp_path)
    v1 = reg.register_model(f"runs:/{rid}/model", "churn", description="first")
    assert (v1.name, v1.version, v1.stage, v1.run_id) == ("churn", 1, "None", rid)
    assert v1.flavor == "sklearn" and v1.signature == MANIFEST["signature"]
    assert v1.metrics == {"accuracy": 0.9}
    assert v1.lineage == [
        {
            "dataset_name": "churn",
            "dataset_digest": "d1g3st",
            "dataset_uri": "s3://data/churn",
            "context": "train",
        }
    ]
    assert v1.artifact_uri.endswith(f"/{rid}/artifacts/model")
    assert reg.register_model(f"runs:/{rid}/model", "churn").version == 2
    model = reg.get_registered_model("churn")
    assert [v.version for v in model.latest_versions] == [2]


def test_register_from_a_path_and_refusals(reg, tracking, tmp_path):
    folder = tmp_path / "local-model"
    folder.mkdir()
    (folder / "modelyard-model.yaml").write_text(yaml.safe_dump(MANIFEST))
    assert reg.register_model(str(folder), "local").artifact_uri == str(folder)

    rid = _run_with_model(tracking, tmp_path, with_model=False)
    with pytest.raises(InvalidParameter, match="No model found in run .* modelyard-model.yaml"):
        reg.register_model(f"runs:/{rid}/model", "churn")
    with pytest.raises(InvalidParameter, match="No model found in"):
        reg.register_model(str(tmp_path / "empty"), "churn")
    with pytest.raises(ResourceNotFound):
        reg.get_registered_model("churn")  # nothing was created by the failed calls
    with pytest.raises(InvalidParameter, match="Invalid model name"):
        reg.register_model(str(folder), "../evil")


def test_concurrent_registrations_get_distinct_versions(reg, tracking, tmp_path):
    rid = _run_with_model(tracking, tmp_path)
    got, errors = [], []

    def register():
        try:
            got.append(reg.register_model(f"runs:/{rid}/model", "race").version)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=register) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert sorted(got) == list(range(1, 9))


def test_aliases_history_and_rollback(reg, tracking, tmp_path):
    rid = _run_with_model(tracking, tmp_path)
    for _ in range(3):
        reg.register_model(f"runs:/{rid}/model", "churn")
    with pytest.raises(ResourceNotFound, match="has no version 9"):
        reg.set_alias("churn", "production", 9)
    with pytest.raises(InvalidParameter, match="Invalid alias"):
        reg.set_alias("churn", "bad alias!", 1)
    with pytest.raises(InvalidParameter, match="reserved"):
        reg.set_alias("churn", "v2", 1)

    reg.set_alias("churn", "production", 1)
    t1 = int(time.time() * 1000)
    time.sleep(0.01)
    reg.set_alias("churn", "production", 2)
    time.sleep(0.01)
    reg.set_alias("churn", "production", 3, reason="better f1")
    assert reg.get_version_by_alias("churn", "production").version == 3
    assert reg.get_model_version("churn", 3).aliases == ["production"]

    periods = reg.history("churn", alias="production")
    assert [(p.version, p.ended_at is None) for p in periods] == [(1, False), (2, False), (3, True)]
    assert periods[2].reason == "better f1" and periods[0].started_by == "ann"
    assert periods[0].ended_at == periods[1].started_at
    assert reg.version_at("churn", "production", t1) == 1
    assert reg.version_at("churn", "production", 0) is None

    back = reg.rollback("churn", "production")
    assert back.version == 2
    assert reg.history("churn", alias="production")[-1].reason == "rollback from version 3"
    with pytest.raises(ResourceNotFound, match="no alias 'staging'"):
        reg.rollback("churn", "staging")


def test_deleting_a_version_leaves_no_dangling_alias(reg, tracking, tmp_path):
    rid = _run_with_model(tracking, tmp_path)
    reg.register_model(f"runs:/{rid}/model", "churn")
    reg.register_model(f"runs:/{rid}/model", "churn")
    reg.set_alias("churn", "champion", 2)
    reg.set_alias("churn", "production", 2)
    assert sorted(reg.delete_model_version("churn", 2)) == ["champion", "production"]
    assert reg.get_registered_model("churn").aliases == {}
    with pytest.raises(ResourceNotFound, match="no alias 'champion'"):
        reg.get_version_by_alias("churn", "champion")
    assert all(p.ended_at is not None for p in reg.history("churn"))
    # Numbers are never reused: the history's "version 2" stays the deleted one.
    assert reg.register_model(f"runs:/{rid}/model", "churn").version == 3


def test_stages_archive_existing(reg, tracking, tmp_path):
    rid = _run_with_model(tracking, tmp_path)
    for _ in range(2):
        reg.register_model(f"runs:/{rid}/model", "churn")
    reg.transition_stage("churn", 1, "production")
    reg.transition_stage("churn", 2, "Production", archive_existing=True)
    assert reg.get_model_version("churn", 1).stage == "Archived"
    assert reg.get_model_version("churn", 2).stage == "Production"
    prod = reg.history("churn", stage="Production")
    assert [(p.version, p.ended_at is None) for p in prod] == [(1, False), (2, True)]
    assert reg.resolve("models:/churn/Production").version == 2
    with pytest.raises(InvalidParameter, match="Invalid stage 'Live'"):
        reg.transition_stage("churn", 1, "Live")


def test_policy_requires_approvals_and_metric_floors(reg, tracking, tmp_path):
    good = _run_with_model(tracking, tmp_path, accuracy=0.91)
    weak = _run_with_model(tracking, tmp_path, accuracy=0.71)
    reg.register_model(f"runs:/{good}/model", "churn")  # v1
    reg.register_model(f"runs:/{weak}/model", "churn")  # v2
    reg.set_policy("churn", required_approvals=1, metric_floors={"accuracy": 0.8})

    reg.set_alias("churn", "challenger", 2)  # unprotected aliases need nothing
    with pytest.raises(PolicyViolation, match="needs 1 approval\\(s\\) and has 0") as err:
        reg.set_alias("churn", "production", 1)
    assert "approval policy of 'churn'" in str(err.value)
    with pytest.raises(PolicyViolation, match="'accuracy' = 0.71 is below its floor 0.8"):
        reg.approve("churn", 2, reason="fine")
        reg.set_alias("churn", "production", 2)
    with pytest.raises(PolicyViolation):
        reg.transition_stage("churn", 1, "Production")

    reg.approve("churn", 1, reason="reviewed the card")
    reg.set_alias("churn", "production", 1)
    assert reg.get_version_by_alias("churn", "production").version == 1

    reg.reject("churn", 1, reason="bias found")  # same actor changes their mind
    with pytest.raises(PolicyViolation, match="rejected by ann"):
        reg.transition_stage("churn", 1, "Production")
    decisions = [(a.version, a.decision, a.actor, a.reason) for a in reg.approvals("churn")]
    assert decisions == [
        (2, "approved", "ann", "fine"),
        (1, "approved", "ann", "reviewed the card"),
        (1, "rejected", "ann", "bias found"),
    ]


def test_every_change_is_audited(reg, tracking, tmp_path):
    rid = _run_with_model(tracking, tmp_path)
    reg.register_model(f"runs:/{rid}/model", "churn")
    reg.register_model(f"runs:/{rid}/model", "churn")
    reg.set_alias("churn", "production", 1)
    reg.set_alias("churn", "production", 2)
    reg.transition_stage("churn", 2, "Staging")
    reg.delete_model_version("churn", 1)
    events = [(e["action"], e["entity_id"]) for e in reg.audit("churn")]
    assert events == [
        ("create_model", "churn"),
        ("create_version", "churn/1"),
        ("create_version", "churn/2"),
        ("set_alias", "churn"),
        ("set_alias", "churn"),
        ("transition_stage", "churn/2"),
        ("delete_version", "churn/1"),
    ]
    second_alias = reg.audit("churn")[4]
    assert '"version": 1' in second_alias["before"] and '"version": 2' in second_alias["after"]
    assert second_alias["actor"] == "ann"


def test_rename_keeps_versions_aliases_and_history(reg, tracking, tmp_path):
    rid = _run_with_model(tracking, tmp_path)
    reg.register_model(f"runs:/{rid}/model", "churn")
    reg.set_alias("churn", "production", 1)
    reg.rename_registered_model("churn", "churn-v2")
    assert reg.get_version_by_alias("churn-v2", "production").version == 1
    assert [p.version for p in reg.history("churn-v2", alias="production")] == [1]
    with pytest.raises(ResourceNotFound, match="'churn' not found"):
        reg.get_registered_model("churn")


def test_models_uri_parsing():
    assert parse_models_uri("models:/churn/7") == ("churn", 7, None, None)
    assert parse_models_uri("models:/churn@champion") == ("churn", None, "champion", None)
    assert parse_models_uri("models:/churn/production") == ("churn", None, None, "Production")
    with pytest.raises(InvalidParameter, match="Invalid model URI"):
        parse_models_uri("models:churn")
