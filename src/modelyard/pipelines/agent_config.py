"""The agent's configuration: which pipelines it fires, on which triggers.

In YAML::

    pipelines:
      - target: my_project.pipelines:churn_training   # package.module:attr
        params: {dataset: "${trigger.ref}", C: 0.5}     # ${trigger.FIELD}: the event's
        executor: local                                  # local (workers: N) or ray
        max_concurrent: 1
        triggers:
          - schedule: "0 3 * * *"
          - dataset: churn
          - alert: churn
            rule: churn-drift

A parameter may name a field of the event that fires the run: ``${trigger.ref}``
(``churn@4`` for a dataset trigger) trains on exactly the version that arrived. A
field every trigger of the pipeline provides: ``kind``, ``trigger``, ``key``,
``event_id``, ``occurred_at``, and per kind those in ``Trigger.fields``. The whole
file is checked on load, so a typo stops the agent before it starts, not at 3 am.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.core.errors import InvalidParameter
from modelyard.pipelines.agent_store import EventRecord
from modelyard.pipelines.pipeline import load_pipeline
from modelyard.pipelines.triggers import Trigger, parse_trigger

__all__ = ["EXECUTORS", "AgentConfig", "PipelineSpec", "render_params", "trigger_document"]

EXECUTORS = ("local", "ray")
_COMMON_FIELDS = frozenset({"kind", "trigger", "key", "event_id", "occurred_at"})
_FIELD = re.compile(r"\$\{trigger\.([A-Za-z_][A-Za-z0-9_]*)\}")
_PIPELINE_KEYS = frozenset(
    {"target", "params", "triggers", "max_concurrent", "executor", "workers", "ray_address"}
)


@dataclass(frozen=True)
class PipelineSpec:
    """One pipeline the agent fires: ``name`` is the pipeline's own (its runs' tag
    ``modelyard.pipeline``), ``target`` where it is defined (``package.module:attr``)."""

    name: str
    target: str
    params: dict[str, Any]
    triggers: tuple[Trigger, ...]
    max_concurrent: int = 1
    executor: str = "local"
    workers: int = 1
    ray_address: str | None = None


@dataclass(frozen=True)
class AgentConfig:
    """The pipelines an agent fires and their triggers, validated as a whole: each
    target imports to a pipeline that takes the given parameters, each trigger
    parses, and ``${trigger.FIELD}`` names a field every trigger of it provides.

    Example::

        config = AgentConfig.load("agent.yaml")
        config = AgentConfig.from_dict({"pipelines": [{"target": "p:churn",
                                        "triggers": [{"dataset": "churn"}]}]})
    """

    pipelines: tuple[PipelineSpec, ...]

    @classmethod
    def load(cls, path: str | Path) -> AgentConfig:
        import yaml

        path = Path(path)
        if not path.is_file():
            raise InvalidParameter(f"No agent configuration at {str(path)!r}")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise InvalidParameter(f"{path}: not valid YAML ({exc})") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Any, source: str = "agent configuration") -> AgentConfig:
        if not isinstance(data, Mapping) or not isinstance(data.get("pipelines"), list):
            raise InvalidParameter(
                f"{source}: expected a mapping with a 'pipelines' list, "
                "e.g. pipelines: [{target: my.module:pipe, triggers: [{dataset: churn}]}]"
            )
        extra = sorted(str(k) for k in data if k != "pipelines")
        if extra:
            raise InvalidParameter(f"{source}: unknown key {extra[0]!r}; expected 'pipelines'")
        if not data["pipelines"]:
            raise InvalidParameter(f"{source}: 'pipelines' is empty; name at least one")
        specs: list[PipelineSpec] = []
        for i, item in enumerate(data["pipelines"]):
            spec = _parse_pipeline(item, f"{source}: pipelines[{i}]")
            if any(s.name == spec.name for s in specs):
                raise InvalidParameter(
                    f"{source}: pipelines[{i}]: pipeline {spec.name!r} is listed twice; "
                    "list it once with all its triggers"
                )
            specs.append(spec)
        return cls(tuple(specs))

    def pipeline(self, name: str) -> PipelineSpec:
        for spec in self.pipelines:
            if spec.name == name:
                return spec
        raise InvalidParameter(f"The agent fires no pipeline named {name!r}")


def _parse_pipeline(item: Any, where: str) -> PipelineSpec:
    if not isinstance(item, Mapping):
        raise InvalidParameter(f"{where}: expected a mapping with target and triggers")
    extra = sorted(str(k) for k in item if k not in _PIPELINE_KEYS)
    if extra:
        raise InvalidParameter(
            f"{where}: unknown key {extra[0]!r}; expected {', '.join(sorted(_PIPELINE_KEYS))}"
        )
    target = item.get("target")
    if not isinstance(target, str) or not target.strip():
        raise InvalidParameter(f"{where}: 'target' names the pipeline as package.module:attr")
    try:
        pipe = load_pipeline(target.strip())
    except InvalidParameter as exc:
        raise InvalidParameter(f"{where}: unknown pipeline target: {exc.message}") from None
    where = f"{where} ({pipe.name})"
    params = item.get("params") or {}
    if not isinstance(params, Mapping):
        raise InvalidParameter(f"{where}: 'params' must be a mapping, got {params!r}")
    try:
        pipe.params(params)
    except InvalidParameter as exc:
        raise InvalidParameter(f"{where}: {exc.message}") from None
    raw = item.get("triggers")
    if not isinstance(raw, list) or not raw:
        raise InvalidParameter(
            f"{where}: 'triggers' lists at least one of schedule, dataset, alert"
        )
    triggers = tuple(parse_trigger(t, f"{where}: triggers[{j}]") for j, t in enumerate(raw))
    names = [t.name for t in triggers]
    for name in names:
        if names.count(name) > 1:
            raise InvalidParameter(
                f"{where}: two triggers are named {name!r}; give one a distinct 'name'"
            )
    _check_fields(params, triggers, where)
    executor = item.get("executor", "local")
    if executor not in EXECUTORS:
        raise InvalidParameter(
            f"{where}: unknown executor {executor!r}; use {' or '.join(EXECUTORS)}"
        )
    numbers = {}
    for key in ("max_concurrent", "workers"):
        value = item.get(key, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidParameter(f"{where}: {key} must be a whole number ≥ 1, got {value!r}")
        numbers[key] = value
    return PipelineSpec(
        name=pipe.name,
        target=pipe.ref or target.strip(),
        params=dict(params),
        triggers=triggers,
        executor=executor,
        ray_address=item.get("ray_address"),
        **numbers,
    )


def _references(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(_FIELD.findall(value))
    if isinstance(value, Mapping):
        return set().union(*(_references(v) for v in value.values()))
    if isinstance(value, list | tuple):
        return set().union(*(_references(v) for v in value))
    return set()


def _check_fields(params: Mapping[str, Any], triggers: Sequence[Trigger], where: str) -> None:
    for name in sorted(_references(dict(params))):
        lacking = [t.name for t in triggers if name not in _COMMON_FIELDS | t.fields]
        if lacking:
            known = sorted(_COMMON_FIELDS.union(*(t.fields for t in triggers)))
            raise InvalidParameter(
                f"{where}: params use ${{trigger.{name}}}, which trigger {lacking[0]!r} "
                f"does not provide (fields: {', '.join(known)}; every trigger provides "
                f"{', '.join(sorted(_COMMON_FIELDS))})"
            )


def trigger_document(record: EventRecord) -> dict[str, Any]:
    """Why a run runs: recorded as its ``modelyard.trigger`` tag (JSON)."""
    return {
        "kind": record.kind,
        "trigger": record.trigger,
        "key": record.event_key,
        "event_id": record.event_id,
        "occurred_at": record.occurred_at,
        **record.payload,
    }


def render_params(params: Mapping[str, Any], document: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with ``${trigger.FIELD}`` replaced by the event's field; a value
    that is exactly one reference takes the field's own type (a version stays an int)."""

    def sub(value: Any) -> Any:
        if isinstance(value, str):
            whole = _FIELD.fullmatch(value)
            if whole:
                return document.get(whole.group(1))
            return _FIELD.sub(lambda m: str(document.get(m.group(1), "")), value)
        if isinstance(value, Mapping):
            return {k: sub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [sub(v) for v in value]
        return value

    return {k: sub(v) for k, v in params.items()}
