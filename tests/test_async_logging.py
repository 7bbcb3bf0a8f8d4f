"""The asynchronous metric queue: bounded memory, batching, exactly-once delivery,
errors that surface on flush, and a flush at interpreter exit."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from modelyard.core.errors import InvalidState, ModelyardError
from modelyard.tracking.async_logging import AsyncMetricLogger
from modelyard.tracking.entities import Metric

T0 = 1_700_000_000_000
RUN_A, RUN_B = "a" * 32, "b" * 32


def point(i: int, key: str = "loss") -> Metric:
    return Metric(key, float(i), T0 + i, i)


class Recorder:
    """A write_batch that records every call; optionally gated and slow."""

    def __init__(self, *, delay: float = 0.0, gated: bool = False) -> None:
        self.calls: list[tuple[str, list[Metric]]] = []
        self.delay = delay
        self.gate = threading.Event()
        if not gated:
            self.gate.set()
        self.entered = threading.Event()
        self.threads: set[str] = set()

    def __call__(self, run_id: str, points: Sequence[Metric]) -> None:
        self.entered.set()
        self.threads.add(threading.current_thread().name)
        assert self.gate.wait(30), "the test never opened the gate"
        if self.delay:
            time.sleep(self.delay)
        self.calls.append((run_id, list(points)))

    def written(self, run_id: str | None = None) -> list[Metric]:
        return [m for rid, pts in self.calls if run_id in (None, rid) for m in pts]


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.001)


def test_full_queue_blocks_the_producer_instead_of_growing() -> None:
    max_points, batch_size, total = 100, 10, 1000
    writer = Recorder(gated=True)
    logger = AsyncMetricLogger(writer, max_points=max_points, batch_size=batch_size)
    produced = 0

    def produce() -> None:
        nonlocal produced
        for i in range(total):
            logger.put(RUN_A, point(i))
            produced += 1

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        # The writer is stuck on its first batch: the queue fills up to its bound and
        # the producer waits there.
        wait_for(lambda: logger._queue.qsize() == max_points)
        time.sleep(0.05)
        assert producer.is_alive()
        assert logger._queue.qsize() == max_points
        assert produced <= max_points + batch_size  # queue + the batch being written
        assert writer.calls == []

        writer.delay = 0.0005  # from now on a slow writer
        writer.gate.set()
        peak = 0
        while producer.is_alive():
            peak = max(peak, logger._queue.qsize())
            time.sleep(0.0001)
        assert peak <= max_points
    finally:
        writer.gate.set()
        producer.join(30)
    assert produced == total

    logger.flush()
    assert logger._queue.qsize() == 0
    assert [m.step for m in writer.written()] == list(range(total))  # once each, in order
    assert writer.written() == [point(i) for i in range(total)]
    sizes = [len(pts) for _, pts in writer.calls]
    assert max(sizes) <= batch_size
    assert sum(sizes) == total
    assert len(sizes) < total / 2  # points were batched, not written one by one
    assert writer.threads == {"modelyard-metric-writer"}
    logger.close()


def test_points_queued_while_the_writer_is_busy_are_coalesced_into_full_batches() -> None:
    writer = Recorder(gated=True)
    logger = AsyncMetricLogger(writer, max_points=1000, batch_size=50)
    logger.put(RUN_A, point(0))
    assert writer.entered.wait(10)  # the writer holds its first batch: [point 0]
    logger.put_many(RUN_A, [point(i) for i in range(1, 501)])
    writer.gate.set()
    logger.flush()
    assert [len(pts) for _, pts in writer.calls] == [1] + [50] * 10
    assert writer.written() == [point(i) for i in range(501)]
    logger.close()


def test_points_of_several_runs_are_written_to_their_own_run_in_order() -> None:
    writer = Recorder(gated=True)
    logger = AsyncMetricLogger(writer, max_points=10_000, batch_size=64)
    for i in range(1000):
        logger.put(RUN_A if i % 3 else RUN_B, point(i, "a" if i % 3 else "b"))
    writer.gate.set()
    logger.flush()
    assert all(len(pts) <= 64 for _, pts in writer.calls)
    assert all({m.key for m in pts} == {"a" if rid == RUN_A else "b"} for rid, pts in writer.calls)
    assert [m.step for m in writer.written(RUN_A)] == [i for i in range(1000) if i % 3]
    assert [m.step for m in writer.written(RUN_B)] == [i for i in range(1000) if not i % 3]
    logger.close()


def test_flush_waits_for_every_point_handed_in() -> None:
    writer = Recorder(delay=0.002)
    logger = AsyncMetricLogger(writer, max_points=50, batch_size=5)
    for i in range(200):
        logger.put(RUN_A, point(i))
    logger.flush()  # no sleep, no polling: flush alone makes them durable
    assert writer.written() == [point(i) for i in range(200)]
    logger.close()


def test_flush_without_points_starts_no_thread() -> None:
    writer = Recorder()
    logger = AsyncMetricLogger(writer)
    logger.flush()
    logger.close()
    assert logger._thread is None
    assert writer.calls == []


def test_writer_error_is_raised_once_on_flush_and_the_writer_goes_on() -> None:
    failing = {RUN_B}
    written: list[tuple[str, list[Metric]]] = []

    def write(run_id: str, points: Sequence[Metric]) -> None:
        if run_id in failing:
            raise RuntimeError(f"database said no to {run_id[:4]}")
        written.append((run_id, list(points)))

    logger = AsyncMetricLogger(write, batch_size=10)
    logger.put(RUN_B, point(0))
    with pytest.raises(ModelyardError, match="Asynchronous metric logging failed") as err:
        logger.flush()
    assert "database said no to bbbb" in err.value.message
    assert type(err.value) is ModelyardError
    assert isinstance(err.value.__cause__, RuntimeError)
    logger.flush()  # reported once

    # The writer thread survived: later points of a healthy run still arrive.
    for i in range(1, 31):
        logger.put(RUN_A, point(i))
    logger.flush()
    assert [m.step for _, pts in written for m in pts] == list(range(1, 31))
    assert all(rid == RUN_A for rid, _ in written)
    logger.close()


def test_writer_error_keeps_its_modelyard_type() -> None:
    def write(run_id: str, points: Sequence[Metric]) -> None:
        raise InvalidState(f"Run {run_id!r} has ended with status FINISHED")

    logger = AsyncMetricLogger(write)
    logger.put_many(RUN_A, [point(i) for i in range(5)])
    with pytest.raises(InvalidState) as err:
        logger.close()  # close flushes, so it reports too
    assert err.value.message.startswith("Asynchronous metric logging failed: Run ")
    assert "FINISHED" in err.value.message
    assert isinstance(err.value.__cause__, InvalidState)
    assert logger._thread is None


def test_close_flushes_stops_the_thread_and_a_later_put_restarts_it() -> None:
    writer = Recorder(delay=0.001)
    logger = AsyncMetricLogger(writer, batch_size=7)
    logger.put_many(RUN_A, [point(i) for i in range(100)])
    thread = logger._thread
    assert thread is not None and thread.is_alive()
    logger.close()
    assert writer.written() == [point(i) for i in range(100)]
    assert logger._thread is None
    assert not thread.is_alive()

    logger.put(RUN_A, point(100))
    logger.flush()
    assert writer.written() == [point(i) for i in range(101)]
    logger.close()


EXIT_SCRIPT = """\
import time

import modelyard as my
from modelyard.sdk import fluent

run = my.start_run(experiment="exit")
store = my.client().store
write = store.log_batch


def slow_log_batch(*args, **kwargs):  # a slow database: the queue cannot keep up
    time.sleep(0.02)
    return write(*args, **kwargs)


store.log_batch = slow_log_batch
for i in range({n}):
    my.log_metric("loss", 1 / (i + 1), step=i, timestamp={t0} + i)
print(run.run_id, fluent._current().logger._queue.qsize(), flush=True)
# No end_run, no flush: the interpreter exits with points still queued.
"""


def test_points_still_queued_at_interpreter_exit_are_written(
    tmp_path: Path, home: Path, db_url: str
) -> None:
    n = 10_000
    script = tmp_path / "exit_early.py"
    script.write_text(EXIT_SCRIPT.format(n=n, t0=T0))
    env = {
        **os.environ,
        "MODELYARD_HOME": str(home),
        "MODELYARD_DB_URL": db_url,
        "MODELYARD_ARTIFACTS": str(tmp_path / "artifacts"),
    }
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    run_id, pending = done.stdout.split()
    assert int(pending) > 0  # points really were waiting when the interpreter exited

    from modelyard.core.store.engine import open_engine
    from modelyard.tracking.sql_store import SqlTrackingStore

    store = SqlTrackingStore(open_engine(db_url), str(tmp_path / "artifacts"))
    try:
        assert store.count_metric_points(run_id, "loss") == n
        history = store.get_metric_history(run_id, "loss")
        assert [(m.value, m.timestamp, m.step) for m in history] == [
            (1 / (i + 1), T0 + i, i) for i in range(n)
        ]
        assert store.get_run(run_id).data.metrics == {"loss": 1 / n}
    finally:
        store.close()
