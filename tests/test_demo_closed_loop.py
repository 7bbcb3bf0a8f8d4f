"""``modelyard demo --fast``: the closed loop on a fresh embedded home, as a user runs
it (a subprocess), then checked through the stores, not through its own output:
data versions, the two training runs and why they ran, the promoted model and its
lineage, the rolled-back broken candidate, the report and the model card."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import modelyard as my


def test_the_closed_loop_retrains_on_drift_promotes_and_rolls_back(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [sys.executable, "-m", "modelyard.cli.main", "demo", "--fast"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for line in ("alert churn-drift fired", "rollout.promoted", "rollout.rolled_back"):
        assert line in out, out[-4000:]
    assert "Wall time by phase" in out and "modelyard data lineage" in out

    home = tmp_path / ".modelyard"
    my.configure(home=home)
    try:
        assert [v.ref for v in my.data.versions("churn")] == ["churn@1", "churn@2"]
        # The production model is the retrained one, trained on the drifted data.
        prod = my.model_registry().get_version_by_alias("churn", "production")
        assert prod.version == 2
        lineage = my.lineage("models:/churn@production")
        assert {i.version.ref for i in lineage.inputs if i.version} == {"churn@2"}
        # Why each training ran: the second was fired by the drift alert.
        svc = my.client()
        exp = svc.get_experiment_by_name("continuous-training")
        parents = [
            r
            for r in svc.find_runs(
                [exp.experiment_id], "tags.`modelyard.pipeline` = 'continuous-training'"
            )
            if "modelyard.step" not in r.data.tags
        ]
        assert sorted(r.info.status for r in parents) == ["FINISHED", "FINISHED"]
        triggered = [r for r in parents if "modelyard.trigger" in r.data.tags]
        assert (
            len(triggered) == 1 and '"kind": "alert"' in triggered[0].data.tags["modelyard.trigger"]
        )
        # The broken hand-pushed v3 was rolled back by the error-rate gate.
        dep = my.deployment_service().get("churn")
        assert dep.rollout.status == "rolled_back" and "error_rate" in dep.rollout.reason
        assert [(v.uri, v.weight) for v in dep.variants] == [("models:/churn/2", 100.0)]
        alerts = my.monitor_alerts("churn")
        assert {a.rule for a in alerts} >= {"churn-drift"}
    finally:
        my.client().store.close()
    report = (tmp_path / "demo-output" / "drift-report.html").read_text()
    assert "<html" in report.lower() and "tenure" in report
    assert (tmp_path / "demo-output" / "model-card-churn-v2.html").exists()
