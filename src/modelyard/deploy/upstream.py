"""A variant served by another model server: ``http://host:port/NAME``.

The gateway treats an upstream like any loaded model: ``UpstreamModel`` has
``predict``/``predict_proba`` and a signature (rebuilt from the upstream's Open
Inference Protocol metadata), so requests are checked, micro-batched and measured
the same way; one batch is one upstream call (V2 tensors: one per column, or the
one tensor of a tensor model). Any server that speaks the V2 protocol works:
another ``modelyard serve``, KServe, MLServer, Triton.
"""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pandas as pd

from modelyard.core.errors import InvalidParameter, ModelyardError, ResourceNotFound
from modelyard.models.signature import FieldSpec, Signature
from modelyard.serving.tensors import DATATYPES, datatype_of

__all__ = ["UpstreamModel", "is_upstream", "upstream_version"]


def is_upstream(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def _split(url: str) -> tuple[str, str]:
    base, _, name = url.rstrip("/").rpartition("/")
    if not name or "://" not in base:
        raise InvalidParameter(
            f"Give an upstream model as http://HOST:PORT/MODEL_NAME, not {url!r}"
        )
    return base, name


def _metadata(url: str, timeout: float = 10.0) -> dict[str, Any]:
    base, name = _split(url)
    try:
        r = httpx.get(f"{base}/v2/models/{name}", timeout=timeout)
    except httpx.HTTPError as exc:
        raise ModelyardError(f"Upstream {url} is unreachable: {type(exc).__name__}: {exc}") from exc
    if r.status_code == 404:
        raise ResourceNotFound(f"Upstream {base} does not serve a model named {name!r}")
    if r.status_code != 200:
        raise ModelyardError(f"Upstream {url} answered {r.status_code}: {r.text[:200]}")
    return r.json()


def upstream_version(url: str) -> str:
    """The version the upstream serves now (its metadata's first version)."""
    versions = _metadata(url).get("versions") or ["upstream"]
    return str(versions[0])


def _signature(inputs: list[dict[str, Any]]) -> Signature | None:
    """Columns when every input is a [-1] vector, else a tensor signature."""
    if not inputs:
        return None

    def dtype(datatype: str) -> str:
        return "string" if datatype == "BYTES" else DATATYPES[datatype].name

    if all(list(i.get("shape") or [-1]) == [-1] for i in inputs):
        return Signature([FieldSpec(i["name"], dtype(i["datatype"])) for i in inputs])
    return Signature(
        [FieldSpec(i["name"], dtype(i["datatype"]), tuple(i["shape"])) for i in inputs],
        kind="tensor",
    )


class UpstreamModel:
    """The model ``NAME`` on the server at ``base``, called over HTTP."""

    flavor = "upstream"
    input_example = None

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.base, self.name = _split(self.url)
        meta = _metadata(self.url)
        self.version = str((meta.get("versions") or ["upstream"])[0])
        self.signature = _signature(meta.get("inputs") or [])
        self._outputs = [o["name"] for o in meta.get("outputs") or [{"name": "predict"}]]
        self._client = httpx.Client(timeout=timeout)

    def _infer(self, data: Any, output: str) -> np.ndarray:
        if isinstance(data, pd.DataFrame):
            tensors = [_tensor(str(c), data[c].to_numpy()) for c in data.columns]
        elif isinstance(data, dict):
            tensors = [_tensor(k, np.asarray(v)) for k, v in data.items()]
        else:
            array = np.asarray(data)
            name = self.signature.inputs[0].name if self.signature else "input"
            tensors = [_tensor(name, array)]
        body = {"inputs": tensors, "outputs": [{"name": output}]}
        try:
            r = self._client.post(f"{self.base}/v2/models/{self.name}/infer", json=body)
        except httpx.HTTPError as exc:
            raise ModelyardError(
                f"Upstream {self.url} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if r.status_code != 200:
            try:
                message = r.json().get("error", r.text)
            except ValueError:
                message = r.text
            raise ModelyardError(f"Upstream {self.url} answered {r.status_code}: {message}")
        out = r.json()["outputs"][0]
        array = np.asarray(out["data"], dtype=DATATYPES.get(out["datatype"], object))
        return array.reshape(out["shape"])

    def predict(self, data: Any) -> np.ndarray:
        return self._infer(data, "predict")

    @property
    def predict_proba(self):
        if "predict_proba" not in self._outputs:
            raise AttributeError("predict_proba")
        return lambda data: self._infer(data, "predict_proba")

    def close(self) -> None:
        self._client.close()


def _tensor(name: str, array: np.ndarray) -> dict[str, Any]:
    if array.dtype.kind in "OUS":
        datatype, data = "BYTES", [str(x) for x in array.ravel()]
    else:
        datatype, data = datatype_of(array.dtype), array.ravel().tolist()
    return {"name": name, "shape": list(array.shape), "datatype": datatype, "data": data}
