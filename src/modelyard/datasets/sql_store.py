"""The dataset registry's rows in the metadata database."""

from __future__ import annotations

import json

from sqlalchemy import Engine, insert, select, update

from modelyard.core.errors import ResourceNotFound
from modelyard.core.ids import now_ms
from modelyard.core.store import schema as t
from modelyard.core.store.audit import record_event
from modelyard.core.store.retry import retrying
from modelyard.datasets.entities import Dataset, DatasetVersion

__all__ = ["SqlDatasetStore"]

d = t.datasets.c
v = t.dataset_versions.c


def _version(row) -> DatasetVersion:  # noqa: ANN001 - a SQLAlchemy row
    m = dict(row._mapping)
    m["columns"] = json.loads(m["columns"]) if m["columns"] else []
    return DatasetVersion(**m)


class SqlDatasetStore:
    def __init__(self, engine: Engine, *, retries: int = 3, retry_backoff: float = 0.2) -> None:
        self.engine = engine
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.safe_url = engine.url.render_as_string(hide_password=True)

    @retrying
    def add_version(
        self, version: DatasetVersion, description: str | None = None
    ) -> DatasetVersion:
        """Insert the next version of ``version.name`` (creating the dataset) in one
        transaction; the number given in ``version`` is ignored."""
        now = now_ms()
        with self.engine.begin() as conn:
            last = conn.execute(
                select(d.last_version).where(d.name == version.name).with_for_update()
            ).scalar()
            if last is None:
                conn.execute(
                    insert(t.datasets).values(
                        name=version.name,
                        description=description,
                        last_version=0,
                        created_at=now,
                        updated_at=now,
                    )
                )
                last = 0
            number = last + 1
            row = {
                **{c.name: getattr(version, c.name) for c in t.dataset_versions.c},
                "version": number,
                "columns": json.dumps(version.columns),
                "created_at": now,
            }
            conn.execute(insert(t.dataset_versions).values(**row))
            conn.execute(
                update(t.datasets)
                .where(d.name == version.name)
                .values(last_version=number, updated_at=now)
            )
            record_event(
                conn,
                actor=version.user_id,
                action="register_dataset_version",
                entity_type="dataset_version",
                entity_id=f"{version.name}@{number}",
                after={"oid": version.oid, "size": version.size, "files": version.files},
            )
        return self.get_version(version.name, number)

    @retrying
    def set_profile_uri(self, name: str, version: int, uri: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(t.dataset_versions)
                .where(v.name == name, v.version == version)
                .values(profile_uri=uri)
            )

    @retrying
    def get_version(self, name: str, version: int | None = None) -> DatasetVersion:
        """A version of ``name``, the latest when ``version`` is None."""
        stmt = select(t.dataset_versions).where(v.name == name)
        stmt = stmt.where(v.version == version) if version else stmt.order_by(v.version.desc())
        with self.engine.connect() as conn:
            row = conn.execute(stmt.limit(1)).first()
            if row is None:
                known = conn.execute(select(d.last_version).where(d.name == name)).scalar()
        if row is None:
            if known is None:
                raise ResourceNotFound(f"No dataset named {name!r}")
            raise ResourceNotFound(f"Dataset {name!r} has no version {version} (latest: {known})")
        return _version(row)

    @retrying
    def list_datasets(self) -> list[Dataset]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.datasets).order_by(d.name)).all()
        return [Dataset(**dict(r._mapping)) for r in rows]

    @retrying
    def list_versions(self, name: str | None = None) -> list[DatasetVersion]:
        stmt = select(t.dataset_versions).order_by(v.name, v.version)
        if name is not None:
            stmt = stmt.where(v.name == name)
        with self.engine.connect() as conn:
            return [_version(r) for r in conn.execute(stmt)]

    @retrying
    def find_by_oid(self, oid: str) -> list[DatasetVersion]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.dataset_versions).where(v.oid == oid).order_by(v.name, v.version)
            )
            return [_version(r) for r in rows]

    @retrying
    def run_input_digests(self) -> set[str]:
        """Every digest a run input names (gc keeps those objects)."""
        with self.engine.connect() as conn:
            return set(conn.execute(select(t.run_inputs.c.dataset_digest).distinct()).scalars())

    @retrying
    def model_lineage_digests(self) -> set[str]:
        """Every dataset digest a registered model version's lineage snapshot names."""
        found: set[str] = set()
        with self.engine.connect() as conn:
            for raw in conn.execute(select(t.model_versions.c.lineage)).scalars():
                for item in json.loads(raw) if raw else []:
                    if item.get("dataset_digest"):
                        found.add(item["dataset_digest"])
        return found
