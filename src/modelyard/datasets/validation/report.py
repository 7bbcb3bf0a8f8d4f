"""Reports of a validation for people and machines: a self-contained HTML page (no
scripts, no network: it opens from a CI artifact store as is) and its JSON twin.

``write_report(result, "out.html")`` writes ``out.html`` and ``out.json`` beside it;
a ``.json`` path writes the JSON only.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

from modelyard.core.errors import InvalidParameter
from modelyard.datasets.validation.result import FAIL, SKIP, CheckResult, ValidationResult

__all__ = ["fmt", "to_html", "to_json", "write_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
h1 { font-size: 1.4rem; }
.passed { color: #1a7f37; } .failed { color: #cf222e; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border: 1px solid #d0d7de; padding: 0.3rem 0.6rem; text-align: left;
         vertical-align: top; }
th { background: #f6f8fa; }
tr.fail td { background: #ffebe9; } tr.skip td { color: #6e7781; }
td.status { font-weight: bold; } code { font-size: 0.85rem; }
"""


def to_json(result: ValidationResult) -> str:
    """The result as indented JSON (what ``--json`` prints)."""
    return json.dumps(result.to_dict(), indent=2, allow_nan=False, default=str)


def to_html(result: ValidationResult) -> str:
    """One page: the verdict, a summary, then every check (failures shaded)."""
    verdict = "passed" if result.passed else "failed"
    facts = [
        ("data", result.data),
        ("suite", result.suite or ""),
        ("rows", f"{result.rows:,}"),
        ("checks", result.summary()),
        ("time", f"{result.seconds:.2f} s"),
    ]
    rows = "\n".join(_row(c) for c in result.checks)
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "status",
            "column",
            "check",
            "expected",
            "observed",
            "failing",
            "examples",
            "message",
        )
    )
    summary = "".join(f"<tr><th>{k}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    title = f"Data validation {verdict}: {result.data}"
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>\n<body>\n"
        f'<h1 class="{verdict}">{_e(title)}</h1>\n'
        f'<table class="summary">{summary}</table>\n<h2>Checks</h2>\n'
        f'<table class="checks"><thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n</tbody>'
        "</table>\n</body></html>\n"
    )


def write_report(result: ValidationResult, path: str | os.PathLike) -> list[Path]:
    """Write ``path`` (``.html``: and its ``.json`` twin; ``.json``: that only) and
    return the files written."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".html", ".htm", ".json"):
        raise InvalidParameter(f"--report: write a .html or a .json file, not {path.name!r}")
    if not path.parent.is_dir():
        raise InvalidParameter(f"--report: no folder {str(path.parent)!r} to write into")
    twin = path.with_suffix(".json")
    written = []
    if suffix != ".json":
        path.write_text(to_html(result), encoding="utf-8")
        written.append(path)
    twin.write_text(to_json(result), encoding="utf-8")
    written.append(twin)
    return written


def _row(c: CheckResult) -> str:
    css = {FAIL: "fail", SKIP: "skip"}.get(c.status, "pass")
    check = c.check + (f" ({c.details['method']})" if c.details.get("method") else "")
    cells = [
        c.status,
        c.column or "(table)",
        check,
        fmt(c.expected),
        fmt(c.observed),
        "" if c.failing is None else f"{c.failing:,}",
        ", ".join(fmt(v) for v in c.examples),
        c.message or "",
    ]
    tds = "".join(
        f'<td class="status">{_e(v)}</td>' if i == 0 else f"<td>{_e(v)}</td>"
        for i, v in enumerate(cells)
    )
    return f'<tr class="{css}">{tds}</tr>'


def fmt(value: Any) -> str:
    """A value for a table cell: floats to 4 significant digits, ranges as
    ``min=…, max=…``, lists in brackets, nothing for None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return str(value)


def _e(value: Any) -> str:
    return html.escape(str(value))
