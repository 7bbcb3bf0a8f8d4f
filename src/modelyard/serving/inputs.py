"""From a request to the rows a model takes, checked per request before batching.

Every request is checked against the model's signature on its own, so one bad
request gets its own 400 and never poisons the batch it would have joined. The
checked rows take one of three forms, chosen once per model:

- ``matrix``: a columns signature whose columns all share one numeric dtype (the
  common case: 20 float features). Rows are a 2-D array in signature order; a batch
  is one ``np.concatenate`` and one DataFrame, the cheapest path there is.
- ``frame``: any other columns signature. Rows are a checked DataFrame.
- ``tensor``: a tensor signature, or none. Rows are an array (or a dict of arrays
  for several named inputs) whose first axis is the batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from modelyard.core.errors import InvalidParameter
from modelyard.models.signature import Signature, casts_safely
from modelyard.serving.tensors import InferInput

__all__ = ["RowAdapter", "rows_of", "split_rows"]


class RowAdapter:
    """Checks request payloads against one model's signature and batches them."""

    def __init__(
        self, signature: Signature | None, model_name: str, *, bare_matrix: bool = False
    ) -> None:
        self.signature = signature
        self.model_name = model_name
        self.bare_matrix = bare_matrix  # the model takes the 2-D array itself
        self.columns: list[str] = []
        self.matrix_dtype: np.dtype | None = None
        if signature is None or signature.kind == "tensor":
            self.mode = "tensor"
            return
        self.columns = signature.input_names
        dtypes = {f.dtype for f in signature.inputs}
        if len(dtypes) == 1:
            try:
                only = np.dtype(next(iter(dtypes)))
            except TypeError:
                only = None
            if only is not None and only.kind in "biuf":
                self.matrix_dtype = only
        self.mode = "matrix" if self.matrix_dtype is not None else "frame"

    # -- checking one request -------------------------------------------------------
    def from_tensors(self, inputs: list[InferInput]) -> Any:
        """Rows from V2 input tensors: one tensor per column, or one [n, k] tensor."""
        if self.mode == "tensor":
            if len(inputs) == 1 and (self.signature is None or len(self.signature.inputs) == 1):
                return self._tensor(inputs[0].array)
            return self._tensor({t.name: t.array for t in inputs})
        by_name = {t.name: t for t in inputs}
        if all(c in by_name for c in self.columns):
            cols = {}
            for c in self.columns:
                arr = by_name[c].array
                if arr.ndim == 2 and arr.shape[1] == 1:
                    arr = arr[:, 0]
                if arr.ndim != 1:
                    raise InvalidParameter(
                        f"Input {c!r} has shape {list(arr.shape)}: a column input is "
                        "[rows] or [rows, 1]"
                    )
                cols[c] = arr
            lengths = {len(a) for a in cols.values()}
            if len(lengths) > 1:
                raise InvalidParameter(f"Column inputs differ in length: {sorted(lengths)}")
            return self.from_frame(pd.DataFrame(cols))
        if len(inputs) == 1 and inputs[0].array.ndim == 2:
            arr = inputs[0].array
            if arr.shape[1] != len(self.columns):
                raise InvalidParameter(
                    f"Input {inputs[0].name!r} has shape {list(arr.shape)}, but model "
                    f"{self.model_name!r} takes {len(self.columns)} columns "
                    f"({_listed(self.columns)}): send shape [rows, {len(self.columns)}]"
                )
            return self.from_array(arr)
        missing = [c for c in self.columns if c not in by_name]
        raise InvalidParameter(
            f"Model {self.model_name!r} takes the columns {_listed(self.columns)}: send one "
            f"input per column (missing: {_listed(missing)}) or one input of shape "
            f"[rows, {len(self.columns)}]"
        )

    def from_json(self, doc: Any) -> Any:
        """Rows from a plain JSON body: records, columns, dataframe_split, inputs."""
        if isinstance(doc, list):
            return self._records_or_array(doc)
        if not isinstance(doc, dict):
            raise InvalidParameter(_FORMS)
        for key in ("records", "dataframe_records"):
            if key in doc:
                records = doc[key]
                if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                    raise InvalidParameter(f"'{key}' must be a list of objects (one per row)")
                return self.from_records(records)
        if "columns" in doc and isinstance(doc["columns"], dict):
            return self.from_frame(_frame(doc["columns"]))
        if "dataframe_split" in doc:
            split = doc["dataframe_split"]
            if not isinstance(split, dict) or "columns" not in split or "data" not in split:
                raise InvalidParameter("'dataframe_split' needs 'columns' and 'data'")
            try:
                frame = pd.DataFrame(split["data"], columns=split["columns"])
            except (ValueError, TypeError) as exc:
                raise InvalidParameter(f"'dataframe_split' is not a table: {exc}") from None
            return self.from_frame(frame)
        for key in ("inputs", "instances"):
            if key in doc:
                value = doc[key]
                if isinstance(value, dict):
                    if self.mode == "tensor":
                        return self._tensor({k: np.asarray(v) for k, v in value.items()})
                    return self.from_frame(_frame(value))
                if isinstance(value, list):
                    return self._records_or_array(value)
                raise InvalidParameter(f"'{key}' must be a list or an object")
        raise InvalidParameter(_FORMS)

    def _records_or_array(self, items: list) -> Any:
        if items and all(isinstance(r, dict) for r in items):
            return self.from_records(items)
        try:
            arr = np.asarray(items)
        except ValueError as exc:
            raise InvalidParameter(f"'inputs' is not a rectangular array: {exc}") from None
        if self.mode == "tensor":
            return self._tensor(arr)
        if arr.ndim == 1 and arr.size == len(self.columns) and arr.size > 0:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2:
            raise InvalidParameter(
                f"Expected rows of {len(self.columns)} values ({_listed(self.columns)}), "
                f"got an array of shape {list(arr.shape)}"
            )
        if arr.shape[1] != len(self.columns):
            raise InvalidParameter(
                f"Each row needs {len(self.columns)} values ({_listed(self.columns)}), "
                f"got {arr.shape[1]}"
            )
        return self.from_array(arr)

    def from_records(self, records: list[dict]) -> Any:
        if not records:
            raise InvalidParameter("No rows to predict")
        if self.mode == "matrix":
            try:
                arr = np.array([[r[c] for c in self.columns] for r in records])
            except (KeyError, ValueError):
                arr = None  # the signature names the problem below
            if arr is not None and arr.ndim == 2 and self._fits_matrix(arr.dtype):
                return arr.astype(self.matrix_dtype, copy=False)
        if self.mode == "tensor":
            return self._tensor(records)
        return self.from_frame(pd.DataFrame(records))

    def from_array(self, arr: np.ndarray) -> Any:
        if len(arr) == 0:
            raise InvalidParameter("No rows to predict")
        if self.mode == "matrix" and self._fits_matrix(arr.dtype):
            return arr.astype(self.matrix_dtype, copy=False)
        if self.mode == "tensor":
            return self._tensor(arr)
        return self.from_frame(pd.DataFrame(arr, columns=self.columns))

    def from_frame(self, frame: pd.DataFrame) -> Any:
        if len(frame) == 0:
            raise InvalidParameter("No rows to predict")
        if self.mode == "tensor":
            return self._tensor(frame)
        checked = self.signature.enforce(frame)  # type: ignore[union-attr]
        if self.mode == "matrix":
            return checked.to_numpy(dtype=self.matrix_dtype)
        return checked

    def _fits_matrix(self, dtype: np.dtype) -> bool:
        """The signature's own conversion rule, for the one dtype of a 2-D array."""
        want = self.matrix_dtype
        return want is not None and dtype.kind in "biuf" and casts_safely(dtype, want.name)

    def _tensor(self, data: Any) -> Any:
        if self.signature is not None:
            data = self.signature.enforce(data)
        elif isinstance(data, list):
            data = np.asarray(data)
        if rows_of(data) == 0:
            raise InvalidParameter("No rows to predict")
        return data

    # -- batches --------------------------------------------------------------------
    def concat(self, parts: Sequence[Any]) -> Any:
        """One model input from the checked rows of several requests."""
        if self.mode == "matrix":
            arr = parts[0] if len(parts) == 1 else np.concatenate(parts)
            if self.bare_matrix:
                return arr
            return pd.DataFrame(arr, columns=self.columns, copy=False)
        if self.mode == "frame":
            return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
        if len(parts) == 1:
            return parts[0]
        if isinstance(parts[0], Mapping):
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return np.concatenate(parts)


def rows_of(data: Any) -> int:
    """The number of rows in checked request data."""
    if isinstance(data, Mapping):
        return len(next(iter(data.values()))) if data else 0
    return len(data)


def split_rows(output: Any, sizes: Sequence[int]) -> list[Any]:
    """Cut a batch prediction back into one piece per request, in order."""
    if len(sizes) == 1:
        return [output]
    if isinstance(output, pd.DataFrame):
        bounds = np.cumsum([0, *sizes])
        return [output.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    if isinstance(output, Mapping):
        pieces = {k: split_rows(v, sizes) for k, v in output.items()}
        return [{k: pieces[k][i] for k in output} for i in range(len(sizes))]
    arr = np.asarray(output)
    total = sum(sizes)
    if arr.ndim == 0 or len(arr) != total:
        raise ValueError(f"The model returned {arr.shape} for a batch of {total} rows")
    return np.split(arr, np.cumsum(sizes)[:-1])


def _frame(columns: dict) -> pd.DataFrame:
    try:
        return pd.DataFrame(columns)
    except (ValueError, TypeError) as exc:
        raise InvalidParameter(f"'columns' is not a table: {exc}") from None


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:25])
    return shown + (f", ... ({len(names)} in all)" if len(names) > 25 else "")


_FORMS = (
    "Send rows as {'records': [{column: value, ...}, ...]}, {'columns': {column: [values]}}, "
    "{'dataframe_split': {'columns': [...], 'data': [[...]]}} or {'inputs': [[...], ...]}"
)
