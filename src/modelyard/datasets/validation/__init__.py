"""Data validation suites: infer one from reference data, check new data against it.

    >>> import pandas as pd
    >>> from modelyard.datasets import validation
    >>> ref = pd.DataFrame({"age": [20, 35, 51, 64], "plan": ["basic", "pro"] * 2})
    >>> suite = validation.infer_suite(ref, distribution=False)
    >>> suite.columns["age"].min, suite.columns["plan"].allowed
    (20, ['basic', 'pro'])
    >>> result = validation.validate(ref.assign(age=[20, 35, 51, 130]), suite)
    >>> result.passed, [c.message for c in result.failures]
    (False, ['1 value outside [20, 64]'])

The suite is a YAML file of our own, documented in `suite` (``Suite.load``,
``Suite.save``); the checks run on Arrow (`checks`, which also says why not
pandera); distribution checks reuse `modelyard.monitor.drift`; `report` writes the
HTML and JSON reports. ``modelyard data infer-suite`` and ``modelyard data validate``
are the command-line face.
"""

from __future__ import annotations

from modelyard.datasets.validation.infer import infer_suite
from modelyard.datasets.validation.report import to_html, to_json, write_report
from modelyard.datasets.validation.result import CheckResult, ValidationResult
from modelyard.datasets.validation.suite import ColumnRule, DistributionRule, RowRule, Suite
from modelyard.datasets.validation.validate import validate

__all__ = [
    "CheckResult",
    "ColumnRule",
    "DistributionRule",
    "RowRule",
    "Suite",
    "ValidationResult",
    "infer_suite",
    "to_html",
    "to_json",
    "validate",
    "write_report",
]
