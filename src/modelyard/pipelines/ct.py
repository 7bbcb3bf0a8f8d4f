"""The standard continuous-training pipeline, shipped as a template.

    ingest a dataset version -> validate (gate) -> split -> train
      -> evaluate against the champion (gate) -> register (+ monitoring baseline)
      -> canary on the deployment (gates, in the gateway) -> promoted, or rolled back

Run it as ``modelyard pipelines run modelyard.pipelines.ct:continuous_training -p
dataset=churn@3 -p target=churned``, from an agent trigger, or copy it (``modelyard
init`` does) and change the steps. Every gate's verdict is recorded on its step's
run: tag ``modelyard.gate.<name>`` = pass or fail, the figures as metrics, the full
verdict as ``gates/<name>.json``. A failed gate fails its step, so nothing after it
runs (and the pipeline run is FAILED, with the gate's reason).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pandas as pd

import modelyard as my
from modelyard.core.errors import InvalidState, ModelyardError, ResourceNotFound
from modelyard.pipelines.pipeline import pipeline
from modelyard.pipelines.step import step

__all__ = ["GateFailed", "continuous_training"]


class GateFailed(InvalidState):
    """A gate said no; the message carries the figures."""


def record_gate(name: str, passed: bool, figures: dict[str, float], verdict: dict[str, Any]):
    """A gate's verdict on the active (step) run: tag, metrics and the whole verdict."""
    my.set_tag(f"modelyard.gate.{name}", "pass" if passed else "fail")
    numbers = {f"gate.{name}.{k}": float(v) for k, v in figures.items() if v is not None}
    if numbers:
        my.log_metrics(numbers)
    my.log_dict(verdict, f"gates/{name}.json")


def _content(dataset: str) -> str:
    """The cache key of `ingest`: the content the reference names today, so ``churn``
    (the latest) is read again when a new version arrives, and only then."""
    return my.data.get_version(dataset).oid


@step(cache_key=_content)
def ingest(dataset: str) -> pd.DataFrame:
    """The exact data of a registered version (``churn@3``, or ``churn``: the latest)."""
    version = my.data.get_version(dataset)
    my.log_input(version, "ingest")
    my.set_tag("modelyard.dataset", version.ref)
    return my.data.get(version.ref)


@step(cache=False)
def validate(df: pd.DataFrame, suite: str | None) -> dict:
    """Gate: the data passes the validation suite (no suite: the gate is skipped)."""
    if not suite:
        record_gate("validation", True, {}, {"skipped": "no suite"})
        return {"passed": True, "failures": 0}
    from modelyard.datasets.validation import validate as run_suite

    result = run_suite(df, suite)
    failures = [c.to_dict() for c in result.failures]
    record_gate(
        "validation",
        result.passed,
        {"failed_checks": len(failures), "checks": len(result.checks)},
        result.to_dict(),
    )
    if not result.passed:
        names = ", ".join(f"{f.get('column') or '(table)'}:{f.get('check')}" for f in failures[:5])
        raise GateFailed(f"validation failed: {len(failures)} check(s) ({names})")
    return {"passed": True, "failures": 0}


@step
def split(df: pd.DataFrame, seed: int, validated: dict) -> tuple:
    """Train and test parts, reproducible from the seed (recorded with the data)."""
    parts = my.data.split(df, fractions={"train": 0.8, "test": 0.2}, seed=seed)
    my.log_dict(parts.record(), "split.json")
    return parts["train"], parts["test"]


@step
def train(train_df: pd.DataFrame, target: str, params: dict) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    kind = params.get("model", "logistic")
    X, y = train_df.drop(columns=[target]), train_df[target]
    numeric = X.select_dtypes("number")
    if kind == "logistic":
        model = make_pipeline(
            StandardScaler(), LogisticRegression(C=float(params.get("C", 1.0)), max_iter=500)
        )
    elif kind == "boosting":
        model = HistGradientBoostingClassifier(
            max_iter=int(params.get("max_iter", 100)), random_state=0
        )
    else:
        raise ValueError(f"unknown model kind {kind!r}: logistic or boosting")
    my.log_params({f"model.{k}": v for k, v in params.items()})
    return model.fit(numeric, y)


def _champion(model_name: str) -> str | None:
    try:
        mv = my.model_registry().get_version_by_alias(model_name, "production")
    except ResourceNotFound:
        return None
    return f"models:/{mv.name}/{mv.version}"


@step(cache=False)
def evaluate(model: Any, test_df: pd.DataFrame, target: str, model_name: str, gates: dict) -> dict:
    """Gate: absolute floors and no regression against the production champion on
    the same (new) test data, through the registry's `check`."""
    from modelyard.evaluation.gates import check

    champion = _champion(model_name)
    data = test_df[[*test_df.drop(columns=[target]).select_dtypes("number").columns, target]]
    verdict = check(
        model,
        data,
        target,
        champion=champion,
        min_values=gates.get("min") or {"accuracy": 0.5},
        max_regression=(gates.get("max_regression") or {}) if champion else None,
    )
    figures = {f"{g.metric}.{g.rule}": g.candidate for g in verdict.gates}
    figures |= {f"champion.{g.metric}": g.champion for g in verdict.gates if g.champion is not None}
    record_gate("evaluation", verdict.passed, figures, verdict.to_dict())
    if not verdict.passed:
        bad = "; ".join(f"{g.metric} {g.rule}: {g.detail}" for g in verdict.gates if not g.passed)
        raise GateFailed(f"evaluation failed against {champion or 'the floors'}: {bad}")
    return {"champion": champion, "metrics": verdict.candidate.metrics}


@step(cache=False)
def register(
    model: Any,
    train_df: pd.DataFrame,
    test_df: pd.DataFrame,
    dataset: str,
    target: str,
    model_name: str,
    evaluation: dict,
) -> int:
    """Log and register the model; its run links the data (lineage) and the test
    part becomes its monitoring baseline."""
    version = my.data.get_version(dataset)
    my.log_input(version, "train")
    features = train_df.drop(columns=[target]).select_dtypes("number")
    my.log_metrics({k: float(v) for k, v in evaluation["metrics"].items()})
    my.log_model(model, "model", input_example=features.head(3))
    run_id = my.active_run().run_id
    baseline = test_df[[*features.columns, target]]
    mv = my.register_model(
        f"runs:/{run_id}/model", model_name, baseline_data=baseline, target=target
    )
    my.set_tag("modelyard.model_version", f"{mv.name}/{mv.version}")
    return int(mv.version)


@step(cache=False)
def deploy(version: int, model_name: str, deployment: str | None, canary: dict) -> dict:
    """Gate: the canary in the gateway. No deployment yet: create it on this version
    (the first model goes straight to production). Otherwise start a canary with
    the gates and wait for its outcome: promoted, or rolled back (then an alert)."""
    uri = f"models:/{model_name}/{version}"
    if not deployment:
        my.set_alias(model_name, "production", version)
        record_gate("canary", True, {}, {"skipped": "no deployment: alias set"})
        return {"outcome": "promoted", "uri": uri}
    svc = my.deployment_service()
    try:
        svc.get(deployment)
    except ResourceNotFound:
        my.create_deployment(deployment, uri)
        my.set_alias(model_name, "production", version)
        record_gate("canary", True, {}, {"skipped": "new deployment"})
        return {"outcome": "created", "uri": uri}
    options = dict(canary)
    steps = options.pop("steps", (10, 50, 100))
    step_seconds = float(options.pop("step_seconds", 30))
    timeout = float(options.pop("timeout", step_seconds * (len(steps) + 2) + 60))
    rollout = my.start_canary(
        deployment, uri, steps=steps, step_seconds=step_seconds, **options
    ).rollout
    deadline = time.monotonic() + timeout
    while True:
        dep = svc.get(deployment)
        current = dep.rollout
        if current is not None and current.id == rollout.id and not current.running:
            break
        if time.monotonic() > deadline:
            my.rollback_deployment(deployment, reason=f"canary timed out after {timeout:.0f} s")
            dep = svc.get(deployment)
            current = dep.rollout
            break
        time.sleep(0.25)
    gates = (current.last_gates or {}).get("gates", {}) if current else {}
    figures = {
        f"{name}.{k}": v
        for name, g in gates.items()
        for k, v in g.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    passed = current is not None and current.status == "succeeded"
    record_gate("canary", passed, figures, current.to_dict() if current else {})
    if not passed:
        reason = current.reason if current else "no rollout"
        _alert(model_name, deployment, f"canary of {uri} rolled back: {reason}")
        raise GateFailed(f"canary of {uri} rolled back: {reason}")
    return {"outcome": "promoted", "uri": uri, "rollout": rollout.id}


def _alert(model: str, deployment: str, message: str) -> None:
    """A rolled-back candidate is an alert (history: `modelyard monitor alerts`)."""
    from modelyard.core.ids import new_id, now_ms
    from modelyard.monitor.alerts import Alert

    alert = Alert(
        id=new_id(),
        rule="continuous-training.canary",
        model=model,
        metric="canary",
        value=None,
        condition="rolled back",
        severity="warning",
        message=f"{deployment}: {message}",
        deliveries={"log": "ok"},
        trigger=False,
        fired_at=now_ms(),
    )
    with contextlib.suppress(ModelyardError):  # the alert must not hide the gate
        my.monitor_service().store.add_alert(alert)


@pipeline(name="continuous-training")
def continuous_training(
    dataset: str = "churn",
    target: str = "churned",
    model_name: str = "churn",
    suite: str | None = None,
    deployment: str | None = None,
    seed: int = 0,
    params: dict | None = None,
    gates: dict | None = None,
    canary: dict | None = None,
):
    df = ingest(dataset)
    checked = validate(df, suite)
    parts = split(df, seed, checked)
    model = train(parts[0], target, params or {"model": "logistic"})
    verdict = evaluate(model, parts[1], target, model_name, gates or {})
    version = register(model, parts[0], parts[1], dataset, target, model_name, verdict)
    return deploy(version, model_name, deployment, canary or {})
