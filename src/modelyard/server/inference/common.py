"""What the inference endpoints share: reading bodies, answering errors, measuring.

Every inference request goes through ``Exchange``: it reads the body within the
size limit, runs the handler, turns any error into the endpoint's error body with
the right status, and records metrics and the prediction log entry at the end.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelyard.core.errors import InvalidParameter, ModelyardError, ResourceNotFound
from modelyard.serving.batching import Overloaded, Retiring
from modelyard.serving.host import ModelHost, NotReady, ServedModel
from modelyard.serving.metrics import ServingMetrics
from modelyard.serving.prediction_log import PredictionLog, PredictionRecord
from modelyard.serving.workers import WorkerReadiness

__all__ = ["Exchange", "ServingState", "TooLarge", "json_response"]

log = logging.getLogger("modelyard.serving")


class TooLarge(ModelyardError):
    code = "REQUEST_TOO_LARGE"
    http_status = 413


class ModelFailed(ModelyardError):
    """The model itself raised while predicting."""

    code = "MODEL_ERROR"
    http_status = 500


@dataclass
class ServingState:
    host: ModelHost
    metrics: ServingMetrics
    max_body_bytes: int
    prediction_log: PredictionLog | None = None
    failure: str | None = None
    workers: WorkerReadiness | None = None  # with several worker processes

    @property
    def ready(self) -> bool:
        """This process has its models; with several workers, every worker has."""
        return self.host.ready and (self.workers is None or self.workers.all_ready())

    async def pick(self, exchange: Exchange, name: str | None, version: str | None) -> ServedModel:
        """Which loaded model answers this request (the gateway routes here)."""
        return self.host.get(name, version)

    def observe(self, exchange: Exchange, status: int, outputs: Any, handle: Any) -> None:
        """Called after every answer (the gateway's windows, ledger and shadow)."""


def json_response(content: Any, status: int = 200, headers: dict | None = None) -> Response:
    body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY, default=_default)
    return Response(body, status, headers, media_type="application/json")


def _default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _kind(exc: Exception) -> str:
    if isinstance(exc, TooLarge):
        return "too_large"
    if isinstance(exc, Overloaded):
        return "overloaded"
    if isinstance(exc, NotReady):
        return "not_ready"
    if isinstance(exc, ResourceNotFound):
        return "not_found"
    if isinstance(exc, ModelFailed):
        return "model_error"
    if isinstance(exc, InvalidParameter):
        return "invalid_input"
    return "server_error"


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) anything over ``limit`` bytes without reading it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"Request body of {int(declared)} bytes is over the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"Request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class Exchange:
    """One inference request from start to answer (metrics and log included)."""

    __slots__ = (
        "body",
        "endpoint",
        "error_body",
        "request",
        "request_id",
        "served",
        "started",
        "state",
        "variant",
    )

    def __init__(
        self,
        state: ServingState,
        request: Request,
        endpoint: str,
        error_body: Callable[[ModelyardError], dict],
    ) -> None:
        self.state, self.request, self.endpoint = state, request, endpoint
        self.error_body = error_body
        self.started = time.perf_counter()
        self.served: ServedModel | None = None
        self.variant: str | None = None  # the deployment variant that answered
        self.body: bytes | None = None
        self.request_id = request.headers.get("x-request-id") or uuid.uuid4().hex

    async def run(
        self,
        name: str | None,
        version: str | None,
        handle: Callable[[ServedModel, bytes], Awaitable[tuple[Response, Any, Any]]],
    ) -> Response:
        state = self.state
        gauge = None
        outputs = None
        try:
            served = self.served = await state.pick(self, name, version)
            gauge = state.metrics.in_flight.labels(served.name)
            gauge.inc()
            if self.body is None:
                with served.arrivals:
                    self.body = await read_body(self.request, state.max_body_bytes)
            try:
                response, inputs, outputs = await handle(served, self.body)
            except Retiring:
                # Swapped out while the body was read: the version now serving answers.
                served = self.served = await state.pick(self, name, version)
                response, inputs, outputs = await handle(served, self.body)
        except Exception as exc:
            response = self._error(exc, name)
        else:
            if state.prediction_log is not None:
                state.prediction_log.record(
                    PredictionRecord(
                        self.request_id,
                        int(time.time() * 1000),
                        served.name,
                        served.version,
                        self.endpoint,
                        inputs,
                        outputs,
                        (time.perf_counter() - self.started) * 1000,
                        self.variant,
                    )
                )
        finally:
            if gauge is not None:
                gauge.dec()
        self._observe(response.status_code)
        state.observe(self, response.status_code, outputs, handle)
        response.headers["x-request-id"] = self.request_id
        if self.served is not None:
            response.headers["x-model-name"] = self.served.name
            response.headers["x-model-version"] = self.served.version
        if self.variant is not None:
            response.headers["x-deployment-variant"] = self.variant
        return response

    def _error(self, exc: Exception, name: str | None) -> Response:
        if not isinstance(exc, ModelyardError):
            if self.served is not None:  # raised by the model's own code
                log.exception("model %s failed on request %s", name, self.request_id)
                exc = ModelFailed(f"Model {name!r} failed: {type(exc).__name__}: {exc}")
            else:  # pragma: no cover - a bug of ours
                log.exception("request %s failed", self.request_id)
                exc = ModelyardError(f"Internal error: {type(exc).__name__}: {exc}")
        known = self.served is not None or isinstance(exc, NotReady)
        label = self.served.name if self.served is not None else (name if known else None)
        self.state.metrics.errors.labels(label or "", _kind(exc)).inc()
        headers = {"retry-after": "1"} if exc.http_status == 503 else None
        return json_response(self.error_body(exc), exc.http_status, headers)

    def _observe(self, status: int) -> None:
        served = self.served
        model, version = (served.name, served.version) if served else ("", "")
        labels = (model, version, self.endpoint, f"{status // 100}xx")
        metrics = self.state.metrics
        metrics.requests.labels(*labels).inc()
        metrics.latency.labels(*labels).observe(time.perf_counter() - self.started)
