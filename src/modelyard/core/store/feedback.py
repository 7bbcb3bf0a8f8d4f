"""Feedback rows: outcomes (labels, rewards) joined to answered requests.

Written by the gateway's ``/feedback`` and ``my.log_feedback`` (deployments) and by
``modelyard monitor labels add`` (monitoring); read by canary gates, A/B reports
and performance monitoring. One table, one set of functions on a connection, so
every writer stores the same shape. A second outcome for a request replaces the
first."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from modelyard.core.ids import now_ms
from modelyard.core.store.schema import feedback

__all__ = ["add_feedback", "get_feedback", "list_feedback"]

fb = feedback.c


def add_feedback(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Store ``rows`` in the caller's transaction (all or nothing)."""
    now = now_ms()
    values = [
        {
            **row,
            "prediction": _json(row.get("prediction")),
            "label": _json(row.get("label")),
            "created_at": now,
        }
        for row in rows
    ]
    ids = [v["request_id"] for v in values]
    for i in range(0, len(ids), 500):
        conn.execute(delete(feedback).where(fb.request_id.in_(ids[i : i + 500])))
    if values:
        conn.execute(insert(feedback), values)


def list_feedback(conn: Connection, model: str, since_ms: int | None = None) -> list[dict]:
    """``model``'s outcomes (for predictions made at or after ``since_ms``), oldest first."""
    stmt = select(feedback).where(fb.model == model).order_by(fb.created_at)
    if since_ms is not None:
        stmt = stmt.where(fb.predicted_at >= since_ms)
    rows = [dict(r._mapping) for r in conn.execute(stmt)]
    for r in rows:
        r["prediction"] = _unjson(r["prediction"])
        r["label"] = _unjson(r["label"])
    return rows


def get_feedback(conn: Connection, request_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(feedback).where(fb.request_id == request_id)).first()
    return None if row is None else dict(row._mapping)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def _unjson(text: str | None) -> Any:
    return None if text is None else json.loads(text)
