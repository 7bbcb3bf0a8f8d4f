"""The worker of the serving benchmark: train the model and hand it to one tool,
in that tool's own interpreter; one JSON line out.

    python serving_workloads.py save --tool mlflow --data data.parquet --out model --json
    MODELYARD_HOME=/tmp/x python serving_workloads.py save --tool modelyard \
        --data data.parquet --json

Both tools get the same seeded LogisticRegression trained on the same Parquet file
(``--data``, columns ``f0``..``f19`` and ``y``, written once by the parent) and the
same input example (its first 2 rows), so both infer the same columns signature.
Prints the model URI(s) each path serves and what the model predicts for the first
``--check`` rows (the parent compares the servers' answers with these). Only the
chosen tool is imported: the MLflow venv has no modelyard and ours no full mlflow.
"""

from __future__ import annotations

import sys
import time

NAME = "bench"  # modelyard: registered as models:/bench/1


def _read(data: str):
    import pandas as pd

    df = pd.read_parquet(data)
    return df.drop(columns="y"), df["y"].to_numpy()


def _train(X, y):
    """The benchmark's model: seeded, so every process trains the same one."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000, random_state=0).fit(X, y)


def _save_mlflow(model, example, out: str) -> dict:
    """The DataFrame example gives a columns signature, with which MLflow 3.17 rejects
    ``{"inputs": [[...]]}`` ("Model is missing inputs ['f0', ...]"): the tensor path
    serves the same fitted model saved once more with the example as an array (a
    tensor signature, float64 (-1, 20))."""
    import mlflow.sklearn

    records, tensor = f"{out}/columns", f"{out}/tensor"
    mlflow.sklearn.save_model(model, records, input_example=example)
    mlflow.sklearn.save_model(model, tensor, input_example=example.to_numpy())
    return {"model_uris": {"records": records, "tensor": tensor}}


def _save_modelyard(model, example, out: str | None) -> dict:
    """One registered version for both paths (the server maps a single [n, 20]
    tensor onto the 20 signature columns)."""
    import modelyard as my

    with my.start_run(experiment="bench-serving"):
        info = my.log_model(model, "model", input_example=example)
    mv = my.register_model(info.model_uri, NAME)
    uri = f"models:/{mv.name}/{mv.version}"
    return {"model_uris": {"records": uri, "tensor": uri}, "logged_uri": info.model_uri}


SAVERS = {"mlflow": _save_mlflow, "modelyard": _save_modelyard}


def save(tool: str, data: str, out: str | None, check: int) -> dict:
    X, y = _read(data)
    t = time.perf_counter()
    model = _train(X, y)
    train_s = time.perf_counter() - t
    t = time.perf_counter()
    where = SAVERS[tool](model, X.head(2), out)
    return where | {
        "train_s": train_s,
        "save_s": time.perf_counter() - t,
        "expected": [int(v) for v in model.predict(X.head(check))],
        "classes": [int(c) for c in model.classes_],
    }


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=["save"])
    parser.add_argument("--tool", choices=sorted(SAVERS), required=True)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--data", required=True, help="the Parquet file (f0..f19, y)")
    parser.add_argument("--out", help="mlflow: the folder to save the models into")
    parser.add_argument("--check", type=int, default=8, help="predict the first N rows")
    a = parser.parse_args(argv)
    if a.tool == "mlflow" and not a.out:
        parser.error("--tool mlflow needs --out")
    result = save(a.tool, a.data, a.out, a.check) | {"tool": a.tool, "workload": a.workload}
    print(json.dumps(result) if a.json else result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
