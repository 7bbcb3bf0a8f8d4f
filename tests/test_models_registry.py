"""The whole path: train, log a model, register it, promote it, load it by alias,
evaluate it against the champion — on the local store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier

import modelyard as my
from modelyard.core.errors import InvalidParameter, PolicyViolation, ResourceNotFound
from modelyard.evaluation import check


@pytest.fixture
def local_sdk(db_url, tmp_path):
    my.configure(home=tmp_path / "home", db_url=db_url, artifacts=str(tmp_path / "art"))
    yield
    while my.active_run():
        my.end_run()


@pytest.fixture(scope="module")
def data():
    frame = load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 2, 3, 7, 20, 21, 30]]
    return train_test_split(frame, test_size=0.3, random_state=0, stratify=frame.target)


def _train(model, train, trusted=None):
    X, y = train.drop(columns="target"), train.target
    with my.start_run(experiment="churn") as run:
        model.fit(X, y)
        my.log_metric("accuracy", float(model.score(X, y)))
        info = my.log_model(
            model, "model", input_example=X.head(3), registered_model_name="churn", trusted=trusted
        )
    return run, info, model


def test_log_register_promote_load_by_alias(local_sdk, data):
    train, test = data
    run, info, lr = _train(LogisticRegression(max_iter=5000), train)
    v1 = info.registered_version
    assert (v1.name, v1.version, v1.run_id, v1.flavor) == ("churn", 1, run.run_id, "sklearn")
    assert [c["name"] for c in v1.signature["inputs"]][:2] == ["mean radius", "mean texture"]
    assert v1.metrics["accuracy"] > 0.9

    my.set_policy("churn", required_approvals=1, metric_floors={"accuracy": 0.8})
    with pytest.raises(PolicyViolation, match="needs 1 approval"):
        my.set_alias("churn", "production", 1)
    my.approve("churn", 1, reason="card reviewed")
    my.set_alias("churn", "production", 1)

    model = my.load_model("models:/churn@production")
    X = test.drop(columns="target")
    np.testing.assert_array_equal(model.predict(X), lr.predict(X))
    np.testing.assert_array_equal(my.load_model("models:/churn/1").predict(X), lr.predict(X))

    # skops does not trust tree internals by default: the user says so explicitly.
    _, info2, tree = _train(
        DecisionTreeClassifier(max_depth=1, random_state=0),
        train,
        trusted=["sklearn.tree._tree.Tree"],
    )
    assert info2.registered_version.version == 2
    my.approve("churn", 2)
    my.set_alias("churn", "production", 2)
    np.testing.assert_array_equal(
        my.load_model("models:/churn@production").predict(X), tree.predict(X)
    )
    assert my.rollback("churn", "production").version == 1
    np.testing.assert_array_equal(
        my.load_model("models:/churn@production").predict(X), lr.predict(X)
    )

    card = my.model_card("churn", 1, purpose="Flag customers likely to leave")
    assert "Flag customers likely to leave" in card and "mean radius" in card
    assert "card reviewed" in card  # the approval and its reason
    assert my.model_card("churn", 1, format="html").lstrip().lower().startswith("<!doctype")
    with pytest.raises(InvalidParameter, match="format must be"):
        my.model_card("churn", 1, format="pdf")

    # The gate compares the two by URI on held-out data.
    verdict = check(
        "models:/churn/2",
        test,
        "target",
        champion="models:/churn@production",
        max_regression={"accuracy": 0.01},
    )
    assert not verdict.passed and verdict.gates[0].champion > verdict.gates[0].candidate


def test_missing_things_are_named(local_sdk, data):
    train, test = data
    _train(LogisticRegression(max_iter=5000), train)
    with pytest.raises(ResourceNotFound, match="has no alias 'champion'"):
        my.load_model("models:/churn@champion")
    with pytest.raises(ResourceNotFound, match="'nope' not found"):
        my.load_model("models:/nope/1")
    model = my.load_model("models:/churn/1")
    bad = test.drop(columns=["target", "mean radius"])
    with pytest.raises(InvalidParameter, match="mean radius"):
        model.predict(bad)
    wrong = test.drop(columns="target").assign(**{"mean texture": "high"})
    with pytest.raises(InvalidParameter, match="mean texture"):
        model.predict(pd.DataFrame(wrong))
