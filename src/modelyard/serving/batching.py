"""Adaptive micro-batching: concurrent requests to one model share one predict call.

How a batch forms:

- The model runs one batch at a time, on its own thread (never on the event loop).
  While it runs, new requests queue; when it finishes, the next batch takes what
  queued, so under load batches grow by themselves and at low load nothing waits.
- When the model is idle and requests are still being read off the wire (the HTTP
  layer announces them with ``Arrivals``), the batch waits for them, at most
  ``max_latency_ms`` after its first request arrived.
- ``max_batch_size`` counts rows. Requests join a batch in arrival order while the
  rows fit; a request larger than ``max_batch_size`` runs alone, never merged.
- The queue is bounded in rows (``max_queue_rows``): past it, ``submit`` raises
  ``Overloaded`` (a 503) at once instead of letting latency grow without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from modelyard.core.errors import ModelyardError

__all__ = ["Arrivals", "BatchPolicy", "MicroBatcher", "Overloaded", "Retiring"]


class Overloaded(ModelyardError):
    """The model's queue is full: the caller should retry later."""

    code = "TEMPORARILY_UNAVAILABLE"
    http_status = 503


class Retiring(Overloaded):
    """This version was swapped out after the request picked it: the server retries
    the request on the version now serving (the client sees it only if that fails)."""


@dataclass(frozen=True)
class BatchPolicy:
    """How a model batches: rows per call, extra wait for a batch to fill, queue bound."""

    max_batch_size: int = 64
    max_latency_ms: float = 2.0
    max_queue_rows: int = 4096

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        if self.max_latency_ms < 0:
            raise ValueError("max_latency_ms must be >= 0")
        if self.max_queue_rows < 1:
            raise ValueError("max_queue_rows must be at least 1")


class Arrivals:
    """Requests whose body is still being read, announced by the HTTP layer with
    ``with arrivals:`` so that an idle model's next batch can wait for them."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __enter__(self) -> Arrivals:
        self.count += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self.count -= 1


class _Item:
    __slots__ = ("data", "future", "rows", "t")

    def __init__(self, data: Any, rows: int, future: asyncio.Future, t: float) -> None:
        self.data, self.rows, self.future, self.t = data, rows, future, t


class MicroBatcher:
    """Gathers ``submit(data, rows)`` calls into ``run(concat(datas))`` on ``executor``.

    - ``run``: the model call, executed on ``executor`` with the concatenated input.
    - ``concat``: list of request inputs -> one model input.
    - ``split``: (model output, row counts) -> one output per request, in order.
    - ``on_batch(rows)``: told each batch's size (for metrics).
    - ``arrivals``: the count of requests still being read (shared by the batchers
      of one model).
    """

    def __init__(
        self,
        run: Callable[[Any], Any],
        *,
        concat: Callable[[Sequence[Any]], Any],
        split: Callable[[Any, Sequence[int]], list[Any]],
        executor: Executor,
        policy: BatchPolicy | None = None,
        on_batch: Callable[[int], None] | None = None,
        arrivals: Arrivals | None = None,
    ) -> None:
        self._run, self._concat, self._split = run, concat, split
        self._executor = executor
        self.policy = policy or BatchPolicy()
        self._on_batch = on_batch
        self._queue: deque[_Item] = deque()
        self._queued_rows = 0
        self.arrivals = arrivals or Arrivals()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._closing = False

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    async def submit(self, data: Any, rows: int) -> Any:
        """Queue ``rows`` rows and wait for their share of the batch's prediction."""
        if self._closing:
            raise Retiring("This model version is being unloaded; retry")
        if self._queue and self._queued_rows + rows > self.policy.max_queue_rows:
            raise Overloaded(
                f"The model's queue is full ({self._queued_rows} rows waiting, limit "
                f"{self.policy.max_queue_rows}); retry shortly"
            )
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._wakeup = asyncio.Event()  # first use, or a new event loop
            self._task = loop.create_task(self._loop())
        future = loop.create_future()
        self._queue.append(_Item(data, rows, future, loop.time()))
        self._queued_rows += rows
        self._wakeup.set()  # type: ignore[union-attr]
        return await future

    async def aclose(self) -> None:
        """Finish what is queued, then stop (new submits get Overloaded)."""
        self._closing = True
        if self._task is not None:
            self._wakeup.set()  # type: ignore[union-attr]
            await self._task

    # -- the batch loop -------------------------------------------------------------
    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        wakeup = self._wakeup
        assert wakeup is not None
        while True:
            if not self._queue:
                if self._closing:
                    return
                wakeup.clear()
                await wakeup.wait()
                continue
            await self._fill(loop, wakeup)
            batch = self._take()
            await self._execute(loop, batch)

    async def _fill(self, loop: asyncio.AbstractEventLoop, wakeup: asyncio.Event) -> None:
        """Wait for requests still arriving, until the batch is full or its time is up."""
        limit = self.policy.max_batch_size
        deadline = self._queue[0].t + self.policy.max_latency_ms / 1000
        while self.arrivals.count > 0 and self._queued_rows < limit and not self._closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            wakeup.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await wakeup.wait()

    def _take(self) -> list[_Item]:
        limit = self.policy.max_batch_size
        first = self._queue.popleft()
        batch, rows = [first], first.rows
        while self._queue and rows + self._queue[0].rows <= limit and first.rows < limit:
            item = self._queue.popleft()
            batch.append(item)
            rows += item.rows
        self._queued_rows -= rows
        return batch

    async def _execute(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        live = [item for item in batch if not item.future.done()]  # callers that left
        if not live:
            return
        if self._on_batch is not None:
            self._on_batch(sum(item.rows for item in live))
        try:
            outcomes = await loop.run_in_executor(self._executor, self._call, live)
        except BaseException as exc:  # the executor itself failed (shut down, ...)
            for item in live:
                if not item.future.done():
                    item.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for item, (ok, value) in zip(live, outcomes, strict=True):
            if item.future.done():
                continue
            if ok:
                item.future.set_result(value)
            else:
                item.future.set_exception(value)

    def _call(self, live: list[_Item]) -> list[tuple[bool, Any]]:
        """``(True, output)`` or ``(False, error)`` per request. When a batch fails,
        its requests run again one by one, so one request that makes the model raise
        fails alone."""
        try:
            data = self._concat([item.data for item in live])
            outputs = self._split(self._run(data), [item.rows for item in live])
            return [(True, out) for out in outputs]
        except Exception as exc:
            if len(live) == 1:
                return [(False, exc)]
        outcomes: list[tuple[bool, Any]] = []
        for item in live:
            try:
                output = self._run(self._concat([item.data]))
                outcomes.append((True, self._split(output, [item.rows])[0]))
            except Exception as exc:
                outcomes.append((False, exc))
        return outcomes
