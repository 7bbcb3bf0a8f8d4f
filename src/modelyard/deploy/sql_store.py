"""Deployments and feedback on SQLAlchemy Core (SQLite or PostgreSQL).

A deployment changes only by compare-and-swap on its ``revision``: ``update`` reads
the row, applies a change, and writes it back only if nobody wrote in between (else
it reads again and re-applies). The change's audit event is written in the same
transaction, so the state and its history never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy import exc as sa_exc

from modelyard.core.errors import InvalidState, ResourceAlreadyExists, ResourceNotFound
from modelyard.core.ids import now_ms
from modelyard.core.store import feedback
from modelyard.core.store import schema as t
from modelyard.core.store.audit import list_events, record_event
from modelyard.core.store.retry import retrying
from modelyard.deploy.entities import Deployment

__all__ = ["Change", "SqlDeploymentStore"]

d = t.deployments.c

# What a change function returns: (audit action, details), or None for "no change".
Change = tuple[str, dict[str, Any]] | None


class SqlDeploymentStore:
    def __init__(
        self, engine: Engine, *, actor: str = "unknown", retries: int = 3, retry_backoff=0.2
    ) -> None:
        self.engine = engine
        self.actor = actor
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.safe_url = engine.url.render_as_string(hide_password=True)

    # -- deployments ---------------------------------------------------------------
    @retrying
    def create(self, dep: Deployment, details: dict[str, Any]) -> Deployment:
        now = now_ms()
        dep.created_at = dep.updated_at = now
        dep.revision = 1
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(t.deployments).values(
                        name=dep.name,
                        strategy=dep.strategy,
                        status=dep.status,
                        state=json.dumps(dep.state_dict()),
                        revision=1,
                        created_at=now,
                        updated_at=now,
                    )
                )
                record_event(
                    conn,
                    actor=self.actor,
                    action="deployment.created",
                    entity_type="deployment",
                    entity_id=dep.name,
                    after=details,
                )
        except sa_exc.IntegrityError as exc:
            raise ResourceAlreadyExists(f"Deployment {dep.name!r} already exists") from exc
        return dep

    @retrying
    def get(self, name: str) -> Deployment:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.deployments).where(d.name == name)).first()
        if row is None:
            raise ResourceNotFound(
                f"Deployment {name!r} not found (create it: modelyard deploy create {name} URI)"
            )
        return _deployment(row)

    @retrying
    def list(self) -> list[Deployment]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.deployments).order_by(d.name)).all()
        return [_deployment(r) for r in rows]

    @retrying
    def revision(self, name: str) -> int | None:
        """The current revision (a cheap poll for "did anything change?")."""
        with self.engine.connect() as conn:
            return conn.execute(select(d.revision).where(d.name == name)).scalar()

    @retrying
    def update(self, name: str, change: Callable[[Deployment], Change]) -> Deployment:
        """Apply ``change`` to the current state and store it (compare-and-swap on the
        revision, re-applied on a conflict). ``change`` mutates the deployment it is
        given and returns the audit (action, details), or None to store nothing."""
        for _ in range(50):
            dep = self.get(name)
            before = dep.state_dict()
            outcome = change(dep)
            if outcome is None:
                return dep
            action, details = outcome
            now = now_ms()
            with self.engine.begin() as conn:
                written = conn.execute(
                    update(t.deployments)
                    .where(d.name == name, d.revision == dep.revision)
                    .values(
                        strategy=dep.strategy,
                        status=dep.status,
                        state=json.dumps(dep.state_dict()),
                        revision=dep.revision + 1,
                        updated_at=now,
                    )
                ).rowcount
                if written != 1:
                    continue  # someone else wrote: read again, apply again
                record_event(
                    conn,
                    actor=self.actor,
                    action=action,
                    entity_type="deployment",
                    entity_id=name,
                    before=before,
                    after={**details, "state": dep.state_dict()},
                )
            dep.revision += 1
            dep.updated_at = now
            return dep
        raise InvalidState(f"Deployment {name!r} is changing too often to update; retry")

    @retrying
    def write_live(self, name: str, live: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(t.deployments)
                .where(d.name == name)
                .values(live=json.dumps(live, default=str), live_at=now_ms())
            )

    @retrying
    def delete(self, name: str, revision: int | None = None) -> None:
        """Delete ``name`` (only at ``revision`` when given: a change in between
        refuses the delete)."""
        stmt = delete(t.deployments).where(d.name == name)
        if revision is not None:
            stmt = stmt.where(d.revision == revision)
        with self.engine.begin() as conn:
            if conn.execute(stmt).rowcount != 1:
                if revision is not None and self.revision(name) is not None:
                    raise InvalidState(f"Deployment {name!r} changed meanwhile; retry the delete")
                raise ResourceNotFound(f"Deployment {name!r} not found")
            record_event(
                conn,
                actor=self.actor,
                action="deployment.deleted",
                entity_type="deployment",
                entity_id=name,
            )

    def events(self, name: str) -> list[dict]:
        events = list_events(self.engine, "deployment", name)
        for e in events:
            for key in ("before", "after"):
                if e.get(key):
                    e[key] = json.loads(e[key])
        return events

    # -- feedback (the table is shared with monitoring: core.store.feedback) --------
    @retrying
    def add_feedback(self, row: dict[str, Any]) -> None:
        """Store one outcome; a second one for the same request replaces the first."""
        with self.engine.begin() as conn:
            feedback.add_feedback(conn, [row])

    @retrying
    def feedback(self, model: str, since_ms: int | None = None) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return feedback.list_feedback(conn, model, since_ms)

    @retrying
    def get_feedback(self, request_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            return feedback.get_feedback(conn, request_id)


def _deployment(row: Any) -> Deployment:
    return Deployment.from_state(
        row.name,
        json.loads(row.state),
        revision=row.revision,
        created_at=row.created_at,
        updated_at=row.updated_at,
        live=json.loads(row.live) if row.live else None,
        live_at=row.live_at,
    )
