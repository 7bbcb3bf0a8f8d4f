"""Plain value objects of experiment tracking, shaped like MLflow's so that the
MLflow-compatible API is a field-for-field translation."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import NamedTuple

__all__ = [
    "Experiment",
    "LifecycleStage",
    "Metric",
    "Param",
    "Run",
    "RunData",
    "RunInfo",
    "RunInput",
    "RunStatus",
    "RunTag",
]


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminated(self) -> bool:
        return self in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)


class LifecycleStage(StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"


class Metric(NamedTuple):
    """One point of a metric series (a named tuple: millions of them are built when a
    long history is read, and a tuple is the cheapest immutable record Python has)."""

    key: str
    value: float
    timestamp: int
    step: int = 0

    @classmethod
    def from_dict(cls, d: dict) -> Metric:
        return cls(d["key"], float(d["value"]), int(d["timestamp"]), int(d.get("step") or 0))

    def to_dict(self) -> dict:
        v = self.value
        # JSON has no NaN/Infinity; MLflow clients send and accept them as strings.
        if math.isnan(v) or math.isinf(v):
            v = "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
        return {"key": self.key, "value": v, "timestamp": self.timestamp, "step": self.step}


@dataclass(slots=True, frozen=True)
class Param:
    key: str
    value: str


@dataclass(slots=True, frozen=True)
class RunTag:
    key: str
    value: str


@dataclass(slots=True, frozen=True)
class RunInput:
    """A dataset version a run consumed, and in which role (train, eval...)."""

    dataset_name: str
    dataset_digest: str
    dataset_uri: str | None = None
    context: str | None = None


@dataclass(slots=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str
    creation_time: int
    last_update_time: int
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Experiment:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(slots=True)
class RunInfo:
    run_id: str
    run_name: str
    experiment_id: str
    user_id: str
    status: str
    start_time: int
    end_time: int | None
    lifecycle_stage: str
    artifact_uri: str
    parent_run_id: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RunInfo:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(slots=True)
class RunData:
    """The latest value per metric, all params, all tags."""

    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metric_points: list[Metric] = field(default_factory=list)


@dataclass(slots=True)
class Run:
    info: RunInfo
    data: RunData
    inputs: list[RunInput] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "info": self.info.to_dict(),
            "data": {
                "metrics": [m.to_dict() for m in self.data.metric_points],
                "params": self.data.params,
                "tags": self.data.tags,
            },
            "inputs": [asdict(i) for i in self.inputs],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Run:
        points = [Metric.from_dict(m) for m in d["data"].get("metrics", [])]
        data = RunData(
            metrics={m.key: m.value for m in points},
            params=dict(d["data"].get("params", {})),
            tags=dict(d["data"].get("tags", {})),
            metric_points=points,
        )
        inputs = [RunInput(**i) for i in d.get("inputs", [])]
        return cls(RunInfo.from_dict(d["info"]), data, inputs)
