"""``@my.step``: a plain function that a pipeline runs, caches and tracks.

Outside a pipeline a step is just its function (call it, test it). Inside a
pipeline definition a call returns an `Output` handle instead of running. The
options say how the runner treats it: caching (``cache``, ``cache_ttl``,
``cache_key``), retries with exponential backoff, resources for Ray, and whether
its output may be pickled (never by default).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelyard.core.errors import InvalidParameter
from modelyard.pipelines.graph import tracing

__all__ = ["Step", "step"]


@dataclass(eq=False)
class Step:
    fn: Callable[..., Any]
    name: str
    cache: bool = True
    cache_ttl: float | None = None  # seconds; None: no expiry
    cache_key: Callable[..., Any] | None = None  # (**inputs) -> anything hashable as JSON
    retries: int = 0
    retry_backoff: float = 1.0  # seconds before the first retry, doubled each time
    resources: dict[str, float] = field(default_factory=dict)  # Ray: num_cpus, num_gpus, ...
    allow_pickle: bool = False

    def __post_init__(self) -> None:
        functools.update_wrapper(self, self.fn)  # type: ignore[arg-type]
        if self.retries < 0:
            raise InvalidParameter(f"step {self.name!r}: retries must be 0 or more")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        graph = tracing()
        if graph is None:
            return self.fn(*args, **kwargs)
        return graph.add(self, args, kwargs)

    def __reduce__(self) -> tuple:
        # Pickled by reference (to a worker process): its module defines it by name.
        return (_import_step, (self.fn.__module__, self.fn.__qualname__))

    @functools.cached_property
    def code_hash(self) -> str:
        """The hash of the function's source (its bytecode when the source is gone):
        an edit to the step invalidates its cache, a moved file does not."""
        try:
            code = inspect.getsource(self.fn).encode()
        except (OSError, TypeError):
            code = self.fn.__code__.co_code
        return hashlib.sha256(code).hexdigest()[:32]

    @property
    def ref(self) -> str:
        """``module:qualname``, how another process imports it."""
        return f"{self.fn.__module__}:{self.fn.__qualname__}"


def _import_step(module: str, qualname: str) -> Step:
    import importlib

    value: Any = importlib.import_module(module)
    for part in qualname.split("."):
        value = getattr(value, part)
    if not isinstance(value, Step):
        raise InvalidParameter(f"{module}:{qualname} is not a step")
    return value


def step(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    cache: bool = True,
    cache_ttl: str | float | None = None,
    cache_key: Callable[..., Any] | None = None,
    retries: int = 0,
    retry_backoff: str | float = 1.0,
    resources: dict[str, float] | None = None,
    allow_pickle: bool = False,
) -> Any:
    """Make ``fn`` a pipeline step: ``@my.step`` or ``@my.step(retries=2, cache_ttl="1d")``."""
    from modelyard.core.durations import parse_seconds

    def wrap(f: Callable[..., Any]) -> Step:
        return Step(
            f,
            name or f.__name__,
            cache=cache,
            cache_ttl=None if cache_ttl is None else parse_seconds(cache_ttl, "cache_ttl"),
            cache_key=cache_key,
            retries=retries,
            retry_backoff=parse_seconds(retry_backoff, "retry_backoff"),
            resources=dict(resources or {}),
            allow_pickle=allow_pickle,
        )

    return wrap(fn) if fn is not None else wrap
