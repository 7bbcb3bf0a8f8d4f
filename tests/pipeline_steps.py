"""Steps and pipelines the pipeline tests run (a module, so worker processes and
Ray import them by name). Side effects go to files named by environment variables,
so a test can count calls across processes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd

import modelyard as my
from modelyard.pipelines import Pipeline, pipeline, step


def _mark(what: str) -> None:
    log = os.environ.get("PIPELINE_TEST_CALLS")
    if log:
        with open(log, "a") as fh:
            fh.write(what + "\n")


@step
def load(n: int) -> pd.DataFrame:
    _mark("load")
    print(f"loading {n} rows")
    return pd.DataFrame({"x": range(n), "y": [i % 2 for i in range(n)]})


@step
def summarize(df: pd.DataFrame) -> dict:
    _mark("summarize")
    my.log_metric("rows", len(df))
    return {"rows": len(df), "mean": float(df.x.mean())}


@step
def scale(df: pd.DataFrame, factor: float = 2.0) -> pd.DataFrame:
    _mark("scale")
    return df.assign(x=df.x * factor)


@step
def total(df: pd.DataFrame) -> float:
    _mark("total")
    return float(df.x.sum())


@pipeline
def numbers(n: int = 10, factor: float = 2.0):
    df = load(n)
    return {"summary": summarize(df), "total": total(scale(df, factor=factor))}


@step
def flaky(df: pd.DataFrame) -> int:
    """Fails while the file named by PIPELINE_TEST_FAIL holds a positive count."""
    _mark("flaky")
    flag = Path(os.environ["PIPELINE_TEST_FAIL"])
    left = int(flag.read_text()) if flag.exists() else 0
    if left > 0:
        flag.write_text(str(left - 1))
        raise RuntimeError(f"flaky failure ({left} left)")
    return len(df)


@step(retries=2, retry_backoff=0.01)
def flaky_retried(df: pd.DataFrame) -> int:
    return flaky.fn(df)


@step
def after(count: int) -> int:
    _mark("after")
    return count + 1


@pipeline
def fragile(n: int = 5):
    return after(flaky(load(n)))


@pipeline
def sturdy(n: int = 5):
    return after(flaky_retried(load(n)))


@step(cache_ttl=0.2)
def short_lived(n: int) -> int:
    _mark("short_lived")
    return n


@step(cache_key=lambda n, noise: n)
def keyed(n: int, noise: str) -> int:
    _mark("keyed")
    return n


@pipeline
def caching(n: int = 1, noise: str = "a"):
    return short_lived(n), keyed(n, noise)


class Opaque:
    pass


@step
def opaque() -> Opaque:
    return Opaque()


@pipeline
def unsafe():
    return opaque()


@step
def whoami(tag: str) -> dict:
    time.sleep(0.5)
    return {"tag": tag, "pid": os.getpid()}


@step
def join(a: dict, b: dict) -> list:
    return [a["pid"], b["pid"]]


@pipeline
def branches():
    return join(whoami("a"), whoami("b"))


@step(resources={"num_cpus": 1})
def square(x: int) -> int:
    return x * x


@pipeline
def squares(k: int = 3):
    return [square(i) for i in range(k)]


@step
def needs_two(a: int, b: int) -> int:
    return a + b


@pipeline
def missing_input():
    return needs_two(1)


cyclic = Pipeline.from_steps("cyclic", {"a": (after, {"count": "b"}), "b": (after, {"count": "a"})})


def fit_and_score(params: dict, df: pd.DataFrame) -> dict:
    """A trial: the score peaks at C = 1; C = 0 fails."""
    if params["C"] == 0:
        raise ValueError("C must be positive")
    return {"score": -((params["C"] - 1.0) ** 2) + len(df), "C_seen": params["C"]}


@step
def tune(df: pd.DataFrame, mode: str = "grid", workers: int = 1) -> dict:
    from modelyard.pipelines import search

    space = {"C": [0, 0.1, 1.0, 3.0]} if mode == "grid" else {"C": (0.01, 2.0)}
    found = search(
        fit_and_score, space, data={"df": df}, mode=mode, n_trials=6, seed=3, workers=workers
    )
    return {"best": found.best_params, "value": found.best_value, "trials": len(found.trials)}


@pipeline
def tuning(mode: str = "grid", workers: int = 1):
    return tune(load(4), mode=mode, workers=workers)
