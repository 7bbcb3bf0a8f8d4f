"""Batch prediction, modelyard vs MLflow, on the same Parquet data and the same model.

    .venv/bin/python benchmarks/batch_vs_mlflow.py                   # 10M rows × 20 features
    .venv/bin/python benchmarks/batch_vs_mlflow.py --rows 1000000    # or --quick (1M rows)

The data (an int64 ``id`` and 20 float64 features, seeded, row groups of 1M rows) is
written once with pyarrow, chunk by chunk, into a temporary folder (``--data-dir``
keeps it for the next run). Each tool trains the same scikit-learn
LogisticRegression on the same 100,000 labelled rows in an unmeasured setup
process and saves it in its own format; then a fresh process per tool predicts
every row and writes ``id`` + ``prediction`` to Parquet:

- modelyard: ``predict_batch(model, data, output)`` (streams record batches of
  ``--batch-size`` rows, part files, merge) in this interpreter's venv;
- MLflow (``.venv-bench``): what an MLflow user writes,
  ``mlflow.pyfunc.load_model`` + ``pd.read_parquet`` + ``predict`` + ``to_parquet``.

Each process's own peak RSS comes from ``wait4`` (its ru_maxrss); seconds are the
work inside the process (model load, read, predict, write; the imports of the
tool and of scikit-learn come before the timer).
Both outputs are compared row by row at the end. Prints one table with the
ratios (higher is better for modelyard) and writes
``benchmarks/results/batch_vs_mlflow.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _harness as h  # noqa: E402

REPO = HERE.parent
RESULTS = HERE / "results" / "batch_vs_mlflow.json"
FEATURES = 20
TRAIN_ROWS = 100_000
ROW_GROUP = 1_000_000
GOAL_RSS_MB = 1024
WORKLOADS = ("setup-modelyard", "setup-mlflow", "predict-modelyard", "predict-mlflow")


# -- workloads (each in its own process, under its tool's interpreter) ---------------------
def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _features() -> list[str]:
    return [f"f{i}" for i in range(FEATURES)]


def _train(train: str):
    """The benchmark's model: LogisticRegression on the same labelled rows, both sides."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    df = pd.read_parquet(train)
    X = df[_features()]
    return LogisticRegression(max_iter=1000).fit(X, df["y"]), X.head(5)


def setup_modelyard(args: argparse.Namespace) -> dict[str, Any]:
    import modelyard as my

    clf, example = _train(args.train)
    my.models.save(clf, args.out, input_example=example)
    return {"coef": clf.coef_.ravel().tolist()}


def setup_mlflow(args: argparse.Namespace) -> dict[str, Any]:
    import mlflow.sklearn

    clf, example = _train(args.train)
    mlflow.sklearn.save_model(clf, args.out, input_example=example)
    return {"coef": clf.coef_.ravel().tolist()}


def predict_modelyard(args: argparse.Namespace) -> dict[str, Any]:
    import sklearn.linear_model  # noqa: F401 - the framework's import is not timed, either side

    from modelyard.serving.batch import predict_batch

    start = time.perf_counter()
    report = predict_batch(args.model, args.data, args.output, batch_size=args.batch_size)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": report.rows, "self_peak_rss_mb": _peak_rss_mb()}


def predict_mlflow(args: argparse.Namespace) -> dict[str, Any]:
    import mlflow.pyfunc
    import pandas as pd
    import sklearn.linear_model  # noqa: F401 - the framework's import is not timed, either side

    start = time.perf_counter()
    model = mlflow.pyfunc.load_model(args.model)
    df = pd.read_parquet(args.data)
    preds = model.predict(df[_features()])
    pd.DataFrame({"id": df["id"], "prediction": preds}).to_parquet(args.output, index=False)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": len(df), "self_peak_rss_mb": _peak_rss_mb()}


def workload_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=WORKLOADS)
    parser.add_argument("--json", action="store_true")
    for name in ("--train", "--out", "--model", "--data", "--output"):
        parser.add_argument(name)
    parser.add_argument("--batch-size", type=int, default=100_000)
    args = parser.parse_args(argv)
    run = {
        "setup-modelyard": setup_modelyard,
        "setup-mlflow": setup_mlflow,
        "predict-modelyard": predict_modelyard,
        "predict-mlflow": predict_mlflow,
    }[args.workload]
    print(json.dumps(run(args)), flush=True)
    return 0


# -- data ------------------------------------------------------------------------------------
def write_data(folder: Path, rows: int) -> tuple[Path, Path]:
    """``train.parquet`` (labelled) and ``data.parquet`` (``rows`` rows to score), seeded;
    reused when ``folder`` already holds them at this size."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    train, data = folder / "train.parquet", folder / "data.parquet"
    if data.exists() and train.exists() and pq.read_metadata(data).num_rows == rows:
        return train, data
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    weights = rng.standard_normal(FEATURES)
    names = _features()
    X = rng.standard_normal((TRAIN_ROWS, FEATURES))
    y = (X @ weights + rng.standard_normal(TRAIN_ROWS) > 0).astype("int64")
    pq.write_table(pa.table({**{n: X[:, i] for i, n in enumerate(names)}, "y": y}), train)
    tmp = folder / ".data.parquet.tmp"
    schema = pa.schema([("id", pa.int64()), *((n, pa.float64()) for n in names)])
    with pq.ParquetWriter(tmp, schema) as writer:
        for start in range(0, rows, ROW_GROUP):
            n = min(ROW_GROUP, rows - start)
            block = rng.standard_normal((n, FEATURES))
            columns = [pa.array(np.arange(start, start + n, dtype="int64"))]
            columns += [pa.array(block[:, i]) for i in range(FEATURES)]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema), ROW_GROUP)
    os.replace(tmp, data)
    return train, data


def compare(ours: Path, theirs: Path) -> dict[str, Any]:
    """Row-by-row agreement of the two outputs (ids and predictions)."""
    import numpy as np
    import pyarrow.parquet as pq

    a = pq.read_table(ours, columns=["id", "prediction"])
    b = pq.read_table(theirs, columns=["id", "prediction"])
    if a.num_rows != b.num_rows:
        return {"same_ids": False, "agree": 0.0}
    same_ids = bool(np.array_equal(a["id"].to_numpy(), b["id"].to_numpy()))
    agree = float((a["prediction"].to_numpy() == b["prediction"].to_numpy()).mean())
    return {"same_ids": same_ids, "agree": agree}


# -- the comparison ------------------------------------------------------------------------
def run_tool(tool: str, python: str, paths: dict[str, Path], batch_size: int) -> dict[str, Any]:
    env = {"PYTHONPATH": str(REPO / "src")} if tool == "modelyard" else {}
    out = paths["dir"] / f"preds-{tool}.parquet"
    with h.temp_home(f"batch-{tool}") as home:
        env = env | {"MODELYARD_HOME": str(home / ".modelyard")}
        model = home / "model"
        setup = h.run_workload(
            python, __file__, f"setup-{tool}", env=env, cwd=home,
            args=["--train", str(paths["train"]), "--out", str(model)],
        )  # fmt: skip

        def once() -> h.WorkloadResult:
            args = ["--model", str(model), "--data", str(paths["data"]), "--output", str(out)]
            args += ["--batch-size", str(batch_size)]
            return h.run_workload(python, __file__, f"predict-{tool}", env=env, cwd=home, args=args)

        best, runs = h.median_of(once, "seconds")
    return best.data | {
        "wall_s": best.wall_s,
        "peak_rss_mb": best.peak_rss_mb,
        "all_seconds": [r.data["seconds"] for r in runs],
        "all_peak_rss_mb": [r.peak_rss_mb for r in runs],
        "coef": setup.data["coef"],
        "output": str(out),
    }


def _rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in WORKLOADS:
        return workload_main(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    h.add_common_args(parser, ["modelyard", "mlflow"], RESULTS)
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows to predict")
    parser.add_argument("--batch-size", type=int, default=100_000, help="modelyard's batch")
    parser.add_argument("--data-dir", type=Path, help="keep the generated data here")
    args = parser.parse_args(argv)
    rows = 1_000_000 if args.quick and args.rows == 10_000_000 else args.rows
    theirs_python = h.anchor_python(args)
    tools = [t for t in ("modelyard", "mlflow") if not args.only or t in args.only]
    if theirs_python is None and "mlflow" in tools:
        tools.remove("mlflow")
    started, load_before = time.perf_counter(), os.getloadavg()
    results: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    with h.temp_home("batch-data") as tmp:
        folder = args.data_dir or tmp
        with h.progress(1 + 2 * len(tools)) as step:
            step(f"writing {rows:,} rows × {FEATURES} features")
            train, data = write_data(folder, rows)
            paths = {"train": train, "data": data, "dir": tmp}
            for tool in tools:
                step(f"{tool}: train + save, then predict")
                python = sys.executable if tool == "modelyard" else theirs_python
                assert python is not None
                try:
                    results[tool] = run_tool(tool, python, paths, args.batch_size)
                except h.BenchError as exc:
                    errors.append(f"{tool}: {exc}")
            step("comparing the outputs")
            check = None
            if len(results) == 2:
                check = compare(
                    Path(results["modelyard"]["output"]), Path(results["mlflow"]["output"])
                )
    elapsed = time.perf_counter() - started

    table_rows = []
    for tool, r in results.items():
        table_rows.append([
            tool, f"{r['rows']:,}", f"{r['seconds']:.2f} s", _rate(r["rows"], r["seconds"]),
            f"{r['peak_rss_mb']:,.0f} MB", "",
        ])  # fmt: skip
    ours, anchor = results.get("modelyard"), results.get("mlflow")
    if ours and anchor:
        speed = anchor["seconds"] / ours["seconds"]
        memory = anchor["peak_rss_mb"] / ours["peak_rss_mb"]
        table_rows.append([
            "ratio (MLflow ÷ modelyard)", "", f"{speed:.1f}× faster", f"{speed:.1f}×",
            f"{memory:.1f}× less", "",
        ])  # fmt: skip
    if ours:
        met = ours["peak_rss_mb"] < GOAL_RSS_MB
        table_rows[0][-1] = f"peak < 1 GB: {'yes' if met else 'NO'}"
    h.render_table(
        f"Batch prediction of {rows:,} rows × {FEATURES} float features, LogisticRegression: "
        f"modelyard vs MLflow {h.mlflow_version(theirs_python)}",
        ["tool", "rows", "seconds", "rows/s", "peak RSS", "goal"],
        table_rows,
    )
    agree = "" if check is None else (
        f" · outputs: same ids {'yes' if check['same_ids'] else 'NO'}, "
        f"predictions agree on {check['agree']:.4%} of rows"
    )  # fmt: skip
    print(
        f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
        f"modelyard batch {args.batch_size:,} rows · took {elapsed / 60:.1f} min · load "
        f"average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after{agree}"
    )
    h.write_results(
        args.out,
        {
            "rows": rows,
            "features": FEATURES,
            "batch_size": args.batch_size,
            "mlflow": h.mlflow_version(theirs_python),
            "elapsed_s": elapsed,
        },
        errors,
        results=results,
        outputs=check,
    )
    print(f"results: {args.out}")
    bad = check is not None and (not check["same_ids"] or check["agree"] < 0.999)
    return 1 if errors or bad else 0


if __name__ == "__main__":
    sys.exit(main())
