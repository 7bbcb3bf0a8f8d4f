"""The models a server holds: load, warm, serve, and follow a registry alias.

``ModelHost`` maps each served name to one ``ServedModel`` (a loaded version with its
batchers and its own inference thread). Serving ``models:/churn@production`` follows
the alias: a poller resolves it every ``poll_seconds``; when it moves, the new version
is loaded and warmed beside the old one, then the name is pointed at it in one
assignment. Requests that already hold the old version finish on it; it is closed
once its queue is empty. A version that fails to load or warm leaves the old one
serving, counts a failure and records an alert event (``serving.load_failed``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modelyard.core.errors import InvalidParameter, ModelyardError, ResourceNotFound
from modelyard.serving.batching import Arrivals, BatchPolicy, MicroBatcher
from modelyard.serving.inputs import RowAdapter, split_rows

__all__ = [
    "ModelHost",
    "ModelSpec",
    "NotReady",
    "ServedModel",
    "load_and_warm",
    "parse_model_arg",
    "record_in_registry",
]

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[A-Za-z0-9][\w.\-]{0,127}$")
_REGISTRY_NAME = re.compile(r"^models:/([^/@]+)")
_FOLLOWED = re.compile(r"^models:/[^/@]+(@[^/@]+|/[A-Za-z][A-Za-z]*)/?$")  # alias or stage
METHODS = ("predict", "predict_proba")


@dataclass(frozen=True)
class ModelSpec:
    """What to serve under one name."""

    name: str
    uri: str
    policy: BatchPolicy = field(default_factory=BatchPolicy)
    allow_pickle: bool = False

    @property
    def follows(self) -> bool:
        """True when the URI names an alias or stage, which can move."""
        return bool(_FOLLOWED.match(self.uri))


def parse_model_arg(arg: str, policy: BatchPolicy | None = None, **kw: Any) -> ModelSpec:
    """``[NAME=]URI``; without a name, ``models:/churn@production`` serves as ``churn``
    and anything else as ``model``."""
    name, sep, uri = arg.partition("=")
    if not sep or "/" in name or ":" in name:
        name, uri = "", arg
    if not name:
        m = _REGISTRY_NAME.match(uri)
        name = m.group(1) if m else "model"
    if not _NAME_RE.match(name):
        raise InvalidParameter(
            f"Invalid model name {name!r}: letters, digits, '_', '-', '.' (give NAME=URI)"
        )
    return ModelSpec(name, uri, policy or BatchPolicy(), **kw)


class ServedModel:
    """One loaded, warmed version: its batchers and its inference thread."""

    def __init__(self, spec: ModelSpec, version: str, model: Any, load_seconds: float) -> None:
        self.spec, self.name, self.version = spec, spec.name, version
        self.model = model
        self.load_seconds = load_seconds
        self.signature = getattr(model, "signature", None)
        matrix = getattr(model, "matrix_methods", None)
        self.adapter = RowAdapter(self.signature, spec.name)
        self._matrix = matrix() if matrix is not None and self.adapter.mode == "matrix" else None
        self.adapter.bare_matrix = self._matrix is not None
        self.executor = ThreadPoolExecutor(1, thread_name_prefix=f"infer-{spec.name}")
        self.has_proba = _has_proba(model)
        self._batchers: dict[str, MicroBatcher] = {}
        self.arrivals = Arrivals()
        self.on_batch: Callable[[int], None] | None = None

    def outputs(self) -> list[str]:
        return ["predict", "predict_proba"] if self.has_proba else ["predict"]

    def batcher(self, method: str) -> MicroBatcher:
        found = self._batchers.get(method)
        if found is None:
            if method not in self.outputs():
                raise InvalidParameter(
                    f"Model {self.name!r} has no output {method!r}; it has: "
                    f"{', '.join(self.outputs())}"
                )
            if self._matrix is not None:
                fn = self._matrix[method]
            else:
                fn = self.model.predict if method == "predict" else self.model.predict_proba
            found = self._batchers[method] = MicroBatcher(
                fn,
                concat=self.adapter.concat,
                split=split_rows,
                executor=self.executor,
                policy=self.spec.policy,
                on_batch=self.on_batch,
                arrivals=self.arrivals,
            )
        return found

    def warm(self) -> None:
        """One prediction on the package's input example (or a made-up row), so the
        first real request pays no first-call costs."""
        example = getattr(self.model, "input_example", None)
        if example is None:
            example = _synthetic_row(self.signature)
            if example is None:
                return
        self.model.predict(example)

    async def aclose(self) -> None:
        for b in list(self._batchers.values()):
            await b.aclose()
        self.executor.shutdown(wait=False)


def _has_proba(model: Any) -> bool:
    try:
        model.predict_proba  # noqa: B018 - a property that raises when absent
    except AttributeError:
        return False
    return True


def _synthetic_row(signature: Any) -> Any:
    if signature is None:
        return None
    if signature.kind == "tensor":
        arrays = {}
        for f in signature.inputs:
            shape = tuple(1 if d == -1 else d for d in (f.shape or (1,)))
            arrays[f.name] = np.zeros(
                shape, dtype=f.dtype if f.dtype not in ("string",) else object
            )
        return next(iter(arrays.values())) if len(arrays) == 1 else arrays
    row = {}
    for f in signature.inputs:
        if f.dtype in ("string", "object", "category"):
            row[f.name] = [""]
        else:
            row[f.name] = np.zeros(1, dtype=f.dtype)
    return pd.DataFrame(row)


class ModelHost:
    """Names -> served versions; loading, reloading and the alias poller.

    - ``resolve(uri) -> (version, exact_uri)``: which version a URI names now
      (default: the model registry for ``models:/``, else version "1").
    - ``load(exact_uri, allow_pickle)``: the model loader.
    - ``on_event(action, details)``: where swap and alert events go (default:
      ``record_in_registry``, the model's audit trail).
    """

    def __init__(
        self,
        specs: list[ModelSpec],
        *,
        poll_seconds: float = 5.0,
        resolve: Callable[[str], tuple[str, str]] | None = None,
        load: Callable[[str, bool], Any] | None = None,
        on_event: Callable[[str, dict], None] | None = None,
        on_loaded: Callable[[ServedModel, ServedModel | None], None] | None = None,
        on_load_failed: Callable[[str], None] | None = None,
    ) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise InvalidParameter(f"Two models share a name: {names}; give NAME=URI")
        if not specs:
            raise InvalidParameter("Nothing to serve: give at least one model URI")
        self.specs = {s.name: s for s in specs}
        self.poll_seconds = poll_seconds
        self._resolve = resolve or default_resolve
        self._load = load or default_load
        self._on_event = on_event or record_in_registry
        self._on_loaded = on_loaded
        self._on_load_failed = on_load_failed
        self.models: dict[str, ServedModel] = {}
        self._poller: asyncio.Task | None = None
        self._retiring: set[asyncio.Task] = set()

    @property
    def ready(self) -> bool:
        return len(self.models) == len(self.specs)

    def get(self, name: str | None, version: str | None = None) -> ServedModel:
        """The version serving ``name`` (None: the only model served)."""
        if name is None:
            if len(self.specs) != 1:
                raise InvalidParameter(
                    f"This server serves {len(self.specs)} models: POST to /predict/<name> "
                    f"({', '.join(self.specs)})"
                )
            name = next(iter(self.specs))
        served = self.models.get(name)
        if served is None:
            if name in self.specs:
                raise NotReady(f"Model {name!r} is not loaded yet")
            known = ", ".join(sorted(self.specs)) or "none"
            raise ResourceNotFound(f"Model {name!r} is not served here (served: {known})")
        if version not in (None, "", served.version):
            raise ResourceNotFound(
                f"Model {name!r} version {version} is not served (serving version {served.version})"
            )
        return served

    # -- loading --------------------------------------------------------------------
    async def start(self) -> None:
        """Load every model (in threads), then start following aliases."""
        for spec in self.specs.values():
            await self.refresh(spec, initial=True)
        if any(s.follows for s in self.specs.values()) and self.poll_seconds > 0:
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def refresh(self, spec: ModelSpec, *, initial: bool = False) -> bool:
        """Load the version ``spec.uri`` names now, if it is not the one served.
        True when a new version was swapped in."""
        current = self.models.get(spec.name)
        try:
            version, exact = await asyncio.to_thread(self._resolve, spec.uri)
        except Exception as exc:
            self._failed(spec, None, exc, initial)
            return False
        if current is not None and current.version == version:
            return False
        try:
            served = await asyncio.to_thread(self._load_and_warm, spec, version, exact)
        except Exception as exc:
            self._failed(spec, version, exc, initial)
            return False
        if self._on_loaded is not None:
            self._on_loaded(served, current)
        self.models[spec.name] = served  # the swap: one assignment
        if current is not None:
            log.warning(
                "model %s: now serving version %s (was %s)", spec.name, version, current.version
            )
            self._on_event(
                "serving.swapped",
                {"model": spec.name, "uri": spec.uri, "from": current.version, "to": version},
            )
            task = asyncio.get_running_loop().create_task(current.aclose())
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        return True

    def _load_and_warm(self, spec: ModelSpec, version: str, exact: str) -> ServedModel:
        return load_and_warm(spec, version, exact, self._load)

    def _failed(self, spec: ModelSpec, version: str | None, exc: Exception, initial: bool) -> None:
        message = exc.message if isinstance(exc, ModelyardError) else f"{type(exc).__name__}: {exc}"
        serving = self.models.get(spec.name)
        log.error(
            "model %s: %s %s failed to load: %s%s",
            spec.name,
            spec.uri,
            f"(version {version})" if version else "",
            message,
            f"; still serving version {serving.version}" if serving else "",
        )
        if self._on_load_failed is not None:
            self._on_load_failed(spec.name)
        self._on_event(
            "serving.load_failed",
            {
                "model": spec.name,
                "uri": spec.uri,
                "version": version,
                "error": message,
                "still_serving": serving.version if serving else None,
            },
        )
        if initial:
            raise ModelyardError(f"Cannot serve {spec.uri!r}: {message}") from exc

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            for spec in self.specs.values():
                if spec.follows:
                    try:
                        await self.refresh(spec)
                    except Exception:  # never let the poller die
                        log.exception("model %s: alias check failed", spec.name)

    async def aclose(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        for served in list(self.models.values()):
            await served.aclose()
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)


def load_and_warm(
    spec: ModelSpec, version: str, exact: str, load: Callable[[str, bool], Any] | None = None
) -> ServedModel:
    """Load ``exact`` (blocking: call it in a thread) and run one warm-up prediction."""
    started = time.perf_counter()
    model = (load or default_load)(exact, spec.allow_pickle)
    served = ServedModel(spec, version, model, 0.0)
    served.warm()
    served.load_seconds = time.perf_counter() - started
    return served


class NotReady(ModelyardError):
    """The model is known but still loading."""

    code = "TEMPORARILY_UNAVAILABLE"
    http_status = 503


def record_in_registry(action: str, details: dict) -> None:
    """Swaps and load failures of a registry model go to its audit trail; a failure to
    record is logged, never raised (an alert must not stop serving)."""
    registered = _REGISTRY_NAME.match(str(details.get("uri", "")))
    if registered is None:
        return
    from modelyard.sdk.registry import model_registry

    try:
        model_registry().record_event(registered.group(1), action, details)
    except Exception as exc:
        log.warning("could not record %s for %s: %s", action, details["model"], exc)


def default_resolve(uri: str) -> tuple[str, str]:
    """``models:/`` URIs through the registry (the exact version); others as version 1."""
    if uri.startswith("models:/"):
        from modelyard.sdk.registry import model_registry

        mv = model_registry().resolve(uri)
        return str(mv.version), f"models:/{mv.name}/{mv.version}"
    return "1", uri


def default_load(uri: str, allow_pickle: bool) -> Any:
    from modelyard.models.loader import load_model

    return load_model(uri, allow_pickle=allow_pickle)
