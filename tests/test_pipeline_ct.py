"""The continuous-training template: data gate, evaluation gate against the
champion, registration with lineage and baseline, on the test's real store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import modelyard as my
from modelyard.datasets.validation import infer_suite
from modelyard.pipelines import run_pipeline
from modelyard.pipelines.ct import continuous_training

TARGET = "churned"


@pytest.fixture
def project(home: Path, db_url: str, tmp_path: Path) -> Iterator[Path]:
    (tmp_path / ".git").mkdir()
    my.configure(home=home, db_url=db_url, artifacts=str(tmp_path / "artifacts"))
    yield tmp_path
    while my.active_run():
        my.end_run()
    my.client().store.close()


def churn(n: int, seed: int, noise: float = 0.5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, n)
    charges = rng.normal(70, 20, n)
    logit = -0.08 * tenure + 0.04 * charges - 0.5 + rng.normal(0, noise, n)
    return pd.DataFrame({"tenure": tenure, "charges": charges, TARGET: (logit > 0).astype(int)})


def register(project: Path, df: pd.DataFrame) -> str:
    folder = project / "data"
    folder.mkdir(exist_ok=True)
    for f in folder.iterdir():
        f.unlink()
    df.to_parquet(folder / "part.parquet", index=False)
    return my.data.register("churn", folder).ref


GATES = {"validate": "validation", "evaluate": "evaluation", "deploy": "canary"}


def gate(run, step: str) -> str:
    """The verdict a step recorded: pass or fail."""
    return my.get_run(run.steps[step].run_id).data.tags[f"modelyard.gate.{GATES[step]}"]


def test_the_template_trains_gates_and_registers_with_lineage(project):
    ref = register(project, churn(1_000, 0))
    suite = infer_suite(my.data.get(ref))
    suite.save(project / "suite.yaml")
    run = run_pipeline(
        continuous_training,
        {
            "dataset": ref,
            "target": TARGET,
            "suite": str(project / "suite.yaml"),
            "gates": {"min": {"accuracy": 0.7}},
        },
    )
    assert run.status == "FINISHED", run.error
    assert run.result == {"outcome": "promoted", "uri": "models:/churn/1"}
    assert gate(run, "validate") == "pass" and gate(run, "evaluate") == "pass"
    assert my.model_registry().get_version_by_alias("churn", "production").version == 1
    lineage = my.lineage("models:/churn/1")
    assert [i.version.ref for i in lineage.inputs if i.context == "train"] == [ref]
    assert my.monitor_service().baseline("churn", "1") is not None


def test_bad_data_fails_the_validation_gate_and_nothing_is_registered(project):
    ref = register(project, churn(1_000, 0))
    infer_suite(my.data.get(ref)).save(project / "suite.yaml")
    bad = register(project, churn(1_000, 1).drop(columns=["charges"]))
    run = run_pipeline(
        continuous_training,
        {"dataset": bad, "target": TARGET, "suite": str(project / "suite.yaml")},
    )
    assert run.status == "FAILED"
    assert "validation failed" in run.error and "charges" in run.error
    assert run.steps["validate"].state == "failed"
    assert {run.steps[s].state for s in ("train", "evaluate", "register", "deploy")} == {"skipped"}
    assert gate(run, "validate") == "fail"
    assert my.model_registry().search_model_versions("name = 'churn'")[0] == []


def test_a_worse_candidate_fails_the_evaluation_gate_against_the_champion(project):
    ref = register(project, churn(2_000, 0, noise=0.2))
    first = run_pipeline(continuous_training, {"dataset": ref, "target": TARGET})
    assert first.status == "FINISHED", first.error
    newer = register(project, churn(2_000, 5, noise=0.2))
    # A crippled candidate (all but no capacity) on the new data; the champion is
    # evaluated on the same new test part.
    second = run_pipeline(
        continuous_training,
        {
            "dataset": newer,
            "target": TARGET,
            "params": {"model": "logistic", "C": 1e-6},
            "gates": {"min": {"accuracy": 0.5}, "max_regression": {"accuracy": 0.02}},
        },
    )
    assert second.status == "FAILED"
    assert "evaluation failed against models:/churn/1" in second.error
    assert "accuracy max_regression: worse by" in second.error
    assert gate(second, "evaluate") == "fail"
    assert second.steps["register"].state == "skipped"
    assert my.model_registry().get_version_by_alias("churn", "production").version == 1
