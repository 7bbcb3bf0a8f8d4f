"""Compile run-search ASTs (``tracking.search``) to SQLAlchemy Core over ``runs``.

Why it is shaped this way:

- Each metric/param/tag test is a correlated ``EXISTS`` on its own table, never a
  join, so ``AND``/``OR``/``NOT`` are plain two-valued logic: a run has a matching
  row or it has not. ``NOT metrics.acc > 0.9`` therefore also matches runs
  without ``acc``, while ``metrics.acc != 0.9`` means "has acc and it differs"
  (MLflow's semantics), as do ``NOT IN``, ``NOT LIKE`` and ``NOT BETWEEN``.
- A NaN metric (``is_nan``) matches no value comparison; it still counts as
  present for ``IS NOT NULL``.
- Nullable attributes (``end_time``, ``parent_run_id``) are guarded with
  ``IS NOT NULL`` for the same reason, so ``NOT`` is always the complement.
- ``LIKE`` is case-sensitive on every backend: SQLite's LIKE is not, so there it
  becomes ``GLOB``; ``ILIKE`` uses SQLAlchemy's portable ``ilike``. In both
  patterns a backslash escapes the next character (PostgreSQL's default).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Table,
    and_,
    case,
    cast,
    false,
    not_,
    or_,
    select,
    true,
)

from modelyard.core.errors import InvalidParameter
from modelyard.core.store.schema import latest_metrics, params, runs, tags
from modelyard.tracking.search import And, Comparison, Node, Not, Or, OrderKey

__all__ = ["apply_order", "compile_filter"]

_ATTRIBUTE_COLUMNS: dict[str, ColumnElement[Any]] = {
    "artifact_uri": runs.c.artifact_uri,
    "end_time": runs.c.end_time,
    "experiment_id": runs.c.experiment_id,
    "lifecycle_stage": runs.c.lifecycle_stage,
    "parent_run_id": runs.c.parent_run_id,
    "run_id": runs.c.run_uuid,
    "run_name": runs.c.name,
    "start_time": runs.c.start_time,
    "status": runs.c.status,
    "user_id": runs.c.user_id,
}
_NULLABLE_ATTRIBUTES = frozenset({"end_time", "parent_run_id"})
_KEYED_TABLES: dict[str, Table] = {"metric": latest_metrics, "param": params, "tag": tags}


def compile_filter(node: Node | None, dialect_name: str) -> ColumnElement[bool]:
    """Turn a parsed filter into a WHERE clause for a SELECT over ``runs``.

    ``dialect_name`` is ``engine.dialect.name`` (``"sqlite"``, ``"postgresql"``);
    it picks the case-sensitive LIKE translation. None matches every run.
    """
    if node is None:
        return true()
    if isinstance(node, And):
        return and_(*(compile_filter(item, dialect_name) for item in node.items))
    if isinstance(node, Or):
        return or_(*(compile_filter(item, dialect_name) for item in node.items))
    if isinstance(node, Not):
        return not_(compile_filter(node.item, dialect_name))
    if isinstance(node, Comparison):
        if node.entity == "attribute":
            return _attribute(node, dialect_name)
        return _keyed(node, dialect_name)
    raise TypeError(f"not a search node: {node!r}")


def apply_order(select_stmt: Select[Any], order_keys: Sequence[OrderKey] | None) -> Select[Any]:
    """Order a SELECT over ``runs`` by the keys, then ``start_time DESC, run_uuid``.

    Runs missing a metric/param/tag (or with a NULL attribute) sort last in both
    directions; NaN metrics sort after every number and before missing ones.
    """
    clauses: list[ColumnElement[Any]] = []
    for key in order_keys or ():
        if key.entity == "attribute":
            column = _attribute_column(key.key)
            if key.key in _NULLABLE_ATTRIBUTES:
                clauses.append(case((column.is_(None), 1), else_=0))
            clauses.append(column.asc() if key.ascending else column.desc())
            continue
        table = _KEYED_TABLES[key.entity].alias()
        select_stmt = select_stmt.outerjoin_from(
            runs, table, and_(table.c.run_uuid == runs.c.run_uuid, table.c.key == key.key)
        )
        if key.entity == "metric":
            rank = case((table.c.run_uuid.is_(None), 2), (table.c.is_nan == true(), 1), else_=0)
        else:
            rank = case((table.c.run_uuid.is_(None), 1), else_=0)
        clauses.append(rank)
        clauses.append(table.c.value.asc() if key.ascending else table.c.value.desc())
    clauses += [runs.c.start_time.desc(), runs.c.run_uuid.asc()]
    return select_stmt.order_by(*clauses)


def _keyed(node: Comparison, dialect_name: str) -> ColumnElement[bool]:
    table = _KEYED_TABLES[node.entity]
    conditions: list[ColumnElement[bool]] = [
        table.c.run_uuid == runs.c.run_uuid,
        table.c.key == node.key,
    ]
    if node.op in ("IS NULL", "IS NOT NULL"):
        present = select(table.c.key).where(*conditions).correlate(runs).exists()
        return present if node.op == "IS NOT NULL" else not_(present)
    if node.entity == "metric":
        conditions.append(table.c.is_nan == false())
    conditions.append(_compare(table.c.value, node.op, node.value, dialect_name))
    return select(table.c.key).where(*conditions).correlate(runs).exists()


def _attribute(node: Comparison, dialect_name: str) -> ColumnElement[bool]:
    column = _attribute_column(node.key)
    if node.op == "IS NULL":
        return column.is_(None)
    if node.op == "IS NOT NULL":
        return column.is_not(None)
    value = node.value
    if node.key == "experiment_id":
        column, value = _experiment_id(column, node.op, value)
    condition = _compare(column, node.op, value, dialect_name)
    if node.key in _NULLABLE_ATTRIBUTES:
        condition = and_(column.is_not(None), condition)
    return condition


def _attribute_column(name: str) -> ColumnElement[Any]:
    try:
        return _ATTRIBUTE_COLUMNS[name]
    except KeyError:
        valid = ", ".join(sorted(_ATTRIBUTE_COLUMNS))
        raise InvalidParameter(
            f"unknown attribute {name!r}; valid attributes are {valid}"
        ) from None


def _experiment_id(
    column: ColumnElement[Any], op: str, value: object
) -> tuple[ColumnElement[Any], object]:
    """Experiment ids are strings in the API but integers in the table: compare as
    integers when every value is a canonical integer (keeps the index), else as text."""
    values = value if isinstance(value, tuple) else (value,)
    canonical = all(isinstance(v, str) and v.isdigit() and str(int(v)) == v for v in values)
    if canonical and "LIKE" not in op:
        ints = tuple(int(str(v)) for v in values)
        return column, ints if isinstance(value, tuple) else ints[0]
    return cast(column, String), value


def _compare(
    column: ColumnElement[Any], op: str, value: Any, dialect_name: str
) -> ColumnElement[bool]:
    if op.startswith("NOT "):
        return not_(_compare(column, op[4:], value, dialect_name))
    match op:
        case "=":
            return column == value
        case "!=":
            return column != value
        case "<":
            return column < value
        case "<=":
            return column <= value
        case ">":
            return column > value
        case ">=":
            return column >= value
        case "IN":
            return column.in_(value)
        case "BETWEEN":
            return column.between(value[0], value[1])
        case "ILIKE":
            return column.ilike(value, escape="\\")
        case "LIKE" if dialect_name == "sqlite":
            return column.op("GLOB", is_comparison=True)(_like_to_glob(value))
        case "LIKE":
            return column.like(value, escape="\\")
    raise InvalidParameter(f"unknown comparator {op!r}")


def _like_to_glob(pattern: str) -> str:
    """Translate a LIKE pattern (``%``, ``_``, backslash escape) to an SQLite GLOB.

    GLOB is case-sensitive like PostgreSQL's LIKE; its own wildcards ``* ? [``
    are made literal with brackets.
    """
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            ch = next(chars, "")
            out.append(f"[{ch}]" if ch in "*?[" and ch else ch)
        elif ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch in "*?[":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)
