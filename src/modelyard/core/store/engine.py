"""Database engines for the metadata store: SQLite (WAL) embedded, PostgreSQL scaled out.

`open_engine(url)` returns a ready engine: the schema is migrated to the newest
revision on first use and after an upgrade of modelyard, so nobody runs a
migration command by hand.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

from modelyard.core.errors import InvalidParameter

__all__ = ["HEAD_REVISION", "open_engine", "upgrade_schema"]

# The newest migration in migrations/versions; a test keeps the two in step.
HEAD_REVISION = "0007_pipeline_cache"

_MIGRATIONS = Path(__file__).with_name("migrations")
_lock = threading.Lock()


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` and pick psycopg 3 as its driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def open_engine(url: str, *, migrate: bool = True) -> Engine:
    """Create an engine for `url` and bring its schema to HEAD_REVISION."""
    url = normalise_url(url)
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=8
        )
        event.listen(engine, "connect", _sqlite_pragmas)
    elif backend == "postgresql":
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise InvalidParameter(
                "PostgreSQL needs the driver: pip install 'modelyard[postgres]'"
            ) from exc
        engine = create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)
    else:
        raise InvalidParameter(
            f"Unsupported database URL scheme {parsed.drivername!r}: "
            "use sqlite:///path or postgresql://host/db"
        )
    if migrate:
        upgrade_schema(engine)
    return engine


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade_schema(engine: Engine) -> None:
    """Run pending Alembic migrations; a no-op (one query) when already at head."""
    if current_revision(engine) == HEAD_REVISION:
        return
    from alembic import command
    from alembic.config import Config

    with _lock, engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Several processes may start at once against a fresh database.
            conn.execute(text("SELECT pg_advisory_xact_lock(7419011)"))
        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
