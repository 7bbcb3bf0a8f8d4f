"""The registry service: the one code path the SDK, the CLI and both REST APIs call.

It checks that what is registered really is a model package, snapshots the source
run's metrics, signature and dataset lineage into the version, enforces each
model's approval policy before a version takes a protected alias or stage, and
answers the history questions ("what served last Tuesday", "roll back").
"""

from __future__ import annotations

import contextlib
import posixpath
import re
from typing import Any

import yaml

from modelyard.core.artifacts import open_artifact_store
from modelyard.core.errors import (
    InvalidParameter,
    InvalidState,
    PolicyViolation,
    ResourceAlreadyExists,
    ResourceNotFound,
)
from modelyard.registry.entities import (
    Approval,
    ApprovalPolicy,
    Assignment,
    ModelVersion,
    RegisteredModel,
    Stage,
)
from modelyard.registry.sql_store import SqlRegistryStore
from modelyard.tracking.service import TrackingService

__all__ = ["MANIFEST", "RegistryService", "parse_models_uri"]

MANIFEST = "modelyard-model.yaml"
_NAME_RE = re.compile(r"^[A-Za-z0-9][\w\-. ]{0,255}$")
_ALIAS_RE = re.compile(r"^[A-Za-z][\w\-]{0,255}$")
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<ref>[^/@]+)|@(?P<alias>[^/@]+))/?$")


def parse_models_uri(uri: str) -> tuple[str, int | None, str | None, str | None]:
    """``models:/churn/7`` -> (churn, 7, None, None); ``models:/churn@champion`` ->
    (churn, None, "champion", None); ``models:/churn/Production`` -> (churn, None,
    None, "Production")."""
    m = _MODELS_URI.match(uri.strip())
    if not m:
        raise InvalidParameter(
            f"Invalid model URI {uri!r}: expected models:/<name>/<version>, "
            "models:/<name>@<alias> or models:/<name>/<stage>"
        )
    ref = m.group("ref")
    if ref is not None and ref.isdigit():
        return m.group("name"), int(ref), None, None
    if ref is not None:
        return m.group("name"), None, None, Stage.parse(ref).value
    return m.group("name"), None, m.group("alias"), None


def check_model_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidParameter(
            f"Invalid model name {name!r}: 1-256 letters, digits, spaces, '_', '-', '.', "
            "starting with a letter or digit"
        )
    return name


def check_alias(alias: object) -> str:
    if not isinstance(alias, str) or not _ALIAS_RE.match(alias):
        raise InvalidParameter(
            f"Invalid alias {alias!r}: letters, digits, '_' and '-', starting with a letter"
        )
    if alias.lower() == "latest" or re.fullmatch(r"v\d+", alias.lower()):
        raise InvalidParameter(f"Alias {alias!r} is reserved (it reads like a version)")
    return alias


def _version_number(version: object) -> int:
    try:
        number = int(str(version))
    except ValueError:
        raise InvalidParameter(f"Invalid version {version!r}: expected a number like 3") from None
    if number < 1:
        raise InvalidParameter(f"Invalid version {version!r}: versions start at 1")
    return number


class RegistryService:
    """Registered models and their versions, aliases, stages, approvals and history.

    Example::

        reg = RegistryService(SqlRegistryStore(engine, actor="ann"), tracking)
        v = reg.register_model("runs:/<run_id>/model", "churn")
        reg.set_policy("churn", required_approvals=1, metric_floors={"accuracy": 0.8})
        reg.approve("churn", v.version, reason="looks good")
        reg.set_alias("churn", "production", v.version)
        reg.rollback("churn", "production")     # back to the previous holder
    """

    def __init__(self, store: SqlRegistryStore, tracking: TrackingService) -> None:
        self.store = store
        self.tracking = tracking

    # -- registered models -------------------------------------------------------
    def create_registered_model(
        self, name: str, description: str | None = None, tags: dict[str, str] | None = None
    ) -> RegisteredModel:
        return self.store.create_registered_model(check_model_name(name), description, tags)

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self.store.get_registered_model(name)

    def search_registered_models(
        self, name_like: str | None = None, max_results: int = 100, offset: int = 0
    ) -> tuple[list[RegisteredModel], bool]:
        return self.store.search_registered_models(name_like, max_results, offset)

    def update_registered_model(self, name: str, description: str) -> RegisteredModel:
        return self.store.update_registered_model(name, description=description)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        return self.store.update_registered_model(name, new_name=check_model_name(new_name))

    def delete_registered_model(self, name: str) -> None:
        self.store.delete_registered_model(name)

    def set_registered_model_tag(self, name: str, key: str, value: str | None) -> None:
        self.store.set_registered_model_tag(name, key, value)

    # -- versions ----------------------------------------------------------------
    def _locate(self, source: str, require_package: bool) -> dict[str, Any]:
        """Where the package of ``source`` lives, and what its run and manifest say."""
        info: dict[str, Any] = {"run_id": None, "metrics": {}, "lineage": [], "manifest": None}
        if source.startswith("runs:/"):
            rest = source[len("runs:/") :].strip("/")
            run_id, _, path = rest.partition("/")
            run = self.tracking.get_run(run_id)
            info["run_id"] = run.info.run_id
            info["metrics"] = dict(run.data.metrics)
            info["lineage"] = [
                {
                    "dataset_name": i.dataset_name,
                    "dataset_digest": i.dataset_digest,
                    "dataset_uri": i.dataset_uri,
                    "context": i.context,
                }
                for i in run.inputs
            ]
            info["artifact_uri"] = (
                posixpath.join(run.info.artifact_uri, path) if path else (run.info.artifact_uri)
            )
            try:
                raw = self.tracking.read_artifact(run_id, posixpath.join(path, MANIFEST))
            except ResourceNotFound:
                raw = None
            where = f"run {run_id} at {path or '/'}"
        elif source.startswith("models:/"):
            raise InvalidParameter(
                f"Cannot register {source!r}: give the model's own location (runs:/... or "
                "a path/URL), or copy a version with copy_model_version"
            )
        else:
            info["artifact_uri"] = source
            store = open_artifact_store(source)
            raw = store.read_bytes(MANIFEST) if store.exists(MANIFEST) else None
            where = source
        if raw is not None:
            info["manifest"] = yaml.safe_load(raw) or {}
        elif require_package:
            raise InvalidParameter(
                f"No model found in {where}: there is no {MANIFEST}. Save one with "
                "my.log_model(...) or my.models.save(...) first"
            )
        return info

    def register_model(
        self,
        source: str,
        name: str,
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        require_package: bool = True,
        user_id: str = "",
    ) -> ModelVersion:
        """Register ``source`` (``runs:/<run_id>/<path>``, a local path or a storage
        URL holding a model package) as the next version of ``name``, creating the
        registered model on first use."""
        check_model_name(name)
        found = self._locate(source, require_package)
        manifest = found["manifest"] or {}
        version = {
            "source": source,
            "artifact_uri": found["artifact_uri"],
            "run_id": found["run_id"],
            "user_id": user_id or self.store.actor,
            "flavor": manifest.get("flavor"),
            "signature": manifest.get("signature"),
            "metrics": found["metrics"],
            "lineage": found["lineage"],
            "description": description,
            "tags": tags,
        }
        # The version first: a source the store refuses (e.g. a server that cannot
        # read a client's path) must not leave an empty registered model behind.
        try:
            return self.store.create_model_version(name, **version)
        except ResourceNotFound:
            with contextlib.suppress(ResourceAlreadyExists):
                self.store.create_registered_model(name)
            return self.store.create_model_version(name, **version)

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        return self.store.get_model_version(name, _version_number(version))

    def search_model_versions(
        self,
        name: str | None = None,
        run_id: str | None = None,
        max_results: int = 1000,
        offset: int = 0,
    ) -> tuple[list[ModelVersion], bool]:
        return self.store.search_model_versions(name, run_id, max_results, offset)

    def update_model_version(self, name: str, version: int | str, description: str) -> ModelVersion:
        return self.store.update_model_version(name, _version_number(version), description)

    def set_model_version_tag(
        self, name: str, version: int | str, key: str, value: str | None
    ) -> None:
        self.store.set_model_version_tag(name, _version_number(version), key, value)

    def delete_model_version(self, name: str, version: int | str) -> list[str]:
        """Delete a version; the aliases that pointed at it go too (returned)."""
        return self.store.delete_model_version(name, _version_number(version))

    def resolve(self, uri: str) -> ModelVersion:
        """The version a ``models:/`` URI names (by number, alias or stage)."""
        name, version, alias, stage = parse_models_uri(uri)
        if version is not None:
            return self.get_model_version(name, version)
        if alias is not None:
            return self.get_model_version(name, self.store.get_alias(name, alias))
        in_stage, _ = self.store.search_model_versions(name, max_results=100_000)
        for v in in_stage:  # newest first
            if v.stage == stage:
                return v
        raise ResourceNotFound(f"Model {name!r} has no version in stage {stage}")

    # -- policy ------------------------------------------------------------------
    def set_policy(
        self,
        name: str,
        *,
        required_approvals: int = 0,
        metric_floors: dict[str, float] | None = None,
        protected: list[str] | None = None,
    ) -> ApprovalPolicy:
        if required_approvals < 0:
            raise InvalidParameter("required_approvals must be 0 or more")
        floors = {k: float(v) for k, v in (metric_floors or {}).items()}
        policy = ApprovalPolicy(
            name=name,
            required_approvals=required_approvals,
            metric_floors=floors,
            protected=list(protected) if protected is not None else ["production", "Production"],
        )
        return self.store.set_policy(policy)

    def get_policy(self, name: str) -> ApprovalPolicy | None:
        return self.store.get_policy(name)

    def policy_problems(self, name: str, version: int, target: str) -> list[str]:
        """What stops ``version`` from taking ``target`` (an alias or a stage) under the
        model's policy; empty when nothing does."""
        policy = self.store.get_policy(name)
        if policy is None or target not in policy.protected:
            return []
        problems = []
        latest: dict[str, str] = {}
        for a in self.store.approvals(name, version):
            latest[a.actor] = a.decision
        approvals = sum(1 for d in latest.values() if d == "approved")
        rejected_by = sorted(actor for actor, d in latest.items() if d == "rejected")
        if rejected_by:
            problems.append(f"it is rejected by {', '.join(rejected_by)}")
        if approvals < policy.required_approvals:
            problems.append(f"it needs {policy.required_approvals} approval(s) and has {approvals}")
        metrics = self.get_model_version(name, version).metrics
        for metric, floor in sorted(policy.metric_floors.items()):
            value = metrics.get(metric)
            if value is None:
                problems.append(f"metric {metric!r} is missing (floor {floor:g})")
            elif value < floor:
                problems.append(f"metric {metric!r} = {value:g} is below its floor {floor:g}")
        return problems

    def _enforce(self, name: str, version: int, target: str) -> None:
        problems = self.policy_problems(name, version, target)
        if problems:
            raise PolicyViolation(
                f"The approval policy of {name!r} refuses version {version} for {target!r}: "
                + "; ".join(problems)
                + ". Approve it (modelyard models approve) or change the policy."
            )

    def approve(self, name: str, version: int | str, reason: str | None = None) -> Approval:
        return self.store.add_approval(name, _version_number(version), "approved", reason)

    def reject(self, name: str, version: int | str, reason: str | None = None) -> Approval:
        return self.store.add_approval(name, _version_number(version), "rejected", reason)

    def approvals(self, name: str, version: int | str | None = None) -> list[Approval]:
        return self.store.approvals(name, None if version is None else _version_number(version))

    # -- aliases and stages ------------------------------------------------------
    def set_alias(
        self, name: str, alias: str, version: int | str, reason: str | None = None
    ) -> ModelVersion:
        number = _version_number(version)
        check_alias(alias)
        self.store.get_model_version(name, number)  # 404 before any policy talk
        self._enforce(name, number, alias)
        self.store.set_alias(name, alias, number, reason)
        return self.store.get_model_version(name, number)

    def delete_alias(self, name: str, alias: str) -> None:
        self.store.delete_alias(name, alias)

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self.store.get_model_version(name, self.store.get_alias(name, alias))

    def transition_stage(
        self,
        name: str,
        version: int | str,
        stage: str,
        *,
        archive_existing: bool = False,
        reason: str | None = None,
    ) -> ModelVersion:
        number = _version_number(version)
        target = Stage.parse(stage)
        self.store.get_model_version(name, number)
        self._enforce(name, number, target.value)
        return self.store.transition_stage(
            name, number, target, archive_existing=archive_existing, reason=reason
        )

    # -- history -----------------------------------------------------------------
    def history(
        self, name: str, *, alias: str | None = None, stage: str | None = None
    ) -> list[Assignment]:
        """Every period a version held an alias or stage, oldest first."""
        if alias is not None:
            return self.store.assignments(name, "alias", alias)
        if stage is not None:
            return self.store.assignments(name, "stage", Stage.parse(stage).value)
        return self.store.assignments(name)

    def version_at(self, name: str, alias: str, when_ms: int) -> int | None:
        """Which version held ``alias`` at ``when_ms`` (None if none did)."""
        for a in reversed(self.store.assignments(name, "alias", alias)):
            if a.started_at <= when_ms and (a.ended_at is None or when_ms < a.ended_at):
                return a.version
        return None

    def rollback(self, name: str, alias: str = "production", reason: str | None = None):
        """Give ``alias`` back to the version that held it before the current one."""
        periods = self.store.assignments(name, "alias", alias)
        current = next((a for a in reversed(periods) if a.ended_at is None), None)
        if current is None:
            raise ResourceNotFound(f"Model {name!r} has no alias {alias!r} to roll back")
        for previous in reversed(periods):
            if previous.version == current.version or previous.started_at > current.started_at:
                continue
            try:
                self.store.get_model_version(name, previous.version)
            except ResourceNotFound:
                continue  # deleted since: look further back
            why = reason or f"rollback from version {current.version}"
            return self.set_alias(name, alias, previous.version, why)
        raise ResourceNotFound(
            f"No earlier version of {name!r} held {alias!r}: nothing to roll back to"
        )

    def audit(self, name: str) -> list[dict]:
        return self.store.audit_events(name)

    def record_event(self, name: str, action: str, details: dict) -> None:
        """Add an event to a model's audit trail (serving alerts, for one); stores
        reached over HTTP keep none (the server that loads the model records it)."""
        record = getattr(self.store, "record_event", None)
        if record is None:
            raise InvalidState("This registry store does not record events")
        record(name, action, details)
