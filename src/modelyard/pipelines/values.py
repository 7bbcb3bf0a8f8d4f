"""Step outputs as files: safe formats by kind, and a content hash for the cache.

A value is written into a folder with a small ``value.json`` naming its kind:

=============  ===========================================================
pandas frame   ``value.parquet``
Arrow table    ``value.parquet``
numpy array    ``value.npy`` (``allow_pickle=False``)
JSON value     inside ``value.json`` (None, bools, numbers, strings, lists, dicts)
model          a model package (``my.models.save``: skops, ONNX, native files)
tuple / dict   one sub-folder per item, each written by these same rules
anything else  pickle, only when the step says ``allow_pickle=True``
=============  ===========================================================

The hash of a value is the hash of its files (names and bytes), so a step whose
inputs are byte-identical to an earlier run's hits the cache even when the step
that produced them ran again.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from modelyard.core.errors import InvalidParameter
from modelyard.datasets.hashing import hash_bytes, hash_file

__all__ = ["hash_folder", "hash_value", "read_value", "write_value"]

_META = "value.json"


def _is_json(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False


def write_value(value: Any, folder: Path, *, allow_pickle: bool = False, what: str = "") -> str:
    """Write ``value`` into the new folder ``folder``; return its kind."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    folder.mkdir(parents=True, exist_ok=False)
    meta: dict[str, Any]
    if _is_json(value):
        meta = {"kind": "json", "value": value}
    elif isinstance(value, pd.DataFrame):
        value.to_parquet(folder / "value.parquet")
        meta = {"kind": "pandas"}
    elif isinstance(value, pa.Table):
        import pyarrow.parquet as pq

        pq.write_table(value, folder / "value.parquet")
        meta = {"kind": "arrow"}
    elif isinstance(value, np.ndarray) and value.dtype != object:
        np.save(folder / "value.npy", value, allow_pickle=False)
        meta = {"kind": "numpy"}
    elif isinstance(value, np.generic):
        meta = {"kind": "json", "value": value.item()}
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            write_value(item, folder / str(i), allow_pickle=allow_pickle, what=f"{what}[{i}]")
        meta = {"kind": "tuple" if isinstance(value, tuple) else "list", "items": len(value)}
    elif isinstance(value, dict) and all(isinstance(k, str) for k in value):
        keys = list(value)
        for i, key in enumerate(keys):
            write_value(
                value[key], folder / str(i), allow_pickle=allow_pickle, what=f"{what}[{key!r}]"
            )
        meta = {"kind": "dict", "keys": keys}
    else:
        meta = _write_object(value, folder, allow_pickle, what)
    (folder / _META).write_text(json.dumps(meta, sort_keys=True))
    return meta["kind"]


def _write_object(value: Any, folder: Path, allow_pickle: bool, what: str) -> dict[str, Any]:
    from modelyard.models.flavors import detect_flavor

    try:
        flavor = detect_flavor(value, allow_pickle=False)
    except InvalidParameter:
        flavor = None
    if flavor is not None:
        from modelyard.models.package import save

        save(value, folder / "model", signature=None)
        return {"kind": "model"}
    if not allow_pickle:
        raise InvalidParameter(
            f"{what or 'The step'} returned a {type(value).__module__}."
            f"{type(value).__qualname__}, which modelyard cannot store in a safe format. "
            "Return a DataFrame, an Arrow table, an array, JSON values, a model (or a tuple "
            "or dict of those), or mark the step allow_pickle=True"
        )
    import pickle

    (folder / "value.pkl").write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    return {"kind": "pickle"}


def read_value(folder: Path, *, allow_pickle: bool = False) -> Any:
    """The value `write_value` wrote into ``folder``."""
    meta = json.loads((folder / _META).read_text())
    kind = meta["kind"]
    if kind == "json":
        return meta["value"]
    if kind == "pandas":
        import pandas as pd

        return pd.read_parquet(folder / "value.parquet")
    if kind == "arrow":
        import pyarrow.parquet as pq

        return pq.read_table(folder / "value.parquet")
    if kind == "numpy":
        import numpy as np

        return np.load(folder / "value.npy", allow_pickle=False)
    if kind in ("tuple", "list"):
        items = [
            read_value(folder / str(i), allow_pickle=allow_pickle) for i in range(meta["items"])
        ]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        return {
            k: read_value(folder / str(i), allow_pickle=allow_pickle)
            for i, k in enumerate(meta["keys"])
        }
    if kind == "model":
        from modelyard.models.package import load

        return load(folder / "model").raw
    if kind == "pickle":
        if not allow_pickle:
            from modelyard.models.flavors import UnsafeModelError

            raise UnsafeModelError(
                f"{folder} holds a pickled step output; loading it can run arbitrary code. "
                "Mark the step allow_pickle=True to load it"
            )
        import pickle

        return pickle.loads((folder / "value.pkl").read_bytes())  # noqa: S301 - opted in
    raise InvalidParameter(f"{folder}: unknown value kind {kind!r}")


def hash_folder(folder: Path) -> str:
    """The hash of a folder's relative paths and file contents."""
    parts = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            parts.append(f"{path.relative_to(folder).as_posix()}\0{hash_file(path)}")
    return hash_bytes("\n".join(parts).encode())


def hash_value(value: Any, scratch: Path) -> str:
    """The hash of what `write_value` would store for ``value`` (written to ``scratch``)."""
    write_value(value, scratch, allow_pickle=True)
    return hash_folder(scratch)
