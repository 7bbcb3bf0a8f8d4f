"""Boundary checks for tracking input: return the normalised value or raise
`InvalidParameter` saying what was expected, what came and how to fix it."""

from __future__ import annotations

import math
import re

from modelyard.core.errors import InvalidParameter

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_PARAM_VALUE_LENGTH",
    "MAX_TAG_VALUE_LENGTH",
    "check_experiment_name",
    "check_key",
    "check_metric",
    "check_param_value",
    "check_run_id",
    "check_tag_value",
]

# MLflow's limits, so that anything MLflow accepts we accept and vice versa.
MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 256

_KEY_RE = re.compile(r"^[\w\-. /:]+$")
_RUN_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_valid_keys: set[str] = set()


def check_key(key: object, what: str = "key") -> str:
    if not isinstance(key, str) or not key:
        raise InvalidParameter(f"{what} must be a non-empty string, got {key!r}")
    if key in _valid_keys:
        return key
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidParameter(
            f"{what} {key[:40]!r}... is {len(key)} characters; the limit is {MAX_KEY_LENGTH}"
        )
    if not _KEY_RE.fullmatch(key) or key.startswith("/") or ".." in key.split("/"):
        raise InvalidParameter(
            f"Invalid {what} {key!r}: use letters, digits, underscores, dashes, periods, "
            "spaces, colons and slashes (not a leading '/' nor a '..' segment)"
        )
    if len(_valid_keys) < 100_000:  # keys repeat endlessly in a training loop
        _valid_keys.add(key)
    return key


def _check_text(value: object, what: str, limit: int) -> str:
    if value is None:
        raise InvalidParameter(f"{what} must not be null")
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        raise InvalidParameter(
            f"{what} is {len(text)} characters long; the limit is {limit}. "
            "Store large values as an artifact (log_text / log_dict) instead."
        )
    return text


def check_param_value(key: str, value: object) -> str:
    return _check_text(value, f"Value of param {key!r}", MAX_PARAM_VALUE_LENGTH)


def check_tag_value(key: str, value: object) -> str:
    return _check_text(value, f"Value of tag {key!r}", MAX_TAG_VALUE_LENGTH)


def check_metric(key: str, value: object, timestamp: object, step: object) -> tuple:
    """Return (value: float, timestamp: int, step: int) or raise."""
    if type(value) is float and type(timestamp) is int and type(step) is int and value - value == 0:
        return value, timestamp, step  # the common case: finite float, int stamps
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)  # numpy scalars, Decimal, numeric strings like "NaN"
        except (TypeError, ValueError):
            raise InvalidParameter(
                f"Metric {key!r} must be a number, got {type(value).__name__} {value!r}"
            ) from None
    value = float(value)
    if math.isinf(value):
        value = math.copysign(1.7976931348623157e308, value)
    try:
        ts, st = int(timestamp), int(step)
    except (TypeError, ValueError):
        raise InvalidParameter(
            f"Metric {key!r}: timestamp and step must be integers, got {timestamp!r}, {step!r}"
        ) from None
    return value, ts, st


def check_run_id(run_id: object) -> str:
    if not isinstance(run_id, str) or not _RUN_ID_RE.fullmatch(run_id):
        raise InvalidParameter(f"Invalid run id {run_id!r}: expected 32 lowercase hex characters")
    return run_id


def check_experiment_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameter(f"Experiment name must be a non-empty string, got {name!r}")
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise InvalidParameter(
            f"Experiment name is {len(name)} characters; the limit is {MAX_EXPERIMENT_NAME_LENGTH}"
        )
    return name
