"""Monitoring in the fluent API: ``my.set_baseline(...)``, ``my.check_model(...)``,
``my.log_labels(...)``, ``my.monitor_alerts(...)``.

Each function is one call on the MonitorService of the current store. The pure
computations (``my.monitor.drift``, ``my.monitor.profile``) need no store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from modelyard.monitor.alerts import Alert, AlertRule, load_rules
from modelyard.monitor.backends import open_monitor
from modelyard.monitor.baseline import Baseline
from modelyard.monitor.service import MonitorCheck, MonitorService
from modelyard.sdk import fluent

__all__ = ["check_model", "log_labels", "monitor_alerts", "monitor_service", "set_baseline"]

_cache: dict[int, MonitorService] = {}


def monitor_service() -> MonitorService:
    """The monitoring service of the current store (follows ``my.configure``)."""
    tracking = fluent.client()
    svc = _cache.get(id(tracking))
    if svc is None:
        _cache.clear()
        root = fluent._current().settings.resolved_artifacts
        svc = _cache[id(tracking)] = open_monitor(tracking, root)
    return svc


def set_baseline(
    model_uri: str,
    data: pd.DataFrame | str | Path,
    *,
    target: str | None = None,
    task: str = "classification",
    categorical: Sequence[str] = (),
    allow_pickle: bool = False,
) -> Baseline:
    """Store the monitoring baseline of ``model_uri`` (``models:/churn/3``): the
    profile of ``data``, of the version's predictions on it and of ``target``, and
    the metrics to hold production to."""
    from modelyard.evaluation.evaluate import load_table

    return monitor_service().set_baseline(
        model_uri,
        load_table(data),
        target=target,
        task=task,
        categorical=categorical,
        allow_pickle=allow_pickle,
    )


def check_model(
    model: str,
    *,
    window: str | float = "1h",
    version: str | None = None,
    rules: str | Path | Sequence[Mapping[str, Any] | AlertRule] = (),
    label_delay: str | float = 0,
    notify: bool = True,
    rows: int | None = None,
) -> MonitorCheck:
    """Judge ``model``'s last ``window`` of predictions (or its last ``rows`` within
    it) against its baseline (drift, quality, performance) and fire the alert
    ``rules`` (a YAML file or a list)."""
    from modelyard.core.durations import parse_seconds

    if isinstance(rules, (str, Path)):
        parsed = load_rules(rules)
    else:
        parsed = [r if isinstance(r, AlertRule) else load_rules([r])[0] for r in rules]
    return monitor_service().check(
        model,
        window_seconds=parse_seconds(window, "window"),
        version=version,
        rules=parsed,
        label_delay_seconds=parse_seconds(label_delay, "label delay"),
        notify=notify,
        rows=rows,
    )


def log_labels(model: str, labels: pd.DataFrame | str | Path) -> int:
    """Join ground truth (columns request_id, label) to ``model``'s logged
    predictions; unknown request ids refuse the whole batch."""
    from modelyard.evaluation.evaluate import load_table

    return monitor_service().add_labels(model, load_table(labels))


def monitor_alerts(model: str | None = None, limit: int = 100) -> list[Alert]:
    """Fired alerts, newest first."""
    return monitor_service().alerts(model, limit)
