"""``my.log_model`` and ``my.load_model`` over every kind of URI: a run's artifacts
(``runs:/``) in the local store, an S3 bucket (a moto server), ``file://`` and plain
paths, and ``models:/`` through the resolver hook the registry plugs in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import modelyard as my
from modelyard.core.artifacts import open_artifact_store
from modelyard.core.errors import (
    InvalidParameter,
    InvalidState,
    ResourceAlreadyExists,
    ResourceNotFound,
)
from modelyard.models import loader
from modelyard.models import logging as model_logging
from modelyard.tracking.service import TrackingService


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, LogisticRegression(max_iter=500).fit(X, y)


@pytest.fixture
def sdk(home: Path, db_url: str, tmp_path: Path) -> Iterator[TrackingService]:
    my.configure(home=home, db_url=db_url, artifacts=str(tmp_path / "artifacts"))
    service = my.client()
    yield service
    while my.active_run():
        my.end_run()
    service.store.close()
    my.configure(home=tmp_path / "unused")


def _cached(home: Path) -> list[Path]:
    root = home / "cache" / "models"
    return sorted(p for p in root.iterdir() if not p.name.startswith(".")) if root.exists() else []


def test_log_model_then_load_from_the_run(iris, sdk: TrackingService, home: Path) -> None:
    X, clf = iris
    with my.start_run() as run:
        info = my.log_model(clf, "model", input_example=X.head(3), metadata={"owner": "ml"})
    assert info.model_uri == f"runs:/{run.run_id}/model"
    assert (info.run_id, info.name, info.flavor) == (run.run_id, "model", "sklearn")
    assert [f.name for f in info.signature.inputs] == list(X.columns)
    listed = {f.path for f in sdk.list_artifacts(run.run_id, "model")}
    assert "model/modelyard-model.yaml" in listed and "model/model.skops" in listed
    tag = json.loads(sdk.get_run(run.run_id).data.tags["modelyard.models"])
    assert tag == [
        {
            "name": "model",
            "flavor": "sklearn",
            "signature": {
                "kind": "columns",
                "inputs": [f"{c}:float64" for c in X.columns],
                "outputs": ["output:int64"],
            },
        }
    ]
    model = my.load_model(info.model_uri)
    np.testing.assert_array_equal(model.predict(X), clf.predict(X))
    assert model.metadata.metadata == {"owner": "ml"}
    [cached] = _cached(home)
    assert model.path == cached
    first = (cached / "model.skops").stat().st_ino
    again = my.load_model(info.model_uri)  # same manifest: the cached copy is reused
    assert again.path == cached and (cached / "model.skops").stat().st_ino == first


def test_a_second_model_in_the_run_extends_the_tag(iris, sdk: TrackingService) -> None:
    X, clf = iris
    with my.start_run() as run:
        my.log_model(clf, "model")
        info = my.log_model(clf, "candidates/b", input_example=X.head(2))
        with pytest.raises(ResourceAlreadyExists, match="already has artifacts at 'model'"):
            my.log_model(clf, "model")
    assert info.model_uri == f"runs:/{run.run_id}/candidates/b"
    tag = json.loads(sdk.get_run(run.run_id).data.tags["modelyard.models"])
    assert [(e["name"], e["signature"] is None) for e in tag] == [
        ("model", True),
        ("candidates/b", False),
    ]
    loaded = my.load_model(info.model_uri, dst=Path("here"))
    assert loaded.path == Path("here")
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


def test_log_model_needs_an_active_run_and_registers_through_the_hook(
    iris, sdk: TrackingService, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, clf = iris
    with pytest.raises(InvalidState, match="No active run"):
        my.log_model(clf)
    monkeypatch.setattr(model_logging, "REGISTER_HOOK", None)
    with my.start_run() as run:
        # Without a hook set, the registry installs itself and registers for real.
        first = my.log_model(clf, "first", registered_model_name="churn")
        assert first.registered_version.version == 1
        assert sdk.list_artifacts(run.run_id)[0].path == "first"
        calls = []
        monkeypatch.setattr(
            model_logging, "REGISTER_HOOK", lambda name, info: calls.append((name, info)) or 3
        )
        info = my.log_model(clf, registered_model_name="churn")
    assert info.registered_version == 3
    assert calls == [("churn", info.__class__(**{**info.__dict__, "registered_version": None}))]


def test_a_run_without_that_model_is_a_clear_error(sdk: TrackingService) -> None:
    with my.start_run() as run:
        my.log_text("hi", "notes/a.txt")
    with pytest.raises(ResourceNotFound, match=rf"runs:/{run.run_id}/notes.*holds no model"):
        my.load_model(f"runs:/{run.run_id}/notes")
    with pytest.raises(InvalidParameter, match="expected runs:/<run_id>/<artifact path>"):
        my.load_model(f"runs:/{run.run_id}")


def test_a_corrupted_cache_is_fetched_again(iris, sdk: TrackingService, home: Path) -> None:
    X, clf = iris
    with my.start_run():
        info = my.log_model(clf, input_example=X.head(2))
    [cached] = [my.load_model(info.model_uri).path]
    (cached / "model.skops").write_bytes(b"garbage")
    model = my.load_model(info.model_uri)
    np.testing.assert_array_equal(model.predict(X), clf.predict(X))
    assert (cached / "model.skops").read_bytes() != b"garbage"


def test_load_from_s3(iris, s3_artifacts: str, sdk: TrackingService, home: Path, tmp_path) -> None:
    X, clf = iris
    my.models.save(clf, tmp_path / "pkg", input_example=X.head(2))
    store = open_artifact_store(s3_artifacts)
    assert store.put_dir(tmp_path / "pkg", "models/iris") == 4
    url = f"{s3_artifacts}/models/iris"
    model = my.load_model(url)
    np.testing.assert_array_equal(model.predict(X), clf.predict(X))
    [cached] = _cached(home)
    assert model.path == cached
    # A new package at the same URL: its manifest differs, so it is downloaded again.
    other = LogisticRegression(max_iter=500, C=0.01).fit(X, clf.predict(X) == 0)
    my.models.save(other, tmp_path / "pkg2", input_example=X.head(2))
    store.delete("models/iris")
    store.put_dir(tmp_path / "pkg2", "models/iris")
    reloaded = my.load_model(url)
    assert reloaded.path == cached
    np.testing.assert_array_equal(reloaded.predict(X), other.predict(X))
    with pytest.raises(ResourceNotFound, match="holds no model package"):
        my.load_model(f"{s3_artifacts}/models/nothing")


def test_local_paths_and_file_uris(iris, tmp_path: Path) -> None:
    X, clf = iris
    my.models.save(clf, tmp_path / "pkg")
    for uri in (str(tmp_path / "pkg"), (tmp_path / "pkg").as_uri(), tmp_path / "pkg"):
        model = my.load_model(uri)
        assert model.path == tmp_path / "pkg"
        np.testing.assert_array_equal(model.predict(X), clf.predict(X))
    copied = my.load_model(tmp_path / "pkg", dst=tmp_path / "copy")
    assert copied.path == tmp_path / "copy" and (tmp_path / "copy" / "model.skops").is_file()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("keep")
    with pytest.raises(ResourceAlreadyExists, match="holds no model package"):
        my.load_model(tmp_path / "pkg", dst=tmp_path / "busy")
    assert (tmp_path / "busy" / "mine.txt").read_text() == "keep"
    with pytest.raises(ResourceNotFound, match="No model package at"):
        my.load_model(tmp_path / "nowhere")


def test_models_uris_go_through_the_registered_resolver(
    iris, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, clf = iris
    my.models.save(clf, tmp_path / "pkg")
    # Unregistered, the registry plugs itself in on first use, then answers.
    monkeypatch.delitem(loader._resolvers, "models", raising=False)
    with pytest.raises(ResourceNotFound, match="Registered model 'churn' not found"):
        my.load_model("models:/churn@champion")
    assert "models" in loader._resolvers
    seen = []

    def resolve(uri: str) -> str:
        seen.append(uri)
        return (tmp_path / "pkg").as_uri()

    monkeypatch.setitem(loader._resolvers, "models", resolve)
    model = my.load_model("models:/churn@champion")
    np.testing.assert_array_equal(model.predict(X), clf.predict(X))
    assert seen == ["models:/churn@champion"]
    monkeypatch.setitem(loader._resolvers, "models", lambda uri: uri)  # a loop
    with pytest.raises(InvalidParameter, match="did not resolve"):
        my.load_model("models:/churn/1")
    with pytest.raises(InvalidParameter, match="Cannot register"):
        my.models.register_scheme("runs", resolve)
