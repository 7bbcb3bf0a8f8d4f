"""ONNX graphs (an ``onnx.ModelProto`` or the path of a ``.onnx`` file), run with
onnxruntime's ``InferenceSession`` on the CPU provider.

The signature comes from the graph itself: a "tensor" signature with the graph's
input names, element types and shapes (-1 for symbolic axes). ``predict`` feeds
one array to a one-input graph, or a dict of arrays by name; it returns the output
array of a one-output graph, else a dict of outputs by name. ``predict_proba`` is
there when the graph has a probabilities output (skl2onnx names it
``probabilities`` or ``output_probability``).
"""

from __future__ import annotations

import os
from importlib.metadata import version
from pathlib import Path
from typing import Any

from modelyard.core.errors import InvalidParameter
from modelyard.models.flavors import LoadOptions, Predictor, Saved, SaveOptions, from_package
from modelyard.models.manifest import Manifest
from modelyard.models.signature import FieldSpec, Signature, dtype_name

name = "onnx"
framework = "onnxruntime"
MODEL_FILE = "model.onnx"
_PROBA_OUTPUTS = ("probabilities", "output_probability")


def detect(model: Any) -> bool:
    if isinstance(model, str | os.PathLike):
        return str(model).endswith(".onnx") and Path(model).is_file()
    return from_package(model, "onnx") and type(model).__name__ == "ModelProto"


def _fields(values: Any) -> tuple[FieldSpec, ...]:
    from onnx.helper import tensor_dtype_to_np_dtype

    out = []
    for value in values:
        kind = value.type.WhichOneof("value")
        if kind != "tensor_type":  # sequences/maps (skl2onnx's zipmap): described loosely
            out.append(FieldSpec(value.name, "object"))
            continue
        tensor = value.type.tensor_type
        dtype = dtype_name(tensor_dtype_to_np_dtype(tensor.elem_type))
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
        out.append(FieldSpec(value.name, dtype, dims))
    return tuple(out)


def save(model: Any, path: Path, options: SaveOptions) -> Saved:
    import onnx

    if isinstance(model, str | os.PathLike):
        data = Path(model).read_bytes()
        proto = onnx.load_from_string(data)
    else:
        proto, data = model, model.SerializeToString()
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise InvalidParameter(f"The ONNX model is not valid: {exc}") from None
    (path / MODEL_FILE).write_bytes(data)
    graph = proto.graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    signature = Signature(_fields(inputs), _fields(graph.output), "tensor")
    return Saved(
        framework_version=version(framework),
        loader={
            "model_file": MODEL_FILE,
            "opset": {o.domain or "ai.onnx": o.version for o in proto.opset_import},
            "inputs": [i.name for i in inputs],
            "outputs": [o.name for o in graph.output],
        },
        requirements=[framework],
        signature=signature,
    )


def load(path: Path, manifest: Manifest, options: LoadOptions) -> Predictor:
    import onnxruntime as ort

    file = path / str(manifest.loader.get("model_file", MODEL_FILE))
    session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    first = inputs[0]

    def feeds(data: Any) -> dict[str, Any]:
        return dict(data) if isinstance(data, dict) else {first: data}

    def predict(data: Any) -> Any:
        result = session.run(None, feeds(data))
        return result[0] if len(result) == 1 else dict(zip(outputs, result, strict=True))

    proba = next((o for o in outputs if o in _PROBA_OUTPUTS), None)

    def predict_proba(data: Any) -> Any:
        return session.run([proba], feeds(data))[0]

    return Predictor(session, predict, predict_proba if proba else None)
