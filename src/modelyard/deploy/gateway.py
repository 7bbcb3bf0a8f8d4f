"""The gateway's core (no HTTP): the deployments one process serves.

For each deployment a ``DeploymentRuntime`` holds the loaded variants (each a
``ServedModel`` with its own batcher and inference thread), the ``Router`` that
splits traffic among them, one ``Window`` of figures per variant, and the rollout
controller, an asyncio task that:

- polls the deployment's revision in the database and applies what changed: loads
  new versions beside the old ones (a version routes only once loaded and warmed,
  so a candidate that fails to load never gets a request: the rollout is rolled
  back with the load error as its reason), then swaps in the new router;
- canary: evaluates the gates every ``tick_seconds`` on the step's window; on a
  failure it first swaps in a router without the candidate (in memory, at once)
  and then records the rollback; when a step passes and its time is up, advances;
- blue-green: smoke-tests green, switches, and unloads blue after the keep time;
- writes the live figures (weights, windows, gates, shadow comparison) to the
  database every ``live_seconds`` for ``modelyard deploy status``.

One gateway process owns a deployment's controller; run one gateway per deployment
(``--workers`` is for the plain model server).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import pandas as pd

from modelyard.core.errors import InvalidParameter, ModelyardError, ResourceNotFound
from modelyard.core.ids import now_ms
from modelyard.deploy.ab import outcome_of
from modelyard.deploy.entities import Deployment
from modelyard.deploy.gates import evaluate
from modelyard.deploy.router import Router
from modelyard.deploy.service import DeploymentService
from modelyard.deploy.shadow import ShadowStats
from modelyard.deploy.upstream import UpstreamModel, is_upstream
from modelyard.deploy.window import Window, prediction_values
from modelyard.serving.batching import BatchPolicy
from modelyard.serving.host import ModelSpec, NotReady, ServedModel, default_load, load_and_warm

__all__ = ["DeploymentRuntime", "Gateway", "Ledger"]

log = logging.getLogger("modelyard.deploy")

MAX_SHADOW_IN_FLIGHT = 64


LEDGER_VALUES = 1000  # predictions kept per answered request for the feedback join


class Ledger:
    """The most recent answered requests (request id -> who answered what), so that
    feedback joins without waiting for the prediction log to reach storage."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._items: OrderedDict[str, tuple] = OrderedDict()

    def add(
        self, request_id: str, model: str, variant: str, version: str, outputs: Any, at: int
    ) -> None:
        # Plain values only: the answer's own output objects (arrays, dicts, frames,
        # possibly views of a whole batch) would stay alive for 100k requests.
        values = tuple(prediction_values(outputs, LEDGER_VALUES))
        self._items[request_id] = (model, variant, version, values, at)
        if len(self._items) > self.size:
            self._items.popitem(last=False)

    def find(self, request_id: str) -> dict[str, Any] | None:
        entry = self._items.get(request_id)
        if entry is None:
            return None
        model, variant, version, values, at = entry
        return {
            "model": model,
            "variant": variant,
            "version": version,
            "prediction": list(values),
            "predicted_at": at,
        }


class DeploymentRuntime:
    """One deployment in this process."""

    def __init__(self, gateway: Gateway, name: str) -> None:
        self.gateway, self.name = gateway, name
        self.dep: Deployment | None = None
        self.served: dict[str, ServedModel] = {}  # by exact URI
        self.failed: dict[str, str] = {}  # URI -> load error
        self.router = Router({})
        self.uris: dict[str, str] = {}  # variant -> URI
        self.windows: dict[str, Window] = {}
        self.shadow: ShadowStats | None = None
        self.shadow_id: str | None = None
        self.shadow_in_flight = 0
        self.step_key: tuple | None = None  # (rollout id, step): a new one opens new windows
        self.last_gates: dict[str, Any] = {}
        self.failed_at: float | None = None  # monotonic time of the last gate failure
        self._feedback: dict[str, tuple[int, float]] = {}
        self._feedback_at = 0.0
        self._smoking = False
        self._evaluated: tuple | None = None

    # -- the request path (event loop, no awaits) ---------------------------------
    @property
    def ready(self) -> bool:
        return not self.router.empty

    def pick(self, key: str | None, version: str | None) -> tuple[ServedModel, str]:
        if version not in (None, ""):
            for variant, uri in self.uris.items():
                served = self.served.get(uri)
                if served is not None and served.version == version:
                    return served, variant
            raise ResourceNotFound(
                f"Deployment {self.name!r} does not serve version {version} "
                f"(serving: {', '.join(sorted({s.version for s in self.served.values()}))})"
            )
        if self.router.empty:
            raise NotReady(f"Deployment {self.name!r} has no version loaded yet")
        variant = self.router.pick(key)
        return self.served[self.uris[variant]], variant

    def observe(self, variant: str, status: int, latency_ms: float, outputs: Any) -> None:
        window = self.windows.get(variant)
        if window is not None:
            window.observe(status, latency_ms, outputs)

    @property
    def key_header(self) -> str | None:
        r = self.dep.rollout if self.dep else None
        return r.key_header if r is not None and r.running else None

    @property
    def key_field(self) -> str | None:
        r = self.dep.rollout if self.dep else None
        return r.key_field if r is not None and r.running else None

    def shadow_target(self) -> ServedModel | None:
        """The shadow's model when this request should be mirrored, else None."""
        dep = self.dep
        r = dep.rollout if dep else None
        if r is None or r.strategy != "shadow" or not r.running or self.shadow_id != r.id:
            return None
        served = self.served.get(self.uris.get("shadow", ""))
        if served is None or random.random() * 100.0 >= r.shadow_share:
            return None
        if self.shadow_in_flight >= MAX_SHADOW_IN_FLIGHT:
            self.shadow.skipped += 1
            return None
        return served

    async def mirror(
        self,
        served: ServedModel,
        handle: Callable[[ServedModel, bytes], Awaitable[tuple[Any, Any, Any]]],
        body: bytes,
        primary_outputs: Any,
        primary_ms: float,
    ) -> None:
        """Run a copy of a request on the shadow; the user's answer is already sent."""
        stats = self.shadow
        if stats is None:
            return
        self.shadow_in_flight += 1
        stats.mirrored += 1
        stats.primary.observe(200, primary_ms, primary_outputs)
        started = time.perf_counter()
        try:
            _, _, outputs = await handle(served, body)
        except Exception:
            stats.shadow.observe(500, (time.perf_counter() - started) * 1000)
        else:
            stats.shadow.observe(200, (time.perf_counter() - started) * 1000, outputs)
            stats.record(primary_outputs, outputs)
        finally:
            self.shadow_in_flight -= 1

    # -- applying the stored state -------------------------------------------------
    async def apply(self, dep: Deployment) -> None:
        """Make this process serve what ``dep`` says: load what is missing (old
        versions keep serving meanwhile), then swap the router in one assignment."""
        gw = self.gateway
        wanted = {v.uri: v for v in dep.variants}
        for uri, variant in wanted.items():
            if uri in self.served or uri in self.failed:
                continue
            spec = ModelSpec(self.name, uri, gw.policy, gw.allow_pickle)
            try:
                served = await asyncio.to_thread(
                    load_and_warm, spec, variant.version, uri, gw.load or load_variant
                )
            except Exception as exc:
                message = exc.message if isinstance(exc, ModelyardError) else f"{exc}"
                self.failed[uri] = message
                log.error("deployment %s: %s failed to load: %s", self.name, uri, message)
                continue
            if gw.on_loaded is not None:
                gw.on_loaded(served)
            self.served[uri] = served
        self.dep = dep
        self._route(dep)
        for uri in [u for u in self.served if u not in wanted]:
            old = self.served.pop(uri)
            gw.spawn(old.aclose())
        await self._candidate_failed(dep)

    def _route(self, dep: Deployment) -> None:
        self.uris = {v.name: v.uri for v in dep.variants}
        weights = {
            v.name: v.weight for v in dep.variants if v.role != "shadow" and v.uri in self.served
        }
        self.router = Router(weights)
        r = dep.rollout
        key = (r.id, r.step, r.switched_at) if r is not None and r.running else None
        if key != self.step_key or set(self.windows) != set(self.uris):
            self.step_key = key
            started = time.monotonic()
            self.windows = {v: Window(started) for v in self.uris}
            self.last_gates = {}
        if r is not None and r.running and r.strategy == "shadow" and self.shadow_id != r.id:
            self.shadow, self.shadow_id = ShadowStats(time.monotonic()), r.id  # kept after the end
        if self.gateway.on_routed is not None:
            self.gateway.on_routed(self)

    async def _candidate_failed(self, dep: Deployment) -> None:
        r = dep.rollout
        if r is None or not r.running or r.candidate is None:
            return
        cand = dep.variant(r.candidate)
        if cand is None or cand.uri not in self.failed or cand.role == "stable":
            return
        reason = f"the candidate {cand.uri} failed to load: {self.failed[cand.uri]}"
        await self._rollback(r.id, reason, {"load": {"passed": False, "error": reason}})

    async def _rollback(self, rollout_id: str, reason: str, gates: dict[str, Any]) -> None:
        dep = self.dep
        assert dep is not None
        r = dep.rollout
        if r is not None and r.strategy == "canary" and r.candidate:
            # First, in memory: no request reaches the candidate from now on.
            self.router = Router({n: w for n, w in self.router.weights.items() if n != r.candidate})
            self.failed_at = time.monotonic()
        svc = self.gateway.service
        try:
            new = await asyncio.to_thread(
                svc.rollback, self.name, reason, rollout_id=rollout_id, gates=gates
            )
        except ModelyardError as exc:  # someone else ended it meanwhile
            log.warning("deployment %s: rollback not recorded: %s", self.name, exc.message)
            return
        log.warning("deployment %s: rolled back: %s", self.name, reason)
        await self.apply(new)

    # -- the controller ---------------------------------------------------------
    async def tick(self) -> None:
        dep = self.dep
        r = dep.rollout if dep else None
        if dep is None or r is None or not r.running or r.status == "paused":
            return
        if r.strategy == "canary":
            await self._canary(dep)
        elif r.strategy == "bluegreen":
            await self._bluegreen(dep)

    async def _canary(self, dep: Deployment) -> None:
        r = dep.rollout
        assert r is not None and r.candidate is not None
        cand, stable = dep.variant(r.candidate), dep.stable
        if cand is None or stable is None or cand.uri not in self.served:
            return
        if r.gates.max_feedback_drop is not None:
            await self._refresh_feedback(dep)
        seen = (self.windows[cand.name].requests, len(self._feedback), r.step)
        if seen == self._evaluated and self.last_gates.get("verdict") != "pass":
            return  # nothing new to judge
        self._evaluated = seen
        result = evaluate(
            r.gates, self.windows[cand.name], self.windows[stable.name], self._feedback
        )
        result["step"], result["weight"] = r.step, r.steps[r.step]
        self.last_gates = result
        if result["verdict"] == "fail":
            failed = [
                f"{k} {_fmt(g['value'])} > {g['limit']:g}"
                for k, g in result["gates"].items()
                if g["passed"] is False
            ]
            reason = (
                f"gate failed at step {r.step + 1}/{len(r.steps)} ({r.steps[r.step]:g}%): "
                + "; ".join(failed)
            )
            await self._rollback(r.id, reason, result)
        elif result["verdict"] == "pass":
            elapsed = time.monotonic() - self.windows[cand.name].started
            if elapsed >= r.step_seconds:
                try:
                    new = await asyncio.to_thread(
                        self.gateway.service.advance, self.name, r.id, result
                    )
                except ModelyardError as exc:
                    log.warning("deployment %s: step not recorded: %s", self.name, exc.message)
                    return
                await self.apply(new)

    async def _refresh_feedback(self, dep: Deployment) -> None:
        if time.monotonic() - self._feedback_at < 2.0:
            return
        self._feedback_at = time.monotonic()
        r = dep.rollout
        assert r is not None
        since = r.step_started_at or r.started_at
        rows = await asyncio.to_thread(self.gateway.service.feedback, self.name, since)
        by_role: dict[str, list[float]] = {"candidate": [], "stable": []}
        for row in rows:
            value = outcome_of(row)
            role = "candidate" if row.get("variant") == r.candidate else "stable"
            if value is not None:
                by_role[role].append(value)
        self._feedback = {k: (len(v), sum(v) / len(v) if v else 0.0) for k, v in by_role.items()}

    async def _bluegreen(self, dep: Deployment) -> None:
        r = dep.rollout
        assert r is not None
        if r.switched_at is not None:
            if now_ms() - r.switched_at >= r.keep_previous_seconds * 1000:
                try:
                    new = await asyncio.to_thread(
                        self.gateway.service.finish,
                        self.name,
                        r.id,
                        f"previous version unloaded after {r.keep_previous_seconds:g}s",
                    )
                except ModelyardError:
                    return
                await self.apply(new)
            return
        green = dep.variant(r.candidate or "")
        blue = dep.stable
        if green is None or blue is None or green.uri not in self.served or self._smoking:
            return
        self._smoking = True
        try:
            smoke = await asyncio.to_thread(
                smoke_test,
                self.served[green.uri],
                self.served.get(blue.uri),
                r.smoke_inputs,
                r.smoke_tolerance,
            )
            self.last_gates = {"smoke": smoke}
            if not smoke["passed"]:
                reason = f"smoke test failed: {smoke['problem']}"
                await self._rollback(r.id, reason, {"smoke": smoke})
                return
            try:
                new = await asyncio.to_thread(self.gateway.service.switch, self.name, r.id, smoke)
            except ModelyardError as exc:
                log.warning("deployment %s: switch not recorded: %s", self.name, exc.message)
                return
            await self.apply(new)
        finally:
            self._smoking = False

    def live(self) -> dict[str, Any]:
        dep = self.dep
        variants = {}
        for v in dep.variants if dep else []:
            served = self.served.get(v.uri)
            window = self.windows.get(v.name)
            variants[v.name] = {
                "uri": v.uri,
                "version": v.version,
                "role": v.role,
                "weight": self.router.weights.get(v.name, 0.0),
                "loaded": served is not None,
                "load_error": self.failed.get(v.uri),
                **(window.snapshot() if window else {}),
            }
        return {
            "gateway": {"pid": os.getpid(), "at": now_ms()},
            "variants": variants,
            "gates": self.last_gates,
            "shadow": self.shadow.report() if self.shadow is not None else None,
        }


def load_variant(uri: str, allow_pickle: bool) -> Any:
    """A model in this process, or a proxy for an upstream server's (http://...)."""
    if is_upstream(uri):
        return UpstreamModel(uri)
    return default_load(uri, allow_pickle)


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def smoke_test(
    green: ServedModel,
    blue: ServedModel | None,
    inputs: list[dict[str, Any]] | None,
    tolerance: float | None,
) -> dict[str, Any]:
    """Green must answer every smoke row; with a tolerance, within it of blue (the
    largest absolute difference for numbers, the share that differs for labels)."""
    if not inputs:
        return {"passed": True, "rows": 0, "problem": None}
    frame = pd.DataFrame(inputs)
    try:
        got = prediction_values(green.model.predict(frame), len(frame))
    except Exception as exc:
        return {"passed": False, "rows": len(frame), "problem": f"green failed: {exc}"}
    result: dict[str, Any] = {"passed": True, "rows": len(frame), "problem": None}
    if tolerance is not None and blue is not None:
        want = prediction_values(blue.model.predict(frame), len(frame))
        numeric = all(isinstance(x, (int, float)) for x in got + want)
        if numeric:
            delta = max((abs(a - b) for a, b in zip(got, want, strict=True)), default=0.0)
        else:
            delta = sum(a != b for a, b in zip(got, want, strict=True)) / max(1, len(got))
        result["max_delta"] = delta
        if delta > tolerance:
            result["passed"] = False
            result["problem"] = f"green differs from blue by {delta:.4g} > tolerance {tolerance:g}"
    return result


class Gateway:
    """The deployments this process serves (``names``), with a controller each.

    Offers what the inference endpoints need of a model host (``get``, ``specs``,
    ``models``, ``ready``) plus ``runtime(name)`` for routing."""

    def __init__(
        self,
        service: DeploymentService,
        names: list[str],
        *,
        poll_seconds: float = 0.5,
        tick_seconds: float = 0.1,
        live_seconds: float = 1.0,
        policy: BatchPolicy | None = None,
        allow_pickle: bool = False,
        load: Callable[[str, bool], Any] | None = None,
        on_loaded: Callable[[ServedModel], None] | None = None,
        on_routed: Callable[[DeploymentRuntime], None] | None = None,
    ) -> None:
        if not names:
            raise InvalidParameter("Give the deployments to serve: modelyard gateway NAME ...")
        self.service = service
        self.runtimes = {n: DeploymentRuntime(self, n) for n in names}
        self.poll_seconds, self.tick_seconds, self.live_seconds = (
            poll_seconds,
            tick_seconds,
            live_seconds,
        )
        self.policy = policy or BatchPolicy()
        self.allow_pickle = allow_pickle
        self.load = load
        self.on_loaded = on_loaded
        self.on_routed = on_routed
        self.ledger = Ledger()
        self._tasks: set[asyncio.Task] = set()
        self._controllers: list[asyncio.Task] = []

    # -- what the endpoints use -----------------------------------------------------
    @property
    def specs(self) -> dict[str, None]:
        return dict.fromkeys(self.runtimes)

    @property
    def models(self) -> dict[str, ServedModel]:
        out = {}
        for name, rt in self.runtimes.items():
            stable = rt.dep.stable if rt.dep else None
            if stable is not None and stable.uri in rt.served:
                out[name] = rt.served[stable.uri]
        return out

    @property
    def ready(self) -> bool:
        return all(rt.ready for rt in self.runtimes.values())

    def runtime(self, name: str | None) -> DeploymentRuntime:
        if name is None:
            if len(self.runtimes) != 1:
                raise InvalidParameter(
                    f"This gateway serves {len(self.runtimes)} deployments: POST to "
                    f"/predict/<name> ({', '.join(self.runtimes)})"
                )
            name = next(iter(self.runtimes))
        rt = self.runtimes.get(name)
        if rt is None:
            raise ResourceNotFound(
                f"Deployment {name!r} is not served here (served: {', '.join(self.runtimes)})"
            )
        return rt

    def get(self, name: str | None, version: str | None = None) -> ServedModel:
        return self.runtime(name).pick(None, version)[0]

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        """Load every deployment's variants, then start the controllers."""
        for rt in self.runtimes.values():
            dep = await asyncio.to_thread(self.service.get, rt.name)
            await rt.apply(dep)
            if rt.router.empty:
                problems = "; ".join(f"{u}: {e}" for u, e in rt.failed.items())
                raise ModelyardError(f"Cannot serve deployment {rt.name!r}: {problems}")
        for rt in self.runtimes.values():
            task = asyncio.get_running_loop().create_task(self._control(rt))
            self._controllers.append(task)

    async def _control(self, rt: DeploymentRuntime) -> None:
        svc = self.service
        polled = wrote = 0.0
        while True:
            try:
                now = time.monotonic()
                if now - polled >= self.poll_seconds:
                    polled = now
                    revision = await asyncio.to_thread(svc.revision, rt.name)
                    if revision is not None and rt.dep is not None and revision != rt.dep.revision:
                        await rt.apply(await asyncio.to_thread(svc.get, rt.name))
                await rt.tick()
                if now - wrote >= self.live_seconds:
                    wrote = now
                    await asyncio.to_thread(svc.write_live, rt.name, rt.live())
            except asyncio.CancelledError:
                raise
            except Exception:  # the controller must outlive a database hiccup
                log.exception("deployment %s: controller step failed", rt.name)
                await asyncio.sleep(1.0)
            await asyncio.sleep(self.tick_seconds)

    async def aclose(self) -> None:
        for task in self._controllers:
            task.cancel()
        for task in self._controllers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for rt in self.runtimes.values():
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.service.write_live, rt.name, rt.live())
            for served in list(rt.served.values()):
                await served.aclose()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def find(self, request_id: str) -> dict[str, Any] | None:
        return self.ledger.find(request_id)
