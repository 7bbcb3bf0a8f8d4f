"""One exception root for modelyard, each error with a stable code.

    ModelyardError                      INTERNAL_ERROR            500
    ├── InvalidParameter                INVALID_PARAMETER_VALUE   400
    ├── ResourceNotFound                RESOURCE_DOES_NOT_EXIST   404
    ├── ResourceAlreadyExists           RESOURCE_ALREADY_EXISTS   400
    ├── InvalidState                    INVALID_STATE             400
    │   └── PolicyViolation             INVALID_STATE             409
    ├── StoreUnavailable                TEMPORARILY_UNAVAILABLE   503
    ├── StorageFull                     RESOURCE_EXHAUSTED        507
    └── ArtifactIntegrityError          DATA_LOSS                 500

The codes are MLflow's where MLflow has one, so the MLflow-compatible API maps
them one to one; the HTTP layer renders `{"error_code": ..., "message": ...}`.
"""

from __future__ import annotations

__all__ = [
    "ArtifactIntegrityError",
    "InvalidParameter",
    "InvalidState",
    "ModelyardError",
    "PolicyViolation",
    "ResourceAlreadyExists",
    "ResourceNotFound",
    "StorageFull",
    "StoreUnavailable",
    "error_from_code",
]


class ModelyardError(Exception):
    """Root of every error modelyard raises on purpose."""

    code = "INTERNAL_ERROR"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"error_code": self.code, "message": self.message}


class InvalidParameter(ModelyardError):
    """The caller sent a value that is malformed, too long or out of range."""

    code = "INVALID_PARAMETER_VALUE"
    http_status = 400


class ResourceNotFound(ModelyardError):
    """An experiment, run, artifact or model that does not exist."""

    code = "RESOURCE_DOES_NOT_EXIST"
    http_status = 404


class ResourceAlreadyExists(ModelyardError):
    code = "RESOURCE_ALREADY_EXISTS"
    http_status = 400


class InvalidState(ModelyardError):
    """The operation is valid in general but not for the object's current state
    (logging to a finished or deleted run, for example)."""

    code = "INVALID_STATE"
    http_status = 400


class PolicyViolation(InvalidState):
    """A model's approval policy refuses a promotion (approvals missing, a metric
    below its floor, a standing rejection); the message names the policy's terms."""

    http_status = 409


class StoreUnavailable(ModelyardError):
    """The metadata database or tracking server cannot be reached (after retries)."""

    code = "TEMPORARILY_UNAVAILABLE"
    http_status = 503


class StorageFull(ModelyardError):
    """The disk (or quota) under the database or the artifact store is full; the
    write that hit it was rolled back or discarded whole."""

    code = "RESOURCE_EXHAUSTED"
    http_status = 507


class ArtifactIntegrityError(ModelyardError):
    """A downloaded artifact's size or hash does not match what was stored."""

    code = "DATA_LOSS"
    http_status = 500


_BY_CODE: dict[str, type[ModelyardError]] = {
    cls.code: cls
    for cls in (
        ModelyardError,
        InvalidParameter,
        ResourceNotFound,
        ResourceAlreadyExists,
        InvalidState,
        StoreUnavailable,
        StorageFull,
        ArtifactIntegrityError,
    )
}


def error_from_code(code: str, message: str) -> ModelyardError:
    """Rebuild the typed error a server sent, so remote and local calls raise alike."""
    return _BY_CODE.get(code, ModelyardError)(message)
