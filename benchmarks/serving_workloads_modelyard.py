"""modelyard side of the serving benchmark: train the model, log and register it
as ``bench`` version 1 for ``modelyard serve models:/bench/1``; one JSON line out.

    MODELYARD_HOME=/tmp/x python serving_workloads_modelyard.py save --data data.parquet --json

Mirrors ``serving_workloads_mlflow.py``: the same seeded LogisticRegression
trained on the same Parquet file (``--data``, columns ``f0``..``f19`` and ``y``,
written once by the parent), the same input example (its first 2 rows), so both
tools infer the same columns signature. Prints the registered model's URI and what
it predicts for the first ``--check`` rows (the parent compares the servers'
answers with these).
"""

from __future__ import annotations

import sys
import time

TOOL = "modelyard"
NAME = "bench"


# -- data and model (identical in both workload files) -----------------------------------


def _read(data: str):
    import pandas as pd

    df = pd.read_parquet(data)
    return df.drop(columns="y"), df["y"].to_numpy()


def _train(X, y):
    """The benchmark's model: seeded, so every process trains the same one."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000, random_state=0).fit(X, y)


# -- the tool's calls (the only part that differs from the modelyard file) ----------------


def _save(model, example, out: str | None) -> dict:
    """The model URI each path serves: one registered version for both (the server
    maps a single [n, 20] tensor onto the 20 signature columns)."""
    import modelyard as my

    with my.start_run(experiment="bench-serving"):
        info = my.log_model(model, "model", input_example=example)
    mv = my.register_model(info.model_uri, NAME)
    uri = f"models:/{mv.name}/{mv.version}"
    return {"model_uris": {"records": uri, "tensor": uri}, "logged_uri": info.model_uri}


# -- workload ------------------------------------------------------------------------------


def save(data: str, out: str | None, check: int) -> dict:
    X, y = _read(data)
    t = time.perf_counter()
    model = _train(X, y)
    train_s = time.perf_counter() - t
    t = time.perf_counter()
    where = _save(model, X.head(2), out)
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
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--data", required=True, help="the Parquet file (f0..f19, y)")
    parser.add_argument("--out", help="unused: the model goes into MODELYARD_HOME's registry")
    parser.add_argument("--check", type=int, default=8, help="predict the first N rows")
    a = parser.parse_args(argv)
    result = save(a.data, a.out, a.check) | {"tool": TOOL, "workload": a.workload}
    print(json.dumps(result) if a.json else result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
