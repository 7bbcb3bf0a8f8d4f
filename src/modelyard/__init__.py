"""modelyard: data, experiments, models, serving, rollouts, monitoring and retraining
in one self-hostable platform.

    import modelyard as my

    with my.start_run(experiment="churn", run_name="baseline"):
        my.log_params({"C": 1.0})
        for epoch in range(10):
            my.log_metric("loss", 1 / (epoch + 1), step=epoch)

The public API is re-exported here and imported lazily, so `import modelyard`
stays fast (heavy libraries load on first use).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from modelyard._version import __version__  # noqa: F401 - re-exported

# name -> module that defines it
_EXPORTS: dict[str, str] = {
    **{
        name: "modelyard.sdk.fluent"
        for name in (
            "ActiveRun",
            "active_run",
            "client",
            "compare_runs",
            "configure",
            "end_run",
            "flush",
            "get_metric_history",
            "get_run",
            "log_artifact",
            "log_artifacts",
            "log_dict",
            "log_figure",
            "log_metric",
            "log_metrics",
            "log_param",
            "log_params",
            "log_text",
            "search_runs",
            "set_experiment",
            "set_tag",
            "set_tags",
            "start_run",
        )
    },
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
            "rollback",
            "set_alias",
            "set_policy",
            "transition_stage",
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
            "start_ab_test",
            "start_bluegreen",
            "start_canary",
            "start_shadow",
        )
    },
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
    **{name: "modelyard.sdk.data" for name in ("lineage", "log_input")},
    **{
        name: "modelyard.pipelines"
        for name in ("pipeline", "resume_pipeline", "run_pipeline", "step")
    },
    **{name: "modelyard.tracking.entities" for name in ("Metric", "Param", "Run", "RunTag")},
    "Settings": "modelyard.core.config",
    "ModelyardError": "modelyard.core.errors",
    "evaluate": "modelyard.evaluation.evaluate",
    "log_model": "modelyard.models.logging",
    "load_model": "modelyard.models.loader",
    "predict_batch": "modelyard.serving.batch",
    "models": "modelyard.models",  # a subpackage: my.models.save(...)
    "monitor": "modelyard.monitor",  # a subpackage: my.monitor.drift(...)
    "data": "modelyard.sdk.data",  # a module: my.data.get("churn@3"), my.data.split(...)
}
_MODULES = {"data"}  # exported names that are modules under another name

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'modelyard' has no attribute {name!r}")
    imported = importlib.import_module(module)
    whole = name in _MODULES or module == f"{__name__}.{name}"
    value = imported if whole else getattr(imported, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover
    from modelyard import models, monitor  # noqa: F401
    from modelyard.core.config import Settings  # noqa: F401
    from modelyard.core.errors import ModelyardError  # noqa: F401
    from modelyard.models.loader import load_model  # noqa: F401
    from modelyard.models.logging import log_model  # noqa: F401
    from modelyard.pipelines import pipeline, resume_pipeline, run_pipeline, step  # noqa: F401
    from modelyard.sdk import data  # noqa: F401
    from modelyard.sdk.data import lineage, log_input  # noqa: F401
    from modelyard.sdk.deploy import *  # noqa: F403
    from modelyard.sdk.fluent import *  # noqa: F403
    from modelyard.sdk.monitor import *  # noqa: F403
    from modelyard.serving.batch import predict_batch  # noqa: F401
    from modelyard.tracking.entities import Metric, Param, Run, RunTag  # noqa: F401
