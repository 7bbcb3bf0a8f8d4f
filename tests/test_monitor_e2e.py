"""Serving → prediction store → drift, quality and performance → alerts → webhook.

A real ``modelyard serve`` logs what it answers; the test drives it over HTTP with
data whose first feature has shifted, labels the answers through the SDK (half of
them wrong: concept drift), runs a monitoring check with alert rules, and a real
HTTP server on loopback receives the webhooks.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import pandas as pd
import pytest

import modelyard as my
from infra.model_server import running_model_server, trained_models  # noqa: F401
from modelyard.core.errors import InvalidParameter, ResourceNotFound


class Hook:
    """An HTTP server on loopback that keeps every JSON body posted to it."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                size = int(self.headers["content-length"])
                received.append(json.loads(self.rfile.read(size)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def served(trained_models, tmp_path_factory):  # noqa: F811
    """The baseline of churn v1, then 120 shifted requests answered and logged."""
    frame = trained_models.frame
    target = (frame.f0 + 0.5 * frame.f1 - frame.f2 > 0).astype("int64")
    baseline = my.set_baseline("models:/churn/1", frame.assign(churned=target), target="churned")
    log_dir = trained_models.settings["MODELYARD_ARTIFACTS"] + "/predictions"
    shifted = frame.assign(f0=frame.f0 + 1.5).head(120)
    answers = []
    tmp = tmp_path_factory.mktemp("monitor-e2e")
    with running_model_server(
        trained_models,
        tmp / "serve.log",
        "--log-predictions",
        log_dir,
        models={"churn": "models:/churn/1"},
    ) as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for i in range(len(shifted)):
                r = client.post(
                    "/predict/churn", json={"records": shifted.iloc[[i]].to_dict("records")}
                )
                assert r.status_code == 200
                answers.append((r.headers["x-request-id"], r.json()["predictions"][0]))
        assert server.stop() in (0, -15)  # a clean stop writes what is queued
    return baseline, answers, trained_models


def test_the_baseline_profiles_features_predictions_and_target(served):
    baseline, _, _ = served
    assert baseline.version == "1" and baseline.rows == 300 and baseline.features[0] == "f0"
    assert set(baseline.profile.columns) == {*baseline.features, "prediction", "churned"}
    assert baseline.profile.columns["prediction"].kind == "categorical"
    assert baseline.metrics["accuracy"] > 0.9
    again = my.monitor_service().baseline("churn", "1")
    assert again.to_dict() == baseline.to_dict()
    with pytest.raises(ResourceNotFound, match="no monitoring baseline"):
        my.monitor_service().baseline("churn", "9")


def test_drift_and_concept_drift_fire_alerts_that_reach_the_webhook_once(served):
    _, answers, _ = served
    # ground truth arrives later: every other answer was wrong
    labels = pd.DataFrame(
        {
            "request_id": [rid for rid, _ in answers],
            "label": [p if i % 2 else 1 - p for i, (_, p) in enumerate(answers)],
        }
    )
    assert my.log_labels("churn", labels) == len(answers)
    hook = Hook()
    rules = [
        {
            "name": "feature-drift",
            "metric": "drift_share",
            "condition": "> 0.02",
            "severity": "critical",
            "cooldown": "1h",
            "sinks": ["log", f"webhook:{hook.url}", "trigger"],
        },
        {
            "name": "accuracy-drop",
            "metric": "accuracy_change",
            "condition": "< -0.2",
            "sinks": [f"webhook:{hook.url}"],
        },
        {"name": "calm", "metric": "missing_rate", "condition": "> 0.5"},
    ]
    try:
        check = my.check_model("churn", window="1h", rules=rules)
        assert check.version == "1" and check.rows == len(answers)
        assert check.drift.column("f0").drifted and check.drift.drifted_columns == ["f0"]
        assert check.figures["drift_share"] == pytest.approx(1 / 20)
        assert check.figures["label_coverage"] == 1.0
        assert check.figures["accuracy"] == pytest.approx(0.5, abs=0.01)
        assert check.figures["accuracy_change"] < -0.4
        # the labels, half flipped, against the training target's profile
        assert check.label_drift.method == "z"  # a binary target, 300 reference rows
        assert check.label_drift.current.count == len(answers)
        assert check.figures["label_drift_score"] == check.label_drift.statistic
        assert sorted(a.rule for a in check.alerts) == ["accuracy-drop", "feature-drift"]
        assert sorted(b["alert"]["rule"] for b in hook.received) == [
            "accuracy-drop",
            "feature-drift",
        ]
        drift_alert = next(
            b["alert"] for b in hook.received if b["alert"]["rule"] == "feature-drift"
        )
        assert drift_alert["value"] == pytest.approx(1 / 20) and drift_alert["trigger"] is True
        stored = my.monitor_alerts("churn")
        assert {a.rule: a.deliveries for a in stored} == {
            "feature-drift": {"log": "ok", f"webhook:{hook.url}": "ok", "trigger": "ok"},
            "accuracy-drop": {f"webhook:{hook.url}": "ok"},
        }
        # still drifting a moment later: the cooldown holds both back
        again = my.check_model("churn", window="1h", rules=rules)
        assert again.alerts == [] and len(hook.received) == 2
        assert len(my.monitor_alerts("churn")) == 2
    finally:
        hook.close()


def test_a_dead_webhook_is_recorded_not_raised(served):
    dead = "http://127.0.0.1:9/hook"  # the discard port: nothing listens
    rule = {
        "name": "dead-hook",
        "metric": "rows",
        "condition": ">= 1",
        "sinks": [f"webhook:{dead}"],
    }
    check = my.check_model("churn", rules=[rule])
    (alert,) = check.alerts
    assert alert.deliveries[f"webhook:{dead}"].startswith("error: ConnectError")
    assert my.monitor_alerts("churn", limit=1)[0].id == alert.id


def test_labels_for_unknown_requests_store_nothing(served):
    _, answers, _ = served
    before = len(my.monitor_service().store.feedback("churn"))
    bad = pd.DataFrame({"request_id": [answers[0][0], "never-answered"], "label": [1, 0]})
    with pytest.raises(
        InvalidParameter, match="never answered .*'never-answered'.*nothing was stored"
    ):
        my.log_labels("churn", bad)
    with pytest.raises(InvalidParameter, match="need a 'label' column"):
        my.log_labels("churn", pd.DataFrame({"request_id": ["x"]}))
    assert len(my.monitor_service().store.feedback("churn")) == before


def test_an_empty_window_and_a_model_without_baseline_say_so(served):
    empty = my.check_model("nobody", window="1h")
    assert empty.rows == 0 and empty.message == "no predictions in the window"
    assert empty.figures == {"rows": 0.0}
    with pytest.raises(InvalidParameter, match="window: '1 hour' is not a duration"):
        my.check_model("churn", window="1 hour")
    np.testing.assert_equal(my.check_model("churn", window="1h").rows, len(served[1]))
    newest = my.check_model("churn", window="1h", rows=50)  # a window by row count
    assert newest.rows == 50 and newest.drift.column("f0").drifted
    with pytest.raises(InvalidParameter, match="rows must be a positive"):
        my.check_model("churn", rows=0)


def test_the_cli_shows_status_writes_the_report_and_lists_alerts(served, tmp_path):
    from html.parser import HTMLParser

    from typer.testing import CliRunner

    from modelyard.cli.main import app

    runner = CliRunner(env={"COLUMNS": "250"})
    table = runner.invoke(app, ["monitor", "status", "churn", "--window", "1h"])
    assert table.exit_code == 0, table.output
    assert "Feature drift" in table.output, table.output
    assert re.search(r"│ predictions\s+│ 120\s+│", table.output), table.output
    f0 = next(line for line in table.output.splitlines() if line.startswith("│ f0 "))
    assert "│ drift " in f0 and "│ ks " in f0  # 300 reference rows: a test, not a distance
    doc = json.loads(runner.invoke(app, ["monitor", "status", "churn", "--json"]).output)
    assert doc["figures"]["drift:f0"] == 1.0 and doc["drift"]["drifted_columns"] == ["f0"]

    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {name: cli-rule, metric: 'drift:f0', condition: '>= 1'}\n")
    fired = runner.invoke(app, ["monitor", "status", "churn", "--rules", str(rules)])
    assert fired.exit_code == 0 and "alert cli-rule" in fired.output
    listed = runner.invoke(app, ["monitor", "alerts", "--model", "churn", "--json"])
    assert "cli-rule" in [a["rule"] for a in json.loads(listed.output)]

    out = tmp_path / "report.html"
    written = runner.invoke(app, ["monitor", "report", "--model", "churn", "--out", str(out)])
    assert written.exit_code == 0, written.output
    page = out.read_text()
    twin = json.loads(out.with_suffix(".json").read_text())
    assert twin["check"]["drift"]["drifted_columns"] == ["f0"] and twin["timeline"]
    assert "<script src=" not in page  # self-contained: plotly.js is inlined
    assert "Plotly.newPlot" in page and "f0: ks" in page

    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.open: list[str] = []

        def handle_starttag(self, tag, attrs):
            if tag in ("html", "body", "table", "div"):
                self.open.append(tag)

        def handle_endtag(self, tag):
            if tag in ("html", "body", "table", "div"):
                assert self.open.pop() == tag

    parser = Tags()
    parser.feed(page)
    assert parser.open == []  # every container is closed in order


def test_cli_baseline_and_labels_add_report_bad_input(served, tmp_path):
    from typer.testing import CliRunner

    from modelyard.cli.main import app

    runner = CliRunner(env={"COLUMNS": "250"})
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,label\nnot-a-request,1\n")
    refused = runner.invoke(app, ["monitor", "labels", "add", "churn", str(labels)])
    assert refused.exit_code == 1 and "never answered" in refused.output
    data = tmp_path / "train.csv"
    data.write_text("f0,f1\n1,2\n")
    missing = runner.invoke(
        app, ["monitor", "baseline", "models:/churn/1", "--data", str(data), "--target", "y"]
    )
    assert missing.exit_code == 1 and "Target column 'y' is not in the data" in missing.output
    unknown = runner.invoke(app, ["monitor", "baseline", "models:/nope/1", "--data", str(data)])
    assert unknown.exit_code == 1 and "nope" in unknown.output


def test_a_server_publishes_live_drift_gauges_for_a_baselined_version(served, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    trained = served[2]
    shifted = trained.frame.assign(f0=trained.frame.f0 + 1.5)
    log_dir = str(tmp_path / "live-log")  # its own log: this window is this test's alone
    server_cm = running_model_server(
        trained,
        tmp_path / "live.log",
        "--log-predictions",
        log_dir,
        models={"scoring": "models:/churn/1"},  # served under another name than registered
    )
    with server_cm as server, httpx.Client(base_url=server.url, timeout=30) as client:
        for start in range(0, 200, 5):  # 40 requests of 5 rows
            body = {"records": shifted.iloc[start : start + 5].to_dict("records")}
            assert client.post("/predict/scoring", json=body).status_code == 200
        deadline = time.monotonic() + 20
        while True:  # the log drains every second; the monitor publishes then
            text = client.get("/metrics").text
            if "modelyard_drift_share{" in text or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }

    def value(name, **labels):
        return samples[
            (name, tuple(sorted({"model": "scoring", "version": "1", **labels}.items())))
        ]

    assert value("modelyard_monitor_window_rows") == 200
    assert value("modelyard_drift_share") == pytest.approx(1 / 20)
    assert value("modelyard_feature_drifted", feature="f0") == 1.0
    assert value("modelyard_feature_drifted", feature="f1") == 0.0
    assert value("modelyard_feature_missing_rate", feature="f3") == 0.0
    assert value("modelyard_feature_drift_score", feature="f0", method="ks") < 0.05
    assert any(name == "modelyard_prediction_drift_score" for name, _ in samples)


def test_registering_with_baseline_data_stores_the_baseline(served):
    trained = served[2]
    frame = trained.frame.assign(churned=(trained.frame.f0 > 0).astype("int64"))
    source = my.get_model_version("churn", 1).source
    version = my.register_model(source, "churn_baselined", baseline_data=frame, target="churned")
    base = my.monitor_service().baseline("churn_baselined", version.version)
    assert base.rows == len(frame) and base.target == "churned" and "accuracy" in base.metrics


def test_the_report_opens_in_a_headless_browser(served, tmp_path):
    """Chromium loads the file offline and Plotly draws every figure in it."""
    import shutil
    import subprocess

    from modelyard.monitor.report import render_html

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed: run `make test-tools` (Debian package)")
    page = tmp_path / "report.html"
    page.write_text(render_html(my.monitor_service().report("churn", window_seconds=3600)))
    figures = page.read_text().count('class="plotly-graph-div"')
    dom = subprocess.run(
        [
            chromium,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--virtual-time-budget=10000",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert figures >= 4  # drift scores, f0's distributions, more features, the timeline
    # Plotly's script ran: each figure's div now holds its drawn SVG container
    assert dom.count('class="plot-container plotly"') == figures
    assert "modelyard monitoring: churn" in dom
