"""Plain JSON prediction: ``POST /predict`` (one model served) or ``/predict/{name}``.

The body is rows in any of the forms MLflow users send (``records`` /
``dataframe_records``, ``columns``, ``dataframe_split``, ``inputs`` / ``instances``),
checked against the model's signature; the answer is ``{"predictions": [...]}``
(``?proba=true`` for class probabilities). Errors answer ``{"error_code",
"message"}`` like the rest of modelyard's API.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard.core.errors import ModelyardError
from modelyard.server.inference.common import Exchange, ServingState, json_response
from modelyard.serving.host import ServedModel
from modelyard.serving.inputs import rows_of
from modelyard.serving.tensors import parse_json

__all__ = ["routes"]


def _error(exc: ModelyardError) -> dict:
    return exc.to_dict()


async def predict(request: Request) -> Response:
    state: ServingState = request.app.state.serving
    name = request.path_params.get("name")  # None: the only model served
    proba = request.query_params.get("proba", "").lower() in ("1", "true", "yes")
    method = "predict_proba" if proba else "predict"

    async def handle(served: ServedModel, body: bytes) -> tuple[Response, Any, Any]:
        rows = served.adapter.from_json(parse_json(body))
        result = await served.batcher(method).submit(rows, rows_of(rows))
        if isinstance(result, pd.DataFrame):
            predictions: Any = result.to_dict(orient="records")
        elif isinstance(result, pd.Series):
            predictions = result.to_numpy()
        else:
            predictions = result
        return json_response({"predictions": predictions}), rows, result

    return await Exchange(state, request, "predict", _error).run(name, None, handle)


def routes() -> list[Route]:
    return [
        Route("/predict", predict, methods=["POST"]),
        Route("/predict/{name}", predict, methods=["POST"]),
        Route("/invocations", predict, methods=["POST"]),  # MLflow scoring clients
    ]
