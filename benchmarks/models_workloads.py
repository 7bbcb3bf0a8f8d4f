"""The worker of the model benchmark: one workload per call, one JSON line out, in
the interpreter of the tool it measures.

    MODELYARD_HOME=/tmp/x python models_workloads.py save --tool modelyard \
        --data data.parquet --json
    MLFLOW_TRACKING_URI=http://127.0.0.1:5001 \
        python models_workloads.py registry --tool mlflow --data data.parquet --json

Both tools run the same bodies: the same scikit-learn model trained on the same
Parquet file (``--data``, written once by the parent), the same input example (its
first 5 rows), the same timers; only the calls in ``Modelyard`` / ``Mlflow`` differ,
and only the chosen tool is imported (the MLflow venv has no modelyard, ours no full
mlflow). Training, reading the data and verification are outside every timer; the
tool and its model API are imported before the timers start (the tracking benchmark
measures imports). ``--profile FILE`` runs the workload under cProfile and writes
the stats there.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

# A new experiment and model name per process: repeats against one server must not
# see each other's runs or versions.
TAG = f"{os.getpid()}-{time.time_ns()}"


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- data and model ----------------------------------------------------------------------


def _read(data: str):
    import pandas as pd

    df = pd.read_parquet(data)
    return df.drop(columns="y"), df["y"].to_numpy()


def _train(kind: str, X, y):
    """The benchmark's model: seeded, so every process trains the same one."""
    if kind == "forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=-1).fit(X, y)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)


def _same(a, b) -> bool:
    import numpy as np

    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    return a.shape == b.shape and bool((a == b).all())


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


# -- the tool's calls (the only part that differs between the tools) -----------------------


class Modelyard:
    name = "modelyard"

    @staticmethod
    def import_api():
        import modelyard as my

        # The package root is lazy; load the API used here before the timers, as
        # `import mlflow` (+ mlflow.sklearn, mlflow.pyfunc) does on the other side.
        for api in ("models", "load_model", "log_model", "register_model", "set_alias"):
            getattr(my, api)
        return my

    @staticmethod
    def save(model, path: Path, example) -> None:
        import modelyard as my

        my.models.save(model, path, input_example=example)

    @staticmethod
    def load(uri: str):
        import modelyard as my

        return my.load_model(uri)

    @staticmethod
    def raw(loaded):
        return loaded.raw

    @staticmethod
    def cycle(model, example, name: str, run_name: str) -> dict:
        my = Modelyard.import_api()
        my.start_run(experiment=f"bench-models-{TAG}", run_name=run_name)
        return _timed_cycle(
            lambda: my.log_model(model, name="model", input_example=example),
            my.end_run,
            lambda uri: my.register_model(uri, name),
            lambda version: my.set_alias(name, "champion", version),
        )

    @staticmethod
    def alias_version(name: str) -> str:
        import modelyard as my

        return str(my.model_registry().resolve(f"models:/{name}@champion").version)


class Mlflow:
    name = "mlflow"

    @staticmethod
    def import_api():
        import mlflow
        import mlflow.pyfunc
        import mlflow.sklearn

        return mlflow

    @staticmethod
    def save(model, path: Path, example) -> None:
        import mlflow.sklearn

        mlflow.sklearn.save_model(model, str(path), input_example=example)

    @staticmethod
    def load(uri: str):
        import mlflow.pyfunc

        return mlflow.pyfunc.load_model(uri)

    @staticmethod
    def raw(loaded):
        return loaded.get_raw_model()

    @staticmethod
    def cycle(model, example, name: str, run_name: str) -> dict:
        mlflow = Mlflow.import_api()
        from mlflow import MlflowClient

        mlflow.set_experiment(f"bench-models-{TAG}")
        client = MlflowClient()
        mlflow.start_run(run_name=run_name)
        return _timed_cycle(
            lambda: mlflow.sklearn.log_model(model, name="model", input_example=example),
            mlflow.end_run,
            lambda uri: mlflow.register_model(uri, name),
            lambda version: client.set_registered_model_alias(name, "champion", version),
        )

    @staticmethod
    def alias_version(name: str) -> str:
        from mlflow import MlflowClient

        return str(MlflowClient().get_model_version_by_alias(name, "champion").version)


TOOLS = {t.name: t for t in (Modelyard, Mlflow)}
TOOL: type = Modelyard  # main() sets it from --tool


def _import():
    return TOOL.import_api()


def _save(model, path: Path, example) -> None:
    TOOL.save(model, path, example)


def _load(uri: str):
    return TOOL.load(uri)


def _raw(loaded):
    return TOOL.raw(loaded)


# -- workloads -------------------------------------------------------------------------------


def save(data: str, kind: str, warm: int, out: str | None) -> dict:
    """Save the trained model: the first save in the process (cold), then ``warm`` more
    (each to a new folder); with ``out``, only one save, to ``out`` (setup for load)."""
    X, y = _read(data)
    model = _train(kind, X, y)
    example = X.head(5)
    _import()
    if out:
        _save(model, Path(out), example)
        return {"path": out, "size_mb": _dir_mb(Path(out))}
    base = Path.cwd()
    times = []
    for i in range(warm + 1):
        t = time.perf_counter()
        _save(model, base / f"model-{i}", example)
        times.append(time.perf_counter() - t)
    return {
        "save_s": times[0],
        "save_warm_s": statistics.median(times[1:]) if warm else None,
        "save_all_s": times,
        "size_mb": _dir_mb(base / "model-0"),
        "files": sorted(p.name for p in (base / "model-0").iterdir()),
    }


def load(data: str, kind: str, path: str, warm: int) -> dict:
    """Load a saved package in a fresh process (cold: scikit-learn is not imported yet),
    then ``warm`` more times; verify against a freshly trained model afterwards."""
    X, y = _read(data)
    _import()
    sklearn_before = "sklearn" in sys.modules  # the tool's import may pull it in
    times = []
    loaded = None
    for _ in range(warm + 1):
        t = time.perf_counter()
        loaded = _load(path)
        times.append(time.perf_counter() - t)
    model = _train(kind, X, y)
    expected = model.predict(X)
    ok = _same(loaded.predict(X), expected) and _same(_raw(loaded).predict(X), expected)
    return {
        "load_s": times[0],
        "load_warm_s": statistics.median(times[1:]) if warm else None,
        "load_all_s": times,
        "sklearn_imported_before_timer": sklearn_before,
        "verified": ok,
    }


def _loaded_pair(data: str, kind: str):
    X, y = _read(data)
    model = _train(kind, X, y)
    _import()
    path = Path.cwd() / "model"
    _save(model, path, X.head(5))
    loaded = _load(str(path))
    return X, model, loaded, _raw(loaded)


def predict_row(data: str, kind: str, iters: int, warmup: int) -> dict:
    """One-row predictions: ``raw.predict(row)`` against ``loaded.predict(row)`` on the
    same rows, call by call (which one goes first alternates), after a warm-up.

    The overhead is the median of the per-row differences (wrapped − raw, timed back
    to back), which a busy machine disturbs far less than the difference of the two
    medians (also reported, ``overhead_medians_us``)."""
    X, model, loaded, raw = _loaded_pair(data, kind)
    rows = [X.iloc[[i]] for i in range(iters)]  # built outside the timer
    for r in rows[:warmup]:
        raw.predict(r)
        loaded.predict(r)
    clock = time.perf_counter
    t_raw, t_wrap, p_raw, p_wrap = [], [], [], []
    for i, r in enumerate(rows):
        if i % 2:
            t0 = clock()
            a = raw.predict(r)
            t1 = clock()
            b = loaded.predict(r)
            t2 = clock()
            t_raw.append(t1 - t0)
            t_wrap.append(t2 - t1)
        else:
            t0 = clock()
            b = loaded.predict(r)
            t1 = clock()
            a = raw.predict(r)
            t2 = clock()
            t_wrap.append(t1 - t0)
            t_raw.append(t2 - t1)
        p_raw.append(a)
        p_wrap.append(b)
    import numpy as np

    expected = model.predict(X.iloc[:iters])
    raw_us = statistics.median(t_raw) * 1e6
    wrap_us = statistics.median(t_wrap) * 1e6
    paired_us = statistics.median(w - r for w, r in zip(t_wrap, t_raw, strict=True)) * 1e6
    return {
        "iters": iters,
        "raw_us": raw_us,
        "wrapped_us": wrap_us,
        "overhead_us": paired_us,
        "overhead_medians_us": wrap_us - raw_us,
        "raw_min_us": min(t_raw) * 1e6,
        "wrapped_min_us": min(t_wrap) * 1e6,
        "raw_mean_us": statistics.mean(t_raw) * 1e6,
        "wrapped_mean_us": statistics.mean(t_wrap) * 1e6,
        "raw_p90_us": statistics.quantiles(t_raw, n=10)[-1] * 1e6,
        "wrapped_p90_us": statistics.quantiles(t_wrap, n=10)[-1] * 1e6,
        "verified": _same(np.concatenate([np.asarray(p).ravel() for p in p_wrap]), expected)
        and _same(np.concatenate([np.asarray(p).ravel() for p in p_raw]), expected),
    }


def predict_batch(data: str, kind: str, repeats: int) -> dict:
    """``raw.predict(X)`` against ``loaded.predict(X)`` on the whole data set (100k rows),
    alternating, ``repeats`` times each after one warm-up call of each. The overhead is
    the median of the paired relative differences (the difference of the medians is
    reported beside it, ``overhead_medians_pct``)."""
    X, model, loaded, raw = _loaded_pair(data, kind)
    raw.predict(X)
    loaded.predict(X)
    clock = time.perf_counter
    t_raw, t_wrap = [], []
    a = b = None
    for i in range(repeats):
        if i % 2:
            t0 = clock()
            a = raw.predict(X)
            t1 = clock()
            b = loaded.predict(X)
            t2 = clock()
            t_raw.append(t1 - t0)
            t_wrap.append(t2 - t1)
        else:
            t0 = clock()
            b = loaded.predict(X)
            t1 = clock()
            a = raw.predict(X)
            t2 = clock()
            t_wrap.append(t1 - t0)
            t_raw.append(t2 - t1)
    raw_s = statistics.median(t_raw)
    wrap_s = statistics.median(t_wrap)
    expected = model.predict(X)
    return {
        "rows": len(X),
        "repeats": repeats,
        "raw_s": raw_s,
        "wrapped_s": wrap_s,
        "overhead_s": wrap_s - raw_s,
        "overhead_pct": statistics.median(
            (w - r) / r * 100 for w, r in zip(t_wrap, t_raw, strict=True)
        ),
        "overhead_medians_pct": (wrap_s - raw_s) / raw_s * 100,
        "raw_min_s": min(t_raw),
        "wrapped_min_s": min(t_wrap),
        "raw_all_s": t_raw,
        "wrapped_all_s": t_wrap,
        "verified": _same(a, expected) and _same(b, expected),
    }


def _verify_alias(name: str, X, model) -> tuple[bool, str | None]:
    """The model loaded through ``models:/<name>@champion`` predicts what ``model`` does."""
    sample = X.iloc[:1000]
    try:
        ok = _same(_load(f"models:/{name}@champion").predict(sample), model.predict(sample))
        return ok, None
    except Exception as exc:  # noqa: BLE001 - reported, and the row is marked unverified
        return False, f"{type(exc).__name__}: {exc}"


def registry(data: str, kind: str, again: bool) -> dict:
    """Against the server in ``MODELYARD_TRACKING_URI`` (or ``MLFLOW_TRACKING_URI``):
    ``log_model`` in a run (timed with the run's end, so nothing deferred escapes the
    timer), ``register_model``, set the ``champion`` alias. The run is started before
    the timer. Verified after: the alias resolves to the new version, and the model
    loaded through it predicts what the trained model does. With ``again``, a second
    cycle in the same process (version 2 takes the alias) is timed too: the
    ``warm_*`` fields."""
    X, y = _read(data)
    model = _train(kind, X, y)
    example = X.head(5)
    name = f"bench-{TAG}"
    result = {}
    for prefix in ("", "warm_") if again else ("",):
        cycle = TOOL.cycle(model, example, name, prefix or "cold")
        got = TOOL.alias_version(name)
        ok, error = _verify_alias(name, X, model)
        result |= {prefix + k: v for k, v in cycle.items()} | {
            prefix + "alias_version": got,
            prefix + "alias_load_error": error,
            prefix + "verified": got == cycle["version"] and ok,
        }
    result["verified"] = all(v for k, v in result.items() if k.endswith("verified"))
    return result


def _timed_cycle(log, end, register, alias) -> dict:
    clock = time.perf_counter
    t0 = clock()
    info = log()
    t1 = clock()
    end()
    t2 = clock()
    mv = register(info.model_uri)
    t3 = clock()
    alias(mv.version)
    t4 = clock()
    return {
        "model_uri": info.model_uri,
        "version": str(mv.version),
        "log_model_s": t2 - t0,
        "log_model_call_s": t1 - t0,
        "end_run_s": t2 - t1,
        "register_s": t3 - t2,
        "alias_s": t4 - t3,
        "total_s": t4 - t0,
    }


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "workload", choices=["save", "load", "predict_row", "predict_batch", "registry"]
    )
    parser.add_argument("--tool", choices=sorted(TOOLS), required=True)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--data", required=True, help="the Parquet file (features f*, target y)")
    parser.add_argument("--model", default="logreg", choices=["logreg", "forest"])
    parser.add_argument("--warm", type=int, default=4, help="save/load: warm repeats")
    parser.add_argument("--out", help="save: one save to this folder (setup for load)")
    parser.add_argument("--path", help="load: the saved package")
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument(
        "--again", action="store_true", help="registry: time a second cycle in the same process"
    )
    parser.add_argument("--profile", help="write cProfile stats of the workload to this file")
    a = parser.parse_args(argv)
    global TOOL
    TOOL = TOOLS[a.tool]
    if a.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    if a.workload == "save":
        result = save(a.data, a.model, a.warm, a.out)
    elif a.workload == "load":
        result = load(a.data, a.model, a.path, a.warm)
    elif a.workload == "predict_row":
        result = predict_row(a.data, a.model, a.iters, a.warmup)
    elif a.workload == "predict_batch":
        result = predict_batch(a.data, a.model, a.repeats)
    else:
        result = registry(a.data, a.model, a.again)
    if a.profile:
        profiler.disable()
        profiler.dump_stats(a.profile)
    result |= {
        "tool": TOOL.name,
        "workload": a.workload,
        "model": a.model,
        "peak_rss_mb": _peak_rss_mb(),
    }
    print(json.dumps(result) if a.json else result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
