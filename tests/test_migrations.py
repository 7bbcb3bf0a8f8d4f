"""Migrations run by themselves and produce exactly the schema the code describes."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

import modelyard.core.store.engine as engine_module
from modelyard.core.store.engine import HEAD_REVISION, current_revision, open_engine
from modelyard.core.store.schema import metadata


def test_head_constant_matches_the_migration_scripts():
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(Path(engine_module.__file__).with_name("migrations"))
    )
    assert ScriptDirectory.from_config(cfg).get_current_head() == HEAD_REVISION


def test_first_use_migrates_to_head_and_matches_metadata(db_url):
    engine = open_engine(db_url)
    assert current_revision(engine) == HEAD_REVISION
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    tables = set(inspect(engine).get_table_names())
    assert {"experiments", "runs", "metrics", "latest_metrics", "params", "tags"} <= tables
    assert {"run_inputs", "audit_events", "alembic_version"} <= tables


def test_reopening_does_not_migrate_again(db_url, monkeypatch):
    open_engine(db_url).dispose()
    calls = []
    import alembic.command

    monkeypatch.setattr(alembic.command, "upgrade", lambda *a, **k: calls.append(a))
    engine = open_engine(db_url)
    assert calls == []
    assert current_revision(engine) == HEAD_REVISION


def test_sqlite_runs_in_wal_mode(tmp_path):
    engine = open_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_unsupported_url_is_a_clear_error():
    import pytest

    from modelyard.core.errors import InvalidParameter

    with pytest.raises(InvalidParameter, match="Unsupported database URL scheme 'mysql'"):
        open_engine("mysql://localhost/x")


def test_upgrade_from_the_first_release_keeps_data(tmp_path):
    """A database created by 0001 (tracking only) gains the registry and keeps its runs."""
    from alembic import command

    from modelyard.tracking.entities import Metric
    from modelyard.tracking.sql_store import SqlTrackingStore

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = open_engine(url, migrate=False)
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(Path(engine_module.__file__).with_name("migrations"))
    )
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001_initial")
    assert current_revision(engine) == "0001_initial"
    assert "registered_models" not in inspect(engine).get_table_names()
    old = SqlTrackingStore(engine, str(tmp_path / "a"))
    run_id = old.create_run("0", run_name="before-upgrade").info.run_id
    old.log_batch(run_id, metrics=[Metric("acc", 0.5, 1, 0)])
    engine.dispose()

    upgraded = open_engine(url)  # first use after the upgrade migrates by itself
    assert current_revision(upgraded) == HEAD_REVISION
    assert "registered_models" in inspect(upgraded).get_table_names()
    store = SqlTrackingStore(upgraded, str(tmp_path / "a"))
    assert store.get_run(run_id).data.metrics == {"acc": 0.5}
