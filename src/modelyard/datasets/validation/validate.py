"""Running a suite: ``validate(data, suite)`` → a `ValidationResult`.

Checks come out in the suite's order: the row count, then each column's checks
(``exists`` or ``type`` first; a missing column is one failing ``exists`` check whose
message names it), columns the suite does not list (``strict: true``), then one
distribution check per column of the reference. Columns are read a few at a time,
so a Parquet folder wider than memory still validates. The distribution checks are
`monitor.drift` on the suite's reference profile (its automatic method and
thresholds unless the suite sets them): the same statistics as production
monitoring, so a dataset and a live window are judged alike.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pyarrow as pa

from modelyard.core.errors import InvalidParameter
from modelyard.datasets.validation.checks import (
    check_column,
    check_rows,
    missing_column,
    unexpected_column,
)
from modelyard.datasets.validation.result import FAIL, PASS, SKIP, CheckResult, ValidationResult
from modelyard.datasets.validation.suite import Suite
from modelyard.datasets.validation.table import Data, open_data
from modelyard.monitor.columns import batches
from modelyard.monitor.drift import METHODS, ColumnDrift, drift
from modelyard.monitor.profile import COLUMN_BATCH

__all__ = ["validate"]


def validate(
    data: Any, suite: Suite | str | os.PathLike, *, name: str | None = None
) -> ValidationResult:
    """Check ``data`` against ``suite``.

    Args:
        data: a pandas (or polars) DataFrame, a pyarrow Table, or the path of a
            Parquet or CSV file or of a folder of them.
        suite: a `Suite`, or the path of its YAML file.
        name: what to call the data in the result (default: its path or type).

    Returns a `ValidationResult` (``passed`` is False when any check failed). A suite
    that is not valid, or data that cannot be read, raises `InvalidParameter`.
    """
    started = time.perf_counter()
    suite_label = None if isinstance(suite, Suite) else str(suite)
    if not isinstance(suite, Suite):
        suite = Suite.load(suite)
    opened = open_data(data, "data")
    source = opened.source
    present = source.names
    checks: list[CheckResult] = []
    if suite.rows is not None:
        checks.append(check_rows(source.rows, suite.rows))
    found: dict[str, list[CheckResult]] = {}
    for group in batches([c for c in suite.columns if c in present], COLUMN_BATCH):
        columns = _read(opened, group)
        for column in group:
            found[column] = check_column(column, columns[column], suite.columns[column])
    for column in suite.columns:
        checks.extend(found.get(column) or [missing_column(column, present)])
    if suite.strict:
        checks.extend(unexpected_column(c) for c in present if c not in suite.columns)
    if suite.distribution is not None:
        checks.extend(distribution_checks(suite, opened))
    return ValidationResult(
        checks,
        rows=source.rows,
        data=name or opened.label,
        suite=suite_label,
        seconds=time.perf_counter() - started,
    )


def distribution_checks(suite: Suite, data: Data) -> list[CheckResult]:
    """One check per column of the reference: fails when `monitor.drift` says the
    column drifted; skipped (with the reason) when it cannot compare the column."""
    rule = suite.distribution
    reference = suite.reference_profile()
    try:
        report = drift(
            reference, data.raw, columns=rule.columns, method=rule.method, threshold=rule.threshold
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidParameter(f"data: cannot read it ({exc})") from None
    listed = set(suite.columns)
    present = set(data.source.names)
    return [_verdict(c, c.name in present, c.name in listed) for c in report.columns]


def _verdict(c: ColumnDrift, present: bool, listed: bool) -> CheckResult:
    result = CheckResult("distribution", c.name, PASS)
    if not present:
        # a missing column fails once: here only when no column rule reported it
        result.status = SKIP if listed else FAIL
        result.message = f"column {c.name!r} is missing from the data"
        return result
    if c.method is None:
        result.status, result.message = SKIP, c.message
        return result
    tested = METHODS[c.method][0] == "p_value"
    result.expected = f"p ≥ {c.threshold:g}" if tested else f"< {c.threshold:g}"
    result.observed = c.p_value if tested else c.statistic
    result.details = {
        "method": c.method,
        "statistic": c.statistic,
        "p_value": c.p_value,
        "threshold": c.threshold,
        "new_categories": c.new_categories,
    }
    notes = []
    if c.drifted:
        result.status = FAIL
        score = f"p = {c.p_value:.3g} <" if tested else f"{c.statistic:.3g} ≥"
        notes.append(f"drifted from the reference ({c.method} {score} {c.threshold:g})")
    if c.new_categories:
        more = " …" if len(c.new_categories) > 5 else ""
        notes.append(f"new categories: {', '.join(c.new_categories[:5])}{more}")
    result.message = "; ".join(notes) or None
    return result


def _read(data: Data, names: list[str]) -> dict[str, pa.ChunkedArray]:
    try:
        return data.source.read(names)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidParameter(f"data: cannot read columns {', '.join(names)} ({exc})") from None
