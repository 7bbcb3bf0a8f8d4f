"""Open Inference Protocol tensors: JSON (and Triton's binary extension) <-> numpy.

A V2 request carries ``inputs``, each ``{name, shape, datatype, data}`` where
``data`` is a flat or nested row-major list, or, with the binary tensor extension
(what ``tritonclient.http`` sends by default), ``parameters.binary_data_size`` bytes
that follow the JSON header in the body (``Inference-Header-Content-Length`` says
where the JSON ends). Responses mirror that: JSON ``data`` unless the caller asked
for binary outputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from modelyard.core.errors import InvalidParameter

__all__ = [
    "DATATYPES",
    "InferInput",
    "InferRequest",
    "datatype_of",
    "encode_outputs",
    "parse_infer_request",
    "parse_json",
]

DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
_BY_DTYPE = {dt: name for name, dt in DATATYPES.items() if name != "BYTES"}


def datatype_of(dtype: Any) -> str:
    """The V2 datatype name of a numpy/pandas dtype (text and objects are BYTES)."""
    dtype = getattr(dtype, "numpy_dtype", dtype)
    try:
        return _BY_DTYPE.get(np.dtype(dtype), "BYTES")
    except TypeError:
        return "BYTES"


@dataclass
class InferInput:
    name: str
    datatype: str
    shape: tuple[int, ...]
    array: np.ndarray


@dataclass
class InferRequest:
    inputs: list[InferInput]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    outputs: list[dict[str, Any]] | None = None

    @property
    def binary_output(self) -> bool:
        return bool(self.parameters.get("binary_data_output"))


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "utf-8" in str(exc).lower():
            raise InvalidParameter("Request body is not valid UTF-8") from None
        raise InvalidParameter(f"Request body is not valid JSON: {exc}") from None


def parse_infer_request(body: bytes, header_length: str | None = None) -> InferRequest:
    """Decode a V2 infer request body into numpy arrays (shapes and sizes checked)."""
    binary = b""
    if header_length is not None:
        try:
            split = int(header_length)
        except ValueError:
            raise InvalidParameter(
                f"Inference-Header-Content-Length must be an integer, got {header_length!r}"
            ) from None
        if not 0 < split <= len(body):
            raise InvalidParameter(
                f"Inference-Header-Content-Length {split} is outside the body ({len(body)} bytes)"
            )
        body, binary = body[:split], body[split:]
    doc = parse_json(body)
    if not isinstance(doc, dict):
        raise InvalidParameter("An inference request is a JSON object with an 'inputs' list")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InvalidParameter("An inference request needs a non-empty 'inputs' list")
    parameters = doc.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidParameter("'parameters' must be an object")
    outputs = doc.get("outputs")
    if outputs is not None and (
        not isinstance(outputs, list)
        or not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs)
    ):
        raise InvalidParameter("'outputs' must be a list of objects with a 'name'")
    offset = 0
    inputs = []
    for i, raw in enumerate(raw_inputs):
        item, offset = _parse_input(i, raw, binary, offset)
        inputs.append(item)
    if offset != len(binary):
        raise InvalidParameter(
            f"The body holds {len(binary) - offset} binary bytes that no input claims"
        )
    names = [x.name for x in inputs]
    if len(set(names)) != len(names):
        raise InvalidParameter(f"Input names repeat: {names}")
    request_id = doc.get("id")
    return InferRequest(
        inputs, None if request_id is None else str(request_id), parameters, outputs
    )


def _parse_input(i: int, raw: Any, binary: bytes, offset: int) -> tuple[InferInput, int]:
    if not isinstance(raw, dict):
        raise InvalidParameter(f"inputs[{i}] must be an object with name, shape, datatype, data")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidParameter(f"inputs[{i}] needs a 'name'")
    datatype = raw.get("datatype")
    if datatype not in DATATYPES:
        raise InvalidParameter(
            f"Input {name!r}: datatype {datatype!r} is not one of {', '.join(DATATYPES)}"
        )
    shape = raw.get("shape")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise InvalidParameter(
            f"Input {name!r}: 'shape' must be a non-empty list of non-negative integers, "
            f"got {shape!r}"
        )
    size = math.prod(shape)
    params = raw.get("parameters") or {}
    binary_size = params.get("binary_data_size") if isinstance(params, dict) else None
    if binary_size is not None:
        if not isinstance(binary_size, int) or binary_size < 0:
            raise InvalidParameter(f"Input {name!r}: binary_data_size must be an integer >= 0")
        chunk = binary[offset : offset + binary_size]
        if len(chunk) != binary_size:
            raise InvalidParameter(
                f"Input {name!r}: binary_data_size {binary_size} runs past the end of the body"
            )
        array = _from_binary(name, datatype, chunk, size)
        offset += binary_size
    else:
        if "data" not in raw:
            raise InvalidParameter(f"Input {name!r} has no 'data'")
        array = _from_json(name, datatype, raw["data"], size)
    return InferInput(name, datatype, tuple(shape), array.reshape(shape)), offset


def _from_json(name: str, datatype: str, data: Any, size: int) -> np.ndarray:
    if not isinstance(data, list):
        data = [data]
    dtype = DATATYPES[datatype]
    try:
        if datatype == "BYTES":
            array = np.array(data, dtype=object).ravel()
        else:
            array = np.asarray(data)
            if array.dtype.kind not in "biuf":
                raise ValueError(f"values of type {array.dtype}")
            if datatype == "BOOL" and array.dtype.kind != "b":
                raise ValueError("values that are not true/false")
            if array.dtype.kind == "f" and dtype.kind in "iu":
                if array.size and not np.array_equal(array, np.trunc(array)):
                    raise ValueError("fractional values")
                raise ValueError("values too large for an integer type")
            _check_range(array, dtype)
            array = array.astype(dtype, copy=False).ravel()
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidParameter(f"Input {name!r}: data does not fit {datatype} ({exc})") from None
    if array.size != size:
        raise InvalidParameter(
            f"Input {name!r}: shape holds {size} values but data has {array.size}"
        )
    return array


def _check_range(array: np.ndarray, dtype: np.dtype) -> None:
    """Refuse values the datatype cannot hold (numpy would wrap or overflow silently)."""
    if array.size == 0 or array.dtype == dtype or dtype.kind == "b":
        return
    if dtype.kind in "iu" and array.dtype.kind in "iu":
        info = np.iinfo(dtype)
        low, high = array.min(), array.max()
        if low < info.min or high > info.max:
            bad = low if low < info.min else high
            raise ValueError(f"{bad} is outside {info.min}..{info.max}")
    elif dtype.kind == "f" and array.dtype.kind in "iuf":
        limit = np.finfo(dtype).max
        finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
        if finite.size and np.abs(finite).max() > limit:
            raise ValueError(f"{np.abs(finite).max()} is outside +/-{limit:g}")


def _from_binary(name: str, datatype: str, chunk: bytes, size: int) -> np.ndarray:
    if datatype != "BYTES":
        dtype = DATATYPES[datatype]
        if len(chunk) != size * dtype.itemsize:
            raise InvalidParameter(
                f"Input {name!r}: {len(chunk)} binary bytes do not hold {size} {datatype} values"
            )
        return np.frombuffer(chunk, dtype=dtype.newbyteorder("<")).astype(dtype)
    items, pos = [], 0
    while pos < len(chunk):
        if pos + 4 > len(chunk):
            raise InvalidParameter(f"Input {name!r}: truncated BYTES element")
        n = int.from_bytes(chunk[pos : pos + 4], "little")
        items.append(chunk[pos + 4 : pos + 4 + n])
        pos += 4 + n
    if len(items) != size or pos != len(chunk):
        raise InvalidParameter(
            f"Input {name!r}: shape holds {size} values but data has {len(items)}"
        )
    return np.array([_text(b) for b in items], dtype=object)


def _text(b: bytes) -> Any:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b


# -- responses ----------------------------------------------------------------------
def _json_data(array: np.ndarray, datatype: str) -> list:
    flat = array.ravel()
    if datatype == "BYTES":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in flat]
    if datatype == "FP16":
        flat = flat.astype(np.float32)
    return flat.tolist()


def _binary_data(array: np.ndarray, datatype: str) -> bytes:
    if datatype != "BYTES":
        return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    parts = []
    for v in array.ravel():
        b = v if isinstance(v, bytes) else str(v).encode("utf-8")
        parts.append(len(b).to_bytes(4, "little") + b)
    return b"".join(parts)


def encode_outputs(
    outputs: Mapping[str, np.ndarray],
    *,
    header: dict[str, Any],
    binary: Mapping[str, bool],
) -> tuple[bytes, int | None]:
    """The response body (and the JSON header's length when binary data follows)."""
    tensors, blobs = [], []
    for name, array in outputs.items():
        datatype = datatype_of(array.dtype)
        if datatype == "BYTES" and array.dtype.kind != "O":
            array = array.astype(object)
        tensor: dict[str, Any] = {"name": name, "shape": list(array.shape), "datatype": datatype}
        if binary.get(name):
            blob = _binary_data(array, datatype)
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = _json_data(array, datatype)
        tensors.append(tensor)
    body = orjson.dumps({**header, "outputs": tensors})
    if not blobs:
        return body, None
    return body + b"".join(blobs), len(body)
