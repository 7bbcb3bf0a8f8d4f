"""The model server app: ``create_inference_app(options)``.

A Starlette app (no request models or dependency injection on the hot path: each
request costs what it must and no more). ``ServingOptions`` is plain data, so that
``--workers N`` can hand it to each uvicorn worker process through the environment
(``inference_app_from_env`` is the factory the workers import).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard.models.signature import SignatureWarning
from modelyard.server.inference import plain, v2
from modelyard.server.inference.common import ServingState, json_response
from modelyard.serving.batching import BatchPolicy
from modelyard.serving.host import ModelHost, ModelSpec, ServedModel
from modelyard.serving.metrics import CONTENT_TYPE, ServingMetrics
from modelyard.serving.prediction_log import ParquetSink, PredictionLog
from modelyard.serving.workers import WorkerReadiness

__all__ = [
    "OPTIONS_ENV",
    "ServingOptions",
    "build_app",
    "create_inference_app",
    "inference_app_from_env",
    "track_model",
]

OPTIONS_ENV = "MODELYARD_SERVING_OPTIONS"
SWITCH_INTERVAL = 0.0005
log = logging.getLogger("modelyard.serving")


@dataclass
class ServingOptions:
    """Everything a model server process needs, as plain data.

    - ``models``: what to serve (name, URI, batching policy, pickle opt-in).
    - ``poll_seconds``: how often aliases are re-resolved (0: never).
    - ``max_body_bytes``: larger request bodies get a 413.
    - ``prediction_log``: a folder or storage URL for the prediction log (None: off);
      ``log_queue``: its bounded queue length.
    - ``monitor_root``: the artifact root holding monitoring baselines; with it (and
      the prediction log on) drift over the last ``monitor_window_seconds`` is
      published as gauges on ``/metrics``.
    - ``workers`` / ``ready_dir``: with several worker processes each marks itself
      ready in ``ready_dir``, and any worker is ready only when all ``workers`` are
      (the load balancer in front cannot pick the worker that answers).
    """

    models: list[ModelSpec]
    poll_seconds: float = 5.0
    max_body_bytes: int = 32 * 1024 * 1024
    prediction_log: str | None = None
    log_queue: int = 10_000
    monitor_root: str | None = None
    monitor_window_seconds: float = 3600.0
    workers: int = 1
    ready_dir: str | None = None  # with several workers: where each marks itself ready

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServingOptions:
        data = json.loads(text)
        data["models"] = [
            ModelSpec(m["name"], m["uri"], BatchPolicy(**m["policy"]), bool(m.get("allow_pickle")))
            for m in data["models"]
        ]
        return cls(**data)


def _stop_process(error: Exception) -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # uvicorn shuts down cleanly on SIGTERM


def create_inference_app(
    options: ServingOptions,
    *,
    on_fatal: Callable[[Exception], None] = _stop_process,
) -> Starlette:
    """A model server for ``options.models``.

    The server answers (live, not ready) while the models load in the background;
    when a model cannot be loaded at start, the error is logged, kept on
    ``app.state.serving.failure`` and ``on_fatal(error)`` stops the process."""
    metrics = ServingMetrics()

    def loaded(new: ServedModel, old: ServedModel | None) -> None:
        track_model(metrics, new)
        if old is not None:
            metrics.serving.labels(old.name, old.version).set(0)

    host = ModelHost(
        options.models,
        poll_seconds=options.poll_seconds,
        on_loaded=loaded,
        on_load_failed=lambda name: metrics.load_failures.labels(name).inc(),
    )
    return build_app(options, metrics, host, ServingState, on_fatal=on_fatal)


def track_model(metrics: ServingMetrics, served: ServedModel) -> None:
    """A newly loaded version's series: batch sizes, load time, serving flag."""
    served.on_batch = metrics.batch_rows.labels(served.name, served.version).observe
    metrics.load_seconds.labels(served.name, served.version).set(served.load_seconds)
    metrics.serving.labels(served.name, served.version).set(1)
    metrics.in_flight.labels(served.name)  # the series exists (at 0) before any request


def _log_sink(options: ServingOptions, metrics: ServingMetrics) -> Callable[[list], None]:
    """The Parquet log, followed by live monitoring when a monitor root is given."""
    parquet = ParquetSink(options.prediction_log)
    if not options.monitor_root:
        return parquet.write
    from modelyard.server.inference.live_monitoring import live_monitor, registry_names

    names = registry_names({m.name: m.uri for m in options.models})
    live = live_monitor(options.monitor_root, metrics, names, options.monitor_window_seconds)

    def write(records: list) -> None:
        try:
            parquet.write(records)
        finally:
            live.observe(records)

    return write


def build_app(
    options: ServingOptions,
    metrics: ServingMetrics,
    host: Any,
    state_class: type[ServingState],
    *,
    extra_routes: Sequence[Route] = (),
    on_fatal: Callable[[Exception], None] = _stop_process,
) -> Starlette:
    """The inference app around ``host`` (a ``ModelHost``, or the deployment
    gateway): V2 and plain endpoints, metrics, the prediction log, background load."""
    warnings.filterwarnings("ignore", category=SignatureWarning)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        prediction_log = None
        if options.prediction_log:
            prediction_log = PredictionLog(
                _log_sink(options, metrics),
                max_queue=options.log_queue,
                on_drop=metrics.log_dropped.inc,
            )
        # The event loop and the inference thread share the GIL: hand it over every
        # 0.5 ms instead of every 5 ms, so a batch on the model's thread delays the
        # loop's next response by at most that (p99 at 64 clients 46 ms -> 22 ms).
        sys.setswitchinterval(SWITCH_INTERVAL)
        state = state_class(
            host,
            metrics,
            options.max_body_bytes,
            prediction_log,
            workers=WorkerReadiness(options.ready_dir, options.workers)
            if options.ready_dir
            else None,
        )
        app.state.serving = state

        async def load() -> None:
            try:
                await host.start()
            except Exception as exc:
                state.failure = str(exc)
                log.error("%s", exc)
                on_fatal(exc)
                return
            # The frameworks and models are long-lived: keep the cyclic collector from
            # scanning them again and again (full collections over ~1M objects paused
            # every request for 100+ ms under load: p99 at 64 clients 200 ms -> 46 ms).
            gc.collect()
            gc.freeze()
            if state.workers is not None:
                state.workers.mark_ready()

        loading = asyncio.get_running_loop().create_task(load())
        try:
            yield
        finally:
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loading
            await host.aclose()
            if prediction_log is not None:
                prediction_log.close()

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return json_response(
            {"error": f"{exc.detail}: {request.method} {request.url.path}"}, exc.status_code
        )

    return Starlette(
        routes=[
            *v2.routes(),
            *plain.routes(),
            *extra_routes,
            Route("/metrics", metrics_endpoint),
        ],
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
    )


def inference_app_from_env() -> Starlette:
    """The app of one worker process, from ``MODELYARD_SERVING_OPTIONS``."""
    text = os.environ.get(OPTIONS_ENV)
    if not text:
        raise RuntimeError(f"{OPTIONS_ENV} is not set: start workers with `modelyard serve`")
    return create_inference_app(ServingOptions.from_json(text))
