"""Request bodies (and GET query parameters) of the MLflow REST API 2.0, as pydantic models.

MLflow's proto-JSON writes int64 fields as strings and may leave out fields that
hold their default; ids are strings but a hand-written client may send numbers.
The models accept all of these and ignore fields this server does not use.

Checks that span fields raise `InvalidParameter` (not ValueError), so the caller
gets MLflow's INVALID_PARAMETER_VALUE with the message as written.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelyard.core.errors import InvalidParameter

__all__ = [
    "CreateExperiment",
    "CreateRun",
    "DatasetIn",
    "DatasetInput",
    "DeleteTag",
    "ExperimentRef",
    "GetExperimentByName",
    "GetMetricHistory",
    "KeyValue",
    "LogBatch",
    "LogInputs",
    "LogMetric",
    "LogParam",
    "MetricIn",
    "MlflowBody",
    "RunRef",
    "SearchExperiments",
    "SearchLoggedModels",
    "SearchRuns",
    "SetExperimentTag",
    "SetTag",
    "UpdateExperiment",
    "UpdateRun",
]

# MLflow's per-request limits of runs/log-batch.
MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
MAX_BATCH_TAGS = 100
MAX_BATCH_ITEMS = 1000


class MlflowBody(BaseModel):
    """Base of every request: numbers accepted for strings, unknown fields ignored."""

    model_config = ConfigDict(coerce_numbers_to_str=True, extra="ignore")


class KeyValue(MlflowBody):
    """A tag or a param: ``{"key": ..., "value": ...}``."""

    key: str
    value: str | None = None


class MetricIn(MlflowBody):
    key: str
    value: float
    timestamp: int
    step: int = 0


# -- experiments ---------------------------------------------------------------------
class ExperimentRef(MlflowBody):
    experiment_id: str


class GetExperimentByName(MlflowBody):
    experiment_name: str


class CreateExperiment(MlflowBody):
    name: str
    artifact_location: str | None = None
    tags: list[KeyValue] = Field(default_factory=list)


class SearchExperiments(MlflowBody):
    max_results: int | None = None
    page_token: str | None = None
    filter: str | None = None
    order_by: list[str] = Field(default_factory=list)
    view_type: str | None = None


class UpdateExperiment(MlflowBody):
    experiment_id: str
    new_name: str


class SetExperimentTag(MlflowBody):
    experiment_id: str
    key: str
    value: str | None = None


# -- runs ----------------------------------------------------------------------------
class RunRef(MlflowBody):
    """A run named by ``run_id`` or, as older clients do, by ``run_uuid``."""

    run_id: str | None = None
    run_uuid: str | None = None

    @model_validator(mode="after")
    def _one_id(self) -> RunRef:
        if not self.run_id:
            if not self.run_uuid:
                raise InvalidParameter("run_id is required (or its old name run_uuid)")
            self.run_id = self.run_uuid
        return self

    @property
    def id(self) -> str:
        assert self.run_id is not None
        return self.run_id


class CreateRun(MlflowBody):
    experiment_id: str = "0"
    user_id: str | None = None
    run_name: str | None = None
    start_time: int | None = None
    tags: list[KeyValue] = Field(default_factory=list)


class UpdateRun(RunRef):
    status: str | None = None
    end_time: int | None = None
    run_name: str | None = None


class LogMetric(RunRef):
    key: str
    value: float
    timestamp: int
    step: int = 0


class LogParam(RunRef):
    key: str
    value: str | None = None


class SetTag(RunRef):
    key: str
    value: str | None = None


class DeleteTag(MlflowBody):
    run_id: str
    key: str


class LogBatch(MlflowBody):
    run_id: str
    metrics: list[MetricIn] = Field(default_factory=list)
    params: list[KeyValue] = Field(default_factory=list)
    tags: list[KeyValue] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _within_limits(cls, data: object) -> object:
        """Refuse an oversized batch before parsing its items."""
        if not isinstance(data, dict):
            return data
        counts = {k: len(v) if isinstance(v, list) else 0 for k, v in data.items()}
        metrics, params, tags = (counts.get(k, 0) for k in ("metrics", "params", "tags"))
        for what, count, limit in (
            ("metrics", metrics, MAX_BATCH_METRICS),
            ("params", params, MAX_BATCH_PARAMS),
            ("tags", tags, MAX_BATCH_TAGS),
            ("items in total", metrics + params + tags, MAX_BATCH_ITEMS),
        ):
            if count > limit:
                raise InvalidParameter(
                    f"A log-batch request holds at most {limit} {what}, got {count}; "
                    "split it into several log-batch calls"
                )
        return data


class DatasetIn(MlflowBody):
    name: str
    digest: str
    source_type: str | None = None
    source: str | None = None


class DatasetInput(MlflowBody):
    tags: list[KeyValue] = Field(default_factory=list)
    dataset: DatasetIn


class LogInputs(MlflowBody):
    run_id: str
    datasets: list[DatasetInput] = Field(default_factory=list)
    models: list[dict] = Field(default_factory=list)


class SearchRuns(MlflowBody):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: str | None = None
    run_view_type: str | None = None
    max_results: int = 1000
    order_by: list[str] = Field(default_factory=list)
    page_token: str | None = None


class GetMetricHistory(RunRef):
    metric_key: str
    max_results: int | None = None
    page_token: str | None = None


class SearchLoggedModels(MlflowBody):
    experiment_ids: list[str] = Field(default_factory=list)
