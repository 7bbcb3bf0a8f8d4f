"""Adaptive micro-batching: rows not requests, order, back-pressure, isolation, threads."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from modelyard.serving.batching import Arrivals, BatchPolicy, MicroBatcher, Overloaded, Retiring
from modelyard.serving.inputs import split_rows


class Recorder:
    """A model that doubles its input and records each call's size and thread."""

    def __init__(self, delay: float = 0.0, fail_on: float | None = None) -> None:
        self.calls: list[int] = []
        self.threads: set[int] = set()
        self.delay, self.fail_on = delay, fail_on
        self.release = threading.Event()
        self.release.set()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.release.wait(10)
        self.calls.append(len(x))
        self.threads.add(threading.get_ident())
        if self.fail_on is not None and (x == self.fail_on).any():
            raise ValueError(f"cannot score {self.fail_on}")
        if self.delay:
            threading.Event().wait(self.delay)
        return x[:, 0] * 2


def _batcher(model: Recorder, executor, **policy) -> MicroBatcher:
    return MicroBatcher(
        model,
        concat=np.concatenate,
        split=split_rows,
        executor=executor,
        policy=BatchPolicy(**policy),
    )


@pytest.fixture
def executor():
    with ThreadPoolExecutor(1) as pool:
        yield pool


def _rows(start: int, n: int) -> np.ndarray:
    return np.arange(start, start + n, dtype=float).reshape(-1, 1)


def test_concurrent_requests_share_one_call_and_each_gets_its_own_rows(executor):
    model = Recorder()
    batcher = _batcher(model, executor, max_batch_size=64, max_latency_ms=50)

    async def main():
        model.release.clear()  # hold the first call so the others queue behind it
        first = asyncio.ensure_future(batcher.submit(_rows(1000, 1), 1))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(batcher.submit(_rows(i * 10, 3), 3)) for i in range(10)]
        await asyncio.sleep(0.05)
        model.release.set()
        return await first, await asyncio.gather(*rest)

    first, rest = asyncio.run(main())
    assert model.calls == [1, 30]  # ten requests of 3 rows: one call of 30 rows
    assert first.tolist() == [2000.0]
    for i, out in enumerate(rest):  # in order, to the right caller
        assert out.tolist() == [2.0 * (i * 10 + k) for k in range(3)]


def test_max_batch_size_counts_rows_and_a_big_request_runs_alone(executor):
    model = Recorder()
    batcher = _batcher(
        model, executor, max_batch_size=1000, max_latency_ms=50, max_queue_rows=10**5
    )

    async def main():
        model.release.clear()
        blocker = asyncio.ensure_future(batcher.submit(_rows(0, 1), 1))
        await asyncio.sleep(0.05)
        big = [asyncio.ensure_future(batcher.submit(_rows(i * 500, 500), 500)) for i in range(10)]
        huge = asyncio.ensure_future(batcher.submit(_rows(99_000, 1500), 1500))
        small = asyncio.ensure_future(batcher.submit(_rows(50_000, 2), 2))
        await asyncio.sleep(0.05)
        model.release.set()
        await blocker
        return await asyncio.gather(*big), await huge, await small

    big, huge, small = asyncio.run(main())
    # 10 x 500 rows never make one call of 5000: pairs of 500 fill 1000 rows each;
    # the 1500-row request exceeds the limit and runs by itself.
    assert model.calls[0] == 1
    assert max(model.calls[1:]) == 1500
    assert model.calls.count(1500) == 1
    assert all(c <= 1000 for c in model.calls[1:] if c != 1500)
    assert sum(model.calls) == 1 + 5000 + 1500 + 2
    assert [len(b) for b in big] == [500] * 10 and len(huge) == 1500 and len(small) == 2
    assert big[7].tolist() == (np.arange(3500, 4000) * 2.0).tolist()


def test_inference_runs_on_the_executor_thread_not_the_event_loop(executor):
    model = Recorder()
    batcher = _batcher(model, executor)

    async def main():
        loop_thread = threading.get_ident()
        await batcher.submit(_rows(0, 2), 2)
        return loop_thread

    loop_thread = asyncio.run(main())
    assert model.threads and loop_thread not in model.threads


def test_a_full_queue_refuses_with_overloaded_and_the_queued_requests_still_finish(executor):
    model = Recorder()
    batcher = _batcher(model, executor, max_batch_size=4, max_queue_rows=8, max_latency_ms=0)

    async def main():
        model.release.clear()
        running = asyncio.ensure_future(batcher.submit(_rows(0, 4), 4))
        await asyncio.sleep(0.05)  # taken by the model: the queue is empty again
        queued = [asyncio.ensure_future(batcher.submit(_rows(10 * i, 4), 4)) for i in (1, 2)]
        await asyncio.sleep(0)
        with pytest.raises(Overloaded, match=r"queue is full \(8 rows waiting, limit 8\)"):
            await batcher.submit(_rows(100, 1), 1)
        model.release.set()
        return await running, await asyncio.gather(*queued)

    running, queued = asyncio.run(main())
    assert running.tolist() == [0.0, 2.0, 4.0, 6.0]
    assert queued[1].tolist() == [40.0, 42.0, 44.0, 46.0]


def test_one_request_that_makes_the_model_fail_fails_alone(executor):
    model = Recorder(fail_on=-1.0)
    batcher = _batcher(model, executor, max_latency_ms=50)

    async def main():
        model.release.clear()
        blocker = asyncio.ensure_future(batcher.submit(_rows(0, 1), 1))
        await asyncio.sleep(0.05)
        good1 = asyncio.ensure_future(batcher.submit(_rows(5, 2), 2))
        bad = asyncio.ensure_future(batcher.submit(np.array([[-1.0]]), 1))
        good2 = asyncio.ensure_future(batcher.submit(_rows(7, 1), 1))
        await asyncio.sleep(0.05)
        model.release.set()
        await blocker
        return await asyncio.gather(good1, bad, good2, return_exceptions=True)

    good1, bad, good2 = asyncio.run(main())
    assert isinstance(bad, ValueError) and "cannot score -1.0" in str(bad)
    assert good1.tolist() == [10.0, 12.0] and good2.tolist() == [14.0]
    assert model.calls[1] == 4  # the batch was tried whole first, then one by one


def test_an_idle_model_waits_for_requests_still_arriving_at_most_max_latency(executor):
    model = Recorder()
    arrivals = Arrivals()
    batcher = MicroBatcher(
        model,
        concat=np.concatenate,
        split=split_rows,
        executor=executor,
        policy=BatchPolicy(max_batch_size=64, max_latency_ms=200),
        arrivals=arrivals,
    )

    async def late(i: int):
        with arrivals:
            await asyncio.sleep(0.02)  # its body is still on the wire
        return await batcher.submit(_rows(i, 1), 1)

    async def main():
        first = asyncio.ensure_future(late(0))
        others = [asyncio.ensure_future(late(i)) for i in range(1, 5)]
        return await asyncio.gather(first, *others)

    asyncio.run(main())
    assert model.calls == [5]  # waited for the four still arriving: one call

    model.calls.clear()

    async def alone():
        return await batcher.submit(_rows(0, 1), 1)

    asyncio.run(alone())
    assert model.calls == [1]  # nobody arriving: no wait, no companions


def test_closing_finishes_queued_work_then_refuses(executor):
    model = Recorder()
    batcher = _batcher(model, executor)

    async def main():
        model.release.clear()
        pending = [asyncio.ensure_future(batcher.submit(_rows(i, 1), 1)) for i in range(3)]
        await asyncio.sleep(0.02)
        closing = asyncio.ensure_future(batcher.aclose())
        await asyncio.sleep(0.02)
        # Retiring (an Overloaded): the server retries it on the version now serving.
        with pytest.raises(Retiring, match="being unloaded"):
            await batcher.submit(_rows(9, 1), 1)
        model.release.set()
        await closing
        return await asyncio.gather(*pending)

    results = asyncio.run(main())
    assert [r.tolist() for r in results] == [[0.0], [2.0], [4.0]]


def test_policy_refuses_nonsense():
    with pytest.raises(ValueError, match="max_batch_size"):
        BatchPolicy(max_batch_size=0)
    with pytest.raises(ValueError, match="max_latency_ms"):
        BatchPolicy(max_latency_ms=-1)


def test_batching_can_differ_per_served_model():
    from typer.testing import CliRunner

    from modelyard.cli.main import app
    from modelyard.cli.serve import apply_batch_overrides
    from modelyard.serving.host import parse_model_arg

    base = BatchPolicy(max_batch_size=64, max_latency_ms=2)
    specs = [parse_model_arg(a, base) for a in ("churn=models:/churn@production", "fraud=/m")]
    churn, fraud = apply_batch_overrides(specs, ["churn=256:5", "fraud=8"])
    assert (churn.policy.max_batch_size, churn.policy.max_latency_ms) == (256, 5.0)
    assert (fraud.policy.max_batch_size, fraud.policy.max_latency_ms) == (8, 2.0)
    assert churn.follows and not fraud.follows

    result = CliRunner().invoke(app, ["serve", "churn=/m", "--batch", "other=8"])
    assert result.exit_code == 2 and "no served model is named 'other'" in result.output
    result = CliRunner().invoke(app, ["serve", "churn=/m", "--batch", "churn=many"])
    assert result.exit_code == 2 and "NAME=MAX_BATCH_SIZE" in result.output
