"""The contract every tracking backend fulfils: SQL (embedded or PostgreSQL) and REST.

Convenience calls are built on one primitive, `log_batch`; a backend implements
the abstract methods and nothing else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Generic, NamedTuple, TypeVar

from modelyard.tracking.entities import Experiment, Metric, Param, Run, RunInfo, RunInput, RunTag

__all__ = ["Page", "TrackingStore", "ViewType"]

ViewType = str  # "active" | "deleted" | "all"
T = TypeVar("T")


class Page(NamedTuple, Generic[T]):
    """One page of results and the token for the next (None when there is none)."""

    items: list[T]
    next_page_token: str | None


class TrackingStore(ABC):
    """Persistence of experiments, runs, params, metrics, tags and run inputs."""

    # -- experiments -------------------------------------------------------------
    @abstractmethod
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        """Create an experiment and return its id; a taken name is ResourceAlreadyExists."""

    @abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment: ...

    @abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None: ...

    @abstractmethod
    def search_experiments(
        self,
        view_type: ViewType = "active",
        max_results: int = 1000,
        page_token: str | None = None,
        name_like: str | None = None,
    ) -> Page[Experiment]: ...

    @abstractmethod
    def update_experiment(
        self,
        experiment_id: str,
        *,
        new_name: str | None = None,
        lifecycle_stage: str | None = None,
    ) -> Experiment:
        """Rename, delete (lifecycle 'deleted') or restore an experiment."""

    @abstractmethod
    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None: ...

    # -- runs --------------------------------------------------------------------
    @abstractmethod
    def create_run(
        self,
        experiment_id: str,
        *,
        run_name: str | None = None,
        start_time: int | None = None,
        tags: Sequence[RunTag] = (),
        user_id: str = "",
        parent_run_id: str | None = None,
        artifact_uri: str | None = None,
    ) -> Run: ...

    @abstractmethod
    def get_run(self, run_id: str) -> Run: ...

    @abstractmethod
    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo: ...

    @abstractmethod
    def set_run_lifecycle(self, run_id: str, lifecycle_stage: str) -> None:
        """Delete (soft) or restore a run."""

    @abstractmethod
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """Write metrics, params and tags in one transaction: all or nothing.

        Resending the same batch is harmless (points are idempotent, a param with
        the same value is a no-op, tags are set)."""

    @abstractmethod
    def delete_tag(self, run_id: str, key: str) -> None: ...

    @abstractmethod
    def log_inputs(self, run_id: str, inputs: Sequence[RunInput]) -> None: ...

    @abstractmethod
    def get_metric_history(
        self, run_id: str, key: str, max_points: int | None = None
    ) -> list[Metric]:
        """All points of a series in (step, timestamp) order, or at most `max_points`
        of them keeping each bucket's first, last, minimum and maximum."""

    @abstractmethod
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        view_type: ViewType = "active",
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Run]: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
