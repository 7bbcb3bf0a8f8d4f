"""Model cards and gates over HTTP, against the real server."""

from __future__ import annotations

import httpx
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

import modelyard as my
from infra.server import tracking_server  # noqa: F401 - fixture


@pytest.fixture
def registered(tracking_server, db_url, tmp_path):  # noqa: F811
    """Two versions of 'churn' logged through the server, and held-out data on disk."""
    frame = load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 2, 7, 30]]
    X, y = frame.drop(columns="target"), frame.target
    my.configure(home=tmp_path / "client", tracking_uri=tracking_server.url)
    for model in (LogisticRegression(max_iter=5000), DummyClassifier()):
        with my.start_run(experiment="churn"):
            model.fit(X, y)
            my.log_params({"model": type(model).__name__})
            my.log_metric("accuracy", float(model.score(X, y)))
            my.log_model(model, "model", input_example=X.head(2), registered_model_name="churn")
    my.approve("churn", 1, reason="ok")
    my.set_alias("churn", "champion", 1)
    data = tmp_path / "test.parquet"
    frame.to_parquet(data)
    yield tracking_server, data
    while my.active_run():
        my.end_run()
    my.configure(home=tmp_path / "unused")


def test_card_over_http(registered):
    server, _ = registered
    md = httpx.get(f"{server.url}/api/v1/models/churn/versions/1/card", timeout=30)
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert "LogisticRegression" in md.text and "mean radius" in md.text and "approved" in md.text
    page = httpx.get(
        f"{server.url}/api/v1/models/churn/versions/1/card",
        params={"format": "html", "purpose": "<script>x</script>"},
        timeout=30,
    )
    assert page.text.lstrip().lower().startswith("<!doctype html")
    assert "<script>x</script>" not in page.text and "&lt;script&gt;" in page.text
    missing = httpx.get(f"{server.url}/api/v1/models/churn/versions/9/card", timeout=30)
    assert missing.status_code == 404 and "no version 9" in missing.json()["message"]


def test_remote_client_loads_by_alias(registered):
    _, data = registered
    frame = pd.read_parquet(data)
    X = frame.drop(columns="target")
    model = my.load_model("models:/churn@champion")  # resolved by the server, fetched by proxy
    assert model.metadata.flavor == "sklearn"
    assert (model.predict(X) == model.raw.predict(X)).all()
    assert model.predict(X).mean() == pytest.approx(frame.target.mean(), abs=0.1)


def test_check_over_http(registered):
    server, data = registered
    body = {
        "candidate": "models:/churn/2",
        "champion": "models:/churn@champion",
        "data": str(data),
        "target": "target",
        "min": {"accuracy": 0.8},
        "max_regression": {"f1": 0.01},
    }
    verdict = httpx.post(f"{server.url}/api/v1/models/check", json=body, timeout=120).json()
    assert verdict["passed"] is False
    assert {g["metric"]: g["passed"] for g in verdict["gates"]} == {"accuracy": False, "f1": False}
    body["candidate"], body["champion"] = "models:/churn@champion", "models:/churn/2"
    verdict = httpx.post(f"{server.url}/api/v1/models/check", json=body, timeout=120).json()
    assert verdict["passed"] is True
    bad = httpx.post(f"{server.url}/api/v1/models/check", json={**body, "target": "y"}, timeout=60)
    assert bad.status_code == 400 and "Target column 'y'" in bad.json()["message"]
