"""What the pipelines ran and why: ``modelyard pipelines runs``.

Pipeline runs (parent runs, tag ``modelyard.pipeline``) joined to the agent's events
by the event id in their ``modelyard.trigger`` tag, plus the events that have no run
(pending, skipped by coalescing, failed before a run began) and runs started by
hand (reason ``manual``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelyard.core.errors import InvalidParameter
from modelyard.pipelines.agent_store import SqlAgentStore
from modelyard.pipelines.runner import TAG_ERROR, TAG_PIPELINE, TAG_TRIGGER
from modelyard.tracking.entities import Run
from modelyard.tracking.service import TrackingService

__all__ = ["PipelineRunView", "pipeline_runs"]


@dataclass
class PipelineRunView:
    """One pipeline run, or one event that has no run (pending, skipped, failed to
    start), with the reason it ran."""

    pipeline: str
    status: str  # the run's status, else the event's (PENDING, SKIPPED, FAILED...)
    reason: str  # "dataset churn@4", "schedule 2026-05-04T03:00Z", "manual"
    run_id: str | None = None
    trigger: str | None = None
    kind: str | None = None
    event_key: str | None = None
    event_status: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _reason(kind: str | None, key: str | None, payload: Mapping[str, Any]) -> str:
    if kind is None:
        return "manual"
    if kind == "dataset":
        return f"new dataset version {payload.get('ref') or key}"
    if kind == "schedule":
        late = " (catch-up)" if payload.get("missed_ticks") else ""
        return f"schedule {payload.get('cron', '')} at {payload.get('tick', key)}{late}"
    if kind == "alert":
        return f"alert {payload.get('rule', '')} on {payload.get('model', '')} ({key})"
    return f"{kind} {key}"


def _pipeline_parent_runs(tracking: TrackingService, pipeline: str | None, limit: int) -> list[Run]:
    if pipeline is not None:
        experiment = tracking.get_experiment_by_name(pipeline)
        ids = [experiment.experiment_id] if experiment else []
    else:
        ids = [e.experiment_id for e in tracking.all_experiments()]
    if not ids:
        return []
    where = f"tags.`{TAG_PIPELINE}` IS NOT NULL AND tags.`modelyard.step` IS NULL"
    if pipeline is not None:
        where += f" AND tags.`{TAG_PIPELINE}` = '{pipeline}'"
    return tracking.find_runs(
        ids, where, max_results=limit, order_by=["attributes.start_time DESC"]
    )


def pipeline_runs(
    store: SqlAgentStore,
    tracking: TrackingService,
    pipeline: str | None = None,
    limit: int = 50,
) -> list[PipelineRunView]:
    """Pipeline runs, newest first, with why each ran: the agent's events joined to
    the runs they started (by the event id in the run's trigger tag), plus runs
    started by hand and events that have no run."""
    if pipeline is not None and "'" in pipeline:
        raise InvalidParameter(f"Pipeline names have no quotes: {pipeline!r}")
    events = {r.event_id: r for r in store.events(pipeline, limit=limit)}
    rows: list[PipelineRunView] = []
    used: set[str] = set()
    for run in _pipeline_parent_runs(tracking, pipeline, limit):
        tags = run.data.tags
        try:
            document = json.loads(tags.get(TAG_TRIGGER) or "null") or {}
        except ValueError:
            document = {}
        record = events.get(document.get("event_id", ""))
        if record is not None:
            used.add(record.event_id)
        rows.append(
            PipelineRunView(
                pipeline=tags.get(TAG_PIPELINE, ""),
                status=run.info.status,
                reason=_reason(document.get("kind"), document.get("key"), document),
                run_id=run.info.run_id,
                trigger=document.get("trigger"),
                kind=document.get("kind"),
                event_key=document.get("key"),
                event_status=record.status if record else None,
                start_ms=run.info.start_time,
                end_ms=run.info.end_time,
                error=tags.get(TAG_ERROR) or (record.error if record else None),
            )
        )
    for record in events.values():
        if record.event_id in used:
            continue
        rows.append(
            PipelineRunView(
                pipeline=record.pipeline,
                status=record.status.upper(),
                reason=_reason(record.kind, record.event_key, record.payload),
                run_id=record.run_id,
                trigger=record.trigger,
                kind=record.kind,
                event_key=record.event_key,
                event_status=record.status,
                start_ms=record.claimed_at or record.occurred_at,
                end_ms=record.ended_at,
                error=record.error,
            )
        )
    rows.sort(key=lambda r: r.start_ms or 0, reverse=True)
    return rows[:limit]
