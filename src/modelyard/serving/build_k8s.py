"""The Kubernetes manifests of ``modelyard build``: Deployment, Service,
HorizontalPodAutoscaler and the optional KServe InferenceService, as Python dicts
dumped with PyYAML (never string templates), all sharing one name, labels, image,
port and probes (``serving/build.py`` decides those and writes the files)."""

from __future__ import annotations

from typing import Any

import yaml

from modelyard._version import __version__
from modelyard.serving.build import (
    CONTAINER_UID,
    CPU_TARGET_PERCENT,
    LIVE_PATH,
    METRICS_PATH,
    READY_PATH,
    SERVICE_PORT,
    _label_value,
    _one_line,
    _Spec,
)

__all__ = ["manifests", "to_yaml"]


def _selector(spec: _Spec) -> dict[str, str]:
    # Only the name: a Deployment's selector cannot change, the version does.
    return {"app.kubernetes.io/name": spec.app}


def _labels(spec: _Spec) -> dict[str, str]:
    labels = {
        **_selector(spec),
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/managed-by": "modelyard",
    }
    version = _label_value(spec.version)
    if version:
        labels["app.kubernetes.io/version"] = version
    return labels


def _annotations(spec: _Spec) -> dict[str, str]:
    return {"modelyard.io/model-name": spec.name, "modelyard.io/model-uri": spec.model_uri}


def _scrape(spec: _Spec) -> dict[str, str]:
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(spec.port),
        "prometheus.io/path": METRICS_PATH,
    }


def _resources(spec: _Spec) -> dict[str, dict[str, str]]:
    n = spec.workers  # each worker is one process holding the model
    return {
        "requests": {"cpu": f"{500 * n}m", "memory": f"{512 * n}Mi"},
        "limits": {"cpu": str(n), "memory": f"{1024 * n}Mi"},
    }


def _probe(spec: _Spec, path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": spec.port},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def _container_security(read_only_root: bool) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": CONTAINER_UID,
        "runAsGroup": CONTAINER_UID,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only_root,
        "capabilities": {"drop": ["ALL"]},
    }


def _deployment(spec: _Spec) -> dict[str, Any]:
    container = {
        "name": "model-server",
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}],
        # Live until the model loads, so slow loads get the startup probe's budget.
        "startupProbe": _probe(spec, LIVE_PATH, 5, 60),
        "readinessProbe": _probe(spec, READY_PATH, 5, 3),
        "livenessProbe": _probe(spec, LIVE_PATH, 10, 3),
        "resources": _resources(spec),
        "securityContext": _container_security(read_only_root=True),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": spec.app, "labels": _labels(spec), "annotations": _annotations(spec)},
        "spec": {
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": _selector(spec)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": _labels(spec), "annotations": _scrape(spec)},
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": CONTAINER_UID,
                        "runAsGroup": CONTAINER_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 30,
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
                },
            },
        },
    }


def _service(spec: _Spec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": spec.app, "labels": _labels(spec)},
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(spec),
            "ports": [
                {"name": "http", "port": SERVICE_PORT, "targetPort": spec.port, "protocol": "TCP"}
            ],
        },
    }


def _hpa(spec: _Spec) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": spec.app, "labels": _labels(spec)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.app},
            "minReplicas": spec.min_replicas,
            "maxReplicas": spec.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": CPU_TARGET_PERCENT},
                    },
                }
            ],
        },
    }


def _inference_service(spec: _Spec) -> dict[str, Any]:
    # A custom-container predictor declares its protocol with the PROTOCOL variable:
    # `protocolVersion` exists only on the built-in runtimes' specs. Knative allows no
    # startup probe and no emptyDir by default, so the root filesystem stays writable.
    container = {
        "name": "kserve-container",
        "image": spec.image,
        "env": [{"name": "PROTOCOL", "value": "v2"}],
        "ports": [{"containerPort": spec.port, "protocol": "TCP"}],
        "readinessProbe": _probe(spec, READY_PATH, 5, 3),
        "livenessProbe": _probe(spec, LIVE_PATH, 10, 3),
        "resources": _resources(spec),
        "securityContext": _container_security(read_only_root=False),
    }
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": spec.app, "labels": _labels(spec), "annotations": _annotations(spec)},
        "spec": {
            "predictor": {
                "minReplicas": spec.min_replicas,
                "maxReplicas": spec.max_replicas,
                "labels": _labels(spec),
                "annotations": _scrape(spec),
                "containers": [container],
            }
        },
    }


def manifests(spec: _Spec) -> dict[str, dict[str, Any]]:
    docs = {
        "deployment.yaml": _deployment(spec),
        "service.yaml": _service(spec),
        "hpa.yaml": _hpa(spec),
    }
    if spec.kserve:
        docs["inferenceservice.yaml"] = _inference_service(spec)
    return docs


_YAML_NOTES = {
    "deployment.yaml": (
        "No spec.replicas: the HorizontalPodAutoscaler (hpa.yaml) owns the count,\n"
        "and a fixed value would reset it on every `kubectl apply`."
    ),
    "service.yaml": f"Port {SERVICE_PORT} in the cluster, forwarded to the serving port.",
    "hpa.yaml": f"Scales the Deployment on CPU ({CPU_TARGET_PERCENT}% of the requested CPU).",
    "inferenceservice.yaml": (
        "The KServe alternative to deployment.yaml + service.yaml + hpa.yaml: apply\n"
        "one or the other. Open Inference Protocol v2 (PROTOCOL=v2)."
    ),
}


def to_yaml(spec: _Spec, filename: str, document: dict[str, Any]) -> str:
    header = [
        f"# Generated by `modelyard build` (modelyard {__version__}) from "
        f"{_one_line(spec.model_uri)}.",
        *(f"# {line}" for line in _YAML_NOTES[filename].splitlines()),
    ]
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    return "\n".join(header) + "\n" + body
