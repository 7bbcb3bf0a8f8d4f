"""Live drift gauges for a model server or gateway: a `LiveMonitor` fed by the
prediction log's writer thread, publishing to the server's Prometheus metrics.

Baselines are looked up under the artifact root by the *registered* model name: a
server may serve ``models:/churn/3`` under another name (``scoring=models:/churn/3``),
so ``registry_names`` maps served names to registered ones (identity otherwise).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from modelyard.core.errors import ResourceNotFound
from modelyard.monitor.baseline import Baseline, load_baseline
from modelyard.monitor.live import LiveFigures, LiveMonitor
from modelyard.serving.metrics import ServingMetrics

__all__ = ["live_monitor", "registry_names"]


def registry_names(specs: Mapping[str, str]) -> dict[str, str]:
    """Served name -> registered model name, from ``models:/NAME...`` URIs."""
    from modelyard.registry.service import parse_models_uri

    out = {}
    for served, uri in specs.items():
        if uri.startswith("models:/"):
            out[served] = parse_models_uri(uri)[0]
    return out


def live_monitor(
    artifacts_root: str,
    metrics: ServingMetrics,
    names: Mapping[str, str],
    window_seconds: float = 3600,
) -> LiveMonitor:
    from modelyard.core.artifacts import open_artifact_store

    store = open_artifact_store(artifacts_root)

    def load(served: str, version: str) -> Baseline | None:
        try:
            return load_baseline(store, names.get(served, served), version)
        except ResourceNotFound:
            return None

    return LiveMonitor(load, _publisher(metrics), window_seconds=window_seconds)


def _publisher(metrics: ServingMetrics) -> Callable[[LiveFigures], None]:
    def publish(f: LiveFigures) -> None:
        m, v = f.model, f.version
        metrics.monitor_rows.labels(m, v).set(f.rows)
        metrics.drift_share.labels(m, v).set(f.features.share_drifted)
        for c in f.features.evaluated:
            metrics.drift_score.labels(m, v, c.name, c.method).set(c.score)
            metrics.drifted.labels(m, v, c.name).set(float(c.drifted))
        if f.prediction is not None and f.prediction.method is not None:
            metrics.prediction_drift.labels(m, v, f.prediction.method).set(f.prediction.score)
        for feature, rate in f.missing.items():
            metrics.missing_rate.labels(m, v, feature).set(rate)

    return publish
