"""What a validation found: one `CheckResult` per check, gathered in a
`ValidationResult` that passes only when no check failed.

Values in results are plain JSON data (dates as ISO text, non-finite floats as
``"NaN"``/``"Infinity"`` as in the CLI's JSON), so ``to_dict()`` serialises as is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

__all__ = ["FAIL", "PASS", "SKIP", "CheckResult", "ValidationResult", "plain"]

PASS, FAIL, SKIP = "pass", "fail", "skip"


def plain(value: Any) -> Any:
    """``value`` as JSON data: containers recursively, dates as ISO text, Decimal as
    float, bytes as text, non-finite floats as strings."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalar
        value = value.item()
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


@dataclass
class CheckResult:
    """One check on one column (or on the table: ``column`` None).

    ``check`` is one of rows, exists, unexpected, type, not_null, range, allowed,
    unique, regex, distribution. ``expected`` is the rule, ``observed`` what the data
    showed; ``failing`` counts the values (or rows) breaking the rule when that is
    countable, and ``examples`` shows a few of them (row positions for missing
    values). ``message`` says in words why a check failed or was skipped.
    """

    check: str
    column: str | None
    status: str
    expected: Any = None
    observed: Any = None
    failing: int | None = None
    examples: list[Any] = field(default_factory=list)
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "check": self.check,
            "status": self.status,
            "expected": plain(self.expected),
            "observed": plain(self.observed),
            "failing": self.failing,
            "examples": plain(self.examples),
            "message": self.message,
            "details": plain(self.details),
        }


@dataclass
class ValidationResult:
    """Every check's result for one dataset, in the suite's order.

    ``passed`` is True when no check failed (skipped checks do not fail: the
    message says why they could not run)."""

    checks: list[CheckResult]
    rows: int
    data: str
    suite: str | None = None
    seconds: float = 0.0

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if c.failed]

    @property
    def passed(self) -> bool:
        return not self.failures

    def count(self, status: str) -> int:
        return sum(1 for c in self.checks if c.status == status)

    def check(self, column: str | None, check: str) -> CheckResult:
        """The result of ``check`` on ``column`` (None for the table's checks)."""
        for c in self.checks:
            if c.column == column and c.check == check:
                return c
        raise KeyError((column, check))

    def summary(self) -> str:
        """``PASSED: 24 checks`` or ``FAILED: 3 of 24 checks`` (plus skipped ones)."""
        skipped = self.count(SKIP)
        tail = f", {skipped} skipped" if skipped else ""
        if self.passed:
            return f"PASSED: {len(self.checks) - skipped} checks{tail}"
        return f"FAILED: {len(self.failures)} of {len(self.checks)} checks{tail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "summary": self.summary(),
            "data": self.data,
            "suite": self.suite,
            "rows": self.rows,
            "checks_total": len(self.checks),
            "checks_failed": len(self.failures),
            "checks_skipped": self.count(SKIP),
            "seconds": self.seconds,
            "checks": [c.to_dict() for c in self.checks],
        }

    def to_frame(self):
        """The checks as a pandas DataFrame, one row each."""
        import pandas as pd

        return pd.DataFrame([c.to_dict() for c in self.checks])
