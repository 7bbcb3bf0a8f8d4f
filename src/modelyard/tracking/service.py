"""The tracking service: the one code path the SDK, the CLI and the server call.

It validates input at the boundary, delegates persistence to a `TrackingStore`
(SQL locally or on the server, REST from a client) and reaches a run's artifacts
through an artifact-store factory, so local and remote tracking behave alike.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from modelyard.core.errors import InvalidParameter, ResourceAlreadyExists, ResourceNotFound
from modelyard.core.ids import now_ms
from modelyard.tracking import validation as v
from modelyard.tracking.entities import (
    Experiment,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunInfo,
    RunInput,
    RunStatus,
    RunTag,
)
from modelyard.tracking.store import Page, TrackingStore

__all__ = ["ArtifactAccess", "TrackingService"]


class ArtifactAccess(Protocol):
    """What the service needs from a run's artifact location (local, S3 or HTTP proxy)."""

    def put_file(self, local_path: str | os.PathLike, path: str) -> int: ...
    def put_bytes(self, data: bytes, path: str) -> int: ...
    def put_dir(self, local_dir: str | os.PathLike, prefix: str) -> int: ...
    def list(self, prefix: str = "") -> list: ...
    def get_dir(self, prefix: str, local_dir: str | os.PathLike) -> Path: ...
    def read_bytes(self, path: str) -> bytes: ...


class TrackingService:
    """Experiments, runs and their data, validated, over any `TrackingStore`.

    Example::

        svc = TrackingService(store, artifacts_for=lambda uri: open_artifact_store(uri))
        exp = svc.get_or_create_experiment("churn")
        run = svc.create_run(exp.experiment_id, run_name="lr-0.1")
        svc.log_batch(run.info.run_id, metrics=[Metric("auc", 0.91, now_ms(), 0)])

    - ``store``: where metadata lives; ``artifacts_for``: returns the artifact
      access for a run's ``artifact_uri``.
    """

    def __init__(
        self, store: TrackingStore, artifacts_for: Callable[[str], ArtifactAccess]
    ) -> None:
        self.store = store
        self.artifacts_for = artifacts_for

    # -- experiments -------------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        v.check_experiment_name(name)
        tags = {
            v.check_key(k, "tag key"): v.check_tag_value(k, val) for k, val in (tags or {}).items()
        }
        return self.store.create_experiment(name, artifact_location, tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.store.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.store.get_experiment_by_name(name)

    def require_experiment(self, name_or_id: str) -> Experiment:
        """An experiment by name, or by id when the name is not found."""
        exp = self.store.get_experiment_by_name(name_or_id)
        if exp is None and name_or_id.isdigit():
            exp = self.store.get_experiment(name_or_id)
        if exp is None:
            raise ResourceNotFound(f"No experiment named {name_or_id!r}")
        return exp

    def get_or_create_experiment(self, name: str) -> Experiment:
        exp = self.store.get_experiment_by_name(name)
        if exp is not None:
            if exp.lifecycle_stage != LifecycleStage.ACTIVE:
                raise InvalidParameter(
                    f"Experiment {name!r} is deleted; restore it or pick another name"
                )
            return exp
        try:
            return self.store.get_experiment(self.create_experiment(name))
        except ResourceAlreadyExists:  # another process created it just now
            found = self.store.get_experiment_by_name(name)
            assert found is not None
            return found

    def search_experiments(
        self,
        view_type: str = "active",
        max_results: int = 1000,
        page_token: str | None = None,
        name_like: str | None = None,
    ) -> Page[Experiment]:
        _check_max_results(max_results)
        return self.store.search_experiments(view_type, max_results, page_token, name_like)

    def update_experiment(
        self,
        experiment_id: str,
        *,
        new_name: str | None = None,
        lifecycle_stage: str | None = None,
    ) -> Experiment:
        """Rename, delete or restore in one transaction."""
        if new_name is not None:
            v.check_experiment_name(new_name)
        return self.store.update_experiment(
            experiment_id, new_name=new_name, lifecycle_stage=lifecycle_stage
        )

    def delete_experiment(self, experiment_id: str) -> None:
        self.update_experiment(experiment_id, lifecycle_stage=LifecycleStage.DELETED)

    def restore_experiment(self, experiment_id: str) -> None:
        self.update_experiment(experiment_id, lifecycle_stage=LifecycleStage.ACTIVE)

    def rename_experiment(self, experiment_id: str, new_name: str) -> Experiment:
        return self.update_experiment(experiment_id, new_name=new_name)

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self.store.set_experiment_tag(
            experiment_id, v.check_key(key, "tag key"), v.check_tag_value(key, value)
        )

    # -- runs --------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        *,
        run_name: str | None = None,
        start_time: int | None = None,
        tags: dict[str, str] | None = None,
        user_id: str = "",
        parent_run_id: str | None = None,
    ) -> Run:
        if run_name is not None and len(run_name) > v.MAX_KEY_LENGTH:
            raise InvalidParameter(
                f"Run name is {len(run_name)} characters; the limit is {v.MAX_KEY_LENGTH}"
            )
        if parent_run_id is not None:
            v.check_run_id(parent_run_id)
        return self.store.create_run(
            experiment_id,
            run_name=run_name,
            start_time=start_time,
            tags=self._tags(tags or {}),
            user_id=user_id,
            parent_run_id=parent_run_id,
        )

    def get_run(self, run_id: str) -> Run:
        return self.store.get_run(v.check_run_id(run_id))

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        return self.store.update_run(
            v.check_run_id(run_id), status=status, end_time=end_time, run_name=run_name
        )

    def end_run(self, run_id: str, status: str = RunStatus.FINISHED) -> RunInfo:
        return self.update_run(run_id, status=status, end_time=now_ms())

    def set_run_lifecycle(self, run_id: str, lifecycle_stage: str) -> None:
        """Delete (soft, restorable) or restore a run."""
        self.store.set_run_lifecycle(v.check_run_id(run_id), lifecycle_stage)

    def delete_run(self, run_id: str) -> None:
        self.set_run_lifecycle(run_id, LifecycleStage.DELETED)

    def restore_run(self, run_id: str) -> None:
        self.set_run_lifecycle(run_id, LifecycleStage.ACTIVE)

    # -- logging -----------------------------------------------------------------
    @staticmethod
    def _tags(tags: dict[str, Any] | Iterable[RunTag]) -> list[RunTag]:
        items = tags.items() if isinstance(tags, dict) else ((t.key, t.value) for t in tags)
        return [RunTag(v.check_key(k, "tag key"), v.check_tag_value(k, val)) for k, val in items]

    @staticmethod
    def _params(params: dict[str, Any] | Iterable[Param]) -> list[Param]:
        items = params.items() if isinstance(params, dict) else ((p.key, p.value) for p in params)
        return [Param(v.check_key(k, "param key"), v.check_param_value(k, val)) for k, val in items]

    @staticmethod
    def _metrics(metrics: Iterable[Metric]) -> list[Metric]:
        out = []
        for m in metrics:
            v.check_key(m.key, "metric key")
            value, ts, step = v.check_metric(m.key, m.value, m.timestamp, m.step)
            same = type(m) is Metric and value is m.value and ts is m.timestamp and step is m.step
            out.append(m if same else Metric(m.key, value, ts, step))
        return out

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: dict[str, Any] | Sequence[Param] = (),
        tags: dict[str, Any] | Sequence[RunTag] = (),
    ) -> None:
        self.store.log_batch(
            v.check_run_id(run_id), self._metrics(metrics), self._params(params), self._tags(tags)
        )

    def log_metric(
        self, run_id: str, key: str, value: float, step: int = 0, timestamp: int | None = None
    ) -> None:
        self.log_batch(run_id, metrics=[Metric(key, value, timestamp or now_ms(), step)])

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        self.log_batch(run_id, params=[Param(key, value)])

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.log_batch(run_id, tags=[RunTag(key, value)])

    def delete_tag(self, run_id: str, key: str) -> None:
        self.store.delete_tag(v.check_run_id(run_id), key)

    def log_inputs(self, run_id: str, inputs: Sequence[RunInput]) -> None:
        self.store.log_inputs(v.check_run_id(run_id), inputs)

    # -- queries -----------------------------------------------------------------
    def get_metric_history(
        self, run_id: str, key: str, max_points: int | None = None
    ) -> list[Metric]:
        return self.store.get_metric_history(v.check_run_id(run_id), key, max_points)

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        view_type: str = "active",
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Run]:
        if not experiment_ids:
            raise InvalidParameter("search_runs needs at least one experiment id")
        _check_max_results(max_results)
        return self.store.search_runs(
            experiment_ids, filter_string, view_type, max_results, order_by, page_token
        )

    def find_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        view_type: str = "active",
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
    ) -> list[Run]:
        """Up to ``max_results`` matching runs, following page tokens."""
        runs: list[Run] = []
        token = None
        while len(runs) < max_results:
            page = self.search_runs(
                experiment_ids,
                filter_string,
                view_type,
                min(max_results - len(runs), 50_000),
                order_by,
                token,
            )
            runs.extend(page.items)
            token = page.next_page_token
            if not token:
                break
        return runs

    def all_experiments(self, view_type: str = "active") -> list[Experiment]:
        """Every experiment of a view, following page tokens."""
        out: list[Experiment] = []
        token = None
        while True:
            page = self.search_experiments(view_type=view_type, page_token=token)
            out.extend(page.items)
            token = page.next_page_token
            if not token:
                return out

    def resolve_run_id(self, prefix: str) -> str:
        """A full run id from a unique prefix of at least 6 characters (as shown in
        listings); a full id is returned as it is."""
        prefix = prefix.strip().lower()
        if len(prefix) == 32:
            return v.check_run_id(prefix)
        if not 6 <= len(prefix) < 32 or any(c not in "0123456789abcdef" for c in prefix):
            raise InvalidParameter(
                f"Invalid run id {prefix!r}: give the 32 hex characters or a unique "
                "prefix of at least 6"
            )
        ids = [e.experiment_id for e in self.all_experiments("all")]
        found = self.find_runs(ids, f"attributes.run_id LIKE '{prefix}%'", "all", 2)
        if not found:
            raise ResourceNotFound(f"No run id starts with {prefix!r}")
        if len(found) > 1:
            raise InvalidParameter(f"Run id prefix {prefix!r} is ambiguous: give more characters")
        return found[0].info.run_id

    def compare_runs(self, run_ids: Sequence[str], diff_only: bool = False):
        """A DataFrame with one column per run and a row per attribute, param,
        metric and tag; ``diff_only`` keeps the rows whose values differ."""
        import pandas as pd

        runs = [self.get_run(r) for r in run_ids]
        rows: dict[str, dict[str, Any]] = {}
        for run in runs:
            col = f"{run.info.run_name} ({run.info.run_id[:8]})"
            cells = {
                "attributes.status": run.info.status,
                "attributes.start_time": run.info.start_time,
                "attributes.duration_s": (
                    (run.info.end_time - run.info.start_time) / 1000 if run.info.end_time else None
                ),
            }
            cells |= {f"params.{k}": val for k, val in run.data.params.items()}
            cells |= {f"metrics.{k}": val for k, val in run.data.metrics.items()}
            cells |= {
                f"tags.{k}": val for k, val in run.data.tags.items() if not k.startswith("mlflow.")
            }
            for key, val in cells.items():
                rows.setdefault(key, {})[col] = val
        frame = pd.DataFrame.from_dict(rows, orient="index").sort_index()
        if diff_only and len(frame.columns) > 1:
            frame = frame[frame.astype(str).nunique(axis=1, dropna=False) > 1]
        return frame

    # -- artifacts ---------------------------------------------------------------
    def _artifacts(self, run_id: str) -> ArtifactAccess:
        return self.artifacts_for(self.get_run(run_id).info.artifact_uri)

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike, artifact_path: str | None = None
    ) -> str:
        """Upload a file or a folder; returns its path inside the run's artifacts."""
        src = Path(local_path)
        if not src.exists():
            raise InvalidParameter(f"Cannot log artifact {str(src)!r}: no such file or folder")
        repo = self._artifacts(run_id)
        dest = posixpath.join(artifact_path or "", src.name)
        if src.is_dir():
            repo.put_dir(src, dest)
        else:
            repo.put_file(src, dest)
        return dest

    def log_bytes(self, run_id: str, data: bytes, artifact_file: str) -> str:
        self._artifacts(run_id).put_bytes(data, artifact_file)
        return artifact_file

    def log_text(self, run_id: str, text: str, artifact_file: str) -> str:
        return self.log_bytes(run_id, text.encode("utf-8"), artifact_file)

    def log_dict(self, run_id: str, data: dict, artifact_file: str) -> str:
        if artifact_file.endswith((".yaml", ".yml")):
            try:
                import yaml

                text = yaml.safe_dump(data, sort_keys=False)
            except ImportError:
                text = json.dumps(data, indent=2)
        else:
            text = json.dumps(data, indent=2, default=str)
        return self.log_text(run_id, text, artifact_file)

    def list_artifacts(self, run_id: str, path: str = "") -> list:
        return self._artifacts(run_id).list(path)

    def download_artifacts(self, run_id: str, path: str, dest: str | os.PathLike) -> Path:
        return self._artifacts(run_id).get_dir(path, dest)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        return self._artifacts(run_id).read_bytes(path)


def _check_max_results(max_results: int) -> None:
    if not isinstance(max_results, int) or not 1 <= max_results <= 50_000:
        raise InvalidParameter(f"max_results must be between 1 and 50000, got {max_results!r}")
