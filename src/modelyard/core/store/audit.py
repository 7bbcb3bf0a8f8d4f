"""Audit events: who changed what, when, with the state before and after.

Written by the stores inside the transaction that makes the change, so an event
exists exactly when its change does."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from modelyard.core.ids import now_ms
from modelyard.core.store.schema import audit_events

__all__ = ["list_events", "record_event"]


def record_event(
    conn: Connection,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    before: Any = None,
    after: Any = None,
) -> None:
    conn.execute(
        insert(audit_events).values(
            created_at=now_ms(),
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            before=None if before is None else json.dumps(before, default=str, sort_keys=True),
            after=None if after is None else json.dumps(after, default=str, sort_keys=True),
        )
    )


def list_events(
    engine: Engine, entity_type: str | None = None, entity_id: str | None = None
) -> list[dict]:
    """Events oldest first, optionally for one entity (or entities whose id starts
    with ``entity_id + "/"``, e.g. every version of a model)."""
    a = audit_events.c
    stmt = select(audit_events).order_by(a.event_id)
    if entity_type:
        stmt = stmt.where(a.entity_type == entity_type)
    if entity_id:
        stmt = stmt.where((a.entity_id == entity_id) | a.entity_id.startswith(entity_id + "/"))
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]
