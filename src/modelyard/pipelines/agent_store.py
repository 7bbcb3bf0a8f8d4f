"""The pipelines agent's rows in the metadata database: trigger states, trigger
events and the agents themselves.

Exactly-once rests on two statements, each one transaction:

- `record` inserts a trigger's new events as ``pending`` under the unique
  ``(pipeline, trigger, event_key)`` and advances the trigger's state with them: an
  event seen twice (a repeated tick, a restarted or second agent) is one row;
- `claim_next` moves one event ``pending -> claimed`` by compare-and-swap, after
  counting the pipeline's active events under a lock on the pipeline's trigger
  rows (a row lock on PostgreSQL, the write lock on SQLite): two agents can never
  both claim it, nor together exceed the pipeline's concurrency limit.

Later moves (``claimed -> running -> finished | failed``) are compare-and-swaps too,
so a late worker never overwrites what a recovering agent decided.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from modelyard.core.ids import new_id, now_ms
from modelyard.core.store import schema as t
from modelyard.core.store.retry import retrying
from modelyard.pipelines.triggers import Event

__all__ = [
    "ACTIVE",
    "AgentRecord",
    "EventRecord",
    "EventStatus",
    "SqlAgentStore",
]

e = t.pipeline_events.c
s = t.pipeline_triggers.c
g = t.pipeline_agents.c


class EventStatus:
    """The life of an event: pending (waiting for a free slot), claimed (an agent
    took it and is starting the run), running (its run id is known), finished,
    failed, skipped (coalesced into a newer event of the same trigger)."""

    PENDING = "pending"
    CLAIMED = "claimed"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    SKIPPED = "skipped"


ACTIVE = (EventStatus.CLAIMED, EventStatus.RUNNING)


@dataclass(frozen=True)
class EventRecord:
    """One row of ``pipeline_events``."""

    event_id: str
    pipeline: str
    trigger: str
    kind: str
    event_key: str
    status: str
    occurred_at: int
    created_at: int
    updated_at: int
    payload: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    agent_id: str | None = None
    worker_pid: int | None = None
    error: str | None = None
    claimed_at: int | None = None
    ended_at: int | None = None

    @classmethod
    def from_row(cls, row: Any) -> EventRecord:
        m = dict(row._mapping)
        m["payload"] = json.loads(m["payload"]) if m["payload"] else {}
        return cls(**m)

    @property
    def event(self) -> Event:
        return Event(self.trigger, self.kind, self.event_key, self.occurred_at, self.payload)


@dataclass(frozen=True)
class AgentRecord:
    """One row of ``pipeline_agents``."""

    agent_id: str
    hostname: str
    pid: int
    poll_seconds: float
    started_at: int
    heartbeat_at: int
    stopped_at: int | None = None


class SqlAgentStore:
    """The agent's tables, on the engine of the metadata database.

    Example::

        store = SqlAgentStore(open_engine(settings.resolved_db_url))
        store.record("train", "dataset:churn", "dataset", events, {"version": 4})
        event = store.claim_next("train", max_concurrent=1, coalesce=(), agent_id=me)
    """

    def __init__(self, engine: Engine, *, retries: int = 3, retry_backoff: float = 0.2) -> None:
        self.engine = engine
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.safe_url = engine.url.render_as_string(hide_password=True)
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    # -- agents --------------------------------------------------------------------
    @retrying
    def register_agent(self, agent_id: str, hostname: str, pid: int, poll_seconds: float) -> None:
        now = now_ms()
        with self.engine.begin() as conn:
            conn.execute(
                insert(t.pipeline_agents).values(
                    agent_id=agent_id,
                    hostname=hostname,
                    pid=pid,
                    poll_seconds=poll_seconds,
                    started_at=now,
                    heartbeat_at=now,
                )
            )

    @retrying
    def heartbeat(self, agent_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(t.pipeline_agents)
                .where(g.agent_id == agent_id)
                .values(heartbeat_at=now_ms())
            )

    @retrying
    def stop_agent(self, agent_id: str) -> None:
        now = now_ms()
        with self.engine.begin() as conn:
            conn.execute(
                update(t.pipeline_agents)
                .where(g.agent_id == agent_id)
                .values(heartbeat_at=now, stopped_at=now)
            )

    @retrying
    def agents(self, ids: Collection[str]) -> dict[str, AgentRecord]:
        if not ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.pipeline_agents).where(g.agent_id.in_(list(ids))))
            return {r.agent_id: AgentRecord(**dict(r._mapping)) for r in rows}

    # -- trigger states and events -------------------------------------------------
    @retrying
    def trigger_state(self, pipeline: str, trigger: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            raw = conn.execute(
                select(s.state).where(s.pipeline == pipeline, s.trigger == trigger)
            ).scalar()
        return None if raw is None else json.loads(raw)

    @retrying
    def arm(self, pipeline: str, trigger: str, kind: str, state: dict[str, Any]) -> dict[str, Any]:
        """Store a trigger's first state unless one exists; returns the stored one."""
        now = now_ms()
        with self.engine.begin() as conn:
            conn.execute(
                self._insert(t.pipeline_triggers)
                .values(
                    pipeline=pipeline,
                    trigger=trigger,
                    kind=kind,
                    state=json.dumps(state),
                    armed_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing()
            )
            raw = conn.execute(
                select(s.state).where(s.pipeline == pipeline, s.trigger == trigger)
            ).scalar_one()
        return json.loads(raw)

    @retrying
    def record(
        self,
        pipeline: str,
        trigger: str,
        kind: str,
        events: Sequence[Event],
        state: dict[str, Any],
    ) -> list[str]:
        """Insert ``events`` as pending (those already recorded are left alone) and
        set the trigger's state, in one transaction; returns the keys that were new."""
        now = now_ms()
        added: list[str] = []
        with self.engine.begin() as conn:
            for ev in events:
                result = conn.execute(
                    self._insert(t.pipeline_events)
                    .values(
                        event_id=new_id(),
                        pipeline=pipeline,
                        trigger=trigger,
                        kind=kind,
                        event_key=ev.key,
                        payload=json.dumps(ev.payload, default=str),
                        status=EventStatus.PENDING,
                        occurred_at=ev.occurred_at,
                        created_at=now,
                        updated_at=now,
                    )
                    .on_conflict_do_nothing(index_elements=["pipeline", "trigger", "event_key"])
                )
                if result.rowcount:
                    added.append(ev.key)
            conn.execute(
                update(t.pipeline_triggers)
                .where(s.pipeline == pipeline, s.trigger == trigger)
                .values(state=json.dumps(state), updated_at=now)
            )
        return added

    @retrying
    def claim_next(
        self,
        pipeline: str,
        *,
        max_concurrent: int,
        coalesce: Collection[str],
        agent_id: str,
    ) -> EventRecord | None:
        """Claim the oldest pending event of ``pipeline`` if fewer than
        ``max_concurrent`` of its events are active; first, each trigger named in
        ``coalesce`` keeps only its newest pending event (the others are skipped)."""
        now = now_ms()
        with self.engine.begin() as conn:
            # The lock: touching the pipeline's trigger rows serialises its claims.
            conn.execute(
                update(t.pipeline_triggers).where(s.pipeline == pipeline).values(updated_at=now)
            )
            active = conn.execute(
                select(func.count())
                .select_from(t.pipeline_events)
                .where(e.pipeline == pipeline, e.status.in_(ACTIVE))
            ).scalar_one()
            if active >= max_concurrent:
                return None
            pending = conn.execute(
                select(e.event_id, e.trigger, e.event_key)
                .where(e.pipeline == pipeline, e.status == EventStatus.PENDING)
                .order_by(e.occurred_at, e.created_at, e.event_id)
            ).all()
            newest: dict[str, tuple[str, str]] = {}
            for row in pending:
                if row.trigger in coalesce:
                    newest[row.trigger] = (row.event_id, row.event_key)
            skipped: set[str] = set()
            for trigger, (keep, key) in newest.items():
                older = [r.event_id for r in pending if r.trigger == trigger and r.event_id != keep]
                if older:
                    conn.execute(
                        update(t.pipeline_events)
                        .where(e.event_id.in_(older), e.status == EventStatus.PENDING)
                        .values(
                            status=EventStatus.SKIPPED,
                            error=f"coalesced into {key}",
                            ended_at=now,
                            updated_at=now,
                        )
                    )
                    skipped.update(older)
            remaining = [r for r in pending if r.event_id not in skipped]
            if not remaining:
                return None
            chosen = remaining[0].event_id
            result = conn.execute(
                update(t.pipeline_events)
                .where(e.event_id == chosen, e.status == EventStatus.PENDING)
                .values(
                    status=EventStatus.CLAIMED,
                    agent_id=agent_id,
                    claimed_at=now,
                    updated_at=now,
                )
            )
            if result.rowcount != 1:
                return None
            row = conn.execute(select(t.pipeline_events).where(e.event_id == chosen)).one()
        return EventRecord.from_row(row)

    @retrying
    def set_worker(self, event_id: str, pid: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(t.pipeline_events)
                .where(e.event_id == event_id)
                .values(worker_pid=pid, updated_at=now_ms())
            )

    @retrying
    def adopt(self, event_id: str, old_agent: str | None, new_agent: str) -> bool:
        """Take over an active event of an agent that is gone (its worker lives on);
        False when another agent took it first or it ended."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(t.pipeline_events)
                .where(
                    e.event_id == event_id,
                    e.status.in_(ACTIVE),
                    e.agent_id.is_(None) if old_agent is None else e.agent_id == old_agent,
                )
                .values(agent_id=new_agent, updated_at=now_ms())
            )
        return result.rowcount == 1

    @retrying
    def set_running(self, event_id: str, run_id: str) -> bool:
        """``claimed -> running`` with the run's id; False when no longer claimed."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(t.pipeline_events)
                .where(e.event_id == event_id, e.status == EventStatus.CLAIMED)
                .values(status=EventStatus.RUNNING, run_id=run_id, updated_at=now_ms())
            )
        return result.rowcount == 1

    @retrying
    def finish(
        self,
        event_id: str,
        status: str,
        *,
        run_id: str | None = None,
        error: str | None = None,
    ) -> bool:
        """An active event ends ``finished`` or ``failed``; False when it was not
        active any more (another agent already decided)."""
        now = now_ms()
        values: dict[str, Any] = {"status": status, "error": error, "ended_at": now}
        if run_id is not None:
            values["run_id"] = run_id
        with self.engine.begin() as conn:
            result = conn.execute(
                update(t.pipeline_events)
                .where(e.event_id == event_id, e.status.in_(ACTIVE))
                .values(**values, updated_at=now)
            )
        return result.rowcount == 1

    @retrying
    def active(self, pipeline: str | None = None) -> list[EventRecord]:
        """Claimed and running events, oldest claim first."""
        stmt = select(t.pipeline_events).where(e.status.in_(ACTIVE)).order_by(e.claimed_at)
        if pipeline is not None:
            stmt = stmt.where(e.pipeline == pipeline)
        with self.engine.connect() as conn:
            return [EventRecord.from_row(r) for r in conn.execute(stmt)]

    @retrying
    def get(self, event_id: str) -> EventRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.pipeline_events).where(e.event_id == event_id)).first()
        return None if row is None else EventRecord.from_row(row)

    @retrying
    def events(
        self,
        pipeline: str | None = None,
        *,
        statuses: Collection[str] | None = None,
        limit: int = 100,
    ) -> list[EventRecord]:
        """Events, newest first."""
        stmt = (
            select(t.pipeline_events)
            .order_by(e.occurred_at.desc(), e.created_at.desc(), e.event_id)
            .limit(limit)
        )
        conditions = []
        if pipeline is not None:
            conditions.append(e.pipeline == pipeline)
        if statuses is not None:
            conditions.append(e.status.in_(list(statuses)))
        if conditions:
            stmt = stmt.where(and_(*conditions))
        with self.engine.connect() as conn:
            return [EventRecord.from_row(r) for r in conn.execute(stmt)]
