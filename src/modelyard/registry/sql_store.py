"""The model registry on SQLAlchemy Core (SQLite or PostgreSQL).

Every change is one transaction that also writes its audit event and, for aliases
and stages, closes and opens rows of the assignment history, so the current state,
the history and the audit log can never disagree.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy import exc as sa_exc

from modelyard.core.errors import (
    InvalidParameter,
    ResourceAlreadyExists,
    ResourceNotFound,
)
from modelyard.core.ids import now_ms
from modelyard.core.store import schema as t
from modelyard.core.store.audit import list_events, record_event
from modelyard.core.store.retry import retrying
from modelyard.registry.entities import (
    Approval,
    ApprovalPolicy,
    Assignment,
    ModelVersion,
    RegisteredModel,
    Stage,
)

__all__ = ["SqlRegistryStore"]

mv = t.model_versions.c
al = t.model_aliases.c
asg = t.model_assignments.c


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def _unjson(text: str | None, default: Any) -> Any:
    return default if not text else json.loads(text)


class SqlRegistryStore:
    """Registered models, versions, aliases, stages, policies and approvals.

    ``actor`` is who the audit log names for each change (the server passes the
    caller; the SDK the local user).
    """

    def __init__(
        self, engine: Engine, *, actor: str = "unknown", retries: int = 3, retry_backoff=0.2
    ) -> None:
        self.engine = engine
        self.actor = actor
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.safe_url = engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    # -- reading helpers ---------------------------------------------------------
    def _model_row(self, conn: Connection, name: str, *, lock: bool = False):
        stmt = select(t.registered_models).where(t.registered_models.c.name == name)
        if lock:
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).first()
        if row is None:
            raise ResourceNotFound(f"Registered model {name!r} not found")
        return row

    def _version_row(self, conn: Connection, name: str, version: int):
        row = conn.execute(
            select(t.model_versions).where(mv.name == name, mv.version == version)
        ).first()
        if row is None:
            self._model_row(conn, name)
            raise ResourceNotFound(f"Model {name!r} has no version {version}")
        return row

    def _version(self, conn: Connection, row) -> ModelVersion:
        tags = dict(
            conn.execute(
                select(t.model_version_tags.c.key, t.model_version_tags.c.value).where(
                    t.model_version_tags.c.name == row.name,
                    t.model_version_tags.c.version == row.version,
                )
            ).all()
        )
        aliases = [
            a
            for (a,) in conn.execute(
                select(al.alias).where(al.name == row.name, al.version == row.version)
            )
        ]
        return ModelVersion(
            name=row.name,
            version=row.version,
            source=row.source,
            artifact_uri=row.artifact_uri,
            run_id=row.run_id,
            stage=row.stage,
            status=row.status,
            description=row.description,
            user_id=row.user_id,
            flavor=row.flavor,
            signature=_unjson(row.signature, None),
            metrics=_unjson(row.metrics, {}),
            lineage=_unjson(row.lineage, []),
            created_at=row.created_at,
            updated_at=row.updated_at,
            tags=tags,
            aliases=sorted(aliases),
        )

    def _model(self, conn: Connection, row) -> RegisteredModel:
        name = row.name
        tags = dict(
            conn.execute(
                select(t.registered_model_tags.c.key, t.registered_model_tags.c.value).where(
                    t.registered_model_tags.c.name == name
                )
            ).all()
        )
        aliases = dict(conn.execute(select(al.alias, al.version).where(al.name == name)).all())
        # The newest version of each stage, as MLflow's latest_versions.
        latest_rows = conn.execute(
            select(t.model_versions).where(mv.name == name).order_by(mv.version.desc())
        ).all()
        seen: set[str] = set()
        latest = []
        for r in latest_rows:
            if r.stage not in seen:
                seen.add(r.stage)
                latest.append(self._version(conn, r))
        return RegisteredModel(
            name=name,
            description=row.description,
            created_at=row.created_at,
            updated_at=row.updated_at,
            tags=tags,
            aliases=aliases,
            latest_versions=sorted(latest, key=lambda v: v.version),
        )

    def _audit(self, conn: Connection, action: str, entity_id: str, before: Any, after: Any):
        record_event(
            conn,
            actor=self.actor,
            action=action,
            entity_type="registered_model",
            entity_id=entity_id,
            before=before,
            after=after,
        )

    def _close_assignment(
        self, conn: Connection, name: str, kind: str, label: str, now: int
    ) -> None:
        conn.execute(
            update(t.model_assignments)
            .where(asg.name == name, asg.kind == kind, asg.label == label, asg.ended_at.is_(None))
            .values(ended_at=now, ended_by=self.actor)
        )

    def _open_assignment(
        self, conn: Connection, name: str, kind: str, label: str, version: int, now: int, reason
    ) -> None:
        conn.execute(
            insert(t.model_assignments).values(
                name=name,
                kind=kind,
                label=label,
                version=version,
                started_at=now,
                started_by=self.actor,
                reason=reason,
            )
        )

    # -- registered models -------------------------------------------------------
    @retrying
    def create_registered_model(
        self, name: str, description: str | None = None, tags: dict[str, str] | None = None
    ) -> RegisteredModel:
        now = now_ms()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(t.registered_models).values(
                        name=name,
                        description=description,
                        last_version=0,
                        created_at=now,
                        updated_at=now,
                    )
                )
                if tags:
                    conn.execute(
                        insert(t.registered_model_tags),
                        [{"name": name, "key": k, "value": v} for k, v in tags.items()],
                    )
                self._audit(conn, "create_model", name, None, {"description": description})
                return self._model(conn, self._model_row(conn, name))
        except sa_exc.IntegrityError:
            raise ResourceAlreadyExists(f"Registered model {name!r} already exists") from None

    @retrying
    def get_registered_model(self, name: str) -> RegisteredModel:
        with self.engine.connect() as conn:
            return self._model(conn, self._model_row(conn, name))

    @retrying
    def search_registered_models(
        self, name_like: str | None = None, max_results: int = 100, offset: int = 0
    ) -> tuple[list[RegisteredModel], bool]:
        """Models ordered by name; the flag says whether more follow."""
        stmt = select(t.registered_models).order_by(t.registered_models.c.name)
        if name_like:
            stmt = stmt.where(t.registered_models.c.name.like(name_like))
        stmt = stmt.offset(offset).limit(max_results + 1)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
            return [self._model(conn, r) for r in rows[:max_results]], len(rows) > max_results

    @retrying
    def update_registered_model(
        self, name: str, *, description: str | None = None, new_name: str | None = None
    ) -> RegisteredModel:
        now = now_ms()
        try:
            with self.engine.begin() as conn:
                row = self._model_row(conn, name, lock=True)
                values: dict[str, Any] = {"updated_at": now}
                before: dict[str, Any] = {}
                if description is not None:
                    values["description"] = description
                    before["description"] = row.description
                if new_name is not None and new_name != name:
                    values["name"] = new_name
                    before["name"] = name
                conn.execute(
                    update(t.registered_models)
                    .where(t.registered_models.c.name == name)
                    .values(values)
                )
                target = values.get("name", name)
                if target != name:  # children follow through ON UPDATE CASCADE; history too
                    for table in (t.model_assignments, t.model_version_tags):
                        conn.execute(update(table).where(table.c.name == name).values(name=target))
                after = {k: v for k, v in values.items() if k != "updated_at"}
                self._audit(conn, "update_model", target, before, after)
                return self._model(conn, self._model_row(conn, target))
        except sa_exc.IntegrityError:
            raise ResourceAlreadyExists(f"Registered model {new_name!r} already exists") from None

    @retrying
    def delete_registered_model(self, name: str) -> None:
        now = now_ms()
        with self.engine.begin() as conn:
            self._model_row(conn, name, lock=True)
            versions = [v for (v,) in conn.execute(select(mv.version).where(mv.name == name))]
            conn.execute(
                update(t.model_assignments)
                .where(asg.name == name, asg.ended_at.is_(None))
                .values(ended_at=now, ended_by=self.actor, reason="model deleted")
            )
            for table in (
                t.model_approvals,
                t.model_version_tags,
                t.model_aliases,
                t.approval_policies,
                t.model_versions,
                t.registered_model_tags,
            ):
                conn.execute(delete(table).where(table.c.name == name))
            conn.execute(delete(t.registered_models).where(t.registered_models.c.name == name))
            self._audit(conn, "delete_model", name, {"versions": versions}, None)

    @retrying
    def set_registered_model_tag(self, name: str, key: str, value: str | None) -> None:
        """Set a tag, or delete it when ``value`` is None."""
        with self.engine.begin() as conn:
            self._model_row(conn, name)
            tt = t.registered_model_tags
            conn.execute(delete(tt).where(tt.c.name == name, tt.c.key == key))
            if value is not None:
                conn.execute(insert(tt).values(name=name, key=key, value=value))

    # -- versions ----------------------------------------------------------------
    @retrying
    def create_model_version(
        self,
        name: str,
        *,
        source: str,
        artifact_uri: str,
        run_id: str | None,
        user_id: str,
        flavor: str | None,
        signature: dict | None,
        metrics: dict,
        lineage: list,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> ModelVersion:
        """The next version number of ``name``; concurrent callers get distinct ones
        (the model row is locked on PostgreSQL; SQLite serialises writers)."""
        for _attempt in range(20):
            now = now_ms()
            try:
                with self.engine.begin() as conn:
                    number = self._model_row(conn, name, lock=True).last_version + 1
                    conn.execute(
                        update(t.registered_models)
                        .where(
                            t.registered_models.c.name == name,
                            t.registered_models.c.last_version == number - 1,
                        )
                        .values(last_version=number)
                    )
                    conn.execute(
                        insert(t.model_versions).values(
                            name=name,
                            version=number,
                            source=source,
                            artifact_uri=artifact_uri,
                            run_id=run_id,
                            stage=Stage.NONE.value,
                            status="READY",
                            description=description,
                            user_id=user_id,
                            flavor=flavor,
                            signature=_json(signature),
                            metrics=_json(metrics),
                            lineage=_json(lineage),
                            created_at=now,
                            updated_at=now,
                        )
                    )
                    if tags:
                        conn.execute(
                            insert(t.model_version_tags),
                            [
                                {"name": name, "version": number, "key": k, "value": v}
                                for k, v in tags.items()
                            ],
                        )
                    conn.execute(
                        update(t.registered_models)
                        .where(t.registered_models.c.name == name)
                        .values(updated_at=now)
                    )
                    self._audit(
                        conn, "create_version", f"{name}/{number}", None, {"source": source}
                    )
                    return self._version(conn, self._version_row(conn, name, number))
            except sa_exc.IntegrityError:
                continue  # another writer took this number: take the next one
        raise InvalidParameter(f"Could not allocate a version number for {name!r}; retry")

    @retrying
    def get_model_version(self, name: str, version: int) -> ModelVersion:
        with self.engine.connect() as conn:
            return self._version(conn, self._version_row(conn, name, version))

    @retrying
    def search_model_versions(
        self,
        name: str | None = None,
        run_id: str | None = None,
        max_results: int = 1000,
        offset: int = 0,
    ) -> tuple[list[ModelVersion], bool]:
        stmt = select(t.model_versions).order_by(mv.name, mv.version.desc())
        if name is not None:
            stmt = stmt.where(mv.name == name)
        if run_id is not None:
            stmt = stmt.where(mv.run_id == run_id)
        stmt = stmt.offset(offset).limit(max_results + 1)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
            return [self._version(conn, r) for r in rows[:max_results]], len(rows) > max_results

    @retrying
    def update_model_version(self, name: str, version: int, description: str) -> ModelVersion:
        with self.engine.begin() as conn:
            row = self._version_row(conn, name, version)
            conn.execute(
                update(t.model_versions)
                .where(mv.name == name, mv.version == version)
                .values(description=description, updated_at=now_ms())
            )
            self._audit(
                conn,
                "update_version",
                f"{name}/{version}",
                {"description": row.description},
                {"description": description},
            )
            return self._version(conn, self._version_row(conn, name, version))

    @retrying
    def set_model_version_tag(self, name: str, version: int, key: str, value: str | None) -> None:
        with self.engine.begin() as conn:
            self._version_row(conn, name, version)
            tt = t.model_version_tags
            conn.execute(
                delete(tt).where(tt.c.name == name, tt.c.version == version, tt.c.key == key)
            )
            if value is not None:
                conn.execute(insert(tt).values(name=name, version=version, key=key, value=value))

    @retrying
    def delete_model_version(self, name: str, version: int) -> list[str]:
        """Delete a version and every alias pointing at it (their history rows are
        closed); returns the aliases removed, so no alias is ever left dangling."""
        now = now_ms()
        with self.engine.begin() as conn:
            row = self._version_row(conn, name, version)
            aliases = [
                a
                for (a,) in conn.execute(
                    select(al.alias).where(al.name == name, al.version == version)
                )
            ]
            conn.execute(
                update(t.model_assignments)
                .where(asg.name == name, asg.version == version, asg.ended_at.is_(None))
                .values(ended_at=now, ended_by=self.actor, reason="version deleted")
            )
            conn.execute(delete(t.model_aliases).where(al.name == name, al.version == version))
            for table in (t.model_approvals, t.model_version_tags, t.model_versions):
                conn.execute(delete(table).where(table.c.name == name, table.c.version == version))
            self._audit(
                conn,
                "delete_version",
                f"{name}/{version}",
                {"stage": row.stage, "aliases": aliases, "source": row.source},
                None,
            )
            return aliases

    # -- aliases and stages ------------------------------------------------------
    @retrying
    def set_alias(self, name: str, alias: str, version: int, reason: str | None = None) -> None:
        now = now_ms()
        with self.engine.begin() as conn:
            self._version_row(conn, name, version)
            current = conn.execute(
                select(al.version).where(al.name == name, al.alias == alias)
            ).scalar()
            if current == version:
                return
            conn.execute(delete(t.model_aliases).where(al.name == name, al.alias == alias))
            conn.execute(
                insert(t.model_aliases).values(
                    name=name, alias=alias, version=version, set_at=now, set_by=self.actor
                )
            )
            self._close_assignment(conn, name, "alias", alias, now)
            self._open_assignment(conn, name, "alias", alias, version, now, reason)
            self._audit(
                conn,
                "set_alias",
                name,
                {"alias": alias, "version": current},
                {"alias": alias, "version": version, "reason": reason},
            )

    @retrying
    def delete_alias(self, name: str, alias: str) -> None:
        now = now_ms()
        with self.engine.begin() as conn:
            self._model_row(conn, name)
            current = conn.execute(
                select(al.version).where(al.name == name, al.alias == alias)
            ).scalar()
            if current is None:
                raise ResourceNotFound(f"Model {name!r} has no alias {alias!r}")
            conn.execute(delete(t.model_aliases).where(al.name == name, al.alias == alias))
            self._close_assignment(conn, name, "alias", alias, now)
            self._audit(conn, "delete_alias", name, {"alias": alias, "version": current}, None)

    @retrying
    def get_alias(self, name: str, alias: str) -> int:
        with self.engine.connect() as conn:
            self._model_row(conn, name)
            version = conn.execute(
                select(al.version).where(al.name == name, al.alias == alias)
            ).scalar()
        if version is None:
            raise ResourceNotFound(f"Model {name!r} has no alias {alias!r}")
        return version

    @retrying
    def transition_stage(
        self,
        name: str,
        version: int,
        stage: Stage,
        *,
        archive_existing: bool = False,
        reason: str | None = None,
    ) -> ModelVersion:
        now = now_ms()
        with self.engine.begin() as conn:
            self._model_row(conn, name, lock=True)
            row = self._version_row(conn, name, version)
            moves = [(version, row.stage, stage.value)]
            if archive_existing and stage in (Stage.STAGING, Stage.PRODUCTION):
                others = conn.execute(
                    select(mv.version).where(
                        mv.name == name, mv.stage == stage.value, mv.version != version
                    )
                ).all()
                moves += [(v, stage.value, Stage.ARCHIVED.value) for (v,) in others]
            for v, old, new in moves:
                if old == new:
                    continue
                conn.execute(
                    update(t.model_versions)
                    .where(mv.name == name, mv.version == v)
                    .values(stage=new, updated_at=now)
                )
                conn.execute(
                    update(t.model_assignments)
                    .where(
                        asg.name == name,
                        asg.kind == "stage",
                        asg.version == v,
                        asg.ended_at.is_(None),
                    )
                    .values(ended_at=now, ended_by=self.actor)
                )
                if new != Stage.NONE.value:
                    self._open_assignment(conn, name, "stage", new, v, now, reason)
                self._audit(conn, "transition_stage", f"{name}/{v}", {"stage": old}, {"stage": new})
            return self._version(conn, self._version_row(conn, name, version))

    @retrying
    def assignments(
        self, name: str, kind: str | None = None, label: str | None = None
    ) -> list[Assignment]:
        stmt = select(t.model_assignments).where(asg.name == name)
        if kind:
            stmt = stmt.where(asg.kind == kind)
        if label:
            stmt = stmt.where(asg.label == label)
        stmt = stmt.order_by(asg.started_at, asg.assignment_id)
        with self.engine.connect() as conn:
            self._model_row(conn, name)
            return [
                Assignment(
                    name=r.name,
                    kind=r.kind,
                    label=r.label,
                    version=r.version,
                    started_at=r.started_at,
                    started_by=r.started_by,
                    ended_at=r.ended_at,
                    ended_by=r.ended_by,
                    reason=r.reason,
                )
                for r in conn.execute(stmt)
            ]

    # -- policies and approvals --------------------------------------------------
    @retrying
    def set_policy(self, policy: ApprovalPolicy) -> ApprovalPolicy:
        now = now_ms()
        ap = t.approval_policies
        with self.engine.begin() as conn:
            self._model_row(conn, policy.name)
            old = conn.execute(select(ap).where(ap.c.name == policy.name)).first()
            conn.execute(delete(ap).where(ap.c.name == policy.name))
            conn.execute(
                insert(ap).values(
                    name=policy.name,
                    required_approvals=policy.required_approvals,
                    metric_floors=_json(policy.metric_floors),
                    protected=_json(policy.protected),
                    updated_at=now,
                    updated_by=self.actor,
                )
            )
            before = (
                None
                if old is None
                else {
                    "required_approvals": old.required_approvals,
                    "metric_floors": _unjson(old.metric_floors, {}),
                    "protected": _unjson(old.protected, []),
                }
            )
            after = {
                "required_approvals": policy.required_approvals,
                "metric_floors": policy.metric_floors,
                "protected": policy.protected,
            }
            self._audit(conn, "set_policy", policy.name, before, after)
        return self.get_policy(policy.name)

    @retrying
    def get_policy(self, name: str) -> ApprovalPolicy | None:
        ap = t.approval_policies
        with self.engine.connect() as conn:
            self._model_row(conn, name)
            row = conn.execute(select(ap).where(ap.c.name == name)).first()
        if row is None:
            return None
        return ApprovalPolicy(
            name=name,
            required_approvals=row.required_approvals,
            metric_floors=_unjson(row.metric_floors, {}),
            protected=_unjson(row.protected, []),
            updated_at=row.updated_at,
            updated_by=row.updated_by,
        )

    @retrying
    def add_approval(self, name: str, version: int, decision: str, reason: str | None) -> Approval:
        now = now_ms()
        with self.engine.begin() as conn:
            self._version_row(conn, name, version)
            conn.execute(
                insert(t.model_approvals).values(
                    name=name,
                    version=version,
                    decision=decision,
                    actor=self.actor,
                    reason=reason,
                    created_at=now,
                )
            )
            action = {"approved": "approve", "rejected": "reject"}[decision]
            self._audit(
                conn, action, f"{name}/{version}", None, {"decision": decision, "reason": reason}
            )
        return Approval(name, version, decision, self.actor, reason, now)

    @retrying
    def approvals(self, name: str, version: int | None = None) -> list[Approval]:
        ma = t.model_approvals.c
        stmt = select(t.model_approvals).where(ma.name == name).order_by(ma.approval_id)
        if version is not None:
            stmt = stmt.where(ma.version == version)
        with self.engine.connect() as conn:
            return [
                Approval(r.name, r.version, r.decision, r.actor, r.reason, r.created_at)
                for r in conn.execute(stmt)
            ]

    def audit_events(self, name: str) -> list[dict]:
        return list_events(self.engine, "registered_model", name)

    @retrying
    def record_event(self, name: str, action: str, details: dict) -> None:
        """An event about a model that changes no registry row (a serving alert)."""
        with self.engine.begin() as conn:
            self._audit(conn, action, name, None, details)
