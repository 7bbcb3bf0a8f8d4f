"""Translate between modelyard's tracking entities and MLflow's REST JSON shapes.

Only shapes live here: no storage and no HTTP. MLflow's proto-JSON writes enums by
name (``"FINISHED"``, ``"ACTIVE_ONLY"``) but may send their numbers, and writes
NaN and infinities as strings; artifact locations under the server's artifact root
are handed out as ``mlflow-artifacts:/<path>`` so the client uploads through the
server's artifact proxy.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable
from typing import Any

from modelyard.core.errors import InvalidParameter
from modelyard.server.artifact_uris import ARTIFACTS_SCHEME, ArtifactUris, Uris
from modelyard.tracking.entities import (
    Experiment,
    Metric,
    Run,
    RunInfo,
    RunInput,
    RunStatus,
)

__all__ = [
    "ARTIFACTS_SCHEME",
    "DATASET_CONTEXT_TAG",
    "ArtifactUris",
    "Uris",
    "decode_offset",
    "encode_offset",
    "experiment_json",
    "metric_json",
    "run_info_json",
    "run_json",
    "run_status",
    "tags_dict",
    "view_type",
]

DATASET_CONTEXT_TAG = "mlflow.data.context"

# MLflow's enum numbers, for clients that send them instead of the names.
_STATUS_NUMBERS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
_VIEW_TYPES = {
    "ACTIVE_ONLY": "active",
    "DELETED_ONLY": "deleted",
    "ALL": "all",
    "1": "active",
    "2": "deleted",
    "3": "all",
}


# -- enums --------------------------------------------------------------------------
def run_status(value: str | int | None) -> str | None:
    """A run status by MLflow name or number, as modelyard's RunStatus value."""
    if value is None or value == "":
        return None
    if isinstance(value, int) or value.isdigit():
        name = _STATUS_NUMBERS.get(int(value))
    else:
        name = value.upper()
    if name not in RunStatus.__members__:
        raise InvalidParameter(
            f"Invalid run status {value!r}: expected one of {', '.join(RunStatus.__members__)}"
        )
    return name


def view_type(value: str | int | None) -> str:
    """MLflow's ACTIVE_ONLY / DELETED_ONLY / ALL (or 1 / 2 / 3) as the store's view."""
    if value is None or value == "":
        return "active"
    found = _VIEW_TYPES.get(str(value).upper())
    if found is None:
        raise InvalidParameter(
            f"Invalid view type {value!r}: expected ACTIVE_ONLY, DELETED_ONLY or ALL"
        )
    return found


# -- paging -------------------------------------------------------------------------
def encode_offset(kind: str, offset: int) -> str:
    """An opaque page token for results this adapter pages itself (``kind`` names them,
    so a token of one listing is refused by another)."""
    return base64.urlsafe_b64encode(json.dumps({kind: offset}).encode()).decode()


def decode_offset(kind: str, token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))[kind]
        if isinstance(offset, int) and offset >= 0:
            return offset
    except (ValueError, KeyError, TypeError):
        pass
    raise InvalidParameter(f"Invalid page_token {token!r}: pass back the token a call returned")


# -- entities -> MLflow JSON ---------------------------------------------------------
def tags_dict(tags: Iterable[Any]) -> dict[str, str]:
    """Request ``[{key, value}]`` pairs as a dict (a missing value is ""; the last key wins)."""
    return {t.key: "" if t.value is None else t.value for t in tags}


def _pairs(mapping: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in mapping.items()]


def _number(value: float) -> float | str:
    """JSON has no NaN or infinities; MLflow's proto-JSON writes them as strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def metric_json(m: Metric) -> dict:
    return {"key": m.key, "value": _number(m.value), "timestamp": m.timestamp, "step": m.step}


def experiment_json(exp: Experiment, uris: ArtifactUris) -> dict:
    return {
        "experiment_id": exp.experiment_id,
        "name": exp.name,
        "artifact_location": uris.to_mlflow(exp.artifact_location),
        "lifecycle_stage": exp.lifecycle_stage,
        "last_update_time": exp.last_update_time,
        "creation_time": exp.creation_time,
        "tags": _pairs(exp.tags),
    }


def run_info_json(info: RunInfo, uris: ArtifactUris) -> dict:
    out = {
        "run_id": info.run_id,
        "run_uuid": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id,
        "user_id": info.user_id,
        "status": str(info.status),
        "start_time": info.start_time,
        "artifact_uri": uris.to_mlflow(info.artifact_uri),
        "lifecycle_stage": str(info.lifecycle_stage),
    }
    if info.end_time is not None:
        out["end_time"] = info.end_time
    return out


def _dataset_input_json(item: RunInput) -> dict:
    dataset = {"name": item.dataset_name, "digest": item.dataset_digest}
    if item.dataset_uri is not None:
        dataset["source"] = item.dataset_uri
    tags = [{"key": DATASET_CONTEXT_TAG, "value": item.context}] if item.context else []
    return {"tags": tags, "dataset": dataset}


def run_json(run: Run, uris: ArtifactUris) -> dict:
    return {
        "info": run_info_json(run.info, uris),
        "data": {
            "metrics": [metric_json(m) for m in run.data.metric_points],
            "params": _pairs(run.data.params),
            "tags": _pairs(run.data.tags),
        },
        "inputs": {"dataset_inputs": [_dataset_input_json(i) for i in run.inputs]},
    }
