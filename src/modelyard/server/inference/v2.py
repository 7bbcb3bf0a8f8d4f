"""The Open Inference Protocol (KServe V2 REST) endpoints.

Errors answer ``{"error": "<message>"}`` with a 4xx/5xx status, as the protocol says.
``tritonclient.http`` works unmodified, binary tensor extension included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard import __version__
from modelyard.core.errors import InvalidParameter, ModelyardError
from modelyard.server.inference.common import Exchange, ServingState, json_response
from modelyard.serving.host import ServedModel
from modelyard.serving.inputs import rows_of
from modelyard.serving.tensors import datatype_of, encode_outputs, parse_infer_request

__all__ = ["routes"]

EXTENSIONS = ["binary_tensor_data", "model_repository"]


def _error(exc: ModelyardError) -> dict:
    return {"error": exc.message}


def _state(request: Request) -> ServingState:
    return request.app.state.serving


async def live(request: Request) -> Response:
    return json_response({"live": True})


async def ready(request: Request) -> Response:
    state = _state(request)
    if state.ready:
        return json_response({"ready": True})
    return json_response({"ready": False, "error": state.failure or "models are loading"}, 400)


async def server_metadata(request: Request) -> Response:
    return json_response({"name": "modelyard", "version": __version__, "extensions": EXTENSIONS})


def _get(request: Request) -> ServedModel:
    p = request.path_params
    return _state(request).host.get(p["name"], p.get("version"))


async def model_metadata(request: Request) -> Response:
    try:
        served = _get(request)
    except ModelyardError as exc:
        return json_response(_error(exc), exc.http_status)
    return json_response(
        {
            "name": served.name,
            "versions": [served.version],
            "platform": f"modelyard-{getattr(served.model, 'flavor', 'python')}",
            "inputs": _input_metadata(served),
            "outputs": [
                {"name": "predict", "datatype": _predict_datatype(served), "shape": [-1]},
                *(
                    [{"name": "predict_proba", "datatype": "FP64", "shape": [-1, -1]}]
                    if served.has_proba
                    else []
                ),
            ],
        }
    )


def _input_metadata(served: ServedModel) -> list[dict]:
    sig = served.signature
    if sig is None:
        return []
    out = []
    for f in sig.inputs:
        try:
            datatype = (
                "BYTES"
                if f.dtype in ("string", "object", "category")
                else datatype_of(np.dtype(f.dtype))
            )
        except TypeError:
            datatype = "BYTES"
        shape = list(f.shape) if f.shape is not None else [-1]
        out.append({"name": f.name, "datatype": datatype, "shape": shape})
    return out


def _predict_datatype(served: ServedModel) -> str:
    sig = served.signature
    if sig is not None and len(sig.outputs) == 1:
        try:
            return datatype_of(np.dtype(sig.outputs[0].dtype))
        except TypeError:
            return "BYTES"
    return "BYTES"


async def model_ready(request: Request) -> Response:
    p = request.path_params
    try:
        served = _get(request)
    except ModelyardError as exc:
        if exc.http_status == 503:  # known, still loading
            return json_response({"name": p["name"], "ready": False}, 400)
        return json_response(_error(exc), exc.http_status)
    return json_response({"name": served.name, "ready": True})


async def repository_index(request: Request) -> Response:
    host = _state(request).host
    index = []
    for name in host.specs:
        served = host.models.get(name)
        index.append(
            {
                "name": name,
                "version": served.version if served else "",
                "state": "READY" if served else "LOADING",
            }
        )
    return json_response(index)


async def infer(request: Request) -> Response:
    p = request.path_params
    exchange = Exchange(_state(request), request, "v2/infer", _error)
    header_length = request.headers.get("inference-header-content-length")

    async def handle(served: ServedModel, body: bytes) -> tuple[Response, Any, Any]:
        req = parse_infer_request(body, header_length)
        wanted = [o["name"] for o in req.outputs] if req.outputs else ["predict"]
        unknown = [n for n in wanted if n not in served.outputs()]
        if unknown:
            raise InvalidParameter(
                f"Model {served.name!r} has no output(s) {', '.join(map(repr, unknown))}; "
                f"it has: {', '.join(served.outputs())}"
            )
        rows = served.adapter.from_tensors(req.inputs)
        n = rows_of(rows)
        results = {}
        for method in wanted:
            results[method] = await served.batcher(method).submit(rows, n)
        tensors: dict[str, np.ndarray] = {}
        for method, result in results.items():
            tensors.update(_as_tensors(method, result))
        binary = {
            name: req.binary_output
            or any(
                o["name"] == name and (o.get("parameters") or {}).get("binary_data")
                for o in req.outputs or ()
            )
            for name in tensors
        }
        header: dict[str, Any] = {"model_name": served.name, "model_version": served.version}
        header["id"] = req.id if req.id is not None else exchange.request_id
        body_out, json_size = encode_outputs(tensors, header=header, binary=binary)
        if json_size is None:
            response = Response(body_out, media_type="application/json")
        else:
            response = Response(
                body_out,
                media_type="application/octet-stream",
                headers={"inference-header-content-length": str(json_size)},
            )
        return response, rows, results

    return await exchange.run(p["name"], p.get("version"), handle)


def _as_tensors(method: str, result: Any) -> dict[str, np.ndarray]:
    """A prediction as named output tensors: a DataFrame gives one per column."""
    if isinstance(result, pd.DataFrame):
        if method == "predict":
            return {str(c): result[c].to_numpy() for c in result.columns}
        return {method: result.to_numpy()}
    if isinstance(result, dict):
        return {str(k): np.asarray(v) for k, v in result.items()}
    arr = np.asarray(result)
    if arr.dtype.kind in "OUS":
        arr = arr.astype(object)
    return {method: arr}


def routes() -> list[Route]:
    versioned = "/v2/models/{name}/versions/{version}"
    plain = "/v2/models/{name}"
    return [
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/repository/index", repository_index, methods=["POST"]),
        *(
            r
            for base in (plain, versioned)
            for r in (
                Route(base, model_metadata, methods=["GET"]),
                Route(f"{base}/ready", model_ready, methods=["GET"]),
                Route(f"{base}/infer", infer, methods=["POST"]),
            )
        ),
    ]
