"""The run-search filter language and ``order_by`` clauses, parsed into a small AST.

The syntax is MLflow's ``search_runs`` filter, extended with ``OR``, ``NOT``,
parentheses, ``NOT IN``, ``BETWEEN`` and ``IS [NOT] NULL``::

    filter     := or
    or         := and ("OR" and)*
    and        := not ("AND" not)*
    not        := "NOT" not | "(" or ")" | comparison
    comparison := operand ( ("=" | "!=" | "<>" | "<" | "<=" | ">" | ">=") value
                          | ["NOT"] ("LIKE" | "ILIKE") string
                          | ["NOT"] "IN" "(" value ("," value)* ")"
                          | ["NOT"] "BETWEEN" value "AND" value
                          | "IS" ["NOT"] "NULL" )
    operand    := entity "." (plain-key | `quoted key` | "quoted key")
    entity     := metrics | params | tags | attributes (and their aliases)

Keywords are case-insensitive. The parser is pure Python on purpose: it checks
every type rule up front, with the position of the mistake, so each backend
(``search_sql`` today) only translates a tree that is already known to be valid.

    >>> parse_filter("metrics.acc > 0.9 AND params.model = 'rf'")
    And(items=(Comparison(entity='metric', key='acc', op='>', value=0.9), \
Comparison(entity='param', key='model', op='=', value='rf')))
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, NoReturn

from modelyard.core.errors import InvalidParameter

__all__ = [
    "ATTRIBUTES",
    "And",
    "Comparison",
    "Entity",
    "Node",
    "Not",
    "Or",
    "OrderKey",
    "parse_filter",
    "parse_order_by",
]

Entity = Literal["metric", "param", "tag", "attribute"]

_ENTITIES: dict[str, Entity] = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "parameters": "param",
    "parameter": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
    "run": "attribute",
}

#: Searchable run attributes and the type their values must have.
ATTRIBUTES: dict[str, Literal["number", "string"]] = {
    "artifact_uri": "string",
    "end_time": "number",
    "experiment_id": "string",
    "lifecycle_stage": "string",
    "parent_run_id": "string",
    "run_id": "string",
    "run_name": "string",
    "start_time": "number",
    "status": "string",
    "user_id": "string",
}
_ATTRIBUTE_ALIASES = {"name": "run_name"}

_ORDERING_OPS = frozenset({"<", "<=", ">", ">=", "BETWEEN", "NOT BETWEEN"})
_PATTERN_OPS = frozenset({"LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE"})
_LIST_OPS = frozenset({"IN", "NOT IN"})
_SYMBOL_OPS = {"=": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@dataclass(frozen=True, slots=True)
class Comparison:
    """One test on a run: ``metrics.acc > 0.9`` is ``Comparison('metric', 'acc', '>', 0.9)``.

    ``op`` is one of ``= != < <= > >= LIKE NOT LIKE ILIKE NOT ILIKE IN NOT IN
    BETWEEN NOT BETWEEN IS NULL IS NOT NULL``. ``value`` is a float/int or str,
    a tuple for ``IN`` (the list) and ``BETWEEN`` (low, high), None for ``IS``.
    Attribute keys are canonical (``name`` arrives as ``run_name``).
    """

    entity: Entity
    key: str
    op: str
    value: object


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = Comparison | And | Or | Not


@dataclass(frozen=True, slots=True)
class OrderKey:
    """One ``order_by`` clause: ``metrics.acc DESC`` is ``OrderKey('metric', 'acc', False)``."""

    entity: Entity
    key: str
    ascending: bool = True


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # word, string, bquote, number, op, "(", ")", ",", end
    text: str  # the source text
    value: object
    pos: int
    end: int


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-./]*")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_INT = re.compile(r"[+-]?\d+")
_SYMBOL = re.compile(r"<=|>=|!=|<>|==|=|<|>")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-./]+")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _operand_text(entity: Entity, key: str) -> str:
    prefix = {"metric": "metrics", "param": "params", "tag": "tags", "attribute": "attributes"}
    shown = key if _PLAIN_KEY.fullmatch(key) else "`" + key.replace("`", "``") + "`"
    return f"{prefix[entity]}.{shown}"


class _Parser:
    """Tokenizer and recursive-descent parser over one string; `label` names it in errors."""

    def __init__(self, text: str, label: str) -> None:
        self.text = text
        self.label = label
        self.tokens = self._tokenize()
        self.i = 0

    # -- errors and token access -------------------------------------------------

    def fail(self, pos: int, message: str) -> NoReturn:
        raise InvalidParameter(f"{self.label} at position {pos}: {message}")

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def keyword(self, *words: str) -> bool:
        """Consume the next tokens if they are exactly these keywords."""
        toks = self.tokens[self.i : self.i + len(words)]
        if len(toks) == len(words) and all(
            t.kind == "word" and t.text.upper() == w for t, w in zip(toks, words, strict=True)
        ):
            self.i += len(words)
            return True
        return False

    @staticmethod
    def show(tok: _Token) -> str:
        return "the end of the input" if tok.kind == "end" else repr(tok.text)

    # -- tokenizer ---------------------------------------------------------------

    def _tokenize(self) -> list[_Token]:
        text, out, i = self.text, [], 0
        while i < len(text):
            ch = text[i]
            if ch.isspace():
                i += 1
                continue
            if ch in "(),":
                out.append(_Token(ch, ch, ch, i, i + 1))
                i += 1
            elif ch in "'\"`":
                value, end = self._quoted(i)
                kind = "bquote" if ch == "`" else "string"
                out.append(_Token(kind, text[i:end], value, i, end))
                i = end
            elif m := _NUMBER.match(text, i):
                i = self._number(m, out)
            elif m := _WORD.match(text, i):
                out.append(_Token("word", m.group(), m.group(), i, m.end()))
                i = m.end()
            elif m := _SYMBOL.match(text, i):
                if m.group() == "==":
                    self.fail(i, "unknown comparator '=='; write = to test equality")
                out.append(_Token("op", m.group(), _SYMBOL_OPS[m.group()], i, m.end()))
                i = m.end()
            else:
                self.fail(i, f"unexpected character {ch!r}")
        out.append(_Token("end", "", None, len(text), len(text)))
        return out

    def _number(self, m: re.Match[str], out: list[_Token]) -> int:
        raw, end = m.group(), m.end()
        if end < len(self.text) and (self.text[end].isalnum() or self.text[end] == "_"):
            self.fail(m.start(), f"malformed number starting {self.text[m.start() : end + 1]!r}")
        value: float = int(raw) if _INT.fullmatch(raw) else float(raw)
        if not math.isfinite(value):
            self.fail(m.start(), f"number {raw} is out of range")
        out.append(_Token("number", raw, value, m.start(), end))
        return end

    def _quoted(self, start: int) -> tuple[str, int]:
        """Read a quoted string or key; a doubled quote or a backslash escapes the quote."""
        text, quote = self.text, self.text[start]
        chars: list[str] = []
        i = start + 1
        while i < len(text):
            ch = text[i]
            nxt = text[i + 1] if i + 1 < len(text) else ""
            if ch == quote and nxt == quote:
                chars.append(quote)
                i += 2
            elif ch == quote:
                return "".join(chars), i + 1
            elif ch == "\\" and quote != "`" and nxt in (quote, "\\"):
                chars.append(nxt)
                i += 2
            else:
                chars.append(ch)
                i += 1
        what = "key" if quote == "`" else "string"
        self.fail(start, f"unterminated {what}: add the closing {quote}")

    # -- grammar -----------------------------------------------------------------

    def parse_filter(self) -> Node | None:
        if self.peek().kind == "end":
            return None
        node = self.or_()
        tok = self.peek()
        if tok.kind != "end":
            self.fail(tok.pos, f"expected AND, OR or the end of the filter, got {self.show(tok)}")
        return node

    def or_(self) -> Node:
        items = [self.and_()]
        while self.keyword("OR"):
            items.append(self.and_())
        flat = tuple(x for it in items for x in (it.items if isinstance(it, Or) else (it,)))
        return flat[0] if len(flat) == 1 else Or(flat)

    def and_(self) -> Node:
        items = [self.not_()]
        while self.keyword("AND"):
            items.append(self.not_())
        flat = tuple(x for it in items for x in (it.items if isinstance(it, And) else (it,)))
        return flat[0] if len(flat) == 1 else And(flat)

    def not_(self) -> Node:
        if self.keyword("NOT"):
            return Not(self.not_())
        if self.peek().kind == "(":
            opening = self.advance()
            node = self.or_()
            if self.peek().kind != ")":
                tok = self.peek()
                self.fail(
                    tok.pos,
                    f"expected ')' to close the '(' at position {opening.pos}, "
                    f"got {self.show(tok)}",
                )
            self.advance()
            return node
        return self.comparison()

    def operand(self) -> tuple[Entity, str]:
        tok = self.advance()
        if tok.kind != "word":
            self.fail(
                tok.pos,
                "expected a key such as metrics.acc, params.lr, tags.team or "
                f"attributes.status, got {self.show(tok)}",
            )
        prefix, dot, key = tok.text.partition(".")
        if not dot:
            name = tok.text.lower()
            if name in ATTRIBUTES or name in _ATTRIBUTE_ALIASES:
                hint = f"write attributes.{name}"
            else:
                hint = f"write metrics.{tok.text}, params.{tok.text} or tags.{tok.text}"
            self.fail(tok.pos, f"{tok.text!r} has no entity prefix; {hint}")
        entity = _ENTITIES.get(prefix.lower())
        if entity is None:
            self.fail(
                tok.pos,
                f"unknown entity {prefix!r} in {tok.text!r}; expected metrics.<key>, "
                "params.<key>, tags.<key> or attributes.<name>",
            )
        if not key:
            nxt = self.peek()
            quoted_key = nxt.kind == "bquote" or (nxt.kind == "string" and nxt.text[0] == '"')
            if nxt.pos != tok.end or not quoted_key:
                self.fail(
                    tok.end,
                    f"expected a key after {tok.text!r}, got {self.show(nxt)}; write "
                    f"{tok.text}name, or {tok.text}`name with spaces` for other characters",
                )
            key = str(self.advance().value)
            if not key:
                self.fail(nxt.pos, "the key is empty; write the key between the quotes")
        if entity == "attribute":
            name = key.lower()
            name = _ATTRIBUTE_ALIASES.get(name, name)
            if name not in ATTRIBUTES:
                self.fail(
                    tok.pos,
                    f"unknown attribute {key!r}; valid attributes are "
                    + ", ".join(sorted([*ATTRIBUTES, *_ATTRIBUTE_ALIASES])),
                )
            key = name
        return entity, key

    def comparator(self, subject: str) -> tuple[str, _Token]:
        tok = self.peek()
        if tok.kind == "op":
            self.advance()
            return str(tok.value), tok
        for words in (
            ("IS", "NOT", "NULL"),
            ("IS", "NULL"),
            ("NOT", "LIKE"),
            ("NOT", "ILIKE"),
            ("NOT", "IN"),
            ("NOT", "BETWEEN"),
            ("LIKE",),
            ("ILIKE",),
            ("IN",),
            ("BETWEEN",),
        ):
            if self.keyword(*words):
                return " ".join(words), tok
        self.fail(
            tok.pos,
            f"expected a comparator after {subject} (=, !=, <, <=, >, >=, LIKE, ILIKE, "
            f"IN, NOT IN, BETWEEN, IS NULL, IS NOT NULL), got {self.show(tok)}",
        )

    def comparison(self) -> Comparison:
        entity, key = self.operand()
        subject = _operand_text(entity, key)
        op, op_tok = self.comparator(subject)
        numeric = entity == "metric" or (entity == "attribute" and ATTRIBUTES[key] == "number")
        kind = "metrics" if entity == "metric" else f"{entity}s"
        if op in _PATTERN_OPS and numeric:
            self.fail(
                op_tok.pos,
                f"{subject}: {op} matches strings only (params, tags and string attributes) "
                f"but {subject} is a number; use =, !=, <, <=, >, >=, BETWEEN or IN",
            )
        if op in _ORDERING_OPS and not numeric:
            self.fail(
                op_tok.pos,
                f"{subject}: {op} compares numbers but {kind} are strings; use =, !=, LIKE, "
                "ILIKE, IN or NOT IN (log the value as a metric to compare it numerically)",
            )
        if op in ("IS NULL", "IS NOT NULL"):
            return Comparison(entity, key, op, None)
        if op in _LIST_OPS:
            if self.peek().kind != "(":
                self.fail(
                    self.peek().pos,
                    f"expected '(' after {op}, got {self.show(self.peek())}; "
                    f"write {subject} {op} ('a', 'b')",
                )
            self.advance()
            values = [self.value(subject, op, numeric)]
            while self.peek().kind == ",":
                self.advance()
                values.append(self.value(subject, op, numeric))
            if self.peek().kind != ")":
                self.fail(
                    self.peek().pos,
                    f"expected ',' or ')' in the {op} list, got {self.show(self.peek())}",
                )
            self.advance()
            return Comparison(entity, key, op, tuple(values))
        if op in ("BETWEEN", "NOT BETWEEN"):
            low = self.value(subject, op, numeric)
            if not self.keyword("AND"):
                tok = self.peek()
                self.fail(
                    tok.pos,
                    f"expected AND in {subject} {op} {low} AND <high>, got {self.show(tok)}",
                )
            return Comparison(entity, key, op, (low, self.value(subject, op, numeric)))
        value = self.value(subject, op, numeric)
        if op in _PATTERN_OPS and re.search(r"(?<!\\)(\\\\)*\\$", str(value)):
            self.fail(
                self.tokens[self.i - 1].pos,
                f"{subject}: the {op} pattern ends with an unpaired escape '\\'; "
                "double it to match a backslash",
            )
        return Comparison(entity, key, op, value)

    def value(self, subject: str, op: str, numeric: bool) -> object:
        tok = self.advance()
        shown = "({})" if op in _LIST_OPS else "{}"
        if tok.kind not in ("number", "string", "word"):
            expected = "a number" if numeric else "a quoted string"
            self.fail(tok.pos, f"{subject} {op}: expected {expected}, got {self.show(tok)}")
        if tok.kind == "word" and tok.text.upper() == "NULL" and op in ("=", "!="):
            fix = f"write {subject} IS {'NOT ' if op == '!=' else ''}NULL"
            self.fail(tok.pos, f"{subject}: {op} cannot compare with NULL — {fix}")
        if numeric and tok.kind != "number":
            got = str(tok.value)
            if _NUMBER.fullmatch(got.strip()) and op in ("BETWEEN", "NOT BETWEEN"):
                fix = f"write {got.strip()} without quotes"
            elif _NUMBER.fullmatch(got.strip()):
                fix = f"write {subject} {op} {shown.format(got.strip())} without quotes"
            else:
                fix = f"compare {subject} with a number, e.g. {subject} > 0.5"
            self.fail(tok.pos, f"{subject}: expected a number, got {tok.text} — {fix}")
        if not numeric and tok.kind != "string":
            fix = f"write {subject} {op} {shown.format(_quote(tok.text))}"
            self.fail(tok.pos, f"{subject}: expected a quoted string, got {tok.text} — {fix}")
        return tok.value


def parse_filter(text: str | None) -> Node | None:
    """Parse a search filter; None for an empty or blank one (match every run).

    Raises InvalidParameter naming the position, what was expected, what came
    and how to write it instead.
    """
    if text is None or not text.strip():
        return None
    return _Parser(text, "Invalid filter").parse_filter()


def parse_order_by(clauses: list[str] | None) -> list[OrderKey]:
    """Parse ``order_by`` clauses such as ``["metrics.acc DESC", "params.lr"]`` (ASC default)."""
    if not clauses:
        return []
    if isinstance(clauses, str):
        raise InvalidParameter(
            f"order_by must be a list of strings, got the string {clauses!r}; write [{clauses!r}]"
        )
    keys = []
    for n, clause in enumerate(clauses):
        parser = _Parser(str(clause), f"Invalid order_by[{n}] {clause!r}")
        if parser.peek().kind == "end":
            parser.fail(0, "the clause is empty; write e.g. 'metrics.acc DESC'")
        entity, key = parser.operand()
        ascending = True
        if parser.keyword("DESC"):
            ascending = False
        else:
            parser.keyword("ASC")
        tok = parser.peek()
        if tok.kind != "end":
            subject = _operand_text(entity, key)
            parser.fail(tok.pos, f"expected ASC or DESC after {subject}, got {parser.show(tok)}")
        keys.append(OrderKey(entity, key, ascending))
    return keys
