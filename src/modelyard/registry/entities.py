"""Value objects of the model registry, shaped so the MLflow-compatible API is a
field-for-field translation."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum

from modelyard.core.errors import InvalidParameter

__all__ = [
    "Approval",
    "ApprovalPolicy",
    "Assignment",
    "ModelVersion",
    "RegisteredModel",
    "Stage",
]


class Stage(StrEnum):
    """MLflow's stages; modelyard keeps them beside aliases for teams that use them."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"

    @classmethod
    def parse(cls, value: str) -> Stage:
        for stage in cls:
            if stage.value.lower() == str(value).strip().lower():
                return stage
        raise InvalidParameter(
            f"Invalid stage {value!r}: expected one of {', '.join(s.value for s in cls)}"
        )


@dataclass(slots=True)
class ModelVersion:
    name: str
    version: int
    source: str
    artifact_uri: str
    run_id: str | None
    stage: str
    status: str
    description: str | None
    user_id: str
    flavor: str | None
    signature: dict | None
    metrics: dict[str, float]
    lineage: list[dict]
    created_at: int
    updated_at: int
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(slots=True)
class RegisteredModel:
    name: str
    description: str | None
    created_at: int
    updated_at: int
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    latest_versions: list[ModelVersion] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(slots=True)
class Assignment:
    """One period during which ``version`` held an alias or a stage."""

    name: str
    kind: str  # "alias" | "stage"
    label: str
    version: int
    started_at: int
    started_by: str
    ended_at: int | None
    ended_by: str | None
    reason: str | None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(slots=True)
class ApprovalPolicy:
    """What a version needs before it may hold one of the ``protected`` aliases or
    stages: ``required_approvals`` approvals (and no standing rejection) and every
    metric at or above its floor."""

    name: str
    required_approvals: int = 0
    metric_floors: dict[str, float] = field(default_factory=dict)
    protected: list[str] = field(default_factory=lambda: ["production", "Production"])
    updated_at: int = 0
    updated_by: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(slots=True)
class Approval:
    name: str
    version: int
    decision: str  # "approved" | "rejected"
    actor: str
    reason: str | None
    created_at: int

    def to_dict(self) -> dict:
        return asdict(self)
