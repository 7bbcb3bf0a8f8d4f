"""Validation suites: what a dataset must satisfy, as a YAML file people can read.

The format is ours and stable (``version: 1``); every key but ``version`` is
optional, and unknown keys are errors (a typo must not silently drop a check)::

    version: 1
    rows: {min: 500, max: 1500}           # row-count bounds, inclusive
    strict: false                         # true: columns the suite does not list fail
    columns:
      age: {type: int, nullable: false, min: 18, max: 99}
      plan: {type: string, allowed: [basic, pro]}
      email: {type: string, regex: '^[^@]+@[^@]+$', unique: true}
      signup: {type: datetime, min: '2020-01-01T00:00:00'}
      note: {}                            # only: the column exists
    distribution:                         # drift against a reference, one check per column
      method: null                        # automatic, a method name, or {column or kind: method}
      threshold: null                     # the method's default, a number, or {method: number}
      columns: [age, plan]                # default: every column of the reference
      reference: {rows: 1000, columns: {...}}   # a profile inline, or a path (see below)

Column rules (missing values are only ``nullable``'s business; the other rules look
at the values present):

- ``type``: ``int`` (any width; floats whose values are all whole pass too, since
  pandas stores integers with missing values as floats), ``float`` (integers pass),
  ``decimal``, ``string``, ``bool``, ``datetime``, ``date``, ``time``, ``duration``,
  ``binary``, or a nested Arrow type by its Arrow name (``list<item: int64>``).
- ``nullable: false``: no missing value (null or NaN). The default is true.
- ``min`` / ``max``: inclusive bounds for numbers, datetimes and dates (ISO text).
- ``allowed``: the values allowed, compared as text (``1`` and ``1.0`` are one value).
- ``unique: true``: no value appears twice.
- ``regex``: every value contains a match (RE2 syntax, as pyarrow runs it; anchor
  with ``^...$`` to match whole values); non-text values are matched as text.

``distribution.reference`` is a `DatasetProfile` inline (what ``infer-suite`` writes:
one self-contained file that ``infer-suite DATA > suite.yaml`` can produce), or the
path of a profile saved as JSON (``infer-suite --profile-out``, ``monitor profile``)
or of reference data (Parquet/CSV, profiled at each validation). A relative path is
relative to the suite file's folder.
"""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from modelyard.core.errors import InvalidParameter
from modelyard.datasets.validation.table import open_data
from modelyard.monitor.drift import METHODS
from modelyard.monitor.profile import DatasetProfile, profile

__all__ = ["TYPES", "ColumnRule", "DistributionRule", "RowRule", "Suite"]

VERSION = 1
TYPES = (
    "int",
    "float",
    "decimal",
    "string",
    "bool",
    "datetime",
    "date",
    "time",
    "duration",
    "binary",
)


def is_known_type(name: str) -> bool:
    """One of `TYPES`, or a nested Arrow type's name (``list<item: int64>``)."""
    return name in TYPES or "<" in name


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RowRule(_Rule):
    """Row-count bounds (inclusive); either may be left open."""

    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)

    @field_validator("max")
    @classmethod
    def _ordered(cls, value: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get("min")
        if value is not None and low is not None and value < low:
            raise ValueError(f"max ({value}) is below min ({low})")
        return value


def _scalar(value: Any, what: str) -> Any:
    """A bound or allowed value as YAML gave it: number, text, or a date (as ISO text)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bool) and what == "bound":
        raise ValueError("a bound is a number or an ISO date, not true/false")
    if value is None or isinstance(value, list | dict):
        expected = "a number or an ISO date" if what == "bound" else "a number, text or true/false"
        raise ValueError(f"expected {expected}, got {value!r}")
    return value


class ColumnRule(_Rule):
    """What one column must satisfy (see the module docstring)."""

    type: str | None = None
    nullable: bool = True
    min: int | float | str | None = None
    max: int | float | str | None = None
    allowed: list[bool | int | float | str] | None = None
    unique: bool = False
    regex: str | None = None

    @field_validator("type")
    @classmethod
    def _type(cls, value: str | None) -> str | None:
        if value is not None and not is_known_type(value):
            raise ValueError(f"unknown type {value!r}; use one of {', '.join(TYPES)}")
        return value

    @field_validator("min", "max", mode="before")
    @classmethod
    def _bound(cls, value: Any) -> Any:
        return None if value is None else _scalar(value, "bound")

    @field_validator("allowed", mode="before")
    @classmethod
    def _allowed(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list) or not value:
            raise ValueError(f"expected a non-empty list of values, got {value!r}")
        return [_scalar(v, "value") for v in value]

    @field_validator("regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:  # pyarrow compiles the pattern (RE2) only when there is a value
                pc.match_substring_regex(pa.array([""]), value)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ValueError(
                    f"{value!r} is not a regular expression RE2 accepts: {exc}"
                ) from None
        return value


class DistributionRule(_Rule):
    """Drift checks against a reference profile, one per column (`monitor.drift`)."""

    reference: dict[str, Any] | str
    method: str | dict[str, str] | None = None
    threshold: float | dict[str, float] | None = None
    columns: list[str] | None = None

    @field_validator("method")
    @classmethod
    def _method(cls, value: Any) -> Any:
        names = [value] if isinstance(value, str) else list((value or {}).values())
        for name in names:
            if name not in METHODS:
                raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
        return value

    @field_validator("threshold")
    @classmethod
    def _threshold(cls, value: Any) -> Any:
        pairs = value.items() if isinstance(value, dict) else [(None, value)]
        for name, number in pairs:
            if name is not None and name not in METHODS:
                raise ValueError(f"threshold for unknown method {name!r}")
            if number is not None and number <= 0:
                raise ValueError(f"thresholds are positive numbers, got {number!r}")
        return value

    @field_validator("reference")
    @classmethod
    def _reference(cls, value: Any) -> Any:
        if isinstance(value, dict):
            try:
                DatasetProfile.from_dict(value)
            except InvalidParameter as exc:
                raise ValueError(exc.message) from None
        elif not value:
            raise ValueError("give a profile inline or the path of a profile or of data")
        return value


class Suite(_Rule):
    """A validation suite: row-count bounds, column rules, distribution checks.

    Example:
        >>> suite = Suite.loads("version: 1\\ncolumns:\\n  age: {type: int, min: 0}")
        >>> suite.columns["age"].min
        0
        >>> print(suite.dumps(), end="")
        version: 1
        columns:
          age: {type: int, min: 0}

    ``Suite.load(path)`` reads a file (relative reference paths then resolve against
    its folder); ``save(path)`` writes one. Bad content raises `InvalidParameter`
    naming each offending key.
    """

    version: int = VERSION
    rows: RowRule | None = None
    strict: bool = False
    columns: dict[str, ColumnRule] = Field(default_factory=dict)
    distribution: DistributionRule | None = None
    _base: Path | None = PrivateAttr(None)

    @field_validator("version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != VERSION:
            raise ValueError(f"this modelyard reads suite version {VERSION}, not {value}")
        return value

    # -- reading ----------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls, data: Any, *, base: str | os.PathLike | None = None, name: str = "suite"
    ) -> Suite:
        """A suite from parsed YAML; ``base`` is the folder relative paths start from."""
        if not isinstance(data, dict):
            raise InvalidParameter(
                f"{name}: expected a mapping with version, rows, columns and distribution, "
                f"got {type(data).__name__}"
            )
        data = dict(data)
        if isinstance(data.get("columns"), dict):
            data["columns"] = {_column_name(k, name): v for k, v in data["columns"].items()}
        try:
            suite = cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidParameter(f"{name} is not a valid suite: {_describe(exc)}") from None
        suite._base = Path(base) if base is not None else None
        return suite

    @classmethod
    def loads(
        cls, text: str, *, base: str | os.PathLike | None = None, name: str = "suite"
    ) -> Suite:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidParameter(f"{name} is not valid YAML: {exc}") from None
        return cls.from_dict(data, base=base, name=name)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Suite:
        path = Path(path)
        if not path.is_file():
            raise InvalidParameter(f"No suite at {str(path)!r}")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidParameter(f"{path}: cannot read the suite ({exc})") from None
        return cls.loads(text, base=path.parent, name=str(path))

    # -- writing ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The suite as plain data, defaults left out (``nullable: false`` shows,
        ``nullable: true`` does not)."""
        out: dict[str, Any] = {"version": self.version}
        if self.rows is not None:
            out["rows"] = self.rows.model_dump(exclude_none=True)
        if self.strict:
            out["strict"] = True
        out["columns"] = {k: v.model_dump(exclude_defaults=True) for k, v in self.columns.items()}
        if self.distribution is not None:
            rule = self.distribution.model_dump(exclude_none=True)
            if isinstance(rule["reference"], dict):
                rule["reference"] = _compact(rule.pop("reference"))
            else:
                rule["reference"] = rule.pop("reference")  # keep it last: it is the long part
            out["distribution"] = rule
        return out

    def dumps(self) -> str:
        """YAML text: one line per column rule, one (wrapped) line per column of an
        inline reference profile."""
        return yaml.dump(
            _one_line_rules(self.to_dict()),
            Dumper=_Dumper,
            sort_keys=False,
            default_flow_style=None,
            width=120,
            allow_unicode=True,
        )

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(self.dumps(), encoding="utf-8")

    # -- the reference ----------------------------------------------------------------
    def reference_path(self) -> Path | None:
        """The file ``distribution.reference`` names (resolved), or None when inline."""
        if self.distribution is None or not isinstance(self.distribution.reference, str):
            return None
        path = Path(self.distribution.reference).expanduser()
        if not path.is_absolute() and self._base is not None:
            path = self._base / path
        return path

    def reference_profile(self) -> DatasetProfile | None:
        """The distribution reference as a profile (reading or profiling a file)."""
        rule = self.distribution
        if rule is None:
            return None
        if isinstance(rule.reference, dict):
            return DatasetProfile.from_dict(rule.reference)
        path = self.reference_path()
        if not path.exists():
            raise InvalidParameter(
                f"distribution.reference: no profile or data at {str(path)!r}"
                + (" (relative to the suite's folder)" if self._base is not None else "")
            )
        if path.suffix.lower() == ".json":
            return DatasetProfile.load(path)
        opened = open_data(path, "distribution.reference")
        return profile(opened.raw, columns=rule.columns)


def _column_name(key: Any, name: str) -> str:
    """YAML reads ``yes:`` as true and ``1:`` as a number: numbers become their text,
    booleans are refused (the name was surely meant as text)."""
    if isinstance(key, bool):
        raise InvalidParameter(
            f"{name}: a column is named {key!r} after YAML's reading; quote names such "
            f"as 'yes', 'no', 'on', 'off'"
        )
    return key if isinstance(key, str) else str(key)


def _describe(exc: ValidationError) -> str:
    """Pydantic's errors as ``where: what`` pairs, one clause each."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def _compact(profile: dict[str, Any]) -> dict[str, Any]:
    """A profile without its empty fields (they are the loader's defaults)."""
    out = {k: v for k, v in profile.items() if k != "columns"}
    out["columns"] = {
        name: {k: v for k, v in column.items() if v is not None}
        for name, column in profile["columns"].items()
    }
    return out


class _Flow(dict):
    """A mapping YAML writes on one line (``{type: int, min: 0}``)."""


class _Dumper(yaml.SafeDumper):
    """Safe YAML that writes `_Flow` mappings on one line."""


_MAP_TAG = "tag:yaml.org,2002:map"
_Dumper.add_representer(
    _Flow, lambda dumper, data: dumper.represent_mapping(_MAP_TAG, data, flow_style=True)
)


def _one_line_rules(suite: dict[str, Any]) -> dict[str, Any]:
    """``suite`` (from `Suite.to_dict`) with each column rule and each column of an
    inline profile marked for one line."""
    out = dict(suite)
    out["columns"] = {k: _Flow(v) for k, v in suite["columns"].items()}
    reference = suite.get("distribution", {}).get("reference")
    if isinstance(reference, dict):
        reference = {**reference, "columns": {k: _Flow(v) for k, v in reference["columns"].items()}}
        out["distribution"] = {**suite["distribution"], "reference": reference}
    return out
