"""Evaluation metrics, feature importance, logging to a run, and gates, on real
scikit-learn models and data that scikit-learn ships."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split

import modelyard as my
from modelyard.core.errors import InvalidParameter
from modelyard.evaluation import check, evaluate


@pytest.fixture(scope="module")
def cancer():
    frame = load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 2, 3, 7, 20, 21, 30]]
    train, test = train_test_split(frame, test_size=0.3, random_state=0, stratify=frame.target)
    X, y = train.drop(columns="target"), train.target
    good = LogisticRegression(max_iter=5000).fit(X, y)
    bad = DummyClassifier(strategy="most_frequent").fit(X, y)
    return good, bad, test.reset_index(drop=True)


@pytest.fixture
def local_sdk(db_url, tmp_path):
    my.configure(home=tmp_path / "home", db_url=db_url, artifacts=str(tmp_path / "art"))
    yield
    while my.active_run():
        my.end_run()


def test_classification_metrics_match_sklearn(cancer):
    good, _, test = cancer
    result = evaluate(good, test, "target", log=False)
    X, y = test.drop(columns="target"), test.target
    pred = good.predict(X)
    assert result.metrics["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert result.metrics["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert result.metrics["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, good.predict_proba(X)[:, 1])
    )
    assert result.metrics["log_loss"] == pytest.approx(skm.log_loss(y, good.predict_proba(X)))
    assert result.confusion_matrix["labels"] == [0, 1]
    assert np.array(result.confusion_matrix["matrix"]).sum() == len(test)
    # The most important features are real ones, and shuffling them hurts.
    top = next(iter(result.feature_importance))
    assert top in X.columns and result.feature_importance[top] > 0


def test_regression_metrics_match_sklearn():
    data = load_diabetes(as_frame=True).frame
    model = LinearRegression().fit(data.drop(columns="target"), data.target)
    result = evaluate(model, data, "target", task="regression", log=False, importance=False)
    pred = model.predict(data.drop(columns="target"))
    assert result.metrics["rmse"] == pytest.approx(
        np.sqrt(skm.mean_squared_error(data.target, pred))
    )
    assert result.metrics["r2"] == pytest.approx(skm.r2_score(data.target, pred))
    assert result.metrics["mae"] == pytest.approx(skm.mean_absolute_error(data.target, pred))
    assert result.confusion_matrix is None


def test_evaluation_is_logged_to_the_active_run(cancer, local_sdk):
    good, _, test = cancer
    with my.start_run(experiment="eval") as run:
        result = evaluate(good, test, "target")
    assert result.run_id == run.run_id
    stored = my.get_run(run.run_id)
    assert stored.data.metrics["eval_accuracy"] == pytest.approx(result.metrics["accuracy"])
    assert stored.data.tags["modelyard.eval_rows"] == str(len(test))
    importance = json.loads(my.client().read_artifact(run.run_id, "feature_importance.json"))
    assert importance == pytest.approx(result.feature_importance)
    matrix = json.loads(my.client().read_artifact(run.run_id, "evaluation/confusion_matrix.json"))
    assert matrix == result.confusion_matrix


def test_without_a_run_it_opens_one(cancer, local_sdk):
    good, _, test = cancer
    result = evaluate(good, test, "target", importance=False)
    run = my.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["eval_f1"] == pytest.approx(result.metrics["f1"])


def test_bad_input_is_named(cancer):
    good, _, test = cancer
    with pytest.raises(InvalidParameter, match="Target column 'label' is not in the data"):
        evaluate(good, test, "label", log=False)
    with pytest.raises(InvalidParameter, match="Unknown task 'ranking'"):
        evaluate(good, test, "target", task="ranking", log=False)
    with pytest.raises(InvalidParameter, match="empty dataset"):
        evaluate(good, test.iloc[:0], "target", log=False)
    with pytest.raises(InvalidParameter, match="Cannot read"):
        evaluate(good, "data.txt", "target", log=False)


def test_gates_pass_and_fail(cancer, tmp_path):
    good, bad, test = cancer
    path = tmp_path / "test.parquet"
    test.to_parquet(path)
    verdict = check(
        good, path, "target", champion=bad, min_values={"accuracy": 0.8},
        max_regression={"f1": 0.01},
    )  # fmt: skip
    assert verdict.passed
    assert [(g.metric, g.rule, g.passed) for g in verdict.gates] == [
        ("accuracy", "min", True),
        ("f1", "max_regression", True),
    ]
    # The dummy as candidate against the real champion: worse on f1 and under the floor.
    verdict = check(
        bad, test, "target", champion=good, min_values={"accuracy": 0.8},
        max_regression={"f1": 0.01},
    )  # fmt: skip
    assert not verdict.passed
    failed = {g.metric: g.detail for g in verdict.gates if not g.passed}
    assert set(failed) == {"accuracy", "f1"}
    assert "worse by" in failed["f1"] and "allowed 0.01" in failed["f1"]
    assert verdict.to_dict()["gates"][0]["candidate"] == pytest.approx(
        verdict.candidate.metrics["accuracy"]
    )


def test_gate_definitions_are_checked(cancer):
    good, _, test = cancer
    with pytest.raises(InvalidParameter, match="need a champion"):
        check(good, test, "target", max_regression={"f1": 0.01})
    with pytest.raises(InvalidParameter, match="Unknown metric 'acc'"):
        check(good, test, "target", min_values={"acc": 0.8})
    with pytest.raises(InvalidParameter, match="at least one gate"):
        check(good, test, "target")


def test_evaluate_needs_a_predictor(cancer):
    _, _, test = cancer
    with pytest.raises(InvalidParameter, match="object with predict"):
        evaluate(pd.DataFrame(), test, "target", log=False)
