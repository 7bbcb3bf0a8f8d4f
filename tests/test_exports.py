"""The package root: exactly the intended public names, each resolving to the object
its defining module exports, and an `import modelyard` that loads no heavy library."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import modelyard

PUBLIC_NAMES = [
    "ActiveRun",
    "Metric",
    "ModelyardError",
    "Param",
    "Run",
    "RunTag",
    "Settings",
    "__version__",
    "ab_report",
    "active_run",
    "approve",
    "check_model",
    "client",
    "compare_runs",
    "configure",
    "create_deployment",
    "data",
    "delete_model_version",
    "deployment_service",
    "end_run",
    "evaluate",
    "flush",
    "get_deployment",
    "get_metric_history",
    "get_model_version",
    "get_registered_model",
    "get_run",
    "lineage",
    "load_model",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_feedback",
    "log_figure",
    "log_input",
    "log_labels",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_text",
    "model_card",
    "model_history",
    "model_registry",
    "models",
    "monitor",
    "monitor_alerts",
    "monitor_service",
    "pipeline",
    "predict_batch",
    "promote_deployment",
    "register_model",
    "reject",
    "resume_pipeline",
    "rollback",
    "rollback_deployment",
    "run_pipeline",
    "search_runs",
    "set_alias",
    "set_baseline",
    "set_experiment",
    "set_policy",
    "set_tag",
    "set_tags",
    "start_ab_test",
    "start_bluegreen",
    "start_canary",
    "start_run",
    "start_shadow",
    "step",
    "transition_stage",
]

DEFINED_IN = {
    **{
        name: "modelyard.sdk.monitor"
        for name in (
            "check_model",
            "log_labels",
            "monitor_alerts",
            "monitor_service",
            "set_baseline",
        )
    },
    **{
        name: "modelyard.sdk.deploy"
        for name in (
            "ab_report",
            "create_deployment",
            "deployment_service",
            "get_deployment",
            "log_feedback",
            "promote_deployment",
            "rollback_deployment",
            "run_pipeline",
            "start_ab_test",
            "start_bluegreen",
            "start_canary",
            "start_shadow",
            "step",
        )
    },
    "Metric": "modelyard.tracking.entities",
    "Param": "modelyard.tracking.entities",
    "Run": "modelyard.tracking.entities",
    "RunTag": "modelyard.tracking.entities",
    "Settings": "modelyard.core.config",
    "ModelyardError": "modelyard.core.errors",
    **{
        name: "modelyard.sdk.registry"
        for name in (
            "approve",
            "delete_model_version",
            "get_model_version",
            "get_registered_model",
            "model_card",
            "model_history",
            "model_registry",
            "register_model",
            "reject",
            "resume_pipeline",
            "rollback",
            "set_alias",
            "set_policy",
            "transition_stage",
        )
    },
    "evaluate": "modelyard.evaluation.evaluate",
    "load_model": "modelyard.models.loader",
    "log_model": "modelyard.models.logging",
    "predict_batch": "modelyard.serving.batch",
    "models": "modelyard.models",  # the subpackage itself
    "monitor": "modelyard.monitor",
    "data": "modelyard.sdk.data",  # the module itself, under the name my.data
    "lineage": "modelyard.sdk.data",
    "log_input": "modelyard.sdk.data",
    **{n: "modelyard.pipelines" for n in ("pipeline", "resume_pipeline", "run_pipeline", "step")},
}

# Libraries that `import modelyard` must not load: each costs tens to hundreds of ms.
HEAVY = ["sqlalchemy", "pandas", "httpx", "pydantic", "fastapi"]
# Not even these, which the SDK or server need later, belong in the bare import.
ALSO_LAZY = [
    "alembic",
    "numpy",
    "pydantic_settings",
    "fsspec",
    "uvicorn",
    "starlette",
    "typer",
    "rich",
    "pyarrow",
    "matplotlib",
]


def test_all_lists_exactly_the_public_names() -> None:
    assert modelyard.__all__ == PUBLIC_NAMES
    assert dir(modelyard) == PUBLIC_NAMES


def test_every_public_name_resolves_to_its_defining_object() -> None:
    fluent = importlib.import_module("modelyard.sdk.fluent")
    for name in PUBLIC_NAMES:
        value = getattr(modelyard, name)
        if name == "__version__":
            assert isinstance(value, str) and value.count(".") >= 2
            continue
        module = DEFINED_IN.get(name, "modelyard.sdk.fluent")
        if module == f"modelyard.{name}" or name == "data":
            assert value is importlib.import_module(module), name
            continue
        assert value is getattr(importlib.import_module(module), name), name
    # The fluent API's own list is the root's list minus what other modules define.
    assert sorted(fluent.__all__) == sorted(set(PUBLIC_NAMES) - set(DEFINED_IN) - {"__version__"})
    registry = importlib.import_module("modelyard.sdk.registry")
    assert sorted(registry.__all__) == sorted(
        n for n, m in DEFINED_IN.items() if m == "modelyard.sdk.registry"
    )


def test_from_modelyard_import_star_binds_every_public_name() -> None:
    namespace: dict[str, object] = {}
    exec("from modelyard import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(PUBLIC_NAMES)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'start_runn'"):
        modelyard.start_runn  # noqa: B018
    assert not hasattr(modelyard, "sdk_helpers")


def _python(code: str, *flags: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, *flags, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done


LOADED = """
import json, sys
{statement}
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}})))
"""


def test_import_modelyard_loads_no_heavy_library() -> None:
    done = _python(LOADED.format(statement="import modelyard"), "-X", "importtime")
    loaded = set(json.loads(done.stdout))
    assert "modelyard" in loaded
    assert sorted(loaded & set(HEAVY + ALSO_LAZY)) == []
    # -X importtime lists every module imported, with its parents indented above it.
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    assert "modelyard" in imported
    assert sorted(imported & set(HEAVY + ALSO_LAZY)) == []


def test_touching_the_logging_api_loads_no_server_or_dataframe_library() -> None:
    statement = "import modelyard as my; my.start_run; my.log_metric; my.end_run"
    loaded = set(json.loads(_python(LOADED.format(statement=statement)).stdout))
    assert {"modelyard"} <= loaded
    assert sorted(loaded & {"pandas", "fastapi", "starlette", "uvicorn", "httpx", "pyarrow"}) == []
