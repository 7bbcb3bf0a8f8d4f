"""The model server over the wire: ``modelyard serve`` in a subprocess, driven with
httpx and with the unmodified ``tritonclient.http`` client.

One server per module serves three registered models (``model_server``): ``churn``
(a LogisticRegression on 20 float columns, served by its alias), ``tensor_model``
(a LogisticRegression on a bare [n, 6] array) and ``boom`` (a custom model that
raises on a negative ``amount``), with a 0.01 MB body limit. A second server serves
churn alone (``/predict`` without a name, ``/invocations``, readiness while
loading); ``--workers 2`` gets a server of its own.

Covered: the Open Inference Protocol endpoints and their JSON shapes, tritonclient
(binary and JSON tensors, FP32 and FP64), bad input (status, message, no
traceback, server stays up), the plain JSON ``/predict`` forms, and ``/metrics``
parsed with ``prometheus_client``'s parser.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
import tritonclient.http as triton
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.utils import InferenceServerException

from infra.model_server import (  # noqa: F401 - fixtures
    FEATURES,
    TENSOR_WIDTH,
    ModelServer,
    TrainedModels,
    model_server,
    running_model_server,
    trained_models,
)

SERVED = "boom, churn, tensor_model"  # how error messages list the served models
LIMIT_BYTES = int(0.01 * 1024 * 1024)


# -- helpers -----------------------------------------------------------------------------
def tensor(name: str, data: Any, datatype: str = "FP64", shape: list[int] | None = None) -> dict:
    """A V2 JSON input tensor (flat row-major data)."""
    array = np.asarray(data)
    return {
        "name": name,
        "shape": list(array.shape) if shape is None else shape,
        "datatype": datatype,
        "data": array.ravel().tolist(),
    }


def rows(trained: TrainedModels, start: int, n: int) -> pd.DataFrame:
    return trained.frame.iloc[start : start + n].reset_index(drop=True)


def error_of(response: httpx.Response, status: int, key: str = "error") -> str:
    """The error message of a JSON error answer, after checking status and shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    assert "Traceback" not in response.text
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get(key), str), body
    return body[key]


def assert_still_serving(http: httpx.Client, trained: TrainedModels) -> None:
    """A good request right after a bad one is answered correctly."""
    df = rows(trained, 0, 2)
    r = http.post("/v2/models/churn/infer", json={"inputs": [tensor("input", df.to_numpy())]})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == trained.churn.predict(df).tolist()


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Every sample of ``GET /metrics``, parsed with prometheus_client's parser."""
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return sample(after, name, **labels) - sample(before, name, **labels)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name`` over every series whose labels include ``labels``."""
    return sum(
        v
        for (n, lbls), v in samples.items()
        if n == name and all(dict(lbls).get(k) == want for k, want in labels.items())
    )


# -- fixtures ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def http(model_server: ModelServer) -> Iterator[httpx.Client]:  # noqa: F811
    with httpx.Client(base_url=model_server.url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def tc(model_server: ModelServer) -> Iterator[triton.InferenceServerClient]:  # noqa: F811
    client = triton.InferenceServerClient(model_server.url.removeprefix("http://"))
    yield client
    client.close()


@pytest.fixture(scope="module")
def single_server(
    trained_models: TrainedModels,  # noqa: F811
) -> Iterator[tuple[ModelServer, dict[str, httpx.Response]]]:
    """churn alone, and what the server answered while it was still loading churn."""
    seen: dict[str, httpx.Response] = {}
    df = trained_models.frame.iloc[:1]

    def while_loading(server: ModelServer, answer: httpx.Response) -> None:
        seen["ready"] = answer
        with httpx.Client(base_url=server.url, timeout=10) as client:
            seen["live"] = client.get("/v2/health/live")
            seen["model_ready"] = client.get("/v2/models/churn/ready")
            seen["infer"] = client.post(
                "/v2/models/churn/infer", json={"inputs": [tensor("input", df.to_numpy())]}
            )
            seen["predict"] = client.post("/predict", json={"records": df.to_dict("records")})

    with running_model_server(
        trained_models,
        trained_models.root / "single.log",
        models={"churn": "models:/churn@production"},
        while_loading=while_loading,
    ) as server:
        yield server, seen


# -- tritonclient ------------------------------------------------------------------------
def test_tritonclient_health_and_metadata(tc: triton.InferenceServerClient) -> None:
    assert tc.is_server_live() and tc.is_server_ready()
    assert tc.is_model_ready("churn") and tc.is_model_ready("churn", "1")
    assert not tc.is_model_ready("churn", "2")
    assert not tc.is_model_ready("nosuch")

    server = tc.get_server_metadata()
    assert server["name"] == "modelyard" and server["version"]
    assert "binary_tensor_data" in server["extensions"]

    churn = tc.get_model_metadata("churn")
    assert churn["name"] == "churn" and churn["versions"] == ["1"]
    assert [(i["name"], i["datatype"], i["shape"]) for i in churn["inputs"]] == [
        (f, "FP64", [-1]) for f in FEATURES
    ]
    assert [o["name"] for o in churn["outputs"]] == ["predict", "predict_proba"]
    assert tc.get_model_metadata("churn", "1") == churn

    tensor_meta = tc.get_model_metadata("tensor_model")
    assert tensor_meta["inputs"] == [
        {"name": "input", "datatype": "FP64", "shape": [-1, TENSOR_WIDTH]}
    ]
    boom = tc.get_model_metadata("boom")
    assert [o["name"] for o in boom["outputs"]] == ["predict"]  # no predict_proba

    index = tc.get_model_repository_index()
    assert sorted((m["name"], m["version"], m["state"]) for m in index) == [
        ("boom", "1", "READY"),
        ("churn", "1", "READY"),
        ("tensor_model", "1", "READY"),
    ]
    with pytest.raises(InferenceServerException) as exc:
        tc.get_model_metadata("nosuch")
    assert str(exc.value.status()) == "404" and SERVED in exc.value.message()


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_tritonclient_infer_matches_local_predictions(
    tc: triton.InferenceServerClient,
    trained_models: TrainedModels,  # noqa: F811
    datatype: str,
    binary: bool,
) -> None:
    dtype = np.float32 if datatype == "FP32" else np.float64
    df = rows(trained_models, 10, 16)
    sent = df.to_numpy().astype(dtype)
    local_input = pd.DataFrame(sent.astype(np.float64), columns=FEATURES)
    want = trained_models.churn.predict(local_input)
    want_proba = trained_models.churn.predict_proba(local_input)
    for requested in (None, ["predict"], ["predict_proba"], ["predict", "predict_proba"]):
        inp = triton.InferInput("input", list(sent.shape), datatype)
        inp.set_data_from_numpy(sent, binary_data=binary)
        outputs = (
            None
            if requested is None
            else [triton.InferRequestedOutput(n, binary_data=binary) for n in requested]
        )
        result = tc.infer("churn", [inp], outputs=outputs, request_id=f"req-{datatype}")
        response = result.get_response()
        assert response["model_name"] == "churn" and response["model_version"] == "1"
        assert response["id"] == f"req-{datatype}"
        names = requested or ["predict"]
        assert [o["name"] for o in response["outputs"]] == names
        if "predict" in names:
            np.testing.assert_array_equal(result.as_numpy("predict"), want)
        if "predict_proba" in names:
            proba = result.as_numpy("predict_proba")
            assert proba.shape == (16, 2)
            np.testing.assert_allclose(proba, want_proba, rtol=1e-12)


def test_tritonclient_one_tensor_per_column(
    tc: triton.InferenceServerClient,
    trained_models: TrainedModels,  # noqa: F811
) -> None:
    df = rows(trained_models, 40, 7)
    inputs = []
    for column in FEATURES:
        inp = triton.InferInput(column, [len(df)], "FP64")
        inp.set_data_from_numpy(df[column].to_numpy())
        inputs.append(inp)
    result = tc.infer("churn", inputs, model_version="1")
    np.testing.assert_array_equal(result.as_numpy("predict"), trained_models.churn.predict(df))


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_tensor_model(
    tc: triton.InferenceServerClient,
    trained_models: TrainedModels,  # noqa: F811
    binary: bool,
) -> None:
    matrix = trained_models.matrix[:9]
    inp = triton.InferInput("input", list(matrix.shape), "FP64")
    inp.set_data_from_numpy(matrix, binary_data=binary)
    outputs = [
        triton.InferRequestedOutput("predict", binary_data=binary),
        triton.InferRequestedOutput("predict_proba", binary_data=binary),
    ]
    result = tc.infer("tensor_model", [inp], outputs=outputs)
    np.testing.assert_array_equal(result.as_numpy("predict"), trained_models.tensor.predict(matrix))
    np.testing.assert_allclose(
        result.as_numpy("predict_proba"), trained_models.tensor.predict_proba(matrix), rtol=1e-12
    )


def test_tritonclient_sees_errors_as_exceptions(
    tc: triton.InferenceServerClient,
    trained_models: TrainedModels,  # noqa: F811
) -> None:
    inp = triton.InferInput("input", [1, 19], "FP64")
    inp.set_data_from_numpy(trained_models.frame.iloc[:1, :19].to_numpy())
    with pytest.raises(InferenceServerException) as exc:
        tc.infer("churn", [inp])
    assert str(exc.value.status()) == "400"
    assert "[1, 19]" in exc.value.message() and "20 columns" in exc.value.message()
    with pytest.raises(InferenceServerException) as exc:
        tc.infer("nosuch", [inp])
    assert str(exc.value.status()) == "404" and SERVED in exc.value.message()


# -- core endpoints, JSON shapes ---------------------------------------------------------
def test_health_and_server_metadata(http: httpx.Client) -> None:
    live = http.get("/v2/health/live")
    assert (live.status_code, live.json()) == (200, {"live": True})
    ready = http.get("/v2/health/ready")
    assert (ready.status_code, ready.json()) == (200, {"ready": True})
    meta = http.get("/v2")
    assert meta.status_code == 200
    body = meta.json()
    assert set(body) == {"name", "version", "extensions"}
    assert body["name"] == "modelyard" and isinstance(body["version"], str)
    assert isinstance(body["extensions"], list)


@pytest.mark.parametrize("base", ["/v2/models/churn", "/v2/models/churn/versions/1"])
def test_model_metadata_and_readiness(http: httpx.Client, base: str) -> None:
    meta = http.get(base)
    assert meta.status_code == 200
    body = meta.json()
    assert {"name", "versions", "platform", "inputs", "outputs"} <= set(body)
    assert body["name"] == "churn" and body["versions"] == ["1"]
    for item in body["inputs"] + body["outputs"]:
        assert set(item) == {"name", "datatype", "shape"}
    assert body["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]},
        {"name": "predict_proba", "datatype": "FP64", "shape": [-1, -1]},
    ]
    ready = http.get(f"{base}/ready")
    assert (ready.status_code, ready.json()) == (200, {"name": "churn", "ready": True})


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/models/churn/versions/2"),
        ("GET", "/v2/models/churn/versions/2/ready"),
        ("POST", "/v2/models/churn/versions/2/infer"),
    ],
)
def test_unknown_version_is_404(
    http: httpx.Client,
    trained_models: TrainedModels,  # noqa: F811
    method: str,
    path: str,
) -> None:
    body = {"inputs": [tensor("input", rows(trained_models, 0, 1).to_numpy())]}
    response = http.request(method, path, json=body if method == "POST" else None)
    message = error_of(response, 404)
    assert "version 2" in message and "serving version 1" in message


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/models/nosuch"),
        ("GET", "/v2/models/nosuch/ready"),
        ("GET", "/v2/models/nosuch/versions/1"),
        ("POST", "/v2/models/nosuch/infer"),
    ],
)
def test_unknown_model_is_404_naming_the_served_models(
    http: httpx.Client, method: str, path: str
) -> None:
    body = {"inputs": [tensor("amount", [1.0])]}
    response = http.request(method, path, json=body if method == "POST" else None)
    message = error_of(response, 404)
    assert "'nosuch'" in message and SERVED in message


def test_infer_json_shape_headers_and_id(
    http: httpx.Client,
    trained_models: TrainedModels,  # noqa: F811
) -> None:
    df = rows(trained_models, 3, 4)
    inputs = [tensor("input", df.to_numpy())]
    r = http.post("/v2/models/churn/infer", json={"id": "my-request-7", "inputs": inputs})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) <= {"model_name", "model_version", "id", "parameters", "outputs"}
    assert (body["model_name"], body["model_version"], body["id"]) == ("churn", "1", "my-request-7")
    assert body["outputs"] == [
        {
            "name": "predict",
            "shape": [4],
            "datatype": "INT64",
            "data": trained_models.churn.predict(df).tolist(),
        }
    ]
    assert r.headers["x-model-name"] == "churn" and r.headers["x-model-version"] == "1"
    assert r.headers["x-request-id"]

    # no id: the answer carries one, the same as the x-request-id header
    r = http.post("/v2/models/churn/infer", json={"inputs": inputs})
    assert r.json()["id"] == r.headers["x-request-id"]
    # a caller's x-request-id is kept
    r = http.post(
        "/v2/models/churn/infer", json={"inputs": inputs}, headers={"x-request-id": "trace-42"}
    )
    assert r.headers["x-request-id"] == "trace-42" and r.json()["id"] == "trace-42"


def test_infer_output_selection_and_data_layouts(
    http: httpx.Client,
    trained_models: TrainedModels,  # noqa: F811
) -> None:
    df = rows(trained_models, 20, 5)
    nested = {"name": "input", "shape": [5, 20], "datatype": "FP64", "data": df.to_numpy().tolist()}
    r = http.post(
        "/v2/models/churn/infer",
        json={"inputs": [nested], "outputs": [{"name": "predict_proba"}]},
    )
    assert r.status_code == 200, r.text
    (out,) = r.json()["outputs"]
    assert (out["name"], out["shape"], out["datatype"]) == ("predict_proba", [5, 2], "FP64")
    proba = np.asarray(out["data"]).reshape(5, 2)
    np.testing.assert_allclose(proba, trained_models.churn.predict_proba(df), rtol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)

    per_column = [tensor(c, df[c].to_numpy()) for c in FEATURES]
    r = http.post(
        "/v2/models/churn/infer",
        json={"inputs": per_column, "outputs": [{"name": "predict"}, {"name": "predict_proba"}]},
    )
    assert [o["name"] for o in r.json()["outputs"]] == ["predict", "predict_proba"]
    assert r.json()["outputs"][0]["data"] == trained_models.churn.predict(df).tolist()

    r = http.post(
        "/v2/models/tensor_model/infer",
        json={"inputs": [tensor("input", trained_models.matrix[:3])]},
    )
    assert (
        r.json()["outputs"][0]["data"]
        == trained_models.tensor.predict(trained_models.matrix[:3]).tolist()
    )


def test_concurrent_requests_each_get_their_own_rows(
    model_server: ModelServer,  # noqa: F811
    trained_models: TrainedModels,  # noqa: F811
) -> None:
    pieces = [rows(trained_models, 5 * i, 1 + i % 3) for i in range(24)]

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=model_server.url, timeout=10) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        "/v2/models/churn/infer",
                        json={"id": str(i), "inputs": [tensor("input", df.to_numpy())]},
                    )
                    for i, df in enumerate(pieces)
                )
            )

    for i, (df, r) in enumerate(zip(pieces, asyncio.run(main()), strict=True)):
        assert r.status_code == 200, r.text
        assert r.json()["id"] == str(i)
        assert r.json()["outputs"][0]["data"] == trained_models.churn.predict(df).tolist()


# -- bad input ---------------------------------------------------------------------------
ROW = [0.5] * 20
GOOD = tensor("input", [ROW])


def _json(doc: Any, **headers: str) -> dict:
    return {
        "content": orjson.dumps(doc),
        "headers": {"content-type": "application/json", **headers},
    }


def _raw(body: bytes) -> dict:
    return {"content": body, "headers": {"content-type": "application/json"}}


BAD_V2: list[tuple[str, str, dict, list[str]]] = [
    # (id, model, request, fragments the message must contain); all answer 400
    (
        "wrong-shape",
        "churn",
        _json({"inputs": [tensor("input", [ROW[:19]])]}),
        ["[1, 19]", "20 columns", "[rows, 20]"],
    ),
    (
        "bytes-for-float-model",
        "churn",
        _json({"inputs": [tensor("input", [["a"] * 20], "BYTES")]}),
        ["got str", "expected float64"],
    ),
    (
        "int-with-fractional-values",
        "churn",
        _json({"inputs": [tensor("input", [ROW], "INT64")]}),
        ["INT64", "fractional"],
    ),
    (
        "missing-column",
        "churn",
        _json({"inputs": [tensor(c, [0.5]) for c in FEATURES[:19]]}),
        ["f0, f1, f2", "missing: f19", "[rows, 20]"],
    ),
    (
        "shape-data-size-mismatch",
        "churn",
        _json({"inputs": [tensor("input", ROW, shape=[2, 20])]}),
        ["shape holds 40 values but data has 20"],
    ),
    (
        "column-lengths-differ",
        "churn",
        _json({"inputs": [tensor(c, [0.5] * (2 if c == "f3" else 1)) for c in FEATURES]}),
        ["differ in length"],
    ),
    (
        "unknown-datatype",
        "churn",
        _json({"inputs": [{**GOOD, "datatype": "FLOAT"}]}),
        ["'FLOAT'", "FP32"],
    ),
    (
        "no-data",
        "churn",
        _json({"inputs": [{k: v for k, v in GOOD.items() if k != "data"}]}),
        ["no 'data'"],
    ),
    ("malformed-json", "churn", _raw(b'{"inputs": [{"name": '), ["not valid JSON"]),
    ("non-utf8", "churn", _raw(b'{"inputs": "\xff\xfe"}'), ["not valid UTF-8"]),
    ("not-an-object", "churn", _json([GOOD]), ["JSON object"]),
    ("empty-inputs", "churn", _json({"inputs": []}), ["non-empty 'inputs'"]),
    ("no-inputs", "churn", _json({"id": "x"}), ["non-empty 'inputs'"]),
    (
        "unknown-output",
        "churn",
        _json({"inputs": [GOOD], "outputs": [{"name": "nope"}]}),
        ["'nope'", "predict, predict_proba"],
    ),
    (
        "no-proba-output",
        "boom",
        _json({"inputs": [tensor("amount", [1.0])], "outputs": [{"name": "predict_proba"}]}),
        ["'predict_proba'", "it has: predict"],
    ),
    (
        "outputs-not-a-list",
        "churn",
        _json({"inputs": [GOOD], "outputs": "predict"}),
        ["'outputs' must be a list"],
    ),
    (
        "header-length-not-a-number",
        "churn",
        _json({"inputs": [GOOD]}, **{"inference-header-content-length": "many"}),
        ["Inference-Header-Content-Length", "'many'"],
    ),
    (
        "binary-size-past-the-end",
        "churn",
        _json(
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [1, 20],
                        "datatype": "FP64",
                        "parameters": {"binary_data_size": 160},
                    }
                ]
            }
        ),
        ["binary_data_size 160 runs past the end"],
    ),
    (
        "tensor-wrong-width",
        "tensor_model",
        _json({"inputs": [tensor("input", [[0.5] * 5])]}),
        ["(1, 5)", "(-1, 6)"],
    ),
    (
        "tensor-bytes",
        "tensor_model",
        _json({"inputs": [tensor("input", [["x"] * 6], "BYTES")]}),
        ["expects float64"],
    ),
]


@pytest.mark.parametrize(
    ("model", "request_kw", "fragments"),
    [case[1:] for case in BAD_V2],
    ids=[case[0] for case in BAD_V2],
)
def test_bad_v2_request_is_400_with_a_clear_message(
    http: httpx.Client,
    trained_models: TrainedModels,  # noqa: F811
    model: str,
    request_kw: dict,
    fragments: list[str],
) -> None:
    r = http.post(f"/v2/models/{model}/infer", **request_kw)
    message = error_of(r, 400)
    for fragment in fragments:
        assert fragment in message, message
    assert r.headers["x-request-id"] and r.headers["x-model-name"] == model
    assert_still_serving(http, trained_models)


def test_an_empty_batch_is_bad_input_not_a_model_failure(
    http: httpx.Client,
    trained_models: TrainedModels,  # noqa: F811
) -> None:
    """Zero rows as one [0, 20] tensor: /predict and the per-column form say "No rows
    to predict" (400); the [rows, 20] form must too, not call the model (500)."""
    per_column = [tensor(c, [], shape=[0]) for c in FEATURES]
    message = error_of(http.post("/v2/models/churn/infer", json={"inputs": per_column}), 400)
    assert "No rows" in message
    r = http.post("/v2/models/churn/infer", json={"inputs": [tensor("input", [], shape=[0, 20])]})
    assert "No rows" in error_of(r, 400)
    assert_still_serving(http, trained_models)


@pytest.mark.parametrize(
    ("datatype", "value"),
    [("INT8", 1000), ("UINT8", -1), ("FP32", 1e300)],
    ids=["int8-overflow", "uint8-negative", "fp32-overflow"],
)
def test_values_that_do_not_fit_the_datatype_are_refused(
    http: httpx.Client,
    trained_models: TrainedModels,  # noqa: F811
    datatype: str,
    value: float,
) -> None:
    """A value outside the declared datatype's range is the caller's mistake: 400,
    never a silently wrapped number (1000 as INT8 is -24) or an inf the model chokes on."""
    body = {"inputs": [tensor("input", [[value] * TENSOR_WIDTH], datatype)]}
    message = error_of(http.post("/v2/models/tensor_model/infer", json=body), 400)
    assert datatype in message
    assert_still_serving(http, trained_models)


def test_body_over_the_limit_is_413(
    http: httpx.Client,
    trained_models: TrainedModels,  # noqa: F811
) -> None:
    big = {"inputs": [tensor("input", trained_models.frame.iloc[:200].to_numpy())]}
    assert len(orjson.dumps(big)) > LIMIT_BYTES
    message = error_of(http.post("/v2/models/churn/infer", json=big), 413)
    assert str(LIMIT_BYTES) in message

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is met while reading
        for _ in range(20):
            yield b" " * 1024

    message = error_of(http.post("/v2/models/churn/infer", content=chunks()), 413)
    assert str(LIMIT_BYTES) in message

    records = {"records": trained_models.frame.iloc[:200].to_dict("records")}
    r = http.post("/predict/churn", json=records)
    assert error_of(r, 413, key="message") and r.json()["error_code"] == "REQUEST_TOO_LARGE"
    assert_still_serving(http, trained_models)


def test_a_model_that_raises_is_500_with_its_message(
    http: httpx.Client,
    trained_models: TrainedModels,  # noqa: F811
) -> None:
    bad = {"inputs": [tensor("amount", [3.0, -1.0])]}
    message = error_of(http.post("/v2/models/boom/infer", json=bad), 500)
    assert "boom: negative amount" in message

    r = http.post("/predict/boom", json={"records": [{"amount": -5.0}]})
    assert "boom: negative amount" in error_of(r, 500, key="message")
    assert r.json()["error_code"] == "MODEL_ERROR"

    good = http.post("/v2/models/boom/infer", json={"inputs": [tensor("amount", [3.0, 4.5])]})
    assert good.status_code == 200 and good.json()["outputs"][0]["data"] == [6.0, 9.0]
    assert_still_serving(http, trained_models)


def test_a_failing_request_fails_alone_in_its_batch(
    model_server: ModelServer,  # noqa: F811
) -> None:
    amounts = [[float(i)] for i in range(1, 12)]
    amounts[5] = [-1.0]

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=model_server.url, timeout=10) as client:
            return await asyncio.gather(
                *(
                    client.post("/v2/models/boom/infer", json={"inputs": [tensor("amount", a)]})
                    for a in amounts
                )
            )

    for a, r in zip(amounts, asyncio.run(main()), strict=True):
        if a[0] < 0:
            assert "boom: negative amount" in error_of(r, 500)
        else:
            assert r.status_code == 200, r.text
            assert r.json()["outputs"][0]["data"] == [2 * a[0]]


# -- plain JSON /predict -----------------------------------------------------------------
PREDICT_FORMS: dict[str, Callable[[pd.DataFrame], Any]] = {
    "records": lambda df: {"records": df.to_dict("records")},
    "dataframe_records": lambda df: {"dataframe_records": df.to_dict("records")},
    "columns": lambda df: {"columns": df.to_dict("list")},
    "dataframe_split": lambda df: {
        "dataframe_split": {"columns": list(df.columns), "data": df.to_numpy().tolist()}
    },
    "inputs-list-of-lists": lambda df: {"inputs": df.to_numpy().tolist()},
    "inputs-columns": lambda df: {"inputs": df.to_dict("list")},
    "instances": lambda df: {"instances": df.to_numpy().tolist()},
    "bare-records": lambda df: df.to_dict("records"),
}


@pytest.mark.parametrize("form", list(PREDICT_FORMS))
def test_predict_forms(
    http: httpx.Client,
    trained_models: TrainedModels,  # noqa: F811
    form: str,
) -> None:
    df = rows(trained_models, 60, 5)
    r = http.post("/predict/churn", json=PREDICT_FORMS[form](df))
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": trained_models.churn.predict(df).tolist()}
    assert r.headers["x-model-name"] == "churn" and r.headers["x-request-id"]


def test_predict_probabilities(
    http: httpx.Client,
    trained_models: TrainedModels,  # noqa: F811
) -> None:
    df = rows(trained_models, 70, 4)
    r = http.post("/predict/churn", params={"proba": "true"}, json={"inputs": df.values.tolist()})
    proba = np.asarray(r.json()["predictions"])
    assert proba.shape == (4, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba, trained_models.churn.predict_proba(df), rtol=1e-12)

    matrix = trained_models.matrix[:3]
    r = http.post("/predict/tensor_model?proba=true", json={"inputs": matrix.tolist()})
    np.testing.assert_allclose(
        r.json()["predictions"], trained_models.tensor.predict_proba(matrix), rtol=1e-12
    )


BAD_PREDICT: list[tuple[str, str, dict, int, str, list[str]]] = [
    # (id, model, request, status, error_code, fragments)
    (
        "missing-column",
        "churn",
        _json({"records": [{f"f{i}": 0.5 for i in range(20) if i != 3}]}),
        400,
        "INVALID_PARAMETER_VALUE",
        ["'f3'", "f0, f1, f2, f3"],
    ),
    (
        "text-for-float",
        "churn",
        _json({"records": [{**{f: 0.5 for f in FEATURES}, "f7": "high"}]}),
        400,
        "INVALID_PARAMETER_VALUE",
        ["'f7'", "float64"],
    ),
    (
        "row-too-short",
        "churn",
        _json({"inputs": [ROW[:19]]}),
        400,
        "INVALID_PARAMETER_VALUE",
        ["20 values", "got 19"],
    ),
    (
        "no-rows",
        "churn",
        _json({"records": []}),
        400,
        "INVALID_PARAMETER_VALUE",
        ["No rows"],
    ),
    (
        "unknown-form",
        "churn",
        _json({"rows": [ROW]}),
        400,
        "INVALID_PARAMETER_VALUE",
        ["'records'", "'dataframe_split'"],
    ),
    ("malformed-json", "churn", _raw(b"{nope"), 400, "INVALID_PARAMETER_VALUE", ["JSON"]),
    ("non-utf8", "churn", _raw(b"\xff\xfe"), 400, "INVALID_PARAMETER_VALUE", ["UTF-8"]),
    (
        "unknown-model",
        "nosuch",
        _json({"records": [{"amount": 1.0}]}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
        ["'nosuch'", SERVED],
    ),
]


@pytest.mark.parametrize(
    ("model", "request_kw", "status", "code", "fragments"),
    [case[1:] for case in BAD_PREDICT],
    ids=[case[0] for case in BAD_PREDICT],
)
def test_bad_predict_request(
    http: httpx.Client,
    trained_models: TrainedModels,  # noqa: F811
    model: str,
    request_kw: dict,
    status: int,
    code: str,
    fragments: list[str],
) -> None:
    r = http.post(f"/predict/{model}", **request_kw)
    message = error_of(r, status, key="message")
    assert r.json()["error_code"] == code
    for fragment in fragments:
        assert fragment in message, message
    assert_still_serving(http, trained_models)


@pytest.mark.parametrize("path", ["/predict", "/invocations"])
def test_predict_without_a_name_on_a_multi_model_server(
    http: httpx.Client,
    trained_models: TrainedModels,  # noqa: F811
    path: str,
) -> None:
    records = {"dataframe_records": rows(trained_models, 0, 1).to_dict("records")}
    message = error_of(http.post(path, json=records), 400, key="message")
    assert "/predict/<name>" in message and "churn" in message and "boom" in message


def test_predict_without_a_name_is_answered_like_every_inference_request(
    model_server: ModelServer,  # noqa: F811
    http: httpx.Client,
    trained_models: TrainedModels,  # noqa: F811
) -> None:
    """The 400 for /predict without a name is an inference answer like the others: it
    carries x-request-id and is counted in modelyard_requests_total / _errors_total."""
    records = {"records": rows(trained_models, 0, 1).to_dict("records")}
    before = scrape(model_server.url)
    r = http.post("/predict", json=records, headers={"x-request-id": "no-name-1"})
    after = scrape(model_server.url)
    assert r.status_code == 400
    assert r.headers.get("x-request-id") == "no-name-1"
    assert (
        delta(
            before,
            after,
            "modelyard_requests_total",
            model="",
            version="",
            endpoint="predict",
            status="4xx",
        )
        == 1
    )
    assert delta(before, after, "modelyard_errors_total", model="", kind="invalid_input") == 1


# -- one model served: /predict without a name, /invocations, readiness ------------------
def test_single_model_predict_and_invocations(
    single_server: tuple[ModelServer, dict],
    trained_models: TrainedModels,  # noqa: F811
) -> None:
    server, _ = single_server
    df = rows(trained_models, 80, 6)
    want = {"predictions": trained_models.churn.predict(df).tolist()}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.post("/predict", json={"records": df.to_dict("records")}).json() == want
        # MLflow scoring clients: POST /invocations with a pandas payload
        for body in (
            {"dataframe_records": df.to_dict("records")},
            {"dataframe_split": df.to_dict("split") | {"index": list(range(len(df)))}},
            {"inputs": df.to_numpy().tolist()},
        ):
            r = client.post("/invocations", json=body)
            assert r.status_code == 200, r.text
            assert r.json() == want
        records = {"dataframe_records": df.to_dict("records")}
        r = client.post("/invocations", params={"proba": "true"}, json=records)
        np.testing.assert_allclose(np.asarray(r.json()["predictions"]).sum(axis=1), 1.0)


def test_not_ready_while_loading(single_server: tuple[ModelServer, dict]) -> None:
    """While its model loads, the server is live but not ready: 400 {"ready": false};
    requests for the model get 503 with Retry-After."""
    _, seen = single_server
    assert seen, "the server was never seen loading"
    ready = seen["ready"]
    assert ready.status_code == 400
    body = ready.json()
    assert body["ready"] is False and isinstance(body["error"], str) and body["error"]
    assert (seen["live"].status_code, seen["live"].json()) == (200, {"live": True})
    # the model may have finished loading while these were sent: check what says not ready
    if seen["model_ready"].status_code != 200:
        model_ready = seen["model_ready"]
        assert (model_ready.status_code, model_ready.json()) == (
            400,
            {"name": "churn", "ready": False},
        )
    if seen["infer"].status_code != 200:
        assert "not loaded yet" in error_of(seen["infer"], 503)
        assert seen["infer"].headers["retry-after"]
    if seen["predict"].status_code != 200:
        assert "not loaded yet" in error_of(seen["predict"], 503, key="message")
        assert seen["predict"].json()["error_code"] == "TEMPORARILY_UNAVAILABLE"


# -- /metrics ----------------------------------------------------------------------------
def test_metrics_count_requests_errors_latency_and_batches(
    model_server: ModelServer,  # noqa: F811
    http: httpx.Client,
    trained_models: TrainedModels,  # noqa: F811
) -> None:
    """A known mix of good and bad requests moves each series by exactly that much."""
    infer = "/v2/models/churn/infer"
    before = scrape(model_server.url)
    churn_rows = 0
    for start, n in ((0, 1), (1, 4), (5, 10)):  # 3 good v2 requests, 15 rows
        r = http.post(infer, json={"inputs": [tensor("input", rows(trained_models, start, n))]})
        assert r.status_code == 200
        churn_rows += n
    for n in (2, 3):  # 2 good /predict requests, 5 rows
        df = rows(trained_models, 30, n)
        assert http.post("/predict/churn", json={"records": df.to_dict("records")}).is_success
        churn_rows += n
    for _ in range(2):  # 2 invalid v2 requests
        r = http.post(infer, json={"inputs": [tensor("input", [ROW[:19]])]})
        assert r.status_code == 400
    assert http.post("/predict/churn", json={"records": [{"f0": 1.0}]}).status_code == 400
    big = {"inputs": [tensor("input", trained_models.frame.iloc[:200].to_numpy())]}
    assert http.post(infer, json=big).status_code == 413
    boom = "/v2/models/boom/infer"
    assert http.post(boom, json={"inputs": [tensor("amount", [1.0, 2.0])]}).status_code == 200
    assert http.post(boom, json={"inputs": [tensor("amount", [-1.0])]}).status_code == 500
    for name in ("nosuch-a1", "nosuch-b2"):
        assert http.post(f"/v2/models/{name}/infer", json={"inputs": [GOOD]}).status_code == 404
    assert http.post("/predict/nosuch-c3", json={"records": [{}]}).status_code == 404
    after = scrape(model_server.url)

    expected_requests = {
        ("churn", "1", "v2/infer", "2xx"): 3,
        ("churn", "1", "v2/infer", "4xx"): 3,  # 2 invalid + 1 too large
        ("churn", "1", "predict", "2xx"): 2,
        ("churn", "1", "predict", "4xx"): 1,
        ("boom", "1", "v2/infer", "2xx"): 1,
        ("boom", "1", "v2/infer", "5xx"): 1,
        ("", "", "v2/infer", "4xx"): 2,  # unknown names are counted under model=""
        ("", "", "predict", "4xx"): 1,
    }
    for (model, version, endpoint, status), count in expected_requests.items():
        labels = {"model": model, "version": version, "endpoint": endpoint, "status": status}
        assert delta(before, after, "modelyard_requests_total", **labels) == count, labels
        assert (
            delta(before, after, "modelyard_request_duration_seconds_count", **labels) == count
        ), labels
        assert (
            delta(before, after, "modelyard_request_duration_seconds_bucket", le="+Inf", **labels)
            == count
        ), labels
    assert total(after, "modelyard_requests_total") - total(
        before, "modelyard_requests_total"
    ) == sum(expected_requests.values())

    expected_errors = {
        ("churn", "invalid_input"): 3,
        ("churn", "too_large"): 1,
        ("boom", "model_error"): 1,
        ("", "not_found"): 3,
    }
    for (model, kind), count in expected_errors.items():
        got = delta(before, after, "modelyard_errors_total", model=model, kind=kind)
        assert got == count, (model, kind)
    assert total(after, "modelyard_errors_total") - total(before, "modelyard_errors_total") == sum(
        expected_errors.values()
    )

    # one model call per request (they were sent one after another)
    batches = {"model": "churn", "version": "1"}
    assert delta(before, after, "modelyard_batch_size_rows_sum", **batches) == churn_rows
    assert delta(before, after, "modelyard_batch_size_rows_count", **batches) == 5


def test_metrics_gauges_at_rest(model_server: ModelServer) -> None:  # noqa: F811
    samples = scrape(model_server.url)
    for model in ("churn", "tensor_model", "boom"):
        assert ("modelyard_requests_in_flight", (("model", model),)) in samples
        assert sample(samples, "modelyard_requests_in_flight", model=model) == 0
        assert sample(samples, "modelyard_model_load_seconds", model=model, version="1") > 0
        assert sample(samples, "modelyard_model_serving", model=model, version="1") == 1
    serving = {
        dict(labels)["model"]: v
        for (name, labels), v in samples.items()
        if name == "modelyard_model_serving"
    }
    assert serving == {"churn": 1, "tensor_model": 1, "boom": 1}


def test_unknown_model_names_create_no_series(
    model_server: ModelServer,  # noqa: F811
    http: httpx.Client,
) -> None:
    names = [f"scan-{i:03d}" for i in range(5)]
    for name in names:
        assert http.post(f"/v2/models/{name}/infer", json={"inputs": [GOOD]}).status_code == 404
        assert http.get(f"/v2/models/{name}").status_code == 404
        assert http.post(f"/predict/{name}", json={"records": [{}]}).status_code == 404
    text = httpx.get(f"{model_server.url}/metrics").text
    assert not any(name in text for name in names)
    models = {
        labels.get("model")
        for family in text_string_to_metric_families(text)
        for labels in (s.labels for s in family.samples)
        if "model" in labels
    }
    assert models == {"", "churn", "tensor_model", "boom"}


def test_metrics_content_type(model_server: ModelServer) -> None:  # noqa: F811
    r = httpx.get(f"{model_server.url}/metrics")
    media_type, *params = (p.strip() for p in r.headers["content-type"].split(";"))
    assert media_type == "text/plain"
    assert "charset=utf-8" in params
    assert list(text_string_to_metric_families(r.text))  # it parses


def test_metrics_answer_prometheus_text_format_0_0_4(model_server: ModelServer) -> None:  # noqa: F811
    """PROTOCOLS.md: ``GET /metrics`` answers ``text/plain; version=0.0.4``, by default
    and when the scraper asks for exactly that format."""
    for headers in ({}, {"accept": "text/plain;version=0.0.4;q=1,*/*;q=0.1"}):
        r = httpx.get(f"{model_server.url}/metrics", headers=headers)
        params = {p.strip() for p in r.headers["content-type"].split(";")}
        assert "version=0.0.4" in params, r.headers["content-type"]


# -- several worker processes ------------------------------------------------------------
def test_two_workers_serve_and_merge_their_metrics(
    trained_models: TrainedModels,  # noqa: F811
) -> None:
    df = rows(trained_models, 100, 2)
    want = trained_models.churn.predict(df).tolist()
    body = {"records": df.to_dict("records")}
    with running_model_server(
        trained_models,
        trained_models.root / "workers.log",
        "--workers",
        "2",
        models={"churn": "models:/churn@production"},
    ) as server:
        # each worker loads its own copy: wait until fresh connections all find one ready
        deadline, streak = time.monotonic() + 30, 0
        while streak < 10 and time.monotonic() < deadline:
            ok = httpx.get(f"{server.url}/v2/health/ready").status_code == 200
            streak = streak + 1 if ok else 0
        assert streak == 10, server.log()[-2000:]

        sent = 0
        for _ in range(3):
            for _ in range(8):  # a new connection each: the workers share them out
                r = httpx.post(f"{server.url}/predict", json=body)
                assert r.status_code == 200, r.text
                assert r.json()["predictions"] == want
                sent += 1
            with httpx.Client(base_url=server.url) as client:  # and keep-alive ones
                for _ in range(4):
                    assert client.post("/predict", json=body).json()["predictions"] == want
                    sent += 1
            samples = scrape(server.url)
            assert total(samples, "modelyard_requests_total") == sent
            assert total(samples, "modelyard_requests_total", status="2xx") == sent
            assert sample(samples, "modelyard_batch_size_rows_sum", model="churn", version="1") == (
                2 * sent
            )
        assert sample(samples, "modelyard_model_serving", model="churn", version="1") == 1
        assert sample(samples, "modelyard_requests_in_flight", model="churn") == 0
        started = time.monotonic()
        code = server.stop()
        assert time.monotonic() - started < 10
        assert code in (0, -signal.SIGTERM)
        assert "Traceback" not in server.log()
