"""``@my.pipeline``: a plain function that calls steps; its data flow is the DAG.

    @my.step
    def load(path): ...
    @my.step
    def train(df, C=1.0): ...

    @my.pipeline
    def churn(path="data.parquet", C=1.0):
        return train(load(path), C=C)

    churn.run(C=0.5)                  # tracked, cached, one child run per step

`Pipeline.from_steps` builds the same graph from names instead of calls (for
definitions generated from configuration); there a cycle is possible, and refused.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from modelyard.core.errors import InvalidParameter
from modelyard.pipelines.graph import Graph, Output, trace
from modelyard.pipelines.step import Step

__all__ = ["Pipeline", "load_pipeline", "pipeline"]


@dataclass(eq=False)
class Pipeline:
    fn: Callable[..., Any] | None
    name: str
    spec: Mapping[str, tuple[Step, Mapping[str, Any]]] | None = None
    ref: str | None = None  # module:qualname, for agents and resume

    def params(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The pipeline function's parameters: defaults, then ``overrides``."""
        if self.fn is None:
            return dict(overrides or {})
        sig = inspect.signature(self.fn)
        unknown = set(overrides or {}) - set(sig.parameters)
        if unknown:
            raise InvalidParameter(
                f"Pipeline {self.name!r} has no parameter(s) {', '.join(sorted(unknown))} "
                f"(it takes: {', '.join(sig.parameters) or 'none'})"
            )
        values = {
            k: p.default
            for k, p in sig.parameters.items()
            if p.default is not inspect.Parameter.empty
        }
        values.update(overrides or {})
        missing = [k for k in sig.parameters if k not in values]
        if missing:
            raise InvalidParameter(
                f"Pipeline {self.name!r} needs parameter(s) {', '.join(missing)}"
            )
        return values

    def build(self, params: Mapping[str, Any] | None = None) -> Graph:
        """The checked graph for these parameters (nothing runs)."""
        if self.spec is not None:
            graph = Graph()
            for name, (step, kwargs) in self.spec.items():
                graph.nodes[name] = _spec_node(graph, name, step, kwargs, self.spec)
        else:
            with trace() as graph:
                graph.result = self.fn(**self.params(params))
        if not graph.nodes:
            raise InvalidParameter(f"Pipeline {self.name!r} calls no step")
        graph.check()
        return graph

    def run(self, **params: Any):
        """Run with these parameters on the local executor (see `runner.run_pipeline`
        for executors, caching options and triggers)."""
        from modelyard.pipelines.runner import run_pipeline

        return run_pipeline(self, params)

    @classmethod
    def from_steps(cls, name: str, steps: Mapping[str, tuple[Step, Mapping[str, Any]]]) -> Pipeline:
        """A pipeline from ``{"node": (step, {"arg": "other-node" or value})}``: a string
        naming another node wires that node's output in."""
        return cls(None, name, spec=dict(steps))


def _spec_node(graph: Graph, name: str, step: Step, kwargs: Mapping[str, Any], spec: Mapping):
    from modelyard.pipelines.graph import Node

    wired = {k: Output(v) if isinstance(v, str) and v in spec else v for k, v in kwargs.items()}
    return Node(name, step, (), wired)


def pipeline(fn: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
    """Make ``fn`` a pipeline: ``@my.pipeline`` or ``@my.pipeline(name="churn-ct")``."""

    def wrap(f: Callable[..., Any]) -> Pipeline:
        return Pipeline(f, name or f.__name__, ref=f"{f.__module__}:{f.__qualname__}")

    return wrap(fn) if fn is not None else wrap


def load_pipeline(target: str | Pipeline) -> Pipeline:
    """A pipeline object, or the one ``package.module:attr`` names."""
    if isinstance(target, Pipeline):
        return target
    module, sep, attr = str(target).partition(":")
    if not sep or not module or not attr:
        raise InvalidParameter(f"Name a pipeline as package.module:attr, not {target!r}")
    try:
        value: Any = importlib.import_module(module)
    except ImportError as exc:
        raise InvalidParameter(f"Cannot import {module!r} for pipeline {target!r}: {exc}") from None
    for part in attr.split("."):
        value = getattr(value, part, None)
    if not isinstance(value, Pipeline):
        raise InvalidParameter(f"{target!r} is not a pipeline (decorate it with @my.pipeline)")
    if value.ref is None:
        value.ref = str(target)
    return value
