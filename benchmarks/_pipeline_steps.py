"""The trivial steps and pipelines that ``pipeline_overhead.py`` times.

A module of its own, so that spawned worker processes and Ray workers import the
steps by name (``_pipeline_steps:inc``): a step defined in the benchmark script
would live in ``__main__``, which a Ray worker cannot import. The benchmark puts
this folder on ``sys.path`` (and on ``PYTHONPATH`` before Ray starts).

- ``chain``: ``steps`` calls of ``inc`` in a row, each on the previous one's
  output (no parallelism: measures the per-step cost);
- ``wide``: ``steps`` independent ``leaf`` calls, then one ``join`` of them all;
- ``plain_chain`` / ``plain_wide``: the same functions called directly (the
  anchor), through ``Step.fn``, the undecorated function.
"""

from __future__ import annotations

from modelyard.pipelines import pipeline, step

__all__ = [
    "chain",
    "expected_chain",
    "expected_wide",
    "inc",
    "join",
    "leaf",
    "plain_chain",
    "plain_wide",
    "wide",
]


@step
def inc(x: int) -> int:
    return x + 1


@step
def leaf(n: int, i: int) -> int:
    return n + i


@step
def join(values: list[int]) -> int:
    return sum(values)


@pipeline
def chain(n: int = 0, steps: int = 20):
    x = n
    for _ in range(steps):
        x = inc(x)
    return x


@pipeline
def wide(n: int = 0, steps: int = 20):
    return join([leaf(n, i) for i in range(steps)])


def plain_chain(n: int, steps: int) -> int:
    f = inc.fn
    x = n
    for _ in range(steps):
        x = f(x)
    return x


def plain_wide(n: int, steps: int) -> int:
    f = leaf.fn
    return join.fn([f(n, i) for i in range(steps)])


def expected_chain(n: int, steps: int) -> int:
    """What ``chain`` returns (the benchmark checks every run against it)."""
    return n + steps


def expected_wide(n: int, steps: int) -> int:
    return steps * n + steps * (steps - 1) // 2
