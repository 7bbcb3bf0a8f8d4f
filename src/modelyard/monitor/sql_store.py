"""Monitoring's rows in the metadata database: fired alerts (and the feedback table
it shares with deployments, through `core.store.feedback`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, func, insert, select

from modelyard.core.store import feedback
from modelyard.core.store import schema as t
from modelyard.core.store.retry import retrying
from modelyard.monitor.alerts import Alert

__all__ = ["SqlMonitorStore"]

a = t.alerts.c


class SqlMonitorStore:
    def __init__(self, engine: Engine, *, retries: int = 3, retry_backoff: float = 0.2) -> None:
        self.engine = engine
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.safe_url = engine.url.render_as_string(hide_password=True)

    @retrying
    def add_alert(self, alert: Alert) -> None:
        row = alert.to_dict()
        row["deliveries"] = json.dumps(row["deliveries"])
        with self.engine.begin() as conn:
            conn.execute(insert(t.alerts).values(**row))

    @retrying
    def last_fired(self, rule: str, model: str) -> int | None:
        stmt = select(func.max(a.fired_at)).where(a.rule == rule, a.model == model)
        with self.engine.connect() as conn:
            return conn.execute(stmt).scalar()

    @retrying
    def alerts(
        self,
        model: str | None = None,
        *,
        since_ms: int | None = None,
        trigger: bool | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        """Fired alerts, newest first."""
        stmt = select(t.alerts).order_by(a.fired_at.desc(), a.id).limit(limit)
        if model is not None:
            stmt = stmt.where(a.model == model)
        if since_ms is not None:
            stmt = stmt.where(a.fired_at >= since_ms)
        if trigger is not None:
            stmt = stmt.where(a.trigger == trigger)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(stmt)]
        for r in rows:
            r["deliveries"] = json.loads(r["deliveries"]) if r["deliveries"] else {}
        return [Alert(**r) for r in rows]

    @retrying
    def add_feedback(self, rows: Sequence[dict[str, Any]]) -> None:
        with self.engine.begin() as conn:
            feedback.add_feedback(conn, rows)

    @retrying
    def feedback(self, model: str, since_ms: int | None = None) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return feedback.list_feedback(conn, model, since_ms)
