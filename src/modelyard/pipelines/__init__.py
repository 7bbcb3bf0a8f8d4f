"""Pipelines: plain-Python steps, their DAG from the data flow, cached runs on a
local or Ray executor, and (`agent`) the triggers that start them.

    @my.step
    def load(path): ...

    @my.pipeline
    def churn(path="data.parquet"):
        return train(load(path))
"""

from modelyard.pipelines.pipeline import Pipeline, load_pipeline, pipeline
from modelyard.pipelines.runner import PipelineRun, StepResult, resume_pipeline, run_pipeline
from modelyard.pipelines.search import SearchResult, search
from modelyard.pipelines.step import Step, step

__all__ = [
    "Pipeline",
    "PipelineRun",
    "Step",
    "StepResult",
    "load_pipeline",
    "pipeline",
    "SearchResult",
    "resume_pipeline",
    "run_pipeline",
    "search",
    "step",
]
