"""The metadata database dies mid-run: the store retries, then fails clearly, and
nothing is half-written. A private PostgreSQL server is started, crashed with
`pg_ctl stop -m immediate` and started again on the same port and data."""

from __future__ import annotations

import threading
import time

import pytest

import modelyard as my
from infra.postgres import start_private_postgres
from modelyard.core.errors import StoreUnavailable
from modelyard.core.store.engine import open_engine
from modelyard.tracking.entities import Metric, Param
from modelyard.tracking.sql_store import SqlTrackingStore


class CrashablePostgres:
    def __init__(self) -> None:
        self.pg = start_private_postgres()
        self.url = self.pg.server.url("postgres")
        # Restart with synchronous commits: a crash must keep what was committed.
        self._ctl("-m", "fast", "-w", "stop")
        self.start()

    def _ctl(self, *args: str) -> None:
        done = self.pg.pg_ctl(*args)
        assert done.returncode == 0, done.stdout + done.stderr

    def crash(self) -> None:
        self._ctl("-m", "immediate", "-w", "stop")

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.pg.server.port} "
            f"-k {self.pg.root / 'socket'} -c fsync=off"
        )
        self._ctl("-l", str(self.pg.root / "postgres.log"), "-o", options, "-w", "start")


@pytest.fixture(scope="module")
def postgres():
    server = CrashablePostgres()
    yield server
    server.pg.stop()


@pytest.fixture
def store(postgres, tmp_path):
    s = SqlTrackingStore(
        open_engine(postgres.url), str(tmp_path / "artifacts"), retries=2, retry_backoff=0.05
    )
    yield s
    s.close()


def _points(key: str, n: int, offset: int = 0) -> list[Metric]:
    return [Metric(key, float(i), 1000 + i, offset + i) for i in range(n)]


def test_dead_database_fails_clearly_and_writes_nothing(postgres, store):
    run = store.create_run("0", run_name="victim")
    rid = run.info.run_id
    store.log_batch(rid, metrics=_points("loss", 100), params=[Param("lr", "0.1")])

    postgres.crash()
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as err:
            store.log_batch(rid, metrics=_points("loss", 100, offset=100))
        assert time.monotonic() - started >= 0.05 + 0.1  # it did back off and retry
        message = str(err.value)
        assert "unreachable after 3 attempts" in message
        assert "Nothing of this call was written" in message
        assert "postgres" in message and "password" not in message.lower()
    finally:
        postgres.start()

    # The store recovers by itself; the failed batch left nothing behind.
    assert store.count_metric_points(rid, "loss") == 100
    assert store.get_run(rid).data.params == {"lr": "0.1"}
    store.log_batch(rid, metrics=_points("loss", 100, offset=100))
    assert store.count_metric_points(rid, "loss") == 200
    assert store.get_run(rid).data.metrics["loss"] == 99.0


def test_database_back_within_the_retries_loses_nothing(postgres, tmp_path):
    store = SqlTrackingStore(
        open_engine(postgres.url), str(tmp_path / "artifacts"), retries=6, retry_backoff=0.25
    )
    rid = store.create_run("0").info.run_id
    postgres.crash()
    restarter = threading.Timer(1.0, postgres.start)
    restarter.start()
    try:
        store.log_batch(rid, metrics=_points("acc", 500))
    finally:
        restarter.join()
    assert store.count_metric_points(rid, "acc") == 500
    store.close()


def test_sdk_surfaces_the_outage(postgres, tmp_path):
    my.configure(home=tmp_path / "home", db_url=postgres.url, artifacts=str(tmp_path / "a"))
    try:
        run = my.start_run(run_name="sdk", synchronous=True)
        my.client().store.retries = 1
        my.client().store.retry_backoff = 0.05
        my.log_metric("loss", 1.0, step=0)
        postgres.crash()
        try:
            with pytest.raises(StoreUnavailable, match="unreachable"):
                my.log_metric("loss", 2.0, step=1)
        finally:
            postgres.start()
        my.log_metric("loss", 3.0, step=2)
        my.end_run()
        history = my.get_metric_history(run.run_id, "loss")
        assert [(p.step, p.value) for p in history] == [(0, 1.0), (2, 3.0)]
        assert my.get_run(run.run_id).info.status == "FINISHED"
    finally:
        while my.active_run():
            my.end_run()
