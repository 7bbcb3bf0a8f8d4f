"""modelyard's side of ``drift_vs_evidently.py``: one drift report in a process of its
own, so that its peak memory is its own. Run with the dev venv's interpreter:

    .venv/bin/python benchmarks/_modelyard_drift_runner.py REF.parquet CUR.parquet \\
        --categorical c0,c1 --num-method ks --cat-method chi2 --out result.json
    # profiles: save both, then drift from the saved files alone
    ... _modelyard_drift_runner.py REF.parquet CUR.parquet --save-profiles DIR
    ... _modelyard_drift_runner.py DIR/reference.json DIR/current.json --from-profiles

Writes (``--out``) and prints (``--json``, last line) the JSON shape
``_evidently_runner.py`` writes: ``seconds`` (the timed work: reading the Parquet
files is part of ``monitor.drift`` here, so there is no separate load time),
``peak_rss_mb`` (this process's ru_maxrss) and, per column, the method, the score
(the p-value of a test, else the distance), the threshold and the verdict. Imports
come before the timer, as on Evidently's side.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from typing import Any

import _runner_cli


def _rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def _methods(args: argparse.Namespace) -> dict[str, str] | None:
    """None (each column's automatic choice) unless a method was forced."""
    forced = {"numerical": args.num_method, "categorical": args.cat_method}
    forced = {kind: m for kind, m in forced.items() if m}
    return forced or None


def _columns(report: Any) -> dict[str, dict[str, Any]]:
    out = {}
    for c in report.columns:
        score = c.score  # the p-value of a test, the distance of a distance
        out[c.name] = {
            "kind": c.kind,
            "method": c.method,
            "score": None if score is None else float(score),
            "statistic": None if c.statistic is None else float(c.statistic),
            "p_value": None if c.p_value is None else float(c.p_value),
            "threshold": None if c.threshold is None else float(c.threshold),
            "drifted": bool(c.drifted),
        }
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    import modelyard
    from modelyard import monitor

    categorical = [c for c in args.categorical.split(",") if c] if args.categorical else []
    result: dict[str, Any] = {"tool": "modelyard", "version": modelyard.__version__}
    if args.save_profiles:
        folder = Path(args.save_profiles)
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        ref_profile = monitor.profile(args.reference, categorical=categorical)
        mid = time.perf_counter()
        cur_profile = ref_profile.profile(args.current)
        end = time.perf_counter()
        ref_profile.save(folder / "reference.json")
        cur_profile.save(folder / "current.json")
        saved = time.perf_counter()
        sizes = {p.name: p.stat().st_size for p in folder.iterdir()}
        return result | {
            "seconds": end - start,
            "reference_seconds": mid - start,
            "current_seconds": end - mid,
            "save_seconds": saved - end,
            "profile_bytes": sizes,
            "peak_rss_mb": _rss_mb(resource.RUSAGE_SELF),
            "children_peak_rss_mb": _rss_mb(resource.RUSAGE_CHILDREN),
        }
    start = time.perf_counter()
    if args.from_profiles:
        reference = monitor.DatasetProfile.load(args.reference)
        current = monitor.DatasetProfile.load(args.current)
        loaded = time.perf_counter()
        report = monitor.drift(reference, current, method=_methods(args))
    else:
        loaded = start
        report = monitor.drift(
            args.reference, args.current, categorical=categorical, method=_methods(args)
        )
    end = time.perf_counter()
    return result | {
        "seconds": end - start,
        "load_seconds": (loaded - start) if args.from_profiles else None,
        "compute_seconds": end - loaded,
        "peak_rss_mb": _rss_mb(resource.RUSAGE_SELF),
        # a process pool's workers, if the implementation uses one (the largest of them)
        "children_peak_rss_mb": _rss_mb(resource.RUSAGE_CHILDREN),
        "share_drifted": float(report.share_drifted),
        "dataset_drift": bool(report.dataset_drift),
        "columns": _columns(report),
    }


def main(argv: list[str] | None = None) -> int:
    parser = _runner_cli.parser(__doc__.splitlines()[0])
    parser.add_argument("--save-profiles", metavar="DIR", help="profile both sides and save")
    parser.add_argument("--from-profiles", action="store_true", help="inputs are saved profiles")
    args = parser.parse_args(argv)
    return _runner_cli.emit(run(args), args)


if __name__ == "__main__":
    sys.exit(main())
