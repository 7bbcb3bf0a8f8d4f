"""Asynchronous, batching metric logging: a training loop hands points to a bounded
queue and goes on; a background thread writes them in batches.

Memory is bounded (a full queue makes the caller wait for the writer instead of
growing); `flush()` returns once everything handed in is durable, and re-raises
the first error the writer met so a failure is never silent.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable, Sequence

from modelyard.core.errors import ModelyardError
from modelyard.tracking.entities import Metric

__all__ = ["AsyncMetricLogger"]

log = logging.getLogger(__name__)

_STOP = object()
_live: weakref.WeakSet[AsyncMetricLogger] = weakref.WeakSet()


class AsyncMetricLogger:
    """Queue metric points per run and write them with ``write_batch`` in the background.

    Example::

        logger = AsyncMetricLogger(lambda run_id, pts: service.log_batch(run_id, metrics=pts))
        logger.put(run_id, Metric("loss", 0.3, now_ms(), step))
        logger.flush()   # everything is stored (or the writer's error is raised)

    - ``write_batch``: called from the writer thread with (run_id, list of points).
    - ``max_points``: the queue bound; ``batch_size``: points per write.
    """

    def __init__(
        self,
        write_batch: Callable[[str, Sequence[Metric]], None],
        *,
        max_points: int = 100_000,
        batch_size: int = 1000,
    ) -> None:
        self._write = write_batch
        self._queue: queue.Queue = queue.Queue(maxsize=max_points)
        self._batch_size = batch_size
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        _live.add(self)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(
                        target=self._run, name="modelyard-metric-writer", daemon=True
                    )
                    self._thread.start()

    def put(self, run_id: str, metric: Metric) -> None:
        """Hand one point to the writer (blocks only while the queue is full)."""
        if self._thread is None:
            self._ensure_thread()
        self._queue.put((run_id, metric))

    def put_many(self, run_id: str, metrics: Sequence[Metric]) -> None:
        if self._thread is None:
            self._ensure_thread()
        for m in metrics:
            self._queue.put((run_id, m))

    def flush(self) -> None:
        """Wait until every point handed in so far is written; raise the writer's error."""
        if self._thread is not None:
            self._queue.join()
        self.raise_error()

    def raise_error(self) -> None:
        err, self._error = self._error, None
        if err is not None:
            if isinstance(err, ModelyardError):
                raise type(err)(f"Asynchronous metric logging failed: {err.message}") from err
            raise ModelyardError(f"Asynchronous metric logging failed: {err}") from err

    def _run(self) -> None:
        q = self._queue
        while True:
            item = q.get()
            if item is _STOP:
                q.task_done()
                return
            items = [item]
            try:
                while len(items) < self._batch_size:
                    nxt = q.get_nowait()
                    if nxt is _STOP:
                        q.put(_STOP)  # handle after this batch; balance the count below
                        q.task_done()
                        break
                    items.append(nxt)
            except queue.Empty:
                pass
            by_run: dict[str, list[Metric]] = defaultdict(list)
            for run_id, metric in items:
                by_run[run_id].append(metric)
            for run_id, points in by_run.items():
                try:
                    self._write(run_id, points)
                except BaseException as exc:  # surfaced on the next flush
                    log.error("modelyard: writing %d metric points failed: %s", len(points), exc)
                    if self._error is None:
                        self._error = exc
            for _ in items:
                q.task_done()

    def close(self) -> None:
        """Flush and stop the writer thread."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(_STOP)
            self._queue.join()
            self._thread.join(timeout=5)
        self._thread = None
        self.raise_error()


@atexit.register
def _flush_all_at_exit() -> None:
    for logger in list(_live):
        try:
            logger.close()
        except Exception as exc:  # the interpreter is exiting: report, do not raise
            log.error("modelyard: metrics not written at exit: %s", exc)
