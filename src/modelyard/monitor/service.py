"""The monitoring service: baselines, checks of production windows, labels, alerts.

One `check(model)` reads a window of the prediction store, compares it with the
serving version's baseline (feature drift, prediction drift, data quality), joins
the labels that have arrived (performance against the baseline's metrics, minding
the label delay), flattens everything into named figures, and evaluates the alert
rules on them. The SDK, the CLI and the report call it; the serving gauges
(`monitor.live`) use the same profiles and drift code on a rolling window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from modelyard.core.errors import InvalidParameter, ResourceNotFound
from modelyard.core.ids import now_ms
from modelyard.monitor.alerts import Alert, AlertRule, deliver, evaluate_rules
from modelyard.monitor.baseline import Baseline, build_baseline, load_baseline, save_baseline
from modelyard.monitor.drift import ColumnDrift, DriftReport, drift
from modelyard.monitor.performance import LABEL, PerformanceReport, join_labels, performance
from modelyard.monitor.predictions import PREDICTION, read_predictions
from modelyard.monitor.quality import QualityReport, data_quality

__all__ = ["MonitorCheck", "MonitorService", "figures"]


@dataclass
class MonitorCheck:
    """One model's window, judged."""

    model: str
    version: str | None
    start_ms: int
    end_ms: int
    rows: int
    drift: DriftReport | None = None
    prediction_drift: ColumnDrift | None = None
    label_drift: ColumnDrift | None = None  # the joined labels against the baseline's target
    quality: QualityReport | None = None
    performance: PerformanceReport | None = None
    figures: dict[str, float | None] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    message: str | None = None  # why nothing could be judged (empty window, no baseline)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "rows": self.rows,
            "message": self.message,
            "figures": self.figures,
            "drift": self.drift.to_dict() if self.drift else None,
            "prediction_drift": self.prediction_drift.to_dict() if self.prediction_drift else None,
            "label_drift": self.label_drift.to_dict() if self.label_drift else None,
            "quality": self.quality.to_dict() if self.quality else None,
            "performance": self.performance.to_dict() if self.performance else None,
            "alerts": [a.to_dict() for a in self.alerts],
        }


def figures(check: MonitorCheck) -> dict[str, float | None]:
    """The named numbers alert rules and gauges read (see `alerts`)."""
    out: dict[str, float | None] = {"rows": float(check.rows)}
    if check.drift is not None:
        out["drift_share"] = check.drift.share_drifted
        out["dataset_drift"] = float(check.drift.dataset_drift)
        for c in check.drift.columns:
            if c.method is not None:
                out[f"drift:{c.name}"] = float(c.drifted)
                out[f"drift_score:{c.name}"] = c.statistic
    if check.prediction_drift is not None and check.prediction_drift.method is not None:
        out["prediction_drift"] = float(check.prediction_drift.drifted)
        out["prediction_drift_score"] = check.prediction_drift.statistic
    if check.label_drift is not None and check.label_drift.method is not None:
        out["label_drift"] = float(check.label_drift.drifted)
        out["label_drift_score"] = check.label_drift.statistic
    if check.quality is not None:
        q = check.quality
        out["schema_violations"] = float(len(q.schema_violations))
        out["missing_rate"] = q.worst("missing_rate")
        out["out_of_range_rate"] = q.worst("out_of_range_rate")
        out["unseen_rate"] = q.worst("unseen_rate")
        for c in q.columns:
            out[f"missing_rate:{c.column}"] = c.missing_rate
            out[f"out_of_range_rate:{c.column}"] = c.out_of_range_rate
            out[f"unseen_rate:{c.column}"] = c.unseen_rate
    if check.performance is not None:
        latest = check.performance.latest()
        if latest is not None:
            out["label_coverage"] = latest.coverage
            for metric, value in latest.metrics.items():
                out[metric] = value
                change = check.performance.change(metric)
                if change is not None:
                    out[f"{metric}_change"] = change
    return out


class MonitorService:
    """Monitoring over one artifact store (baselines, the prediction log under
    ``predictions_root``), the metadata database (alerts, labels) and a registry
    (to resolve and load the versions being baselined)."""

    def __init__(self, artifacts: Any, predictions_root: str, store: Any, registry: Any) -> None:
        self.artifacts = artifacts
        self.predictions_root = predictions_root
        self.store = store
        self.registry = registry

    # -- baselines ---------------------------------------------------------------
    def set_baseline(
        self,
        model_uri: str,
        data: pd.DataFrame,
        *,
        target: str | None = None,
        task: str | None = "classification",
        categorical: Sequence[str] = (),
        allow_pickle: bool = False,
    ) -> Baseline:
        """Profile ``data`` and the version's predictions on it, and store it as the
        baseline of the version ``model_uri`` names."""
        from modelyard.models.loader import load_model

        version = self.registry.resolve(model_uri)
        model = load_model(f"models:/{version.name}/{version.version}", allow_pickle=allow_pickle)
        metrics = None
        if target is None:  # the registered evaluation metrics, when the run logged them
            metrics = {k.removeprefix("eval_"): v for k, v in (version.metrics or {}).items()}
        baseline = build_baseline(
            version.name,
            str(version.version),
            data,
            model,
            target=target,
            task=task,
            metrics=metrics,
            categorical=categorical,
        )
        save_baseline(self.artifacts, baseline)
        return baseline

    def baseline(self, model: str, version: str) -> Baseline:
        return load_baseline(self.artifacts, model, version)

    # -- windows -----------------------------------------------------------------
    def window(
        self, model: str, start_ms: int, end_ms: int, version: str | None = None
    ) -> pd.DataFrame:
        return read_predictions(
            self.predictions_root, model, start_ms=start_ms, end_ms=end_ms, version=version
        )

    def check(
        self,
        model: str,
        *,
        window_seconds: float = 3600,
        end_ms: int | None = None,
        version: str | None = None,
        rules: Sequence[AlertRule] = (),
        label_delay_seconds: float = 0,
        performance_window_seconds: float | None = None,
        notify: bool = True,
        rows: int | None = None,
    ) -> MonitorCheck:
        """Judge ``model``'s last ``window_seconds`` of predictions (ending at
        ``end_ms``, default now; only the last ``rows`` of them when given) and fire
        the ``rules`` that hold."""
        result, _, _ = self._run(
            model,
            window_seconds,
            end_ms,
            version,
            label_delay_seconds,
            performance_window_seconds,
            rows,
        )
        if rules:
            result.alerts = evaluate_rules(
                rules, model, result.figures, self.store.last_fired, now=result.end_ms
            )
            for alert in result.alerts:
                rule = next(r for r in rules if r.name == alert.rule)
                alert.deliveries = deliver(alert, rule.sinks) if notify else {}
                self.store.add_alert(alert)
        return result

    def report(
        self,
        model: str,
        *,
        window_seconds: float = 86400,
        end_ms: int | None = None,
        version: str | None = None,
        label_delay_seconds: float = 0,
    ):
        """The check of the window with its timeline, for `monitor.report`."""
        from modelyard.monitor.report import build_report

        result, frame, base = self._run(
            model, window_seconds, end_ms, version, label_delay_seconds, window_seconds / 12
        )
        result.alerts = self.store.alerts(model, since_ms=result.start_ms)
        return build_report(result, frame, base)

    def _run(
        self,
        model: str,
        window_seconds: float,
        end_ms: int | None,
        version: str | None,
        label_delay_seconds: float,
        performance_window_seconds: float | None,
        rows: int | None = None,
    ) -> tuple[MonitorCheck, pd.DataFrame, Baseline | None]:
        if window_seconds <= 0:
            raise InvalidParameter(f"The window must be positive, got {window_seconds!r} s")
        if rows is not None and (isinstance(rows, bool) or rows < 1):
            raise InvalidParameter(f"rows must be a positive number of rows, got {rows!r}")
        end = now_ms() if end_ms is None else end_ms
        start = end - int(window_seconds * 1000)
        frame = self.window(model, start, end, version)
        if version is None and len(frame):  # the version that answered most
            version = str(frame["version"].value_counts().idxmax())
            frame = frame[frame["version"] == version]
        if rows is not None and len(frame) > rows:  # a window by row count: the newest
            frame = frame.iloc[-rows:]
            start = int(frame["timestamp_ms"].iloc[0])
        result = MonitorCheck(model, version, start, end, len(frame))
        base = None
        if version is None:
            result.message = "no predictions in the window"
        else:
            base, frame = self._judge(
                result, frame, label_delay_seconds, performance_window_seconds
            )
        result.figures = figures(result)
        return result, frame, base

    def _judge(
        self,
        result: MonitorCheck,
        frame: pd.DataFrame,
        label_delay_seconds: float,
        performance_window_seconds: float | None,
    ) -> tuple[Baseline | None, pd.DataFrame]:
        try:
            base = self.baseline(result.model, result.version)
        except ResourceNotFound as exc:  # no baseline: the window is still counted
            result.message = exc.message
            return None, frame
        ref = base.profile
        features = [c for c in base.features if c in ref.columns]
        # tensors and arrays are logged without names: their columns are positions
        positions = {str(i): name for i, name in enumerate(base.features)}
        if not any(c in frame.columns for c in features):
            frame = frame.rename(columns=positions)
        result.quality = data_quality(ref, frame, features)
        present = [c for c in features if c in frame.columns]
        try:
            if present and len(frame):
                result.drift = drift(ref, ref.profile(frame[present]), columns=features)
            if PREDICTION in frame.columns and PREDICTION in ref.columns and len(frame):
                window = ref.profile(frame[[PREDICTION]])
                result.prediction_drift = drift(ref, window, columns=[PREDICTION]).columns[0]
        except InvalidParameter as exc:  # e.g. a column mixing types Arrow cannot hold
            result.message = f"drift could not be computed: {exc.message}"
        labels = self.store.feedback(result.model, since_ms=result.start_ms)
        joined = join_labels(frame, labels)
        result.label_drift = _label_drift(base, joined)
        result.performance = performance(
            joined,
            task=base.task or "classification",
            baseline=base.metrics,
            window_ms=int(performance_window_seconds * 1000)
            if performance_window_seconds
            else result.end_ms - result.start_ms,
            label_delay_ms=int(label_delay_seconds * 1000),
            now_ms=result.end_ms,
        )
        return base, frame

    # -- labels and alerts ---------------------------------------------------------
    def add_labels(
        self, model: str, labels: pd.DataFrame, *, window_seconds: float = 30 * 86400
    ) -> int:
        """Join ``labels`` (request_id, label) to logged predictions of ``model`` and
        store them; unknown request ids are refused before anything is stored."""
        for column in ("request_id", "label"):
            if column not in labels.columns:
                raise InvalidParameter(
                    f"The labels need a {column!r} column (columns: {', '.join(labels.columns)})"
                )
        end = now_ms()
        logged = self.window(model, end - int(window_seconds * 1000), end + 1)
        first = (
            logged.drop_duplicates("request_id").set_index("request_id") if len(logged) else None
        )
        unknown = [
            rid
            for rid in labels["request_id"].astype(str)
            if first is None or rid not in first.index
        ]
        if unknown:
            raise InvalidParameter(
                f"{len(unknown)} label(s) name requests {model!r} never answered "
                f"(e.g. {unknown[0]!r}); nothing was stored"
            )
        rows = []
        for rid, label in zip(labels["request_id"].astype(str), labels["label"], strict=True):
            hit = first.loc[rid]
            rows.append(
                {
                    "request_id": rid,
                    "model": model,
                    "variant": hit.get("variant"),
                    "version": hit.get("version"),
                    "prediction": _plain(hit.get(PREDICTION)),
                    "predicted_at": int(hit["timestamp_ms"]),
                    "label": _plain(label),
                    "reward": None,
                }
            )
        self.store.add_feedback(rows)
        return len(rows)

    def alerts(self, model: str | None = None, limit: int = 100) -> list[Alert]:
        return self.store.alerts(model, limit=limit)


def _label_drift(base: Baseline, joined: pd.DataFrame) -> ColumnDrift | None:
    """The labels that arrived, against the target's profile in the baseline."""
    if base.target is None or base.target not in base.profile.columns or LABEL not in joined:
        return None
    labels = joined[LABEL].dropna()
    if labels.empty:
        return None
    if base.profile.columns[base.target].kind != "categorical":
        labels = pd.to_numeric(labels, errors="coerce")
    try:
        window = base.profile.profile(pd.DataFrame({base.target: labels.tolist()}))
    except InvalidParameter:  # labels of mixed types Arrow cannot hold
        return None
    return drift(base.profile, window, columns=[base.target]).columns[0]


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value
