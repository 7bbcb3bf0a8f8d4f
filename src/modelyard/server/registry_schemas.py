"""Request and response models of the native registry API (``/api/v1/models``).

As in `server.schemas`: the models describe the wire format only (names, aliases,
versions, stages and policies are checked once, by the registry service), request
bodies refuse unknown fields, and handlers answer with `FastJSONResponse`, the
``*Out`` models documenting the routes without re-validating every response.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AliasRequest",
    "ApprovalOut",
    "ApprovalPage",
    "ApprovalRequest",
    "AssignmentOut",
    "AuditEventOut",
    "AuditLog",
    "CreateModelRequest",
    "DeletedVersion",
    "History",
    "ModelPage",
    "ModelVersionOut",
    "PolicyOut",
    "PolicyRequest",
    "RegisterVersionRequest",
    "RegisteredModelOut",
    "RollbackRequest",
    "StageRequest",
    "UpdateModelRequest",
    "UpdateVersionRequest",
    "VersionAt",
    "VersionPage",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests --------------------------------------------------------------------


class CreateModelRequest(_Body):
    name: str = Field(
        description="1-256 letters, digits, spaces, '_', '-', '.'.", examples=["churn"]
    )
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class UpdateModelRequest(_Body):
    description: str | None = Field(None, description="The new description.")
    new_name: str | None = Field(
        None, description="Rename the model; versions, aliases and history follow."
    )


class RegisterVersionRequest(_Body):
    source: str = Field(
        description="Where the model package is: runs:/<run_id>/<path>, a "
        "mlflow-artifacts:/ URI or a storage URL the server can read.",
        examples=["runs:/0123456789abcdef0123456789abcdef/model"],
    )
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    require_package: bool = Field(
        True,
        description="Refuse a source without a modelyard-model.yaml manifest "
        "(false registers any folder, as MLflow does).",
    )


class UpdateVersionRequest(_Body):
    description: str


class AliasRequest(_Body):
    version: int | str = Field(description="The version the alias points at.", examples=[3])
    reason: str | None = Field(None, description="Kept in the alias history.")


class StageRequest(_Body):
    stage: str = Field(description="None, Staging, Production or Archived.", examples=["Staging"])
    archive_existing: bool = Field(
        False, description="Move the versions now in that stage to Archived."
    )
    reason: str | None = None


class PolicyRequest(_Body):
    required_approvals: int = Field(0, description="Approvals needed (and no rejection).")
    metric_floors: dict[str, float] = Field(
        default_factory=dict,
        description="Minimum value of each metric of the version's run snapshot.",
        examples=[{"accuracy": 0.8}],
    )
    protected: list[str] | None = Field(
        None,
        description="The aliases and stages the policy guards; the 'production' alias and "
        "the 'Production' stage if unset.",
    )


class ApprovalRequest(_Body):
    decision: Literal["approved", "rejected"]
    reason: str | None = Field(None, description="Why; shown in the model card and audit log.")


class RollbackRequest(_Body):
    reason: str | None = Field(None, description="'rollback from version N' if unset.")


# -- responses -------------------------------------------------------------------


class ModelVersionOut(BaseModel):
    name: str
    version: int
    source: str
    artifact_uri: str = Field(description="mlflow-artifacts:/... under the server's root.")
    run_id: str | None
    stage: str
    status: str
    description: str | None
    user_id: str
    flavor: str | None
    signature: dict | None
    metrics: dict[str, float] = Field(description="The source run's metrics when registered.")
    lineage: list[dict] = Field(description="The source run's dataset inputs.")
    created_at: int = Field(description="UTC milliseconds.")
    updated_at: int = Field(description="UTC milliseconds.")
    tags: dict[str, str]
    aliases: list[str]


class RegisteredModelOut(BaseModel):
    name: str
    description: str | None
    created_at: int
    updated_at: int
    tags: dict[str, str]
    aliases: dict[str, int] = Field(description="Alias -> version.")
    latest_versions: list[ModelVersionOut] = Field(description="The newest version per stage.")


class ModelPage(BaseModel):
    models: list[RegisteredModelOut]
    has_more: bool = Field(description="More follow: ask again with offset + max_results.")


class VersionPage(BaseModel):
    versions: list[ModelVersionOut]
    has_more: bool


class DeletedVersion(BaseModel):
    aliases: list[str] = Field(description="The aliases that pointed at it, removed with it.")


class AssignmentOut(BaseModel):
    name: str
    kind: Literal["alias", "stage"]
    label: str
    version: int
    started_at: int
    started_by: str
    ended_at: int | None = Field(description="null while the version still holds the label.")
    ended_by: str | None
    reason: str | None


class History(BaseModel):
    history: list[AssignmentOut] = Field(description="Oldest first.")


class VersionAt(BaseModel):
    version: int | None = Field(description="null when no version held the alias then.")


class PolicyOut(BaseModel):
    name: str
    required_approvals: int
    metric_floors: dict[str, float]
    protected: list[str]
    updated_at: int
    updated_by: str


class ApprovalOut(BaseModel):
    name: str
    version: int
    decision: Literal["approved", "rejected"]
    actor: str
    reason: str | None
    created_at: int


class ApprovalPage(BaseModel):
    approvals: list[ApprovalOut] = Field(description="Oldest first.")


class AuditEventOut(BaseModel):
    event_id: int
    created_at: int
    actor: str
    action: str
    entity_type: str
    entity_id: str
    before: str | None = Field(description="JSON text of the state before, or null.")
    after: str | None = Field(description="JSON text of the state after, or null.")


class AuditLog(BaseModel):
    events: list[AuditEventOut] = Field(description="Oldest first.")
