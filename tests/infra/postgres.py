"""PostgreSQL for the test suite: one throwaway database per test session.

`provide_database(worker)` is what the ``pg_url`` fixture uses:

1. If the server at 127.0.0.1:5432 accepts a connection (user ``postgres``,
   database ``postgres``), create ``modelyard_test_<worker>_<hex>`` there, yield its
   URL and drop it (``WITH (FORCE)``) at the end.
2. Otherwise start a private server from the PostgreSQL binaries
   (`start_private_postgres`): ``initdb`` into a temp dir, ``pg_ctl start`` on a
   free loopback port with trust auth, and stop it and remove the dir at the end.
   As root both run as the ``postgres`` system user, since PostgreSQL refuses root.
3. If neither works, raise `PostgresUnavailable` saying what failed: the tests
   never skip silently for want of a database.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import secrets
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from infra.ports import free_port

__all__ = [
    "KEEP_TABLES",
    "PostgresUnavailable",
    "PrivatePostgres",
    "Server",
    "connection_error",
    "drop_orphaned_databases",
    "provide_database",
    "reset_database",
    "start_private_postgres",
    "throwaway_database",
]

SHARED_SERVER_HOST = "127.0.0.1"
SHARED_SERVER_PORT = 5432
SUPERUSER = "postgres"
# Tables that `reset_database` leaves alone: the schema stays migrated.
KEEP_TABLES = frozenset({"alembic_version"})


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be reached or started for the tests."""


@dataclass(frozen=True)
class Server:
    """Where a PostgreSQL server listens (TCP), and its trusted superuser."""

    host: str
    port: int
    user: str = SUPERUSER

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of `database` on this server."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres", *, timeout: int = 3) -> psycopg.Connection:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            dbname=database,
            connect_timeout=timeout,
            autocommit=True,
        )


def connection_error(server: Server, *, timeout: int = 3) -> str | None:
    """None if `server` answers ``SELECT 1``, else why it did not."""
    try:
        with server.connect(timeout=timeout) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip() or type(exc).__name__
    return None


# --- a private server -------------------------------------------------------------


@dataclass
class PrivatePostgres:
    """A PostgreSQL server this process started; `stop()` ends it and deletes its files.

    Example::

        with start_private_postgres() as pg:
            with pg.server.connect() as conn:
                conn.execute("SELECT 1")
    """

    server: Server
    root: Path  # data/, socket/ and postgres.log live here
    bindir: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``pg_ctl -D <data dir> *args`` as the server's owner (e.g. a crash test's
        ``pg_ctl("-m", "immediate", "-w", "stop")``); the caller checks ``returncode``."""
        return _run([str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), *args], cwd=self.root)

    def stop(self) -> None:
        """Stop the server (if it runs) and delete its files."""
        if not self.root.exists():
            return
        self.pg_ctl("-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def find_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl`` (PATH first, then Debian's)."""
    found = shutil.which("initdb")
    if found:
        bindir = Path(found).resolve().parent
        if (bindir / "pg_ctl").exists():
            return bindir
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(re.search(r"/(\d+)/bin/", p).group(1)),  # type: ignore[union-attr]
        reverse=True,
    )
    if candidates:
        return Path(candidates[0]).parent
    raise PostgresUnavailable(
        "initdb was not found on PATH nor under /usr/lib/postgresql/*/bin; "
        "install the PostgreSQL server binaries (Debian: apt-get install postgresql)"
    )


def _owner() -> pwd.struct_passwd | None:
    """The account PostgreSQL must run as: None means the current one (not root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable(
            "running as root, PostgreSQL must be started by another user, and there is "
            "no 'postgres' system user; create one or run the tests as a non-root user"
        ) from None


def _as_owner(cmd: Sequence[str]) -> list[str]:
    if _owner() is None:
        return list(cmd)
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *cmd]
    return ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(cmd)]


def _run(cmd: Sequence[str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _as_owner(cmd), cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def start_private_postgres(*, attempts: int = 3) -> PrivatePostgres:
    """Start a throwaway PostgreSQL server on a free 127.0.0.1 port, trust auth.

    Raises `PostgresUnavailable` with the tool's output when it cannot.
    """
    bindir = find_bindir()
    owner = _owner()
    root = Path(tempfile.mkdtemp(prefix="modelyard-pg-"))
    try:
        (root / "socket").mkdir()
        if owner is not None:
            for path in (root, root / "socket"):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        data = root / "data"
        init = _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            cwd=root,
        )
        if init.returncode != 0:
            raise PostgresUnavailable(f"initdb failed:\n{_tail(init.stdout + init.stderr)}")
        log = root / "postgres.log"
        for _ in range(attempts):
            port = free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {port} -k {root / 'socket'} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            start = _run(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(log),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
                cwd=root,
            )
            if start.returncode == 0:
                return PrivatePostgres(Server(SHARED_SERVER_HOST, port), root, bindir)
            # Most likely another process took the port in between: try another one.
            _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], cwd=root)
        server_log = log.read_text(errors="replace") if log.exists() else ""
        raise PostgresUnavailable(
            f"pg_ctl start failed {attempts} times:\n"
            f"{_tail(start.stdout + start.stderr)}\n{_tail(server_log)}"
        )
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


# --- throwaway databases ------------------------------------------------------------


# modelyard_test_<worker>_<pid of the creating process>_<hex>
_TEST_DATABASE = re.compile(r"^modelyard_test_[a-z0-9]+_(\d+)_[0-9a-f]+$")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def drop_orphaned_databases(server: Server) -> list[str]:
    """Drop test databases left by test processes that no longer run (killed sessions).

    A database whose creator still runs, or that anyone is connected to, is kept:
    the DROP here has no FORCE.
    """
    dropped = []
    with server.connect() as conn:
        names = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'modelyard\\_test\\_%'"
        ).fetchall()
        for (name,) in names:
            found = _TEST_DATABASE.match(name)
            if found is None or _process_alive(int(found.group(1))):
                continue
            try:
                conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
            except psycopg.Error:
                continue
            dropped.append(name)
    return dropped


@contextlib.contextmanager
def throwaway_database(server: Server, worker: str = "main") -> Iterator[str]:
    """Create ``modelyard_test_<worker>_<pid>_<hex>`` on `server`, yield its URL, drop it.

    Databases that killed test sessions left behind are dropped first.
    """
    drop_orphaned_databases(server)
    tag = re.sub(r"[^a-z0-9]", "", worker.lower())[:20] or "main"
    name = f"modelyard_test_{tag}_{os.getpid()}_{secrets.token_hex(4)}"
    with server.connect() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server.url(name)
    finally:
        with server.connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextlib.contextmanager
def provide_database(
    worker: str = "main", *, host: str = SHARED_SERVER_HOST, port: int = SHARED_SERVER_PORT
) -> Iterator[str]:
    """A throwaway database on `host`:`port`, or on a private server if that is down."""
    server = Server(host, port)
    with contextlib.ExitStack() as stack:
        refused = connection_error(server)
        if refused is not None:
            try:
                server = stack.enter_context(start_private_postgres()).server
            except PostgresUnavailable as exc:
                raise PostgresUnavailable(
                    f"No PostgreSQL for the tests. {server.host}:{server.port} did not accept "
                    f"a connection ({refused}), and starting a private server failed: {exc}\n"
                    "Start the machine's server (pg_ctlcluster --skip-systemctl-redirect "
                    "15 main start) or install the PostgreSQL server binaries."
                ) from exc
        yield stack.enter_context(throwaway_database(server, worker))


def reset_database(
    url: str, *, keep: frozenset[str] = KEEP_TABLES, lock_timeout: str = "2s"
) -> list[str]:
    """Empty every table of the database at `url` but those named in `keep`.

    Returns the emptied tables (``schema.table``). If a connection the test left
    open inside a transaction blocks the TRUNCATE for `lock_timeout`, the other
    connections to this database are ended and the TRUNCATE runs again.
    """
    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_type = 'BASE TABLE'"
            " AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        tables = [(schema, name) for schema, name in rows if name not in keep]
        if not tables:
            return []
        truncate = sql.SQL("TRUNCATE TABLE {} RESTART IDENTITY CASCADE").format(
            sql.SQL(", ").join(sql.Identifier(schema, name) for schema, name in tables)
        )
        conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(lock_timeout)))
        try:
            conn.execute(truncate)
        except psycopg.errors.LockNotAvailable:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            conn.execute(truncate)
    return [f"{schema}.{name}" for schema, name in tables]
