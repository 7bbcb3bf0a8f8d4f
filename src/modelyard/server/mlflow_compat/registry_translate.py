"""The model registry in MLflow's REST shapes, and MLflow's registry search language.

Only shapes and pure functions live here: no storage and no HTTP.

- JSON: versions are strings (``"version": "3"``), times are ``creation_timestamp`` /
  ``last_updated_timestamp``, tags are ``[{key, value}]`` lists, a model's aliases are
  ``[{alias, version}]``; a version's status is always READY (registration is
  synchronous here). Locations under the server's artifact root go out as
  ``mlflow-artifacts:/`` URIs.
- Search filters: clauses joined by AND, each ``<key> <op> <value>`` where the key is
  ``name``, ``tags.<key>`` (the client adds ``tag.`mlflow.prompt.is_prompt` != 'true'``
  to every search) and, for versions, ``run_id`` and ``version_number``; the
  operators are ``=``, ``!=``, ``LIKE``, ``ILIKE`` (``%`` and ``_`` wildcards,
  ``\\`` escapes), ``IN (...)`` and, for version numbers, ``<``, ``<=``, ``>``, ``>=``.
- Ordering: ``order_by`` entries ``<key> [ASC|DESC]``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from modelyard.core.errors import InvalidParameter
from modelyard.registry.entities import ModelVersion, RegisteredModel
from modelyard.server.artifact_uris import ArtifactUris

__all__ = [
    "MODEL_KEYS",
    "VERSION_KEYS",
    "Clause",
    "exact_value",
    "like_prefix_safe",
    "matches",
    "model_version_json",
    "parse_filter",
    "registered_model_json",
    "sort_models",
    "sort_versions",
]

MODEL_KEYS = ("name",)
VERSION_KEYS = ("name", "run_id", "version_number")

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<num>-?\d+)
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<paren>[(),])
      | (?P<word>`[^`]+`|[A-Za-z_]\w*(?:\.(?:\w+|`[^`]+`))*)
    )""",
    re.VERBOSE,
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True, slots=True)
class Clause:
    """``key op value``; ``key`` is ``name``, ``run_id``, ``version_number`` or
    ``tags.<key>``; ``value`` is a tuple for IN."""

    key: str
    op: str
    value: Any


# -- filters --------------------------------------------------------------------------
def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise InvalidParameter(f"Invalid filter {text!r}: cannot read it at {text[pos:]!r}")
        kind = m.lastgroup
        assert kind is not None
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _unquote(token: str) -> str:
    """A quoted literal's text: only the quote itself is unescaped, so LIKE patterns
    keep their ``\\_`` and ``\\%`` escapes."""
    quote = token[0]
    return token[1:-1].replace("\\" + quote, quote)


def _key(word: str, allowed: Sequence[str], what: str) -> str:
    """``name``, or ``tags.<key>`` (also spelled ``tag.<key>``, the key possibly in
    backquotes as in ``tag.`mlflow.prompt.is_prompt```)."""
    key = word.strip("`")
    if key.lower() in allowed:
        return key.lower()
    prefix, dot, rest = word.partition(".")
    if dot and rest and prefix.lower() in ("tag", "tags"):
        return "tags." + (rest[1:-1] if rest.startswith("`") and rest.endswith("`") else rest)
    expected = ", ".join(allowed)
    raise InvalidParameter(
        f"Invalid filter key {key!r} for {what}: expected one of {expected} or tags.<key>"
    )


def parse_filter(text: str | None, allowed: Sequence[str], what: str) -> list[Clause]:
    """The AND-ed clauses of an MLflow registry filter (none for an empty filter)."""
    tokens = _tokens(text or "")
    clauses: list[Clause] = []
    i = 0

    def take() -> tuple[str, str]:
        nonlocal i
        if i >= len(tokens):
            raise InvalidParameter(f"Invalid filter {text!r}: it ends too early")
        i += 1
        return tokens[i - 1]

    while i < len(tokens):
        kind, word = take()
        if kind != "word":
            raise InvalidParameter(f"Invalid filter {text!r}: expected a key, got {word!r}")
        key = _key(word, allowed, what)
        kind, op = take()
        op = op.upper()
        if kind == "word" and op == "NOT":
            kind, nxt = take()
            op = "NOT " + nxt.upper()
        if kind == "op":
            op = "!=" if op == "<>" else op
            kind, raw = take()
            if key == "version_number":
                if kind != "num":
                    raise InvalidParameter(f"version_number compares to a number, got {raw!r}")
                value: Any = int(raw)
            elif op not in ("=", "!="):
                raise InvalidParameter(f"Operator {op!r} is only for version_number")
            elif kind != "str":
                raise InvalidParameter(f"{key} compares to a quoted string, got {raw!r}")
            else:
                value = _unquote(raw)
        elif op in ("LIKE", "ILIKE"):
            kind, raw = take()
            if kind != "str" or key == "version_number":
                raise InvalidParameter(f"{op} needs a quoted pattern and a text key, got {raw!r}")
            value = _unquote(raw)
        elif op in ("IN", "NOT IN"):
            value = _in_list(take, text, key)
        else:
            raise InvalidParameter(
                f"Invalid filter {text!r}: unsupported operator {op!r} (use =, !=, LIKE, "
                "ILIKE, IN or, for version_number, <, <=, >, >=)"
            )
        clauses.append(Clause(key, op, value))
        if i < len(tokens):
            kind, word = take()
            if kind != "word" or word.upper() != "AND":
                raise InvalidParameter(
                    f"Invalid filter {text!r}: clauses join with AND, got {word!r}"
                )
            if i == len(tokens):
                raise InvalidParameter(f"Invalid filter {text!r}: nothing after AND")
    return clauses


def _in_list(take: Callable[[], tuple[str, str]], text: str | None, key: str) -> tuple:
    kind, word = take()
    if word != "(":
        raise InvalidParameter(f"Invalid filter {text!r}: IN needs a (list)")
    values: list[Any] = []
    while True:
        kind, raw = take()
        if kind == "str" and key != "version_number":
            values.append(_unquote(raw))
        elif kind == "num" and key == "version_number":
            values.append(int(raw))
        else:
            raise InvalidParameter(f"Invalid filter {text!r}: unexpected {raw!r} in IN list")
        kind, sep = take()
        if sep == ")":
            return tuple(values)
        if sep != ",":
            raise InvalidParameter(f"Invalid filter {text!r}: expected ',' or ')', got {sep!r}")


def _like_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts, escaped = [], False
    for ch in pattern:
        if escaped:
            parts.append(re.escape(ch))
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            parts.append(".*")
        elif ch == "_":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _field(entity: RegisteredModel | ModelVersion, key: str) -> Any:
    if key.startswith("tags."):
        return entity.tags.get(key[5:])
    if key == "version_number":
        return entity.version  # type: ignore[union-attr]
    return getattr(entity, key)


def _holds(clause: Clause, actual: Any) -> bool:
    op, value = clause.op, clause.value
    if op in ("IN", "NOT IN"):
        return actual is not None and (actual in value) == (op == "IN")
    if op in ("LIKE", "ILIKE"):
        return actual is not None and bool(_like_regex(value, op == "ILIKE").fullmatch(actual))
    if actual is None:
        return op == "!="
    return _COMPARE[op](actual, value)


def matches(clauses: Sequence[Clause]) -> Callable[[RegisteredModel | ModelVersion], bool]:
    return lambda entity: all(_holds(c, _field(entity, c.key)) for c in clauses)


def exact_value(clauses: Sequence[Clause], key: str) -> str | None:
    """The value an ``=`` clause pins ``key`` to (to narrow the store query)."""
    return next((c.value for c in clauses if c.key == key and c.op == "="), None)


def like_prefix_safe(clauses: Sequence[Clause]) -> str | None:
    """A SQL LIKE pattern that finds a superset of the models the name clauses select
    on every backend (SQLite's LIKE ignores case, PostgreSQL's does not), or None."""
    for c in clauses:
        if c.key == "name" and c.op in ("=", "LIKE") and "\\" not in c.value:
            if c.op == "=" and ("%" in c.value or "_" in c.value):
                continue
            return c.value
    return None


# -- ordering -------------------------------------------------------------------------
_MODEL_ORDER: dict[str, Callable[[RegisteredModel], Any]] = {
    "name": lambda m: m.name,
    "timestamp": lambda m: m.created_at,
    "creation_timestamp": lambda m: m.created_at,
    "last_updated_timestamp": lambda m: m.updated_at,
}
_VERSION_ORDER: dict[str, Callable[[ModelVersion], Any]] = {
    "name": lambda v: v.name,
    "version_number": lambda v: v.version,
    "timestamp": lambda v: v.created_at,
    "creation_timestamp": lambda v: v.created_at,
    "last_updated_timestamp": lambda v: v.updated_at,
    "run_id": lambda v: v.run_id or "",
}


def _parse_order(order_by: Sequence[str], keys: dict[str, Callable]) -> list[tuple[str, bool]]:
    out = []
    for entry in order_by:
        parts = entry.split()
        if not parts or len(parts) > 2 or parts[0].strip("`").lower() not in keys:
            raise InvalidParameter(
                f"Invalid order_by {entry!r}: expected '<key> [ASC|DESC]' with a key among "
                f"{', '.join(keys)}"
            )
        direction = parts[1].upper() if len(parts) == 2 else "ASC"
        if direction not in ("ASC", "DESC"):
            raise InvalidParameter(f"Invalid order_by {entry!r}: the direction is ASC or DESC")
        out.append((parts[0].strip("`").lower(), direction == "DESC"))
    return out


def _sorted(items: list, order: list[tuple[str, bool]], keys: dict[str, Callable]) -> list:
    for key, descending in reversed(order):  # stable sorts, least significant first
        items = sorted(items, key=keys[key], reverse=descending)
    return items


def sort_models(models: list[RegisteredModel], order_by: Sequence[str]) -> list[RegisteredModel]:
    """By ``order_by``, then by name (MLflow's default order)."""
    order = _parse_order(order_by, _MODEL_ORDER)
    return _sorted(models, [*order, ("name", False)], _MODEL_ORDER)


def sort_versions(versions: list[ModelVersion], order_by: Sequence[str]) -> list[ModelVersion]:
    """By ``order_by``, then name ascending and newest version first."""
    order = _parse_order(order_by, _VERSION_ORDER)
    return _sorted(versions, [*order, ("name", False), ("version_number", True)], _VERSION_ORDER)


# -- entities -> MLflow JSON ------------------------------------------------------------
def _pairs(mapping: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in mapping.items()]


def model_version_json(v: ModelVersion, uris: ArtifactUris) -> dict:
    out: dict[str, Any] = {
        "name": v.name,
        "version": str(v.version),
        "creation_timestamp": v.created_at,
        "last_updated_timestamp": v.updated_at,
        "user_id": v.user_id,
        "current_stage": v.stage,
        "source": uris.to_mlflow(v.source),
        "status": v.status,
        "tags": _pairs(v.tags),
        "aliases": list(v.aliases),
    }
    if v.description is not None:
        out["description"] = v.description
    if v.run_id:
        out["run_id"] = v.run_id
    return out


def registered_model_json(m: RegisteredModel, uris: ArtifactUris) -> dict:
    out: dict[str, Any] = {
        "name": m.name,
        "creation_timestamp": m.created_at,
        "last_updated_timestamp": m.updated_at,
        "latest_versions": [model_version_json(v, uris) for v in m.latest_versions],
        "tags": _pairs(m.tags),
        "aliases": [{"alias": a, "version": str(n)} for a, n in sorted(m.aliases.items())],
    }
    if m.description is not None:
        out["description"] = m.description
    return out
