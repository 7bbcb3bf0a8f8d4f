"""A first suite from reference data: ``infer_suite(data)`` → a `Suite` to review.

What it writes, per column (the bounds are what the reference showed; widen them by
hand where new data may honestly go further):

- ``type`` always (a column with no values gets none);
- ``nullable: false`` when the reference has no missing value;
- ``allowed`` for text (and integer codes with at most 5 distinct values, or columns
  named in ``categorical``) with at most ``max_categories`` distinct values, each seen
  twice on average, so a handful of names is not taken for a category list;
- ``min``/``max`` for numbers, datetimes and dates otherwise;
- ``unique: true`` for id-like columns whose values are all distinct: text, or
  integers named like an id (``id``, ``user_id``, ``orderKey``, ``uuid``) or forming
  a sequence (a row number). Ids get no range, and no distribution check;
- ``rows`` within ``row_tolerance`` (±50%) of the reference's count;
- ``distribution``: the reference profile inline (`monitor.profile`) of the numbers,
  booleans and categories (text with at most 100 distinct values); not of ids, free
  text or dates (a new version's dates are later by design).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from modelyard.core.errors import InvalidParameter
from modelyard.datasets.validation.suite import (
    ColumnRule,
    DistributionRule,
    RowRule,
    Suite,
    is_known_type,
)
from modelyard.datasets.validation.table import open_data, type_name
from modelyard.monitor.columns import MAX_INTEGER_CATEGORIES, batches
from modelyard.monitor.profile import COLUMN_BATCH, profile

__all__ = ["infer_suite"]

DISTRIBUTION_MAX_CATEGORIES = 100
ID_NAME = re.compile(r"(?:^|[_\-\s])(?:id|key|uuid|guid)$|[a-z0-9](?:Id|ID|Key|Uuid)$", re.I)
ORDERED = ("int", "float", "decimal", "datetime", "date")


def infer_suite(
    data: Any,
    *,
    row_tolerance: float | None = 0.5,
    max_categories: int = 20,
    categorical: Sequence[str] = (),
    distribution: bool = True,
) -> Suite:
    """The suite ``data`` itself passes, with bounds taken from it.

    Args:
        data: reference data (DataFrame, Arrow table, Parquet/CSV file or folder).
        row_tolerance: row-count bounds as a share of the reference's count around
            it (0.5: half to one and a half times); None for no row-count rule.
        max_categories: at most this many distinct values make an ``allowed`` list.
        categorical: columns to treat as categories whatever their type.
        distribution: embed the reference profile for distribution checks.
    """
    if row_tolerance is not None and row_tolerance < 0:
        raise InvalidParameter(f"row_tolerance must be 0 or more, got {row_tolerance!r}")
    if max_categories < 1:
        raise InvalidParameter(f"max_categories must be at least 1, got {max_categories!r}")
    opened = open_data(data, "reference")
    source = opened.source
    absent = [c for c in categorical if c not in source.names]
    if absent:
        raise InvalidParameter(f"reference has no column(s): {', '.join(absent)}")
    rules: dict[str, ColumnRule] = {}
    profiled: list[str] = []
    for group in batches(source.names, COLUMN_BATCH):
        columns = source.read(group)
        for name in group:
            rule, distinct = _column_rule(name, columns[name], max_categories, name in categorical)
            rules[name] = rule
            if _profiled(rule, distinct):
                profiled.append(name)
    suite = Suite(columns=rules)
    if row_tolerance is not None:
        rows = source.rows
        suite.rows = RowRule(
            min=max(0, math.floor(rows * (1 - row_tolerance))),
            max=math.ceil(rows * (1 + row_tolerance)),
        )
    if distribution and profiled:
        reference = profile(opened.raw, columns=profiled, categorical=categorical)
        kept = [c for c, p in reference.columns.items() if p.message is None]
        reference.columns = {c: reference.columns[c] for c in kept}
        if kept:
            suite.distribution = DistributionRule(reference=reference.to_dict())
    return suite


def _column_rule(
    name: str, column: pa.ChunkedArray, max_categories: int, categorical: bool
) -> tuple[ColumnRule, int]:
    """The rule the column passes, and its count of distinct values."""
    label = type_name(column.type)
    rule = ColumnRule(type=label if is_known_type(label) and label != "null" else None)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    missing = pc.is_null(column, nan_is_null=True)
    missing_count = int(pc.sum(missing).as_py() or 0)
    values = pc.filter(column, pc.invert(missing)) if missing_count else column
    rule.nullable = missing_count > 0 or len(column) == 0
    if not len(values) or label not in (*ORDERED, "string", "bool"):
        return rule, 0
    distinct = pc.count_distinct(values).as_py()
    if distinct == len(values) > 1 and _id_like(name, label, values):
        rule.unique = True
        return rule, distinct
    as_categories = (
        categorical or label == "string" or (label == "int" and distinct <= MAX_INTEGER_CATEGORIES)
    )
    if as_categories and distinct <= max_categories and len(values) >= 2 * distinct:
        unique_values = pc.unique(values).to_pylist()
        rule.allowed = sorted(unique_values, key=lambda v: (str(type(v)), v))
    elif label in ORDERED:
        extremes = pc.min_max(values).as_py()
        rule.min, rule.max = (_bound(extremes["min"]), _bound(extremes["max"]))
    return rule, distinct


def _id_like(name: str, label: str, values: pa.ChunkedArray) -> bool:
    if label == "string":
        return True
    if label != "int":
        return False
    if ID_NAME.search(name):
        return True
    extremes = pc.min_max(values).as_py()
    return extremes["max"] - extremes["min"] + 1 == len(values)  # a row number


def _profiled(rule: ColumnRule, distinct: int) -> bool:
    """Columns a distribution check makes sense for: not ids, not free text."""
    if rule.unique or rule.type is None:
        return False
    if rule.type == "string":
        return rule.allowed is not None or distinct <= DISTRIBUTION_MAX_CATEGORIES
    return rule.type in ("int", "float", "decimal", "bool")  # not dates: time moves on


def _bound(value: Any) -> Any:
    """A bound as YAML can hold it: numbers as numbers, moments as ISO text."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value
