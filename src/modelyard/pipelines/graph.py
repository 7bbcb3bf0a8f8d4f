"""The DAG of a pipeline: nodes (one step call each) wired by the values they pass.

Calling a pipeline function under `trace` does not run any step: each step call
adds a `Node` and returns an `Output` handle; handles passed to later steps become
the edges. So the graph is exactly the data flow of the plain-Python definition.
`Graph.check` refuses cycles and missing or unknown inputs before anything runs.
"""

from __future__ import annotations

import contextlib
import graphlib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelyard.core.errors import InvalidParameter

if TYPE_CHECKING:  # pragma: no cover
    from modelyard.pipelines.step import Step

__all__ = ["Graph", "Node", "Output", "replace", "trace", "tracing"]


@dataclass(frozen=True)
class Output:
    """The future value of a node's output; ``out["key"]`` picks one item of it."""

    node: str
    key: str | int | None = None

    def __getitem__(self, key: str | int) -> Output:
        if self.key is not None:
            raise InvalidParameter(f"{self.node}: pick one item of an output, not of an item")
        return Output(self.node, key)

    def __bool__(self) -> bool:
        raise InvalidParameter(
            f"The output of step {self.node!r} has no value while the pipeline is defined; "
            "branch inside a step, not in the pipeline function"
        )

    def __iter__(self) -> Iterator[Any]:
        raise InvalidParameter(
            f"The output of step {self.node!r} cannot be unpacked while the pipeline is "
            "defined; use out[0], out[1] or out['key']"
        )


@dataclass
class Node:
    name: str  # unique in the graph: the step's name, suffixed when called again
    step: Step
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def refs(self) -> list[Output]:
        """The outputs this node consumes."""
        found: list[Output] = []
        replace((self.args, self.kwargs), Output, found.append)
        return found

    @property
    def upstream(self) -> list[str]:
        return sorted({ref.node for ref in self.refs()})


@dataclass
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    result: Any = None  # what the pipeline function returned (outputs or values)

    def add(self, step: Step, args: tuple, kwargs: dict) -> Output:
        name, n = step.name, 2
        while name in self.nodes:
            name, n = f"{step.name}_{n}", n + 1
        self.nodes[name] = Node(name, step, args, kwargs)
        return Output(name)

    def check(self) -> list[str]:
        """The nodes in an order that runs every input before its consumer; a cycle,
        an unknown input or a missing argument is an error naming it."""
        for node in self.nodes.values():
            for ref in node.refs():
                if ref.node not in self.nodes:
                    raise InvalidParameter(
                        f"Step {node.name!r} takes the output of {ref.node!r}, which is not "
                        "a step of this pipeline"
                    )
            try:
                inspect.signature(node.step.fn).bind(*node.args, **node.kwargs)
            except TypeError as exc:
                raise InvalidParameter(f"Step {node.name!r}: {exc}") from None
        sorter = graphlib.TopologicalSorter({n.name: n.upstream for n in self.nodes.values()})
        try:
            return list(sorter.static_order())
        except graphlib.CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            raise InvalidParameter(f"The pipeline has a cycle: {cycle}") from None

    def downstream(self, name: str) -> set[str]:
        """Every node that depends on ``name``, directly or not."""
        found: set[str] = set()
        frontier = [name]
        while frontier:
            current = frontier.pop()
            for node in self.nodes.values():
                if current in node.upstream and node.name not in found:
                    found.add(node.name)
                    frontier.append(node.name)
        return found


def replace(value: Any, kind: type, fn: Callable[[Any], Any]) -> Any:
    """``value`` with every ``kind`` inside it (in tuples, lists, dict values) mapped
    through ``fn``: how outputs become values, hashes or references."""
    if isinstance(value, kind):
        return fn(value)
    if isinstance(value, tuple):
        return tuple(replace(v, kind, fn) for v in value)
    if isinstance(value, list):
        return [replace(v, kind, fn) for v in value]
    if isinstance(value, dict):
        return {k: replace(v, kind, fn) for k, v in value.items()}
    return value


_active: list[Graph] = []


def tracing() -> Graph | None:
    """The graph being traced in this thread, if any (a step call then adds a node)."""
    return _active[-1] if _active else None


@contextlib.contextmanager
def trace() -> Iterator[Graph]:
    graph = Graph()
    _active.append(graph)
    try:
        yield graph
    finally:
        _active.pop()
