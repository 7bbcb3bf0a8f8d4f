"""``modelyard init``: the project it writes works, and its CI workflow's commands
(run here exactly as written, in a shell) pass on good data and fail on bad data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml
from typer.testing import CliRunner

from modelyard.cli.main import app


def init(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, ["init", *args], env={"COLUMNS": "250"})
    assert result.exit_code == code, result.output
    return result.output


def workflow_steps(project: Path) -> tuple[dict[str, str], list[tuple[str, str]]]:
    doc = yaml.safe_load((project / ".github/workflows/modelyard.yml").read_text())
    job = doc["jobs"]["data-and-model-gates"]
    steps = [(s["name"], s["run"]) for s in job["steps"] if "run" in s and s["name"] != "Install"]
    return job["env"], steps


def run_ci(project: Path) -> list[tuple[str, int, str]]:
    """Each `run:` step of the workflow in a shell, as the CI runner would."""
    job_env, steps = workflow_steps(project)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env |= job_env | {"COLUMNS": "200"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    results = []
    for name, command in steps:
        done = subprocess.run(
            command, shell=True, cwd=project, env=env, capture_output=True, text=True, timeout=300
        )
        results.append((name, done.returncode, done.stdout + done.stderr))
        if done.returncode:
            break
    return results


def test_init_writes_a_project_whose_ci_passes(tmp_path):
    project = tmp_path / "proj"
    out = init(str(project))
    for name in ("pipelines.py", "suite.yaml", "agent.yaml", ".github/workflows/modelyard.yml"):
        assert name in out and (project / name).exists()
    assert "training = continuous_training" in (project / "pipelines.py").read_text()
    results = run_ci(project)
    assert [(n, code) for n, code, _ in results] == [
        ("Validate the data", 0),
        ("Register the sample", 0),
        ("Train on the sample", 0),
        ("Gate the model", 0),
    ], results[-1][2]
    assert "Pipeline continuous-training: FINISHED" in results[2][2]


def test_the_ci_fails_on_data_that_breaks_the_suite(tmp_path):
    project = tmp_path / "proj"
    init(str(project))
    sample = project / "data" / "sample.parquet"
    pd.read_parquet(sample).drop(columns=["charges"]).to_parquet(sample, index=False)
    results = run_ci(project)
    name, code, output = results[-1]
    assert (name, code) == ("Validate the data", 1)
    assert "charges" in output


def test_init_with_own_data_and_bad_input(tmp_path):
    data = tmp_path / "loans.csv"
    pd.DataFrame({"income": range(100), "default": [0, 1] * 50}).to_csv(data, index=False)
    project = tmp_path / "loans"
    init(str(project), "--data", str(data), "--target", "default", "--model", "loans")
    assert (project / "data" / "loans.csv").exists()
    workflow = (project / ".github/workflows/modelyard.yml").read_text()
    assert "--target default" in workflow and "models:/loans/1" in workflow
    assert "not empty" in init(str(project), code=1)
    assert "'nope' is not a column" in init(
        str(tmp_path / "other"), "--data", str(data), "--target", "nope", code=1
    )
    assert not (tmp_path / "other").exists()  # nothing half written
