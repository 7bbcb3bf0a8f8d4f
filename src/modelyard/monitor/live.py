"""Live monitoring inside a model server: drift over a rolling window, for /metrics.

The prediction log's writer thread hands every drained chunk to `LiveMonitor.observe`
(off the event loop). Each chunk is counted on the served version's baseline bins
into the current time slice's profile; profiles of slices older than the window are
dropped, so memory stays bounded whatever the traffic. At most every ``every_seconds``
the slices are merged and compared with the baseline, and ``publish`` receives the
figures (the server turns them into Prometheus gauges).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from modelyard.monitor.baseline import Baseline
from modelyard.monitor.drift import DriftReport, drift
from modelyard.monitor.predictions import PREDICTION, expand_record
from modelyard.monitor.profile import DatasetProfile

__all__ = ["LiveFigures", "LiveMonitor"]

log = logging.getLogger(__name__)


@dataclass
class LiveFigures:
    model: str
    version: str
    rows: int
    features: DriftReport
    prediction: Any  # ColumnDrift or None
    missing: dict[str, float] = field(default_factory=dict)


@dataclass
class _Window:
    baseline: Baseline
    slices: deque = field(default_factory=deque)  # (slice start, profile)
    published: float = 0.0


class LiveMonitor:
    """Per served (model, version): minute profiles over the last ``window_seconds``,
    compared with its baseline at most every ``every_seconds`` (when records arrive).
    A version without a baseline is looked up again after ``retry_seconds``."""

    def __init__(
        self,
        load_baseline: Callable[[str, str], Baseline | None],
        publish: Callable[[LiveFigures], None],
        *,
        window_seconds: float = 3600,
        slice_seconds: float = 60,
        every_seconds: float = 10,
        retry_seconds: float = 60,
    ) -> None:
        self._load = load_baseline
        self._publish = publish
        self.window_seconds, self.slice_seconds = window_seconds, slice_seconds
        self.every_seconds, self.retry_seconds = every_seconds, retry_seconds
        self._windows: dict[tuple[str, str], _Window] = {}
        self._missing: dict[tuple[str, str], float] = {}  # no baseline: when we looked

    def __call__(self, records: list) -> None:
        self.observe(records)

    def observe(self, records: list, now: float | None = None) -> None:
        """Count ``records`` (PredictionRecords) into their version's window."""
        now = time.time() if now is None else now
        groups: dict[tuple[str, str], list[dict]] = {}
        for rec in records:
            groups.setdefault((rec.model, rec.version), []).append(rec)
        for key, recs in groups.items():
            window = self._window(key, now)
            if window is None:
                continue
            try:
                self._count(window, recs, now)
                if now - window.published >= self.every_seconds:
                    window.published = now
                    self._publish(self._figures(key, window))
            except Exception:  # monitoring must never break the log writer
                log.exception("live monitoring of %s v%s failed", *key)

    def _window(self, key: tuple[str, str], now: float) -> _Window | None:
        window = self._windows.get(key)
        if window is not None:
            return window
        looked = self._missing.get(key)
        if looked is not None and now - looked < self.retry_seconds:
            return None
        baseline = self._load(*key)
        if baseline is None:
            self._missing[key] = now
            return None
        window = self._windows[key] = _Window(baseline)
        return window

    def _count(self, window: _Window, records: list, now: float) -> None:
        base = window.baseline
        rows = []
        for rec in records:
            rows.extend(expand_record(rec.to_row(), base.features))
        frame = pd.DataFrame(rows)
        positions = {str(i): name for i, name in enumerate(base.features)}
        if not any(c in frame.columns for c in base.features):
            frame = frame.rename(columns=positions)
        columns = [c for c in [*base.features, PREDICTION] if c in frame.columns]
        if not columns:
            return
        profile = base.profile.profile(frame[columns], workers=1)
        start = now - now % self.slice_seconds
        if window.slices and window.slices[-1][0] == start:
            window.slices[-1] = (start, window.slices[-1][1].merge(profile))
        else:
            window.slices.append((start, profile))
        while window.slices and window.slices[0][0] <= now - self.window_seconds:
            window.slices.popleft()

    def _figures(self, key: tuple[str, str], window: _Window) -> LiveFigures:
        merged: DatasetProfile | None = None
        for _, prof in window.slices:
            merged = prof if merged is None else merged.merge(prof)
        base = window.baseline
        features = [c for c in base.features if c in base.profile.columns]
        report = drift(base.profile, merged, columns=features)
        prediction = None
        if PREDICTION in merged.columns and PREDICTION in base.profile.columns:
            prediction = drift(base.profile, merged, columns=[PREDICTION]).columns[0]
        missing = {c: merged.columns[c].missing_rate for c in features if c in merged.columns}
        return LiveFigures(*key, merged.rows, report, prediction, missing)
