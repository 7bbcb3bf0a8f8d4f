"""MLflow's experiment-search filter and ``order_by``, evaluated over experiments.

The syntax is MLflow's: comparisons joined by ``AND``::

    name = 'churn'  AND  tags.team LIKE 'ml-%'  AND  creation_time > 1700000000000

Operands are ``name``, ``creation_time``, ``last_update_time`` (optionally written
``attribute.<name>``) and ``tags.<key>`` (a key with other characters goes between
backquotes or double quotes). Strings take ``= != LIKE ILIKE``, times take
``= != < <= > >=``. Experiments are few, so the server filters, sorts and pages them
here rather than in SQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from modelyard.core.errors import InvalidParameter
from modelyard.tracking.entities import Experiment

__all__ = ["Clause", "matches", "parse_experiment_filter", "sort_experiments"]

_STRING_ATTRS = ("name",)
_NUMBER_ATTRS = ("creation_time", "last_update_time")
_ORDERABLE = ("name", "experiment_id", "creation_time", "last_update_time")
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE")
_NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
      | (?P<bquote>`(?:[^`]|``)*`)
      | (?P<number>[+-]?\d+)
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<word>[A-Za-z_][A-Za-z0-9_.\-]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Clause:
    """``tags.team = 'ml'`` is ``Clause('tag', 'team', '=', 'ml')``."""

    kind: str  # "attribute" or "tag"
    key: str
    op: str
    value: str | int


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None:
            raise InvalidParameter(
                f"Invalid experiment filter {text!r}: unexpected {text[pos:].strip()[:20]!r} "
                f"at position {pos}"
            )
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return out


def _unquote(token: str) -> str:
    quote = token[0]
    return token[1:-1].replace(quote * 2, quote)


def _operand(tokens: list[tuple[str, str, int]], i: int, text: str) -> tuple[str, str, int]:
    kind, tok, pos = tokens[i]
    if kind != "word":
        raise InvalidParameter(
            f"Invalid experiment filter {text!r}: expected name, creation_time, "
            f"last_update_time or tags.<key> at position {pos}, got {tok!r}"
        )
    prefix, dot, key = tok.partition(".")
    if not dot:
        prefix, key = "attribute", tok
    prefix = prefix.lower()
    if prefix in ("tag", "tags"):
        if not key and i + 1 < len(tokens) and tokens[i + 1][0] in ("bquote", "string"):
            return "tag", _unquote(tokens[i + 1][1]), i + 2
        if not key:
            raise InvalidParameter(f"Invalid experiment filter {text!r}: tags. needs a key")
        return "tag", key, i + 1
    if prefix in ("attribute", "attributes") and key.lower() in _STRING_ATTRS + _NUMBER_ATTRS:
        return "attribute", key.lower(), i + 1
    raise InvalidParameter(
        f"Invalid experiment filter {text!r}: unknown operand {tok!r}; use name, "
        "creation_time, last_update_time or tags.<key>"
    )


def parse_experiment_filter(text: str | None) -> list[Clause]:
    """The ``AND``-ed clauses of a filter (none for an empty one)."""
    if not text or not text.strip():
        return []
    tokens = _tokens(text)
    clauses, i = [], 0
    while True:
        kind, key, i = _operand(tokens, i, text)
        if i >= len(tokens):
            raise InvalidParameter(f"Invalid experiment filter {text!r}: missing a comparator")
        tok_kind, op, pos = tokens[i]
        op = "!=" if op == "<>" else op.upper()
        numeric = kind == "attribute" and key in _NUMBER_ATTRS
        allowed = _NUMBER_OPS if numeric else _STRING_OPS
        if tok_kind not in ("op", "word") or op not in allowed:
            raise InvalidParameter(
                f"Invalid experiment filter {text!r}: {key} takes {', '.join(allowed)}; "
                f"got {tokens[i][1]!r} at position {pos}"
            )
        if i + 1 >= len(tokens):
            raise InvalidParameter(f"Invalid experiment filter {text!r}: missing a value")
        val_kind, raw, pos = tokens[i + 1]
        if numeric and val_kind != "number":
            raise InvalidParameter(
                f"Invalid experiment filter {text!r}: {key} compares with an integer "
                f"(milliseconds), got {raw!r}"
            )
        if not numeric and val_kind != "string":
            raise InvalidParameter(
                f"Invalid experiment filter {text!r}: {key} compares with a quoted string, "
                f"got {raw!r}; write {key} {op} '{raw}'"
            )
        clauses.append(Clause(kind, key, op, int(raw) if numeric else _unquote(raw)))
        i += 2
        if i >= len(tokens):
            return clauses
        if tokens[i][0] != "word" or tokens[i][1].upper() != "AND":
            raise InvalidParameter(
                f"Invalid experiment filter {text!r}: expected AND at position {tokens[i][2]}, "
                f"got {tokens[i][1]!r} (experiment filters join comparisons with AND only)"
            )
        i += 1


def _like(pattern: str, flags: int = 0) -> re.Pattern[str]:
    parts = []
    escaped = False
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
    return re.compile("".join(parts), flags | re.DOTALL)


def _test(clause: Clause) -> Callable[[object], bool]:
    v = clause.value
    match clause.op:
        case "=":
            return lambda x: x == v
        case "!=":
            return lambda x: x != v
        case "<":
            return lambda x: x < v  # type: ignore[operator]
        case "<=":
            return lambda x: x <= v  # type: ignore[operator]
        case ">":
            return lambda x: x > v  # type: ignore[operator]
        case ">=":
            return lambda x: x >= v  # type: ignore[operator]
        case "LIKE" | "ILIKE":
            rx = _like(str(v), re.IGNORECASE if clause.op == "ILIKE" else 0)
            return lambda x: rx.fullmatch(str(x)) is not None
    raise AssertionError(clause.op)  # pragma: no cover


def matches(clauses: Sequence[Clause]) -> Callable[[Experiment], bool]:
    """A predicate true for experiments satisfying every clause (a missing tag fails)."""
    tests = [(c, _test(c)) for c in clauses]

    def check(exp: Experiment) -> bool:
        for clause, test in tests:
            if clause.kind == "tag":
                if clause.key not in exp.tags or not test(exp.tags[clause.key]):
                    return False
            elif not test(getattr(exp, clause.key)):
                return False
        return True

    return check


def sort_experiments(experiments: list[Experiment], order_by: Sequence[str]) -> list[Experiment]:
    """Sort by ``order_by`` (``"name"``, ``"last_update_time DESC"``...), newest first by
    default; ties go to the higher experiment id, as MLflow does."""
    keys: list[tuple[str, bool]] = []
    for clause in order_by:
        words = clause.split()
        if not words or len(words) > 2:
            raise InvalidParameter(f"Invalid order_by {clause!r}: write e.g. 'name ASC'")
        field = words[0].lower().removeprefix("attributes.").removeprefix("attribute.")
        direction = words[1].upper() if len(words) == 2 else "ASC"
        if field not in _ORDERABLE or direction not in ("ASC", "DESC"):
            raise InvalidParameter(
                f"Invalid order_by {clause!r}: order by {', '.join(_ORDERABLE)}, "
                "optionally followed by ASC or DESC"
            )
        keys.append((field, direction == "ASC"))
    if not keys:
        keys.append(("creation_time", False))
    if not any(field == "experiment_id" for field, _ in keys):
        keys.append(("experiment_id", False))
    out = list(experiments)
    for field, ascending in reversed(keys):  # stable sorts, least significant first
        if field == "experiment_id":
            out.sort(key=lambda e: int(e.experiment_id), reverse=not ascending)
        else:
            out.sort(key=lambda e, f=field: getattr(e, f), reverse=not ascending)
    return out
