"""Prometheus metrics of a model server.

Labels stay low-cardinality: model, version, endpoint, status class. A name nobody
serves is counted under model="" so that a scan of random names cannot grow the
series without bound. With several worker processes (``PROMETHEUS_MULTIPROC_DIR``
set before start), each process writes its own files and ``/metrics`` merges them.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE", "ServingMetrics"]

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # the text format every Prometheus reads

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)


class ServingMetrics:
    """The server's metrics, on a registry of its own (so two apps never collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "modelyard_requests",
            "Inference requests answered.",
            ["model", "version", "endpoint", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "modelyard_request_duration_seconds",
            "Time from request to response, in seconds.",
            ["model", "version", "endpoint", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "modelyard_errors",
            "Failed requests by kind (invalid_input, not_found, too_large, model_error, "
            "overloaded, not_ready).",
            ["model", "kind"],
            registry=r,
        )
        self.batch_rows = Histogram(
            "modelyard_batch_size_rows",
            "Rows per model call (after micro-batching).",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "modelyard_requests_in_flight",
            "Requests being answered now.",
            ["model"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.load_seconds = Gauge(
            "modelyard_model_load_seconds",
            "Seconds to load and warm a model version.",
            ["model", "version"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.serving = Gauge(
            "modelyard_model_serving",
            "1 for the version each model name serves now, 0 for versions it served before.",
            ["model", "version"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.load_failures = Counter(
            "modelyard_model_load_failures",
            "Model versions that failed to load or warm up (the old version kept serving).",
            ["model"],
            registry=r,
        )
        self.deployment_weight = Gauge(
            "modelyard_deployment_weight",
            "Percent of a deployment's traffic each variant gets now (gateway).",
            ["deployment", "variant", "version"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.log_dropped = Counter(
            "modelyard_prediction_log_dropped",
            "Prediction log records dropped because the log queue was full.",
            registry=r,
        )
        # live monitoring (with a baseline for the served version): the last window
        live = {"registry": r, "multiprocess_mode": "mostrecent"}
        self.monitor_rows = Gauge(
            "modelyard_monitor_window_rows",
            "Predicted rows in the live monitoring window.",
            ["model", "version"],
            **live,
        )
        self.drift_share = Gauge(
            "modelyard_drift_share",
            "Share of features drifted from the baseline over the live window.",
            ["model", "version"],
            **live,
        )
        self.drift_score = Gauge(
            "modelyard_feature_drift_score",
            "Each feature's drift score (p-value for tests, distance otherwise).",
            ["model", "version", "feature", "method"],
            **live,
        )
        self.drifted = Gauge(
            "modelyard_feature_drifted",
            "1 when the feature drifted from the baseline over the live window.",
            ["model", "version", "feature"],
            **live,
        )
        self.prediction_drift = Gauge(
            "modelyard_prediction_drift_score",
            "Drift score of the predictions against the baseline's.",
            ["model", "version", "method"],
            **live,
        )
        self.missing_rate = Gauge(
            "modelyard_feature_missing_rate",
            "Share of missing values per feature over the live window.",
            ["model", "version", "feature"],
            **live,
        )

    def exposition(self) -> bytes:
        """The text exposition of every metric (merged across worker processes)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            return generate_latest(merged)
        return generate_latest(self.registry)
