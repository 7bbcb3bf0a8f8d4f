"""The step cache's rows: cache key -> the runs that produced that output.

An indexed table rather than a tag search over the pipeline's runs, so a cache
lookup costs the same after ten runs or ten thousand (a tag search scanned every
run of the experiment: ~5 µs per older run, per step).
"""

from __future__ import annotations

from sqlalchemy import Engine, insert, select

from modelyard.core.ids import now_ms
from modelyard.core.store import schema as t
from modelyard.core.store.retry import retrying

__all__ = ["SqlStepCache"]

c = t.pipeline_cache.c


class SqlStepCache:
    def __init__(self, engine: Engine, *, retries: int = 3, retry_backoff: float = 0.2) -> None:
        self.engine = engine
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.safe_url = engine.url.render_as_string(hide_password=True)

    @retrying
    def add(self, key: str, run_id: str, pipeline: str, step: str, output_hash: str) -> None:
        row = {
            "cache_key": key,
            "run_id": run_id,
            "pipeline": pipeline,
            "step": step,
            "output_hash": output_hash,
            "created_at": now_ms(),
        }
        with self.engine.begin() as conn:
            conn.execute(insert(t.pipeline_cache).values(**row))

    @retrying
    def candidates(self, key: str, limit: int = 20) -> list[tuple[str, str, int]]:
        """(run id, output hash, created at) of the runs with this key, newest first."""
        stmt = (
            select(c.run_id, c.output_hash, c.created_at)
            .where(c.cache_key == key)
            .order_by(c.created_at.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(stmt)]
