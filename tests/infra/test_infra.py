"""The test infrastructure itself: PostgreSQL (shared and private), S3, fixtures."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import fsspec
import pytest
import sqlalchemy as sa

import infra.postgres
from infra.ports import free_port
from infra.postgres import (
    PostgresUnavailable,
    drop_orphaned_databases,
    provide_database,
    reset_database,
    start_private_postgres,
    throwaway_database,
)
from modelyard.core.config import Settings


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_free_port_can_be_bound_on_loopback() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        assert sock.getsockname() == ("127.0.0.1", port)


# --- PostgreSQL ----------------------------------------------------------------------


def test_private_postgres_answers_over_tcp_and_is_removed_on_stop() -> None:
    pg = start_private_postgres()
    try:
        assert pg.server.port != 5432
        assert (pg.data_dir / "PG_VERSION").exists()
        with pg.server.connect() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            # inet_server_port() is NULL over a Unix socket: this really is TCP.
            addr, port = conn.execute(
                "SELECT host(inet_server_addr()), inet_server_port()"
            ).fetchone()
            assert (addr, port) == ("127.0.0.1", pg.server.port)

        with throwaway_database(pg.server, "gw7") as url:
            name = url.rsplit("/", 1)[1]
            assert name.startswith(f"modelyard_test_gw7_{os.getpid()}_")
            engine = sa.create_engine(url)
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT current_database()")).scalar() == name
            engine.dispose()
        with pg.server.connect() as conn:
            left = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
            assert left.fetchone() == (0,)

        # A database whose creating process is gone is swept; a live creator's is kept.
        gone = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            text=True,
            check=True,
        )
        orphan = f"modelyard_test_gw0_{int(gone.stdout)}_0badc0de"
        alive = f"modelyard_test_gw1_{os.getpid()}_00c0ffee"
        with pg.server.connect() as conn:
            for db in (orphan, alive):
                conn.execute(f'CREATE DATABASE "{db}"')
        assert drop_orphaned_databases(pg.server) == [orphan]
        with pg.server.connect() as conn:
            kept = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'modelyard%'")
            assert kept.fetchall() == [(alive,)]
    finally:
        pg.stop()
    assert not pg.root.exists()
    assert not _listening(pg.server.port)


def test_provide_database_starts_a_private_server_when_none_listens() -> None:
    port = free_port()  # nothing listens here: the fallback must kick in
    with provide_database("gw3", port=port) as url:
        assert f":{port}/" not in url
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            assert (
                conn.execute(sa.text("SELECT current_database()"))
                .scalar()
                .startswith("modelyard_test_gw3_")
            )
            private_port = conn.execute(sa.text("SELECT inet_server_port()")).scalar()
        engine.dispose()
    assert private_port != 5432
    assert not _listening(private_port)


def test_no_postgres_at_all_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_binaries() -> None:
        raise PostgresUnavailable("initdb was not found")

    monkeypatch.setattr(infra.postgres, "find_bindir", no_binaries)
    with (
        pytest.raises(
            PostgresUnavailable,
            match=r"(?s)No PostgreSQL for the tests.*Connection refused.*initdb was not",
        ),
        provide_database(port=free_port()),
    ):
        pass


def test_reset_database_empties_tables_but_keeps_alembic_version(pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE parent (id serial PRIMARY KEY, name text)"))
        conn.execute(sa.text("CREATE TABLE child (id serial PRIMARY KEY, p int REFERENCES parent)"))
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num varchar(32))"))
        conn.execute(sa.text("INSERT INTO parent (name) VALUES ('a'), ('b')"))
        conn.execute(sa.text("INSERT INTO child (p) VALUES (1)"))
        conn.execute(sa.text("INSERT INTO alembic_version VALUES ('0001_initial')"))
    # A connection left inside a transaction holds a lock that would block TRUNCATE.
    stuck = engine.connect()
    stuck.execute(sa.text("SELECT * FROM parent FOR UPDATE"))
    try:
        emptied = reset_database(pg_url, lock_timeout="200ms")
    finally:
        stuck.invalidate()
        stuck.close()
    assert sorted(emptied) == ["public.child", "public.parent"]
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM parent")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM child")).scalar() == 0
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
            ("0001_initial",)
        ]
        # RESTART IDENTITY: ids start over as in a fresh database.
        assert (
            conn.execute(sa.text("INSERT INTO parent (name) VALUES ('c') RETURNING id")).scalar()
            == 1
        )
        conn.execute(sa.text("DROP TABLE child, parent, alembic_version"))
    engine.dispose()


def test_db_url_uses_the_backend_selected_for_this_run(db_url: str, tmp_path: Path) -> None:
    backend = os.environ.get("MODELYARD_TEST_BACKEND", "sqlite")
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        assert engine.dialect.name == {"sqlite": "sqlite", "postgres": "postgresql"}[backend]
        if backend == "postgres":
            database = conn.execute(sa.text("SELECT current_database()")).scalar()
            assert database.startswith("modelyard_test_")
            assert conn.execute(sa.text("SELECT version()")).scalar().startswith("PostgreSQL")
        else:
            conn.execute(sa.text("CREATE TABLE t (x int)"))
            assert (tmp_path / "modelyard.db").exists()
    engine.dispose()


@pytest.fixture
def store_url(db_url: str) -> str:
    return db_url


def test_backend_marker_follows_db_url_through_other_fixtures(
    store_url: str, request: pytest.FixtureRequest
) -> None:
    assert request.node.get_closest_marker("backend") is not None


def test_tests_without_a_store_are_not_marked_backend(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("backend") is None


# --- S3 ------------------------------------------------------------------------------


def test_fsspec_s3_writes_and_reads_through_the_moto_server(
    s3: dict[str, str], s3_artifacts: str
) -> None:
    assert s3_artifacts.startswith(f"s3://{s3['bucket']}/test_fsspec_s3_writes")
    fs = fsspec.filesystem("s3")
    assert fs.endpoint_url == s3["endpoint_url"]
    fs.pipe(f"{s3_artifacts}/model/weights.bin", b"\x00\x01payload")
    assert fs.cat(f"{s3_artifacts}/model/weights.bin") == b"\x00\x01payload"

    # The object is in moto's bucket, seen by a plain boto3 client.
    client = boto3.client("s3", endpoint_url=s3["endpoint_url"])
    key = s3_artifacts.split("/", 3)[3] + "/model/weights.bin"
    assert client.get_object(Bucket=s3["bucket"], Key=key)["Body"].read() == b"\x00\x01payload"


def test_fsspec_endpoint_env_reaches_a_new_process(s3: dict[str, str], s3_artifacts: str) -> None:
    url = f"{s3_artifacts}/from-parent.txt"
    fsspec.filesystem("s3").pipe(url, b"hello child")
    child = (
        "import fsspec, sys; sys.stdout.write(fsspec.filesystem('s3').cat(sys.argv[1]).decode())"
    )
    out = subprocess.run(
        [sys.executable, "-c", child, url], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "hello child"
    assert os.environ["FSSPEC_S3_ENDPOINT_URL"] == s3["endpoint_url"]


# --- settings and cwd ----------------------------------------------------------------


def test_every_test_runs_in_its_own_tmp_path(tmp_path: Path) -> None:
    assert Path.cwd() == tmp_path


def test_settings_env_points_settings_at_this_test(
    settings_env: dict[str, str], home: Path, db_url: str, tmp_path: Path
) -> None:
    assert home == tmp_path / "home"
    assert "MODELYARD_TRACKING_URI" not in os.environ
    settings = Settings()
    assert settings.home == home
    assert settings.db_url == db_url == settings_env["MODELYARD_DB_URL"]
    assert settings.artifacts == str(tmp_path / "artifacts")
    assert settings.tracking_uri is None
