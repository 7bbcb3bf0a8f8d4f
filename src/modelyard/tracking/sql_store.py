"""The tracking store on SQLAlchemy Core: SQLite (WAL) embedded, PostgreSQL scaled out.

Every write is one transaction, so a failure never leaves half a batch behind.
Calls that fail because the database cannot be reached are retried with backoff,
then raise `StoreUnavailable`; writes are idempotent so a retry is safe.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite

from modelyard.core.errors import (
    InvalidParameter,
    InvalidState,
    ResourceAlreadyExists,
    ResourceNotFound,
)
from modelyard.core.ids import current_user, new_id, now_ms
from modelyard.core.store import schema as t
from modelyard.core.store.audit import list_events, record_event
from modelyard.core.store.retry import retrying
from modelyard.tracking.entities import (
    Experiment,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunInput,
    RunStatus,
    RunTag,
)
from modelyard.tracking.names import random_run_name
from modelyard.tracking.search import parse_filter, parse_order_by
from modelyard.tracking.search_sql import apply_order, compile_filter
from modelyard.tracking.store import Page, TrackingStore, ViewType

__all__ = ["SqlTrackingStore"]

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"

# Statements of the hot paths, built once: constructing SQLAlchemy expressions per
# call costs more than executing them on SQLite.
_RUN_STATE = select(t.runs.c.status, t.runs.c.lifecycle_stage).where(
    t.runs.c.run_uuid == bindparam("run_id")
)
_RUN_ROW = select(t.runs).where(t.runs.c.run_uuid == bindparam("run_id"))
_EXPERIMENT_ROW = select(t.experiments).where(
    t.experiments.c.experiment_id == bindparam("experiment_id")
)
_PARAMS_FOR_KEYS = select(t.params.c.key, t.params.c.value).where(
    t.params.c.run_uuid == bindparam("run_id"),
    t.params.c.key.in_(bindparam("keys", expanding=True)),
)
_IDS = bindparam("ids", expanding=True)
_PARAMS_OF_RUNS = select(t.params.c.run_uuid, t.params.c.key, t.params.c.value).where(
    t.params.c.run_uuid.in_(_IDS)
)
_TAGS_OF_RUNS = select(t.tags.c.run_uuid, t.tags.c.key, t.tags.c.value).where(
    t.tags.c.run_uuid.in_(_IDS)
)
_LATEST_OF_RUNS = select(
    t.latest_metrics.c.run_uuid,
    t.latest_metrics.c.key,
    t.latest_metrics.c.value,
    t.latest_metrics.c.timestamp,
    t.latest_metrics.c.step,
    t.latest_metrics.c.is_nan,
).where(t.latest_metrics.c.run_uuid.in_(_IDS))
_INPUTS_OF_RUNS = (
    select(
        t.run_inputs.c.run_uuid,
        t.run_inputs.c.dataset_name,
        t.run_inputs.c.dataset_digest,
        t.run_inputs.c.dataset_uri,
        t.run_inputs.c.context,
    )
    .where(t.run_inputs.c.run_uuid.in_(_IDS))
    .order_by(t.run_inputs.c.input_id)
)
_INSERT_RUN = insert(t.runs)
_INSERT_TAGS = insert(t.tags)
_INSERT_PARAMS = insert(t.params)


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError
        return offset
    except (ValueError, KeyError, TypeError):
        raise InvalidParameter(
            f"Invalid page_token {token!r}: pass back the token a search returned"
        ) from None


def _exp_id(experiment_id: str | int) -> int:
    try:
        return int(experiment_id)
    except (TypeError, ValueError):
        raise InvalidParameter(
            f"Invalid experiment id {experiment_id!r}: expected an integer id such as '0'"
        ) from None


def _metric_from_row(key: str, value: float, timestamp: int, step: int, is_nan: bool) -> Metric:
    return Metric(key, math.nan if is_nan else value, timestamp, step)


class SqlTrackingStore(TrackingStore):
    """Tracking on a SQLAlchemy engine (see `modelyard.core.store.engine.open_engine`).

    Example::

        store = SqlTrackingStore(open_engine("sqlite:///.modelyard/modelyard.db"), "/data/art")
        run = store.create_run("0", run_name="baseline")
        store.log_batch(run.info.run_id, metrics=[Metric("acc", 0.9, now_ms(), 0)])

    - ``engine``: the database; ``artifact_root``: where experiments keep artifacts
      unless given their own location; ``retries``/``retry_backoff``: how long to
      wait for an unreachable database before failing.
    """

    def __init__(
        self,
        engine: Engine,
        artifact_root: str,
        *,
        retries: int = 3,
        retry_backoff: float = 0.2,
        actor: str | None = None,
    ) -> None:
        self.engine = engine
        self.actor = actor or current_user()
        self.artifact_root = artifact_root.rstrip("/")
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.safe_url = engine.url.render_as_string(hide_password=True)
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        cols = "(run_uuid, key, value, timestamp, step, is_nan)"
        values = f"VALUES ({', '.join([mark] * 6)})"
        self._sql_insert_metrics = f"INSERT INTO metrics {cols} {values} ON CONFLICT DO NOTHING"
        self._sql_history = (
            f"SELECT value, timestamp, step, is_nan FROM metrics WHERE run_uuid = {mark} "
            f"AND key = {mark} ORDER BY step, timestamp"
        )
        self._sql_upsert_latest = (
            f"INSERT INTO latest_metrics {cols} {values} "
            "ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value, "
            "timestamp = excluded.timestamp, step = excluded.step, is_nan = excluded.is_nan "
            "WHERE excluded.step > latest_metrics.step OR (excluded.step = latest_metrics.step "
            "AND excluded.timestamp >= latest_metrics.timestamp)"
        )
        self._ensure_default_experiment()

    def close(self) -> None:
        self.engine.dispose()

    # -- helpers -----------------------------------------------------------------
    @retrying
    def _ensure_default_experiment(self) -> None:
        with self.engine.begin() as conn:
            found = conn.execute(
                select(t.experiments.c.experiment_id).where(t.experiments.c.experiment_id == 0)
            ).first()
            if found is None:
                now = now_ms()
                conn.execute(
                    self._insert(t.experiments)
                    .values(
                        experiment_id=0,
                        name=DEFAULT_EXPERIMENT_NAME,
                        artifact_location=f"{self.artifact_root}/0",
                        lifecycle_stage=LifecycleStage.ACTIVE,
                        creation_time=now,
                        last_update_time=now,
                    )
                    .on_conflict_do_nothing()
                )

    def _experiment_row(self, conn: Connection, experiment_id: int):
        row = conn.execute(_EXPERIMENT_ROW, {"experiment_id": experiment_id}).first()
        if row is None:
            raise ResourceNotFound(f"No experiment with id {experiment_id}")
        return row

    def _experiment_from_row(self, conn: Connection, row) -> Experiment:
        tag_rows = conn.execute(
            select(t.experiment_tags.c.key, t.experiment_tags.c.value).where(
                t.experiment_tags.c.experiment_id == row.experiment_id
            )
        )
        return Experiment(
            experiment_id=str(row.experiment_id),
            name=row.name,
            artifact_location=row.artifact_location,
            lifecycle_stage=row.lifecycle_stage,
            creation_time=row.creation_time,
            last_update_time=row.last_update_time,
            tags={k: v for k, v in tag_rows},
        )

    def _run_row(self, conn: Connection, run_id: str):
        row = conn.execute(_RUN_ROW, {"run_id": run_id}).first()
        if row is None:
            raise ResourceNotFound(f"Run {run_id!r} not found")
        return row

    @staticmethod
    def _info_from_row(row) -> RunInfo:
        return RunInfo(
            run_id=row.run_uuid,
            run_name=row.name,
            experiment_id=str(row.experiment_id),
            user_id=row.user_id,
            status=row.status,
            start_time=row.start_time,
            end_time=row.end_time,
            lifecycle_stage=row.lifecycle_stage,
            artifact_uri=row.artifact_uri,
            parent_run_id=row.parent_run_id,
        )

    def _check_writable(self, conn: Connection, run_id: str) -> None:
        row = conn.execute(_RUN_STATE, {"run_id": run_id}).first()
        if row is None:
            raise ResourceNotFound(f"Run {run_id!r} not found")
        if row.lifecycle_stage != LifecycleStage.ACTIVE:
            raise InvalidState(f"Run {run_id!r} is deleted; restore it before logging to it")
        if RunStatus(row.status).is_terminated:
            raise InvalidState(
                f"Run {run_id!r} has ended with status {row.status}; log to a new run, "
                "or reopen it with update_run(status='RUNNING')"
            )

    def _load_runs(self, conn: Connection, rows: Sequence) -> list[Run]:
        """Attach params, tags, latest metrics and inputs to run rows (4 queries total)."""
        if not rows:
            return []
        ids = {"ids": [r.run_uuid for r in rows]}
        runs = {r.run_uuid: Run(self._info_from_row(r), RunData()) for r in rows}
        for rid, k, val in conn.execute(_PARAMS_OF_RUNS, ids).all():
            runs[rid].data.params[k] = val
        for rid, k, val in conn.execute(_TAGS_OF_RUNS, ids).all():
            runs[rid].data.tags[k] = val
        nan = math.nan
        for rid, k, val, ts, st, is_nan in conn.execute(_LATEST_OF_RUNS, ids).all():
            data = runs[rid].data
            point = Metric(k, nan if is_nan else val, ts, st)
            data.metrics[k] = point.value
            data.metric_points.append(point)
        for rid, name, digest, uri, ctx in conn.execute(_INPUTS_OF_RUNS, ids).all():
            runs[rid].inputs.append(RunInput(name, digest, uri, ctx))
        return list(runs.values())

    def _audit(
        self, conn: Connection, action: str, kind: str, entity_id: str, before: dict, after: dict
    ) -> None:
        record_event(
            conn,
            actor=self.actor,
            action=action,
            entity_type=kind,
            entity_id=entity_id,
            before=before,
            after=after,
        )

    @retrying
    def audit_events(self, entity_type: str | None = None, entity_id: str | None = None) -> list:
        """Audit events, oldest first, optionally for one entity."""
        return list_events(self.engine, entity_type, entity_id)

    # -- experiments -------------------------------------------------------------
    @retrying
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        now = now_ms()
        try:
            with self.engine.begin() as conn:
                exp_id = conn.execute(
                    insert(t.experiments)
                    .values(
                        name=name,
                        artifact_location=artifact_location or "",
                        lifecycle_stage=LifecycleStage.ACTIVE,
                        creation_time=now,
                        last_update_time=now,
                    )
                    .returning(t.experiments.c.experiment_id)
                ).scalar_one()
                if not artifact_location:
                    conn.execute(
                        update(t.experiments)
                        .where(t.experiments.c.experiment_id == exp_id)
                        .values(artifact_location=f"{self.artifact_root}/{exp_id}")
                    )
                if tags:
                    conn.execute(
                        insert(t.experiment_tags),
                        [{"experiment_id": exp_id, "key": k, "value": v} for k, v in tags.items()],
                    )
        except sa_exc.IntegrityError:
            raise ResourceAlreadyExists(f"Experiment {name!r} already exists") from None
        return str(exp_id)

    @retrying
    def get_experiment(self, experiment_id: str) -> Experiment:
        with self.engine.connect() as conn:
            return self._experiment_from_row(
                conn, self._experiment_row(conn, _exp_id(experiment_id))
            )

    @retrying
    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.experiments).where(t.experiments.c.name == name)).first()
            return None if row is None else self._experiment_from_row(conn, row)

    @retrying
    def search_experiments(
        self,
        view_type: ViewType = "active",
        max_results: int = 1000,
        page_token: str | None = None,
        name_like: str | None = None,
    ) -> Page[Experiment]:
        offset = _decode_token(page_token)
        e = t.experiments.c
        stmt = select(t.experiments)
        if view_type != "all":
            stmt = stmt.where(e.lifecycle_stage == _lifecycle(view_type))
        if name_like:
            stmt = stmt.where(e.name.like(name_like))
        stmt = stmt.order_by(e.experiment_id).offset(offset).limit(max_results + 1)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
            items = [self._experiment_from_row(conn, r) for r in rows[:max_results]]
        token = _encode_token(offset + max_results) if len(rows) > max_results else None
        return Page(items, token)

    @retrying
    def update_experiment(
        self,
        experiment_id: str,
        *,
        new_name: str | None = None,
        lifecycle_stage: str | None = None,
    ) -> Experiment:
        eid = _exp_id(experiment_id)
        values: dict[str, Any] = {"last_update_time": now_ms()}
        if new_name is not None:
            values["name"] = new_name
        if lifecycle_stage is not None:
            if eid == 0 and lifecycle_stage == LifecycleStage.DELETED:
                raise InvalidState("The Default experiment (id 0) cannot be deleted")
            values["lifecycle_stage"] = _lifecycle(lifecycle_stage)
        try:
            with self.engine.begin() as conn:
                before = self._experiment_row(conn, eid)
                conn.execute(
                    update(t.experiments).where(t.experiments.c.experiment_id == eid).values(values)
                )
                changed = {k: v for k, v in values.items() if k != "last_update_time"}
                self._audit(
                    conn,
                    "update_experiment",
                    "experiment",
                    str(eid),
                    {k: getattr(before, k) for k in changed},
                    changed,
                )
                if lifecycle_stage is not None:
                    conn.execute(
                        update(t.runs)
                        .where(t.runs.c.experiment_id == eid)
                        .values(lifecycle_stage=values["lifecycle_stage"], updated_at=now_ms())
                    )
                return self._experiment_from_row(conn, self._experiment_row(conn, eid))
        except sa_exc.IntegrityError:
            raise ResourceAlreadyExists(f"Experiment {new_name!r} already exists") from None

    @retrying
    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        eid = _exp_id(experiment_id)
        stmt = self._insert(t.experiment_tags).values(experiment_id=eid, key=key, value=value)
        stmt = stmt.on_conflict_do_update(
            index_elements=["experiment_id", "key"], set_={"value": value}
        )
        with self.engine.begin() as conn:
            self._experiment_row(conn, eid)
            conn.execute(stmt)

    # -- runs --------------------------------------------------------------------
    @retrying
    def create_run(
        self,
        experiment_id: str,
        *,
        run_name: str | None = None,
        start_time: int | None = None,
        tags: Sequence[RunTag] = (),
        user_id: str = "",
        parent_run_id: str | None = None,
        artifact_uri: str | None = None,
        run_id: str | None = None,
    ) -> Run:
        eid = _exp_id(experiment_id)
        run_id = run_id or new_id()
        tag_map = {tg.key: tg.value for tg in tags}
        run_name = run_name or tag_map.get("mlflow.runName") or random_run_name()
        tag_map["mlflow.runName"] = run_name
        parent_run_id = parent_run_id or tag_map.get("mlflow.parentRunId")
        if parent_run_id:
            tag_map["mlflow.parentRunId"] = parent_run_id
        if user_id:
            tag_map.setdefault("mlflow.user", user_id)
        now = now_ms()
        with self.engine.begin() as conn:
            exp = self._experiment_row(conn, eid)
            if exp.lifecycle_stage != LifecycleStage.ACTIVE:
                raise InvalidState(f"Experiment {eid} is deleted; restore it to create runs in it")
            if parent_run_id:
                self._run_row(conn, parent_run_id)
            row = {
                "run_uuid": run_id,
                "name": run_name,
                "experiment_id": eid,
                "user_id": user_id or "",
                "status": RunStatus.RUNNING,
                "start_time": start_time or now,
                "end_time": None,
                "lifecycle_stage": LifecycleStage.ACTIVE,
                "artifact_uri": artifact_uri or f"{exp.artifact_location}/{run_id}/artifacts",
                "parent_run_id": parent_run_id,
                "updated_at": now,
            }
            conn.execute(_INSERT_RUN, row)
            conn.execute(
                _INSERT_TAGS,
                [{"run_uuid": run_id, "key": k, "value": v} for k, v in tag_map.items()],
            )
        info = RunInfo(
            run_id=run_id,
            run_name=run_name,
            experiment_id=str(eid),
            user_id=row["user_id"],
            status=RunStatus.RUNNING,
            start_time=row["start_time"],
            end_time=None,
            lifecycle_stage=LifecycleStage.ACTIVE,
            artifact_uri=row["artifact_uri"],
            parent_run_id=parent_run_id,
        )
        return Run(info, RunData(tags=tag_map))

    @retrying
    def get_run(self, run_id: str) -> Run:
        with self.engine.connect() as conn:
            return self._load_runs(conn, [self._run_row(conn, run_id)])[0]

    @retrying
    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        values: dict[str, Any] = {"updated_at": now_ms()}
        if status is not None:
            try:
                status = RunStatus(status)
            except ValueError:
                raise InvalidParameter(
                    f"Invalid run status {status!r}: expected one of "
                    f"{', '.join(s.value for s in RunStatus)}"
                ) from None
            values["status"] = status
            if status.is_terminated:
                values["end_time"] = end_time or values["updated_at"]
            else:
                values["end_time"] = None
        elif end_time is not None:
            values["end_time"] = end_time
        if run_name:
            values["name"] = run_name
        with self.engine.begin() as conn:
            row = self._run_row(conn, run_id)
            if row.lifecycle_stage != LifecycleStage.ACTIVE:
                raise InvalidState(f"Run {run_id!r} is deleted; restore it before updating it")
            conn.execute(update(t.runs).where(t.runs.c.run_uuid == run_id).values(values))
            if run_name:
                self._upsert_tags(conn, run_id, [RunTag("mlflow.runName", run_name)])
            return self._info_from_row(SimpleNamespace(**{**row._mapping, **values}))

    @retrying
    def set_run_lifecycle(self, run_id: str, lifecycle_stage: str) -> None:
        stage = _lifecycle(lifecycle_stage)
        with self.engine.begin() as conn:
            before = self._run_row(conn, run_id)
            conn.execute(
                update(t.runs)
                .where(t.runs.c.run_uuid == run_id)
                .values(lifecycle_stage=stage, updated_at=now_ms())
            )
            action = "delete_run" if stage == LifecycleStage.DELETED else "restore_run"
            self._audit(
                conn,
                action,
                "run",
                run_id,
                {"lifecycle_stage": before.lifecycle_stage},
                {"lifecycle_stage": stage},
            )

    def _upsert_tags(self, conn: Connection, run_id: str, tags: Sequence[RunTag]) -> None:
        last = {tg.key: tg.value for tg in tags}  # the last value of a key in one batch wins
        stmt = self._insert(t.tags)
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_uuid", "key"], set_={"value": stmt.excluded.value}
        )
        conn.execute(stmt, [{"run_uuid": run_id, "key": k, "value": v} for k, v in last.items()])

    def _insert_params(self, conn: Connection, run_id: str, params: Sequence[Param]) -> None:
        wanted: dict[str, str] = {}
        for p in params:
            if wanted.setdefault(p.key, p.value) != p.value:
                raise InvalidParameter(
                    f"Param {p.key!r} appears twice in one batch with different values "
                    f"({wanted[p.key]!r} and {p.value!r})"
                )
        existing = dict(
            conn.execute(_PARAMS_FOR_KEYS, {"run_id": run_id, "keys": list(wanted)}).all()
        )
        for k, old in existing.items():
            if old != wanted[k]:
                raise InvalidParameter(
                    f"Param {k!r} of run {run_id} is already {old!r}; params are immutable, "
                    f"so it cannot become {wanted[k]!r}. Log it under another key, or "
                    "start a new run."
                )
        new = [
            {"run_uuid": run_id, "key": k, "value": v}
            for k, v in wanted.items()
            if k not in existing
        ]
        if new:
            conn.execute(_INSERT_PARAMS, new)

    def _insert_metrics(self, conn: Connection, run_id: str, metrics: Sequence[Metric]) -> None:
        # The hot path of tracking: plain driver-level executemany on two fixed
        # statements (the SQL is the same on SQLite and PostgreSQL but for the
        # placeholder); SQLAlchemy's per-row parameter processing would triple the cost.
        rows = []
        newest: dict[str, tuple] = {}
        for m in metrics:
            nan = m.value != m.value
            row = (run_id, m.key, 0.0 if nan else m.value, m.timestamp, m.step, nan)
            rows.append(row)
            cur = newest.get(m.key)
            if cur is None or (m.step, m.timestamp, row[2]) >= (cur[4], cur[3], cur[2]):
                newest[m.key] = row
        conn.exec_driver_sql(self._sql_insert_metrics, rows)
        conn.exec_driver_sql(self._sql_upsert_latest, list(newest.values()))

    @retrying
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        if not (metrics or params or tags):
            with self.engine.connect() as conn:
                self._check_writable(conn, run_id)
            return
        with self.engine.begin() as conn:
            self._check_writable(conn, run_id)
            if params:
                self._insert_params(conn, run_id, params)
            if tags:
                self._upsert_tags(conn, run_id, tags)
            if metrics:
                self._insert_metrics(conn, run_id, metrics)

    @retrying
    def delete_tag(self, run_id: str, key: str) -> None:
        with self.engine.begin() as conn:
            self._check_writable(conn, run_id)
            gone = conn.execute(
                delete(t.tags).where(t.tags.c.run_uuid == run_id, t.tags.c.key == key)
            ).rowcount
            if not gone:
                raise ResourceNotFound(f"Run {run_id!r} has no tag {key!r}")

    @retrying
    def log_inputs(self, run_id: str, inputs: Sequence[RunInput]) -> None:
        now = now_ms()
        with self.engine.begin() as conn:
            self._check_writable(conn, run_id)
            if inputs:
                conn.execute(
                    insert(t.run_inputs),
                    [
                        {
                            "run_uuid": run_id,
                            "dataset_name": i.dataset_name,
                            "dataset_digest": i.dataset_digest,
                            "dataset_uri": i.dataset_uri,
                            "context": i.context,
                            "created_at": now,
                        }
                        for i in inputs
                    ],
                )

    @retrying
    def get_metric_history(
        self, run_id: str, key: str, max_points: int | None = None
    ) -> list[Metric]:
        m = t.metrics.c
        where = and_(m.run_uuid == run_id, m.key == key)
        with self.engine.connect() as conn:
            self._run_row(conn, run_id)
            if max_points is not None:
                if max_points < 4:
                    raise InvalidParameter(f"max_points must be at least 4, got {max_points}")
                total = conn.execute(select(func.count()).where(where)).scalar_one()
                if total > max_points:
                    rows = conn.execute(_downsample_query(where, total, max_points)).all()
                    return [_metric_from_row(key, *r) for r in rows]
            # A long series is the one place where row handling dominates: read it with
            # the driver directly and build the points in one comprehension.
            rows = conn.exec_driver_sql(self._sql_history, (run_id, key)).fetchall()
        nan = math.nan
        return [Metric(key, nan if is_nan else value, ts, step) for value, ts, step, is_nan in rows]

    @retrying
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        view_type: ViewType = "active",
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Run]:
        if max_results < 1 or max_results > 50_000:
            raise InvalidParameter(f"max_results must be between 1 and 50000, got {max_results}")
        offset = _decode_token(page_token)
        r = t.runs.c
        stmt = select(t.runs).where(r.experiment_id.in_([_exp_id(e) for e in experiment_ids]))
        if view_type != "all":
            stmt = stmt.where(r.lifecycle_stage == _lifecycle(view_type))
        node = parse_filter(filter_string or "")
        if node is not None:
            stmt = stmt.where(compile_filter(node, self.engine.dialect.name))
        stmt = apply_order(stmt, parse_order_by(list(order_by or [])))
        stmt = stmt.offset(offset).limit(max_results + 1)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
            items = self._load_runs(conn, rows[:max_results])
        token = _encode_token(offset + max_results) if len(rows) > max_results else None
        return Page(items, token)

    # -- used by tests and tools -------------------------------------------------
    def count_metric_points(self, run_id: str, key: str | None = None) -> int:
        where = [t.metrics.c.run_uuid == run_id]
        if key is not None:
            where.append(t.metrics.c.key == key)
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count()).select_from(t.metrics).where(*where)
            ).scalar_one()


def _lifecycle(view: str) -> str:
    v = view.lower()
    if v in ("active", "active_only"):
        return LifecycleStage.ACTIVE
    if v in ("deleted", "deleted_only"):
        return LifecycleStage.DELETED
    raise InvalidParameter(f"Invalid view type {view!r}: expected 'active', 'deleted' or 'all'")


def _downsample_query(where, total: int, max_points: int):
    """Keep the first, last, minimum and maximum point of each of max_points/4 buckets,
    like TensorBoard's reservoir but deterministic: peaks and dips always survive."""
    m = t.metrics.c
    buckets = max(1, max_points // 4)
    numbered = (
        select(
            m.value,
            m.timestamp,
            m.step,
            m.is_nan,
            ((func.row_number().over(order_by=(m.step, m.timestamp)) - 1) * buckets // total).label(
                "bucket"
            ),
        )
        .where(where)
        .subquery()
    )
    n = numbered.c
    ranked = select(
        n.value,
        n.timestamp,
        n.step,
        n.is_nan,
        func.row_number()
        .over(partition_by=n.bucket, order_by=(n.step, n.timestamp))
        .label("first"),
        func.row_number()
        .over(partition_by=n.bucket, order_by=(n.step.desc(), n.timestamp.desc()))
        .label("last"),
        func.row_number().over(partition_by=n.bucket, order_by=(n.value, n.step)).label("lo"),
        func.row_number()
        .over(partition_by=n.bucket, order_by=(n.value.desc(), n.step))
        .label("hi"),
    ).subquery()
    k = ranked.c
    return (
        select(k.value, k.timestamp, k.step, k.is_nan)
        .where(or_(k.first == 1, k.last == 1, k.lo == 1, k.hi == 1))
        .order_by(k.step, k.timestamp)
    )
