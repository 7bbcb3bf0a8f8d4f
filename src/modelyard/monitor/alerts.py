"""Alert rules, their evaluation with deduplication and cooldown, and the sinks.

A rule reads one figure of a monitoring check (``drift_share``, ``drift:<column>``,
``prediction_drift``, ``missing_rate:<column>``, ``accuracy``, ``accuracy_change``
... see `monitor.service.figures`) and fires when its condition holds::

    rules:
      - name: churn-drift
        metric: drift_share
        condition: "> 0.3"
        window: 1h
        severity: critical
        cooldown: 30m
        sinks: [log, "webhook:http://127.0.0.1:9000/hook", trigger]

A rule that keeps holding fires again only after its cooldown (the history in the
database is the memory, so restarts and several processes agree). Sinks: ``log``
(the ``modelyard.alerts`` logger), ``webhook:<url>`` (an HTTP POST of the alert as
JSON; a failing hook is recorded, never raised), and ``trigger`` (the alert is marked
as an event the pipelines' agent consumes to retrain).
"""

from __future__ import annotations

import logging
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelyard.core.durations import parse_seconds
from modelyard.core.errors import InvalidParameter
from modelyard.core.ids import new_id, now_ms

__all__ = ["Alert", "AlertRule", "deliver", "evaluate_rules", "load_rules"]

log = logging.getLogger("modelyard.alerts")

SEVERITIES = ("info", "warning", "critical")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_CONDITION = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d*)?(?:e-?\d+)?)\s*$")


@dataclass
class AlertRule:
    name: str
    metric: str
    condition: str
    window: str = "1h"
    severity: str = "warning"
    cooldown: str = "30m"
    model: str | None = None  # None: every model the check covers
    sinks: list[str] = field(default_factory=lambda: ["log"])

    def __post_init__(self) -> None:
        if not self.name or not self.metric:
            raise InvalidParameter("An alert rule needs a name and a metric")
        if _CONDITION.match(str(self.condition)) is None:
            raise InvalidParameter(
                f"Rule {self.name!r}: condition {self.condition!r} is not OP NUMBER "
                f"(OP one of {', '.join(_OPS)}), e.g. '> 0.3'"
            )
        if self.severity not in SEVERITIES:
            raise InvalidParameter(
                f"Rule {self.name!r}: severity must be one of {', '.join(SEVERITIES)}"
            )
        self.window_seconds = parse_seconds(self.window, f"rule {self.name!r} window")
        self.cooldown_seconds = parse_seconds(self.cooldown, f"rule {self.name!r} cooldown")
        for sink in self.sinks:
            if sink not in ("log", "trigger") and not sink.startswith("webhook:http"):
                raise InvalidParameter(
                    f"Rule {self.name!r}: unknown sink {sink!r}; use log, trigger or "
                    "webhook:http(s)://..."
                )

    def holds(self, value: float | None) -> bool:
        if value is None:
            return False
        op, number = _CONDITION.match(self.condition).groups()
        return _OPS[op](float(value), float(number))


@dataclass
class Alert:
    id: str
    rule: str
    model: str
    metric: str
    value: float | None
    condition: str
    severity: str
    message: str
    fired_at: int
    trigger: bool = False
    deliveries: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_rules(source: str | Path | Sequence[Mapping[str, Any]]) -> list[AlertRule]:
    """Rules from a YAML file (a ``rules:`` list) or a list of dicts."""
    if isinstance(source, (str, Path)):
        import yaml

        path = Path(source)
        if not path.is_file():
            raise InvalidParameter(f"No alert rules file at {str(path)!r}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise InvalidParameter(f"{path}: not valid YAML ({exc})") from None
        items = data.get("rules") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise InvalidParameter(f"{path}: expected a top-level 'rules:' list")
    else:
        items = list(source)
    rules = []
    for item in items:
        if not isinstance(item, Mapping):
            raise InvalidParameter(f"An alert rule must be a mapping, got {item!r}")
        unknown = set(item) - set(AlertRule.__dataclass_fields__)
        if unknown:
            raise InvalidParameter(f"Unknown alert rule field(s): {', '.join(sorted(unknown))}")
        rules.append(AlertRule(**item))
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise InvalidParameter("Alert rule names must be unique")
    return rules


def evaluate_rules(
    rules: Sequence[AlertRule],
    model: str,
    figures: Mapping[str, float | None],
    last_fired: Callable[[str, str], int | None],
    now: int | None = None,
) -> list[Alert]:
    """The alerts ``figures`` (one model's check) fire now: rules for this model
    whose condition holds and whose cooldown since ``last_fired(rule, model)`` ended."""
    now = now_ms() if now is None else now
    fired = []
    for rule in rules:
        if rule.model is not None and rule.model != model:
            continue
        value = figures.get(rule.metric)
        if not rule.holds(value):
            continue
        last = last_fired(rule.name, model)
        if last is not None and now - last < rule.cooldown_seconds * 1000:
            continue
        fired.append(
            Alert(
                id=new_id(),
                rule=rule.name,
                model=model,
                metric=rule.metric,
                value=float(value),
                condition=rule.condition,
                severity=rule.severity,
                message=(
                    f"{model}: {rule.metric} = {value:.4g} ({rule.condition}) over {rule.window}"
                ),
                fired_at=now,
                trigger="trigger" in rule.sinks,
            )
        )
    return fired


def deliver(alert: Alert, sinks: Sequence[str], timeout: float = 5.0) -> dict[str, str]:
    """Send ``alert`` to each sink; returns sink -> "ok" or the error (never raises)."""
    out: dict[str, str] = {}
    for sink in sinks:
        if sink == "log":
            level = logging.CRITICAL if alert.severity == "critical" else logging.WARNING
            log.log(level, "alert %s [%s] %s", alert.rule, alert.severity, alert.message)
            out[sink] = "ok"
        elif sink == "trigger":
            out[sink] = "ok"  # the stored alert with trigger=true is the event
        else:
            out[sink] = _post(sink.removeprefix("webhook:"), alert, timeout)
    return out


def _post(url: str, alert: Alert, timeout: float) -> str:
    import httpx

    try:
        response = httpx.post(url, json={"alert": alert.to_dict()}, timeout=timeout)
    except httpx.HTTPError as exc:
        return f"error: {type(exc).__name__}: {exc}"
    if response.status_code >= 300:
        return f"error: HTTP {response.status_code}"
    return "ok"
