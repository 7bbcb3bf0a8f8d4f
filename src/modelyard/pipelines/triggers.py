"""What makes the agent run a pipeline: a cron schedule, a new version of a dataset,
a monitoring alert.

A trigger is read against a *state* that the agent persists (table
``pipeline_triggers``): `Trigger.arm` gives the state when the trigger is first
seen, `Trigger.events` the events since a state and the state after them. Every
event has a key that is the same in every process and after every restart
(``schedule:2026-05-04T03:00Z``, ``dataset:churn@4``, ``alert:<alert id>``); the
agent records ``(pipeline, trigger, key)`` under a unique constraint, so an event
fires once however often it is seen.

A trigger fires for what happens after it is armed: dataset versions and alerts
from before are history, and a schedule's first tick is the first one after the
agent began watching.

Schedules are five-field cron expressions (minute hour day-of-month month
day-of-week, or ``@daily``-style macros), read with croniter in ``timezone`` (UTC
by default). Ticks missed while no agent ran are caught up by firing once, for the
latest missed tick only: an hourly retraining that missed a night runs once when
the agent is back, not eight times.

In a configuration file (see `modelyard.pipelines.agent.AgentConfig`)::

    triggers:
      - schedule: "0 3 * * *"        # timezone: Europe/Paris (optional)
      - dataset: churn               # each new version of dataset churn
      - alert: churn                 # alerts with the `trigger` sink for model churn
        rule: churn-drift            # optional: only this rule's (or metric: ...)

Each also takes ``name`` (unique in its pipeline; the default names the kind and
its subject) and ``coalesce`` (see `modelyard.pipelines.agent`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter
from sqlalchemy import Engine

from modelyard.core.errors import InvalidParameter
from modelyard.datasets.sql_store import SqlDatasetStore

if TYPE_CHECKING:  # pragma: no cover
    from modelyard.datasets.entities import DatasetVersion
    from modelyard.monitor.alerts import Alert
    from modelyard.monitor.sql_store import SqlMonitorStore

__all__ = [
    "AlertTrigger",
    "DatasetTrigger",
    "Event",
    "ScheduleTrigger",
    "StoreSources",
    "Trigger",
    "TriggerSources",
    "parse_trigger",
]

# The most alerts one poll reads for one model (the newest). Rules have cooldowns, so
# a burst that large between two polls is not a case the agent plans for.
_MAX_ALERTS = 10_000


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _minute(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


@dataclass(frozen=True)
class Event:
    """Something that happened which should run a pipeline once.

    - ``trigger``: the name of the trigger that saw it;
    - ``key``: stable and unique per trigger (the agent's exactly-once key);
    - ``occurred_at``: when it happened (UTC ms): the tick, the version, the alert;
    - ``payload``: what the run is told about it (JSON values).
    """

    trigger: str
    kind: str
    key: str
    occurred_at: int
    payload: dict[str, Any] = field(default_factory=dict)


class TriggerSources(Protocol):
    """Where the triggers read what happened (the metadata database in production)."""

    def dataset_versions(self, name: str) -> Sequence[DatasetVersion]:
        """Every version of dataset ``name``, oldest first (none when it is unknown)."""
        ...

    def alerts(self, model: str, since_ms: int) -> Sequence[Alert]:
        """``model``'s alerts with the ``trigger`` sink fired at or after ``since_ms``,
        oldest first."""
        ...


class StoreSources:
    """The trigger sources in the metadata database: the dataset registry and the
    fired alerts, on ``engine``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.datasets = SqlDatasetStore(engine)
        self._monitor: SqlMonitorStore | None = None

    def dataset_versions(self, name: str) -> list[DatasetVersion]:
        return self.datasets.list_versions(name)

    def alerts(self, model: str, since_ms: int) -> list[Alert]:
        if self._monitor is None:
            # Imported on first use: the monitoring package loads scipy (seconds), which
            # only an agent with an alert trigger should pay for.
            from modelyard.monitor.sql_store import SqlMonitorStore

            self._monitor = SqlMonitorStore(self.engine)
        found = self._monitor.alerts(model, since_ms=since_ms, trigger=True, limit=_MAX_ALERTS)
        return sorted(found, key=lambda a: (a.fired_at, a.id))


class Trigger(ABC):
    """One reason to run a pipeline. Subclasses are frozen dataclasses with a
    ``name`` (unique within a pipeline) and ``coalesce`` (whether several waiting
    events of this trigger collapse into the newest)."""

    kind: ClassVar[str]
    fields: ClassVar[frozenset[str]]  # what its events' payloads hold
    name: str
    coalesce: bool

    @abstractmethod
    def arm(self, now: datetime, sources: TriggerSources) -> dict[str, Any]:
        """The state when the trigger is first seen: what exists now is history."""

    @abstractmethod
    def events(
        self, state: Mapping[str, Any], now: datetime, sources: TriggerSources
    ) -> tuple[list[Event], dict[str, Any]]:
        """The events after ``state`` up to ``now``, oldest first, and the new state."""

    @abstractmethod
    def describe(self) -> str:
        """A short human phrase: ``cron 0 3 * * * (UTC)``, ``new version of churn``."""


@dataclass(frozen=True)
class ScheduleTrigger(Trigger):
    """Fires on each tick of a cron expression (at most once per tick, the latest
    missed tick only after a pause)."""

    kind: ClassVar[str] = "schedule"
    fields: ClassVar[frozenset[str]] = frozenset({"cron", "timezone", "tick", "missed_ticks"})
    cron: str
    timezone: str = "UTC"
    name: str = ""
    coalesce: bool = True

    def __post_init__(self) -> None:
        cron = " ".join(str(self.cron).split())
        fields = cron.split(" ")
        if not (cron.startswith("@") or len(fields) == 5) or not croniter.is_valid(cron):
            reason = ""
            try:
                croniter(cron)
            except (CroniterError, ValueError) as exc:
                reason = f" ({exc})"
            raise InvalidParameter(
                f"schedule {self.cron!r} is not a cron expression{reason}: expected five "
                "fields, minute hour day-of-month month day-of-week (e.g. '0 3 * * *' for "
                "03:00 every day, '*/15 * * * *' every 15 minutes) or a macro like @daily"
            )
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidParameter(
                f"schedule {cron!r}: unknown timezone {self.timezone!r}; use an IANA name "
                "such as UTC or Europe/Paris"
            ) from None
        object.__setattr__(self, "cron", cron)
        object.__setattr__(self, "_zone", zone)
        if not self.name:
            object.__setattr__(self, "name", f"schedule:{cron}")

    def latest_tick(self, now: datetime) -> datetime:
        """The newest tick at or before ``now``."""
        local = now.astimezone(self._zone).replace(second=0, microsecond=0)  # type: ignore[attr-defined]
        if croniter.match(self.cron, local):
            return local
        return croniter(self.cron, local).get_prev(datetime)

    def arm(self, now: datetime, sources: TriggerSources) -> dict[str, Any]:
        return {"tick": _ms(self.latest_tick(now))}

    def events(
        self, state: Mapping[str, Any], now: datetime, sources: TriggerSources
    ) -> tuple[list[Event], dict[str, Any]]:
        tick = self.latest_tick(now)
        if _ms(tick) <= state["tick"]:
            return [], dict(state)
        # Catch-up: only the newest tick fires; those it passed over are reported.
        before = croniter(self.cron, tick).get_prev(datetime)
        event = Event(
            trigger=self.name,
            kind=self.kind,
            key=f"schedule:{_minute(tick)}",
            occurred_at=_ms(tick),
            payload={
                "cron": self.cron,
                "timezone": self.timezone,
                "tick": _minute(tick),
                "missed_ticks": _ms(before) > state["tick"],
            },
        )
        return [event], {"tick": _ms(tick)}

    def describe(self) -> str:
        return f"cron {self.cron} ({self.timezone})"


@dataclass(frozen=True)
class DatasetTrigger(Trigger):
    """Fires on each new version of a named dataset (``churn@4``)."""

    kind: ClassVar[str] = "dataset"
    fields: ClassVar[frozenset[str]] = frozenset({"dataset", "version", "ref", "oid"})
    dataset: str
    name: str = ""
    coalesce: bool = True

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", f"dataset:{self.dataset}")

    def arm(self, now: datetime, sources: TriggerSources) -> dict[str, Any]:
        versions = sources.dataset_versions(self.dataset)
        return {"version": max((v.version for v in versions), default=0)}

    def events(
        self, state: Mapping[str, Any], now: datetime, sources: TriggerSources
    ) -> tuple[list[Event], dict[str, Any]]:
        seen = state["version"]
        new = sorted(
            (v for v in sources.dataset_versions(self.dataset) if v.version > seen),
            key=lambda v: v.version,
        )
        events = [
            Event(
                trigger=self.name,
                kind=self.kind,
                key=f"dataset:{self.dataset}@{v.version}",
                occurred_at=v.created_at,
                payload={
                    "dataset": self.dataset,
                    "version": v.version,
                    "ref": f"{self.dataset}@{v.version}",
                    "oid": v.oid,
                },
            )
            for v in new
        ]
        return events, {"version": new[-1].version if new else seen}

    def describe(self) -> str:
        return f"new version of dataset {self.dataset}"


@dataclass(frozen=True)
class AlertTrigger(Trigger):
    """Fires on each monitoring alert for ``model`` whose rule has the ``trigger``
    sink, optionally only those of one rule or one metric."""

    kind: ClassVar[str] = "alert"
    fields: ClassVar[frozenset[str]] = frozenset(
        {"alert_id", "model", "rule", "metric", "value", "severity", "message"}
    )
    model: str
    rule: str | None = None
    metric: str | None = None
    name: str = ""
    coalesce: bool = False

    def __post_init__(self) -> None:
        if not self.name:
            parts = [f"alert:{self.model}"]
            parts += [f"rule={self.rule}"] if self.rule else []
            parts += [f"metric={self.metric}"] if self.metric else []
            object.__setattr__(self, "name", ",".join(parts))

    def arm(self, now: datetime, sources: TriggerSources) -> dict[str, Any]:
        return {"fired_at": _ms(now), "ids": []}

    def _wanted(self, alert: Alert) -> bool:
        return (self.rule is None or alert.rule == self.rule) and (
            self.metric is None or alert.metric == self.metric
        )

    def events(
        self, state: Mapping[str, Any], now: datetime, sources: TriggerSources
    ) -> tuple[list[Event], dict[str, Any]]:
        since, ids = state["fired_at"], set(state["ids"])
        fresh = [
            a
            for a in sources.alerts(self.model, since)
            if not (a.fired_at == since and a.id in ids)
        ]
        if not fresh:
            return [], dict(state)
        newest = fresh[-1].fired_at
        at_newest = {a.id for a in fresh if a.fired_at == newest}
        new_state = {
            "fired_at": newest,
            "ids": sorted(at_newest | (ids if newest == since else set())),
        }
        events = [
            Event(
                trigger=self.name,
                kind=self.kind,
                key=f"alert:{a.id}",
                occurred_at=a.fired_at,
                payload={
                    "alert_id": a.id,
                    "model": a.model,
                    "rule": a.rule,
                    "metric": a.metric,
                    "value": a.value,
                    "severity": a.severity,
                    "message": a.message,
                },
            )
            for a in fresh
            if self._wanted(a)
        ]
        return events, new_state

    def describe(self) -> str:
        what = f"rule {self.rule}" if self.rule else f"metric {self.metric}" if self.metric else ""
        return f"alert on {self.model}" + (f" ({what})" if what else "")


_KINDS: dict[str, tuple[type[Trigger], str, frozenset[str]]] = {
    "schedule": (ScheduleTrigger, "cron", frozenset({"timezone"})),
    "dataset": (DatasetTrigger, "dataset", frozenset()),
    "alert": (AlertTrigger, "model", frozenset({"rule", "metric"})),
}
_COMMON = frozenset({"name", "coalesce"})


def parse_trigger(item: Any, where: str = "trigger") -> Trigger:
    """A trigger from its configuration mapping (``{"schedule": "0 3 * * *"}``);
    InvalidParameter naming ``where`` and the problem otherwise."""
    kinds = ", ".join(_KINDS)
    if not isinstance(item, Mapping):
        raise InvalidParameter(
            f"{where}: a trigger is a mapping such as {{schedule: '0 3 * * *'}}, got {item!r}"
        )
    named = [k for k in item if k in _KINDS]
    if len(named) != 1:
        options = _COMMON.union(*(o for _, _, o in _KINDS.values()))
        unknown = [str(k) for k in item if k not in _KINDS and k not in options]
        if not named and unknown:
            raise InvalidParameter(
                f"{where}: unknown trigger kind {unknown[0]!r}; expected one of {kinds}"
            )
        raise InvalidParameter(
            f"{where}: a trigger names exactly one of {kinds}; got "
            f"{', '.join(named) if named else 'none'}"
        )
    kind = named[0]
    cls, subject, options = _KINDS[kind]
    extra = sorted(str(k) for k in item if k != kind and k not in _COMMON | options)
    if extra:
        allowed = ", ".join(sorted(_COMMON | options))
        raise InvalidParameter(
            f"{where}: unknown option {extra[0]!r} for a {kind} trigger; it takes {allowed}"
        )
    value = item[kind]
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameter(f"{where}: {kind} needs a non-empty string, got {value!r}")
    if "coalesce" in item and not isinstance(item["coalesce"], bool):
        raise InvalidParameter(f"{where}: coalesce is true or false, got {item['coalesce']!r}")
    kwargs = {k: v for k, v in item.items() if k != kind and v is not None}
    try:
        return cls(**{subject: value.strip()}, **kwargs)
    except InvalidParameter as exc:
        raise InvalidParameter(f"{where}: {exc.message}") from None
