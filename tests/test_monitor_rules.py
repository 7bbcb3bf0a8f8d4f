"""Alert rules, data quality and performance windows: the pieces a check combines."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from modelyard import monitor
from modelyard.core.errors import InvalidParameter
from modelyard.monitor.alerts import deliver, evaluate_rules, load_rules
from modelyard.monitor.performance import join_labels, performance
from modelyard.monitor.quality import data_quality

MIN = 60_000


# -- rules --------------------------------------------------------------------------
def test_rules_load_from_yaml_and_check_every_field(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - {name: drift, metric: drift_share, condition: '> 0.3', window: 2h,"
        " severity: critical, cooldown: 15m, sinks: [log, trigger]}\n"
        "  - {name: acc, metric: accuracy_change, condition: '<= -0.05', model: churn}\n"
    )
    drift, acc = load_rules(path)
    assert (drift.window_seconds, drift.cooldown_seconds, drift.sinks) == (
        7200,
        900,
        ["log", "trigger"],
    )
    assert (acc.model, acc.severity, acc.cooldown_seconds) == ("churn", "warning", 1800)
    assert drift.holds(0.31) and not drift.holds(0.3) and not drift.holds(None)
    assert acc.holds(-0.05) and not acc.holds(0.0)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"name": "x", "metric": "m", "condition": "above 3"}, "is not OP NUMBER"),
        ({"name": "x", "metric": "m", "condition": "> 1", "severity": "page"}, "severity must be"),
        (
            {"name": "x", "metric": "m", "condition": "> 1", "sinks": ["email"]},
            "unknown sink 'email'",
        ),
        ({"name": "x", "metric": "m", "condition": "> 1", "cooldown": "soon"}, "cooldown: 'soon'"),
        (
            {"name": "x", "metric": "m", "condition": "> 1", "windw": "1h"},
            "Unknown alert rule field",
        ),
        ({"name": "", "metric": "m", "condition": "> 1"}, "needs a name and a metric"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(rule, message):
    with pytest.raises(InvalidParameter, match=message):
        load_rules([rule])


def test_bad_rule_files_are_named(tmp_path):
    with pytest.raises(InvalidParameter, match="No alert rules file"):
        load_rules(tmp_path / "none.yaml")
    flat = tmp_path / "flat.yaml"
    flat.write_text("- name: x\n")
    with pytest.raises(InvalidParameter, match="top-level 'rules:' list"):
        load_rules(flat)
    with pytest.raises(InvalidParameter, match="unique"):
        load_rules([{"name": "a", "metric": "m", "condition": "> 1"}] * 2)


def test_a_rule_fires_once_per_cooldown_and_only_for_its_model():
    rules = load_rules(
        [
            {"name": "d", "metric": "drift_share", "condition": "> 0.3", "cooldown": "10m"},
            {"name": "other", "metric": "drift_share", "condition": "> 0.3", "model": "fraud"},
        ]
    )
    fired_at: dict[tuple[str, str], int] = {}

    def last(rule, model):
        return fired_at.get((rule, model))

    def run(now, value):
        alerts = evaluate_rules(rules, "churn", {"drift_share": value}, last, now=now)
        for a in alerts:
            fired_at[(a.rule, a.model)] = a.fired_at
        return [a.rule for a in alerts]

    assert run(0, 0.5) == ["d"]
    assert run(5 * MIN, 0.6) == []  # still holds, inside the cooldown
    assert run(11 * MIN, 0.1) == []  # over, nothing to say
    assert run(12 * MIN, 0.7) == ["d"]  # holds again after the cooldown


def test_the_log_sink_logs_the_alert_without_the_webhook_url(caplog):
    (rule,) = load_rules(
        [{"name": "d", "metric": "rows", "condition": ">= 1", "severity": "critical"}]
    )
    (alert,) = evaluate_rules([rule], "churn", {"rows": 3.0}, lambda *_: None, now=1)
    with caplog.at_level(logging.WARNING, logger="modelyard.alerts"):
        assert deliver(alert, ["log", "trigger"]) == {"log": "ok", "trigger": "ok"}
    (record,) = caplog.records
    assert record.levelno == logging.CRITICAL and "churn: rows = 3 (>= 1)" in record.getMessage()


# -- data quality ---------------------------------------------------------------------
def test_quality_counts_missing_out_of_range_unseen_and_schema_problems():
    ref = monitor.profile(pd.DataFrame({"age": np.arange(18.0, 68.0), "plan": ["a", "b"] * 25}))
    window = pd.DataFrame(
        {"age": [20.0, None, 90.0, 10.0, 30.0], "plan": ["a", "z", None, "b", "z"], "extra": 1}
    )
    q = data_quality(ref, window)
    age, plan = q.columns
    assert (age.missing_rate, age.out_of_range_rate) == (0.2, 0.4)
    assert (plan.missing_rate, plan.unseen_rate, plan.unseen) == (0.2, 0.4, ["z"])
    assert q.schema_violations == ["unexpected column 'extra'"]
    text = data_quality(ref, pd.DataFrame({"age": ["x", "40"]}))
    assert text.missing_columns == ["plan"]
    assert "1 value(s) are not numbers" in text.columns[0].problem
    assert q.worst("missing_rate") == 0.2


# -- performance ------------------------------------------------------------------------
def test_windows_younger_than_the_label_delay_are_pending():
    now = 10 * MIN
    preds = pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(6)],
            "timestamp_ms": [1 * MIN, 2 * MIN, 6 * MIN, 7 * MIN, 9 * MIN, 9 * MIN + 1],
            "prediction": [1, 0, 1, 1, 0, 1],
        }
    )
    feedback = [{"request_id": f"r{i}", "label": lab} for i, lab in enumerate([1, 0, 0, 0])]
    report = performance(
        join_labels(preds, feedback),
        baseline={"accuracy": 0.9},
        window_ms=4 * MIN,
        label_delay_ms=2 * MIN,
        now_ms=now,
    )
    spans = [
        (p.start_ms // MIN, p.end_ms // MIN, p.rows, p.labelled, p.pending) for p in report.points
    ]
    assert spans == [(0, 4, 2, 2, False), (4, 8, 2, 2, False), (8, 10, 2, 0, True)]
    assert report.points[0].metrics["accuracy"] == 1.0
    assert report.latest().metrics["accuracy"] == 0.0
    assert report.change("accuracy") == pytest.approx(-0.9)
    with pytest.raises(InvalidParameter, match="task must be"):
        performance(preds, task="ranking")


def test_labels_take_the_type_of_the_predictions():
    preds = pd.DataFrame(
        {"request_id": ["a", "b"], "timestamp_ms": [0, 1], "prediction": [1.0, 2.0]}
    )
    joined = join_labels(
        preds, [{"request_id": "a", "label": "1.5"}, {"request_id": "b", "label": 2}]
    )
    report = performance(joined, task="regression", window_ms=MIN, now_ms=MIN)
    assert report.latest().metrics["mae"] == pytest.approx(0.25)
