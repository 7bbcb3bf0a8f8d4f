"""The deployment gateway app: ``create_gateway_app(options)``.

The model server's endpoints (V2 and ``/predict``) around a ``Gateway`` instead of a
``ModelHost``: the deployment's name is the model name in the URL, the router picks
the variant, and every answer feeds the variant's window (the canary gates), the
ledger (the feedback join) and, for a shadow rollout, a mirrored copy. Plus
``POST /feedback``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard.core.errors import InvalidParameter, ModelyardError, ResourceNotFound
from modelyard.core.ids import now_ms
from modelyard.deploy.gateway import DeploymentRuntime, Gateway
from modelyard.deploy.service import DeploymentService
from modelyard.server.inference.app import ServingOptions, _stop_process, build_app, track_model
from modelyard.server.inference.common import (
    Exchange,
    ServingState,
    json_response,
    read_body,
)
from modelyard.serving.batching import BatchPolicy
from modelyard.serving.host import ServedModel
from modelyard.serving.metrics import ServingMetrics
from modelyard.serving.prediction_log import find_prediction

__all__ = ["GatewayOptions", "create_gateway_app", "key_from_body"]


@dataclass
class GatewayOptions:
    """What a gateway process serves: ``deployments`` by name, how often it checks
    the database for changes and evaluates gates, and the serving options."""

    deployments: list[str]
    poll_seconds: float = 0.5
    tick_seconds: float = 0.1
    live_seconds: float = 1.0
    max_body_bytes: int = 32 * 1024 * 1024
    prediction_log: str | None = None
    log_queue: int = 10_000
    monitor_root: str | None = None  # live drift gauges (see ServingOptions)
    monitor_window_seconds: float = 3600.0
    policy: BatchPolicy | None = None
    allow_pickle: bool = False


def key_from_body(body: bytes, field: str) -> str | None:
    """The value of ``field`` in the first row of a JSON request (V2 tensors,
    records, ``dataframe_split`` or ``instances``), as the sticky routing key."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    value: Any = None
    if isinstance(data, dict) and isinstance(data.get("inputs"), list):
        for tensor in data["inputs"]:
            if isinstance(tensor, dict) and tensor.get("name") == field:
                values = tensor.get("data")
                while isinstance(values, list) and values:
                    values = values[0]
                value = values
        if value is None and data["inputs"] and isinstance(data["inputs"][0], dict):
            value = data["inputs"][0].get(field)
    elif isinstance(data, dict) and isinstance(data.get("dataframe_split"), dict):
        split = data["dataframe_split"]
        if field in split.get("columns", []) and split.get("data"):
            value = split["data"][0][split["columns"].index(field)]
    else:
        rows = data
        if isinstance(data, dict):
            rows = data.get("dataframe_records") or data.get("instances") or [data]
        if isinstance(rows, list) and rows and isinstance(rows[0], dict):
            value = rows[0].get(field)
    return None if value is None or isinstance(value, (dict, list)) else str(value)


class GatewayState(ServingState):
    """The serving state whose host is a ``Gateway``: routes and observes."""

    host: Gateway

    async def pick(self, exchange: Exchange, name: str | None, version: str | None) -> ServedModel:
        rt = self.host.runtime(name)
        key = None
        if rt.key_header:
            key = exchange.request.headers.get(rt.key_header)
        elif rt.key_field:
            exchange.body = await read_body(exchange.request, self.max_body_bytes)
            key = key_from_body(exchange.body, rt.key_field)
        served, exchange.variant = rt.pick(key, version)
        return served

    def observe(self, exchange: Exchange, status: int, outputs: Any, handle: Any) -> None:
        served, variant = exchange.served, exchange.variant
        if served is None or variant is None:
            return
        rt = self.host.runtimes[served.name]
        ms = (time.perf_counter() - exchange.started) * 1000
        rt.observe(variant, status, ms, outputs)
        if status == 200:
            self.host.ledger.add(
                exchange.request_id, rt.name, variant, served.version, outputs, now_ms()
            )
            target = rt.shadow_target()
            if target is not None and exchange.body is not None:
                self.host.spawn(rt.mirror(target, handle, exchange.body, outputs, ms))


def create_gateway_app(
    options: GatewayOptions,
    service: DeploymentService,
    *,
    load: Any = None,
    on_fatal: Any = _stop_process,
):
    """A gateway for ``options.deployments`` over ``service`` (their stored state)."""
    metrics = ServingMetrics()

    def routed(rt: DeploymentRuntime) -> None:
        for variant, uri in rt.uris.items():
            served = rt.served.get(uri)
            version = served.version if served is not None else ""
            weight = rt.router.weights.get(variant, 0.0)
            metrics.deployment_weight.labels(rt.name, variant, version).set(weight)

    gateway = Gateway(
        service,
        options.deployments,
        poll_seconds=options.poll_seconds,
        tick_seconds=options.tick_seconds,
        live_seconds=options.live_seconds,
        policy=options.policy,
        allow_pickle=options.allow_pickle,
        load=load,
        on_loaded=lambda served: track_model(metrics, served),
        on_routed=routed,
    )
    prediction_log = options.prediction_log

    async def feedback(request: Request) -> Response:
        try:
            body = await read_body(request, options.max_body_bytes)
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise InvalidParameter(f"The body is not valid JSON: {exc}") from None
            items = data if isinstance(data, list) else [data]
            if not items or not all(isinstance(i, dict) for i in items):
                raise InvalidParameter(
                    'Send {"request_id": ..., "label": ...} or {"request_id": ..., "reward": ...}'
                )

            found: dict[str, dict[str, Any] | None] = {}

            def lookup(request_id: str) -> dict[str, Any] | None:
                if request_id not in found:
                    hit = gateway.find(request_id)
                    if hit is None and prediction_log:
                        hit = find_prediction(prediction_log, request_id, options.deployments)
                    found[request_id] = hit
                return found[request_id]

            for item in items:
                unknown = set(item) - {"request_id", "label", "reward"}
                if unknown:
                    raise InvalidParameter(
                        f"Unknown feedback field(s): {', '.join(sorted(unknown))}"
                    )
            for item in items:  # every id must be known before anything is stored
                rid = item.get("request_id")
                if isinstance(rid, str) and await asyncio.to_thread(lookup, rid) is None:
                    raise ResourceNotFound(
                        f"No prediction with request id {rid!r} was logged: feedback joins "
                        "to the x-request-id of an answered request; nothing was stored"
                    )
            stored = []
            for item in items:
                row = await asyncio.to_thread(
                    service.log_feedback,
                    item.get("request_id"),
                    label=item.get("label"),
                    reward=item.get("reward"),
                    lookup=lookup,
                )
                stored.append({k: row[k] for k in ("request_id", "model", "variant", "version")})
        except ModelyardError as exc:
            return json_response(exc.to_dict(), exc.http_status)
        return json_response({"feedback": stored})

    serving = ServingOptions(
        models=[],
        max_body_bytes=options.max_body_bytes,
        prediction_log=options.prediction_log,
        log_queue=options.log_queue,
        monitor_root=options.monitor_root,
        monitor_window_seconds=options.monitor_window_seconds,
    )
    return build_app(
        serving,
        metrics,
        gateway,
        GatewayState,
        extra_routes=[Route("/feedback", feedback, methods=["POST"])],
        on_fatal=on_fatal,
    )
