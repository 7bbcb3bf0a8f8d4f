"""Identifiers and timestamps: 32-hex run ids (MLflow-compatible), UTC milliseconds."""

from __future__ import annotations

import time
import uuid

__all__ = ["current_user", "new_id", "now_ms"]


def new_id() -> str:
    """A fresh 32-character lowercase hex id."""
    return uuid.uuid4().hex


def now_ms() -> int:
    """The current UTC time in integer milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def current_user() -> str:
    """The login name recorded as who did something; "unknown" when the system has
    none (containers without a passwd entry)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
