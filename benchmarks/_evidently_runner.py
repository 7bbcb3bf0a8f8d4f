"""Evidently's side of ``drift_vs_evidently.py``: one ``DataDriftPreset`` report in a
process of its own. Evidently 0.7 does not import under pandas 3, so this runs under
its own interpreter (``make bench-evidently-venv``):

    .venv-evidently/bin/python benchmarks/_evidently_runner.py REF.parquet CUR.parquet \\
        --categorical c0,c1 --num-method ks --cat-method chisquare --out result.json

What an Evidently user writes: ``pd.read_parquet`` both files, wrap them in
``Dataset.from_pandas`` with an explicit ``DataDefinition`` (the ``--categorical``
columns categorical, every other column numerical, as on modelyard's side), then
``Report([DataDriftPreset(...)]).run(current, reference)``. ``include_tests=True``
so that each ``ValueDrift`` carries Evidently's own verdict (its drift test FAILs
when the column drifted) rather than one re-derived here from score and threshold.

Writes (``--out``) and prints (``--json``, last line): ``seconds`` = ``load_seconds``
(read + wrap) + ``compute_seconds`` (``Report.run``), ``import_seconds`` (before the
timer), ``peak_rss_mb`` (ru_maxrss), and per column the method, the score (p-value
or distance), the threshold and the verdict.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from typing import Any

import _runner_cli


def _method_names() -> dict[str, str]:
    """Evidently reports a column's method by display name ("K-S p_value"); map it back
    to the name the options take ("ks")."""
    try:
        from evidently.legacy.calculations.stattests.registry import _registered_stat_tests
    except ImportError:
        return {}
    return {
        test.display_name: name
        for name, by_type in _registered_stat_tests.items()
        for test in by_type.values()
    }


def _columns(snapshot: Any) -> dict[str, dict[str, Any]]:
    """Each ValueDrift's column, method, threshold, score and test verdict."""
    names = _method_names()
    out = {}
    for result in snapshot.metric_results.values():
        params = result.metric_value_location.metric.params
        if not params.get("type", "").endswith(":ValueDrift"):
            continue
        statuses = [str(getattr(t.status, "value", t.status)) for t in result.tests]
        if not statuses:
            raise RuntimeError(f"no drift test for column {params['column']!r}")
        method = params.get("method")
        out[params["column"]] = {
            "method": names.get(method, method),
            "score": float(result.value),
            "threshold": params.get("threshold"),
            "drifted": statuses[0].upper() == "FAIL",
        }
    return out


def _dataset_drift(snapshot: Any) -> tuple[float | None, bool | None]:
    for result in snapshot.metric_results.values():
        params = result.metric_value_location.metric.params
        if params.get("type", "").endswith(":DriftedColumnsCount"):
            share = float(result.share.value)
            return share, share >= params.get("drift_share", 0.5)
    return None, None


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    import evidently
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    import_s = time.perf_counter() - started
    categorical = [c for c in args.categorical.split(",") if c]
    start = time.perf_counter()
    reference = pd.read_parquet(args.reference)
    current = pd.read_parquet(args.current)
    numerical = [c for c in reference.columns if c not in categorical]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    ref_ds = Dataset.from_pandas(reference, data_definition=definition)
    cur_ds = Dataset.from_pandas(current, data_definition=definition)
    loaded = time.perf_counter()
    preset = DataDriftPreset(num_method=args.num_method, cat_method=args.cat_method)
    snapshot = Report([preset], include_tests=True).run(cur_ds, ref_ds)
    end = time.perf_counter()
    share, drift = _dataset_drift(snapshot)
    return {
        "tool": "evidently",
        "version": evidently.__version__,
        "pandas": pd.__version__,
        "import_seconds": import_s,
        "seconds": end - start,
        "load_seconds": loaded - start,
        "compute_seconds": end - loaded,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "share_drifted": share,
        "dataset_drift": drift,
        "columns": _columns(snapshot),
    }


def main(argv: list[str] | None = None) -> int:
    args = _runner_cli.parser(__doc__.splitlines()[0]).parse_args(argv)
    return _runner_cli.emit(run(args), args)


if __name__ == "__main__":
    sys.exit(main())
