"""``modelyard demo --quickstart`` (the tracking quickstart): a fresh home, no download, exit 0, and
a store that then holds the quickstart runs with per-step metrics, params, tags and
artifacts — read back through the SDK, not from the demo's own output."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from rich.console import Console

import modelyard as my
from modelyard.demo.quickstart import EXPERIMENT, run_quickstart

FAMILIES = {
    "logreg-alpha-1e-4": "linear",
    "logreg-alpha-1e-2": "linear",
    "random-forest": "bagging",
    "gradient-boosting": "boosting",
}


def test_demo_tracks_the_quickstart_runs_in_a_fresh_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = subprocess.run(
        [sys.executable, "-m", "modelyard.cli.main", "demo", "--quickstart"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MODELYARD_HOME": str(home)},
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    out = proc.stdout
    assert "Traceback" not in proc.stderr
    assert "━" not in out  # no progress bar when stdout is not a terminal
    assert (home / "modelyard.db").is_file()

    my.configure(home=home)
    runs = my.search_runs(experiment_names=[EXPERIMENT], output="list")
    assert sorted(r.info.run_name for r in runs) == sorted(FAMILIES)
    by_auc = sorted(runs, key=lambda r: r.data.metrics["roc_auc"], reverse=True)
    svc = my.client()
    for run in runs:
        name = run.info.run_name
        assert run.info.status == "FINISHED"
        assert run.data.tags["model_family"] == FAMILIES[name]
        params = run.data.params
        assert params["seed"] == "42" and params["dataset"] == "breast_cancer"
        assert params["model"] in {
            "SGDClassifier",
            "RandomForestClassifier",
            "GradientBoostingClassifier",
        }
        metrics = run.data.metrics
        for key in ("accuracy", "f1", "roc_auc"):
            assert 0.9 < metrics[key] <= 1.0, (name, key, metrics[key])

        for key in ("train_loss", "val_loss", "val_accuracy"):
            history = my.get_metric_history(run.info.run_id, key)
            steps = [p.step for p in history]
            assert len(history) > 1 and steps == sorted(set(steps)), (name, key, steps)
        # the last step is the final model (within one sample of 143 for ties at 0.5)
        assert abs(metrics["val_accuracy"] - metrics["accuracy"]) <= 1 / 143 + 1e-9

        files = {f.path: f for f in svc.list_artifacts(run.info.run_id)}
        assert set(files) == {"confusion_matrix.png", "features.json", "summary.txt"}
        png = svc.read_artifact(run.info.run_id, "confusion_matrix.png")
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
        features = json.loads(svc.read_artifact(run.info.run_id, "features.json"))
        assert len(features["features"]) == 30 and "mean radius" in features["features"]
        summary = svc.read_artifact(run.info.run_id, "summary.txt").decode()
        assert run.info.run_id in summary and "roc_auc" in summary

    # The printed comparison lists this demo's runs best first, and the commands use
    # whole run ids of the two best runs.
    ranked_rows = re.findall(r"^\s*(\d)\s+([0-9a-f]{8})\s+(\S+)", out, flags=re.M)
    assert [row[1] for row in ranked_rows] == [r.info.run_id[:8] for r in by_auc]
    best, second = by_auc[0].info.run_id, by_auc[1].info.run_id
    assert f"modelyard runs compare {best} {second}" in out
    assert f"modelyard runs list --experiment {EXPERIMENT}" in out
    assert "modelyard server" in out and "http://127.0.0.1:5000/docs" in out
    assert "MLFLOW_TRACKING_URI=http://127.0.0.1:5000" in out

    # A second demo adds four runs and reports only those.
    printed = io.StringIO()
    again = run_quickstart(Console(file=printed, width=120))
    assert len(again) == 4 and not set(again) & {r.info.run_id for r in runs}
    again_runs = [my.get_run(r) for r in again]
    aucs = [r.data.metrics["roc_auc"] for r in again_runs]
    assert aucs == sorted(aucs, reverse=True)
    text = printed.getvalue()
    assert all(r[:8] in text for r in again)
    assert not any(r.info.run_id[:8] in text for r in runs)
    assert len(my.search_runs(experiment_names=[EXPERIMENT], output="list")) == 8
