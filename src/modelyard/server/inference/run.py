"""Run the model server under uvicorn: one process, or N worker processes sharing
one listening socket (each loads its own copy of the models; Prometheus metrics
are merged across them through a multiprocess directory)."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile

from modelyard.core.errors import ModelyardError
from modelyard.server.inference.app import (
    OPTIONS_ENV,
    ServingOptions,
    create_inference_app,
)
from modelyard.server.inference.gateway_app import GatewayOptions, create_gateway_app
from modelyard.server.run import _nodelay_socket

__all__ = ["serve_gateway", "serve_models"]

log = logging.getLogger("modelyard.serving")


def serve_models(
    options: ServingOptions,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    workers: int = 1,
    log_level: str = "warning",
) -> None:
    """Serve ``options.models`` until interrupted; raises when a model cannot load."""
    import uvicorn

    sock = _nodelay_socket(host, port)
    common = {"log_level": log_level, "access_log": False, "timeout_graceful_shutdown": 10}
    if workers <= 1:
        server: uvicorn.Server | None = None

        def stop(error: Exception) -> None:  # a model that cannot load: shut down
            if server is not None:
                server.should_exit = True

        app = create_inference_app(options, on_fatal=stop)
        server = uvicorn.Server(uvicorn.Config(app, **common))
        server.run(sockets=[sock])
        failure = getattr(getattr(app.state, "serving", None), "failure", None)
        if failure:
            raise ModelyardError(failure)
        return
    from uvicorn.supervisors import Multiprocess

    metrics_dir = tempfile.mkdtemp(prefix="modelyard-metrics-")
    ready_dir = tempfile.mkdtemp(prefix="modelyard-ready-")
    options = dataclasses.replace(options, workers=workers, ready_dir=ready_dir)
    os.environ[OPTIONS_ENV] = options.to_json()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        config = uvicorn.Config(
            "modelyard.server.inference.app:inference_app_from_env",
            factory=True,
            workers=workers,
            **common,
        )
        Multiprocess(config, sockets=[sock]).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
        shutil.rmtree(ready_dir, ignore_errors=True)


def serve_gateway(
    options: GatewayOptions,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    log_level: str = "warning",
) -> None:
    """Serve ``options.deployments`` (one process: it owns their controllers) until
    interrupted; raises when a deployment has no version that loads."""
    import uvicorn

    from modelyard.sdk.deploy import deployment_service

    service = deployment_service()
    for name in options.deployments:
        service.get(name)  # an unknown deployment fails here, before binding
    sock = _nodelay_socket(host, port)
    server: uvicorn.Server | None = None

    def stop(error: Exception) -> None:
        if server is not None:
            server.should_exit = True

    app = create_gateway_app(options, service, on_fatal=stop)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level=log_level, access_log=False, timeout_graceful_shutdown=10)
    )
    server.run(sockets=[sock])
    failure = getattr(getattr(app.state, "serving", None), "failure", None)
    if failure:
        raise ModelyardError(failure)
