"""The registry store as a client of a modelyard server's native API (``/api/v1/models``).

Same methods and signatures as `SqlRegistryStore`, so `RegistryService` runs over
either; every call goes through the tracking REST client's transport (retries,
typed errors). The server runs the same service again on its side, so its checks
(policies, package manifests) hold whatever the client does.
"""

from __future__ import annotations

import dataclasses
import string
from typing import Any
from urllib.parse import quote

from modelyard.core.ids import current_user
from modelyard.registry.entities import (
    Approval,
    ApprovalPolicy,
    Assignment,
    ModelVersion,
    RegisteredModel,
    Stage,
)
from modelyard.tracking.rest_store import RestTrackingStore

__all__ = ["USER_HEADER", "RestRegistryStore"]

USER_HEADER = "X-Modelyard-User"
_ALL_MODELS = "-"  # the server's "every model" in /api/v1/models/-/versions
_HEADER_SAFE = "".join(c for c in string.punctuation + " " if c != "%")


def _build(cls: type, data: dict) -> Any:
    """A registry entity from its JSON, ignoring fields a newer server may add."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def _version(data: dict) -> ModelVersion:
    return _build(ModelVersion, data)


def _model(data: dict) -> RegisteredModel:
    model = _build(RegisteredModel, data)
    model.latest_versions = [_version(v) for v in data.get("latest_versions", [])]
    return model


def _seg(value: object) -> str:
    """One path segment, percent-encoded: names with spaces or dots arrive intact."""
    return quote(str(value), safe="")


class RestRegistryStore:
    """The model registry of the modelyard server that ``rest`` talks to.

    Example::

        tracking = RestTrackingStore("http://mlhost:5000")
        reg = RegistryService(RestRegistryStore(tracking), TrackingService(tracking, ...))
        reg.approve("churn", 3, reason="reviewed")   # the server records the local user

    - ``rest``: the tracking REST client; its transport (connection pool, retries,
      typed errors) carries the registry calls too.
    - ``actor``: who the server's audit log names; the local login name by default.
      It travels in the ``X-Modelyard-User`` header, which is set on the shared HTTP
      client, so the server sees the same user for tracking calls.
    """

    def __init__(self, rest: RestTrackingStore, *, actor: str | None = None) -> None:
        self.rest = rest
        self.actor = actor or current_user()
        rest.http.headers[USER_HEADER] = quote(self.actor, safe=_HEADER_SAFE)

    def close(self) -> None:
        """Nothing to release: the HTTP client belongs to the tracking store."""

    def _call(self, method: str, path: str, body: Any = None, params: dict | None = None) -> Any:
        if params:
            params = {k: v for k, v in params.items() if v is not None}
        return self.rest._call(method, f"/api/v1/models{path}", body, params or None)

    @staticmethod
    def _model_path(name: str) -> str:
        return f"/{_seg(name)}"

    @staticmethod
    def _version_path(name: str, version: int) -> str:
        return f"/{_seg(name)}/versions/{_seg(version)}"

    # -- registered models -------------------------------------------------------
    def create_registered_model(
        self, name: str, description: str | None = None, tags: dict[str, str] | None = None
    ) -> RegisteredModel:
        body = {"name": name, "description": description, "tags": tags or {}}
        return _model(self._call("POST", "", body))

    def get_registered_model(self, name: str) -> RegisteredModel:
        return _model(self._call("GET", self._model_path(name)))

    def search_registered_models(
        self, name_like: str | None = None, max_results: int = 100, offset: int = 0
    ) -> tuple[list[RegisteredModel], bool]:
        params = {"name_like": name_like, "max_results": max_results, "offset": offset}
        data = self._call("GET", "", params=params)
        return [_model(m) for m in data["models"]], bool(data["has_more"])

    def update_registered_model(
        self, name: str, *, description: str | None = None, new_name: str | None = None
    ) -> RegisteredModel:
        body = {"description": description, "new_name": new_name}
        return _model(self._call("PATCH", self._model_path(name), body))

    def delete_registered_model(self, name: str) -> None:
        self._call("DELETE", self._model_path(name))

    def set_registered_model_tag(self, name: str, key: str, value: str | None) -> None:
        """Set a tag, or delete it when ``value`` is None."""
        path = f"{self._model_path(name)}/tags/{quote(key, safe='/')}"
        if value is None:
            self._call("DELETE", path)
        else:
            self._call("PUT", path, {"value": value})

    # -- versions ----------------------------------------------------------------
    def create_model_version(
        self,
        name: str,
        *,
        source: str,
        artifact_uri: str,
        run_id: str | None,
        user_id: str,
        flavor: str | None,
        signature: dict | None,
        metrics: dict,
        lineage: list,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> ModelVersion:
        """Register ``source`` on the server. The server locates the package and takes
        the run snapshot (metrics, lineage, flavor, signature) itself, as the caller
        (the header's user); the snapshot arguments only say what the client saw, so
        ``source`` must be reachable by the server (``runs:/``, ``mlflow-artifacts:/``
        or shared storage). The server checks the package again: what the client can
        read (a local folder) the server may not, and a version must be loadable."""
        body = {
            "source": source,
            "description": description,
            "tags": tags or {},
            "require_package": True,
        }
        return _version(self._call("POST", f"{self._model_path(name)}/versions", body))

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        return _version(self._call("GET", self._version_path(name, version)))

    def search_model_versions(
        self,
        name: str | None = None,
        run_id: str | None = None,
        max_results: int = 1000,
        offset: int = 0,
    ) -> tuple[list[ModelVersion], bool]:
        path = f"/{_seg(_ALL_MODELS if name is None else name)}/versions"
        params = {"run_id": run_id, "max_results": max_results, "offset": offset}
        data = self._call("GET", path, params=params)
        return [_version(v) for v in data["versions"]], bool(data["has_more"])

    def update_model_version(self, name: str, version: int, description: str) -> ModelVersion:
        path = self._version_path(name, version)
        return _version(self._call("PATCH", path, {"description": description}))

    def set_model_version_tag(self, name: str, version: int, key: str, value: str | None) -> None:
        path = f"{self._version_path(name, version)}/tags/{quote(key, safe='/')}"
        if value is None:
            self._call("DELETE", path)
        else:
            self._call("PUT", path, {"value": value})

    def delete_model_version(self, name: str, version: int) -> list[str]:
        """Delete a version and the aliases pointing at it; returns those aliases."""
        return list(self._call("DELETE", self._version_path(name, version))["aliases"])

    # -- aliases and stages ------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: int, reason: str | None = None) -> None:
        body = {"version": version, "reason": reason}
        self._call("PUT", f"{self._model_path(name)}/aliases/{_seg(alias)}", body)

    def delete_alias(self, name: str, alias: str) -> None:
        self._call("DELETE", f"{self._model_path(name)}/aliases/{_seg(alias)}")

    def get_alias(self, name: str, alias: str) -> int:
        data = self._call("GET", f"{self._model_path(name)}/aliases/{_seg(alias)}")
        return int(data["version"])

    def transition_stage(
        self,
        name: str,
        version: int,
        stage: Stage,
        *,
        archive_existing: bool = False,
        reason: str | None = None,
    ) -> ModelVersion:
        body = {"stage": Stage(stage).value, "archive_existing": archive_existing, "reason": reason}
        return _version(self._call("POST", f"{self._version_path(name, version)}/stage", body))

    def assignments(
        self, name: str, kind: str | None = None, label: str | None = None
    ) -> list[Assignment]:
        params: dict[str, Any] = {}
        if label is not None and kind in ("alias", "stage"):
            params[kind] = label
        data = self._call("GET", f"{self._model_path(name)}/history", params=params)
        periods = [_build(Assignment, a) for a in data["history"]]
        return [
            p
            for p in periods
            if (kind is None or p.kind == kind) and (label is None or p.label == label)
        ]

    # -- policies and approvals --------------------------------------------------
    def set_policy(self, policy: ApprovalPolicy) -> ApprovalPolicy:
        body = {
            "required_approvals": policy.required_approvals,
            "metric_floors": policy.metric_floors,
            "protected": policy.protected,
        }
        data = self._call("PUT", f"{self._model_path(policy.name)}/policy", body)
        return _build(ApprovalPolicy, data)

    def get_policy(self, name: str) -> ApprovalPolicy | None:
        data = self._call("GET", f"{self._model_path(name)}/policy")
        return None if data is None else _build(ApprovalPolicy, data)

    def add_approval(self, name: str, version: int, decision: str, reason: str | None) -> Approval:
        body = {"decision": decision, "reason": reason}
        path = f"{self._version_path(name, version)}/approvals"
        return _build(Approval, self._call("POST", path, body))

    def approvals(self, name: str, version: int | None = None) -> list[Approval]:
        path = (
            f"{self._model_path(name)}/approvals"
            if version is None
            else f"{self._version_path(name, version)}/approvals"
        )
        return [_build(Approval, a) for a in self._call("GET", path)["approvals"]]

    def audit_events(self, name: str) -> list[dict]:
        return list(self._call("GET", f"{self._model_path(name)}/audit")["events"])
