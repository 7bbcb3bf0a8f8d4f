"""Deployments: create them, start and end rollouts, take feedback.

Every change goes through ``SqlDeploymentStore.update`` (compare-and-swap plus an
audit event with the reason), whether it comes from a user (CLI, SDK, REST) or from
the gateway's rollout controller (a step passed, a gate failed). The gateway only
applies what this service stored, so a restarted gateway resumes where it was.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from modelyard.core.errors import (
    InvalidParameter,
    InvalidState,
    PolicyViolation,
    ResourceNotFound,
)
from modelyard.core.ids import new_id, now_ms
from modelyard.deploy.entities import Deployment, Gates, Rollout, Variant
from modelyard.deploy.sql_store import Change, SqlDeploymentStore
from modelyard.deploy.upstream import is_upstream, upstream_version

__all__ = ["DeploymentService", "parse_variant_arg"]

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def check_name(name: str, what: str = "Deployment") -> str:
    if not name or len(name) > 128 or not set(name) <= _NAME_CHARS or name[0] in "-.":
        raise InvalidParameter(
            f"Invalid {what.lower()} name {name!r}: letters, digits, '_', '-', '.' "
            "(at most 128, not starting with '-' or '.')"
        )
    return name


def parse_variant_arg(arg: str) -> tuple[str, str, float]:
    """``NAME=URI:WEIGHT`` (the weight in percent) -> (name, uri, weight)."""
    name, sep, rest = arg.partition("=")
    uri, colon, weight = rest.rpartition(":")
    if not sep or not colon or not uri:
        raise InvalidParameter(f"Give a variant as NAME=URI:WEIGHT, not {arg!r}")
    try:
        value = float(weight)
    except ValueError:
        raise InvalidParameter(f"Variant {name!r}: weight {weight!r} is not a number") from None
    return check_name(name, "Variant"), uri, value


def check_weights(weights: Iterable[float]) -> None:
    values = list(weights)
    if any(not math.isfinite(w) or w < 0 or w > 100 for w in values):
        raise InvalidParameter(f"Weights are percentages from 0 to 100, got {values}")
    if abs(sum(values) - 100.0) > 1e-6:
        raise InvalidParameter(
            f"Weights must sum to 100, these sum to {sum(values):g}: "
            + ", ".join(f"{w:g}" for w in values)
        )


def _finite(value: float, what: str, *, low: float = 0.0, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidParameter(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidParameter(
            f"{what} must be a finite number in [{low:g}, {high:g}], got {value}"
        )
    return float(value)


def check_gates(gates: Gates) -> Gates:
    """Every limit is a finite number in range (a NaN limit would never fail)."""
    if isinstance(gates.min_requests, bool) or not isinstance(gates.min_requests, int):
        raise InvalidParameter(f"min_requests must be an integer, got {gates.min_requests!r}")
    if gates.min_requests < 1 or gates.min_feedback < 1:
        raise InvalidParameter("min_requests and min_feedback must be at least 1")
    if gates.max_error_rate is not None:
        _finite(gates.max_error_rate, "max_error_rate", high=1.0)
    for what in ("max_p99_ms", "max_latency_ratio", "max_prediction_drift", "max_feedback_drop"):
        value = getattr(gates, what)
        if value is not None:
            _finite(value, what)
    return gates


class DeploymentService:
    """Deployments over a store; ``registry`` resolves ``models:/`` URIs to exact
    versions and gives the promoted version its alias (under the approval policy)."""

    def __init__(self, store: SqlDeploymentStore, registry: Any | None = None) -> None:
        self.store = store
        self.registry = registry

    # -- reading -----------------------------------------------------------------
    def get(self, name: str) -> Deployment:
        return self.store.get(name)

    def list(self) -> list[Deployment]:
        return self.store.list()

    def revision(self, name: str) -> int | None:
        """The stored revision (None: no such deployment): what gateways poll."""
        return self.store.revision(name)

    def feedback(self, name: str, since_ms: int | None = None) -> list[dict[str, Any]]:
        """The outcomes joined to ``name``'s answers (predicted at or after ``since_ms``)."""
        return self.store.feedback(name, since_ms)

    def history(self, name: str) -> list[dict]:
        self.store.get(name)
        return self.store.events(name)

    # -- creating ----------------------------------------------------------------
    def resolve(self, uri: str) -> tuple[str, str]:
        """(version, exact URI) of what ``uri`` names now; unknown versions raise."""
        if uri.startswith("models:/"):
            if self.registry is None:
                raise InvalidParameter(f"No model registry to resolve {uri!r}")
            mv = self.registry.resolve(uri)
            return str(mv.version), f"models:/{mv.name}/{mv.version}"
        if is_upstream(uri):
            return upstream_version(uri), uri.rstrip("/")
        return "1", uri

    def create(
        self, name: str, model_uri: str | None = None, *, variants: Sequence[str] = ()
    ) -> Deployment:
        """A deployment of one model (100%) or of several ``NAME=URI:WEIGHT`` variants."""
        check_name(name)
        if (model_uri is None) == (not variants):
            raise InvalidParameter("Give either a model URI or variants (NAME=URI:WEIGHT)")
        if model_uri is not None:
            version, exact = self.resolve(model_uri)
            chosen = [Variant("stable", exact, version, 100.0, "stable")]
        else:
            chosen = self._variants(variants, role="stable")
        dep = Deployment(name, chosen)
        return self.store.create(dep, {"variants": [v.to_dict() for v in chosen]})

    def _variants(self, args: Sequence[str], role: str) -> list[Variant]:
        parsed = [parse_variant_arg(a) for a in args]
        names = [p[0] for p in parsed]
        if len(set(names)) != len(names):
            raise InvalidParameter(f"Two variants share a name: {names}")
        check_weights(p[2] for p in parsed)
        out = []
        for vname, uri, weight in parsed:
            version, exact = self.resolve(uri)
            out.append(Variant(vname, exact, version, weight, role))
        return out

    def delete(self, name: str) -> None:
        dep = self.store.get(name)
        if dep.rollout is not None and dep.rollout.running:
            raise InvalidState(
                f"Deployment {name!r} has a {dep.rollout.strategy} rollout running; "
                "promote or roll it back first"
            )
        self.store.delete(name, dep.revision)

    # -- starting rollouts -------------------------------------------------------
    def _start(self, name: str, strategy: str, start: Any) -> Deployment:
        def change(dep: Deployment) -> Change:
            if dep.rollout is not None and dep.rollout.running:
                r = dep.rollout
                raise InvalidState(
                    f"Deployment {name!r} already has a {r.strategy} rollout running "
                    f"(id {r.id[:8]}, status {r.status}); promote or roll it back first"
                )
            if dep.stable is None:
                raise InvalidState(f"Deployment {name!r} has no stable version to start from")
            rollout = Rollout(id=new_id(), strategy=strategy, status="running", started_at=now_ms())
            details = start(dep, rollout)
            dep.rollout = rollout
            return f"rollout.{strategy}.started", details

        return self.store.update(name, change)

    def _candidate(self, dep: Deployment, uri: str, what: str) -> Variant:
        version, exact = self.resolve(uri)
        stable = dep.stable
        if stable is not None and stable.uri == exact:
            raise InvalidParameter(
                f"{exact} is already the stable version of {dep.name!r}: nothing to {what}"
            )
        return Variant("candidate", exact, version, 0.0, "candidate")

    def _check_policy(self, exact_uri: str, alias: str | None) -> None:
        """Refuse at the start a rollout whose promotion the policy would refuse."""
        if alias is None or self.registry is None or not exact_uri.startswith("models:/"):
            return
        model, _, version = exact_uri[len("models:/") :].partition("/")
        problems = self.registry.policy_problems(model, int(version), alias)
        if problems:
            raise PolicyViolation(
                f"Version {version} of {model!r} could not take {alias!r} at the end of the "
                f"rollout: {'; '.join(problems)}. Approve it first (modelyard models approve) "
                "or pass --no-promote."
            )

    def canary(
        self,
        name: str,
        candidate: str,
        *,
        steps: Sequence[float] = (5, 25, 50, 100),
        step_seconds: float = 60.0,
        gates: Gates | None = None,
        promote_alias: str | None = "production",
    ) -> Deployment:
        """Move traffic to ``candidate`` step by step; the gateway checks ``gates`` on
        each step's window, advances when they pass and rolls back when one fails."""
        steps = [float(s) for s in steps]
        if not steps or any(not 0 < s <= 100 for s in steps) or steps != sorted(set(steps)):
            raise InvalidParameter(
                f"Canary steps must be increasing percentages in (0, 100], got {steps}"
            )
        if steps[-1] != 100:
            steps.append(100.0)
        if _finite(step_seconds, "The step duration") <= 0:
            raise InvalidParameter("The step duration must be positive")
        gates = check_gates(gates or Gates())

        def start(dep: Deployment, rollout: Rollout) -> dict[str, Any]:
            cand = self._candidate(dep, candidate, "canary")
            self._check_policy(cand.uri, promote_alias)
            cand.weight = steps[0]
            stable = dep.stable
            assert stable is not None
            stable.weight = 100.0 - steps[0]
            dep.variants = [stable, cand]
            rollout.candidate = cand.name
            rollout.steps, rollout.step, rollout.step_started_at = steps, 0, now_ms()
            rollout.step_seconds, rollout.gates = step_seconds, gates
            rollout.promote_alias = promote_alias
            return {"candidate": cand.uri, "steps": steps, "gates": gates.to_dict()}

        return self._start(name, "canary", start)

    def bluegreen(
        self,
        name: str,
        green: str,
        *,
        smoke_inputs: list[dict[str, Any]] | None = None,
        tolerance: float | None = None,
        keep_previous_seconds: float = 300.0,
        promote_alias: str | None = "production",
    ) -> Deployment:
        """Load ``green`` beside the stable (blue), smoke-test it, switch all traffic at
        once, and keep blue loaded ``keep_previous_seconds`` for an instant rollback."""
        _finite(keep_previous_seconds, "keep_previous_seconds")
        if tolerance is not None:
            _finite(tolerance, "tolerance")
        if smoke_inputs is not None and (
            not isinstance(smoke_inputs, list) or not all(isinstance(r, dict) for r in smoke_inputs)
        ):
            raise InvalidParameter("smoke_inputs must be a list of records (dicts)")
        if tolerance is not None and not smoke_inputs:
            raise InvalidParameter("A tolerance needs smoke inputs to compare on")

        def start(dep: Deployment, rollout: Rollout) -> dict[str, Any]:
            cand = self._candidate(dep, green, "switch to")
            self._check_policy(cand.uri, promote_alias)
            cand.name = "green"
            dep.variants = [*dep.variants, cand]
            rollout.candidate = "green"
            rollout.smoke_inputs = smoke_inputs
            rollout.smoke_tolerance = tolerance
            rollout.keep_previous_seconds = keep_previous_seconds
            rollout.promote_alias = promote_alias
            return {"green": cand.uri, "smoke_rows": len(smoke_inputs or ())}

        return self._start(name, "bluegreen", start)

    def shadow(self, name: str, candidate: str, *, share: float = 100.0) -> Deployment:
        """Mirror ``share`` percent of requests to ``candidate``; users never see it."""
        if not (isinstance(share, (int, float)) and math.isfinite(share) and 0 < share <= 100):
            raise InvalidParameter(f"The shadow share is a percentage in (0, 100], got {share}")

        def start(dep: Deployment, rollout: Rollout) -> dict[str, Any]:
            cand = self._candidate(dep, candidate, "shadow")
            cand.name, cand.role = "shadow", "shadow"
            dep.variants = [*dep.variants, cand]
            rollout.candidate, rollout.shadow_share = "shadow", share
            rollout.promote_alias = "production"
            return {"shadow": cand.uri, "share": share}

        return self._start(name, "shadow", start)

    def ab(
        self,
        name: str,
        variants: Sequence[str],
        *,
        key_header: str | None = None,
        key_field: str | None = None,
    ) -> Deployment:
        """An A/B test among ``NAME=URI:WEIGHT`` variants; a request's key (header or
        field) always lands on the same variant; outcomes come through feedback."""
        if len(variants) < 2:
            raise InvalidParameter("An A/B test needs at least two variants")
        if any(parse_variant_arg(v)[0] == "previous" for v in variants):
            raise InvalidParameter("'previous' names the version serving before the test")
        if key_header and key_field:
            raise InvalidParameter("Give a key header or a key field, not both")
        arms = self._variants(variants, role="variant")

        def start(dep: Deployment, rollout: Rollout) -> dict[str, Any]:
            stable = dep.stable
            assert stable is not None
            keep = [] if any(a.uri == stable.uri for a in arms) else [stable]
            for v in keep:  # loaded at 0% so that a rollback is instant
                v.name, v.weight, v.role = "previous", 0.0, "standby"
            rollout.previous = (
                stable.name if keep else next(a.name for a in arms if a.uri == stable.uri)
            )
            dep.variants = [*keep, *arms]
            rollout.arms = [a.name for a in arms]
            rollout.key_header = (key_header or "").lower() or None
            rollout.key_field = key_field
            rollout.promote_alias = "production"
            return {"variants": [a.to_dict() for a in arms], "key": key_header or key_field}

        return self._start(name, "ab", start)

    # -- ending rollouts ---------------------------------------------------------
    def _running(self, dep: Deployment, rollout_id: str | None = None) -> Rollout:
        r = dep.rollout
        if r is None or not r.running:
            raise InvalidState(f"Deployment {dep.name!r} has no rollout in progress")
        if rollout_id is not None and r.id != rollout_id:
            raise InvalidState(f"Rollout {rollout_id[:8]} of {dep.name!r} is no longer current")
        return r

    def promote(
        self, name: str, variant: str | None = None, reason: str | None = None
    ) -> Deployment:
        """End the rollout now with the candidate (or the named A/B variant) serving
        100%; it takes the rollout's alias in the registry."""

        def change(dep: Deployment) -> Change:
            r = self._running(dep)
            winner = variant or r.candidate
            if r.strategy == "ab" and winner is None:
                raise InvalidParameter(
                    "Name the A/B variant to promote (--variant NAME); see modelyard deploy report"
                )
            chosen = dep.variant(winner or "")
            if chosen is None or chosen.role in ("standby",):
                raise InvalidParameter(
                    f"Deployment {name!r} has no variant {winner!r} to promote "
                    f"(it has {', '.join(v.name for v in dep.variants)})"
                )
            refused = self._refused(dep, r, chosen)
            if refused is not None:
                raise PolicyViolation(refused)
            return self._finish_with(dep, r, chosen, "promoted", reason or "promoted by hand")

        dep = self.store.update(name, change)
        return self._take_alias(dep)

    def _finish_with(
        self, dep: Deployment, r: Rollout, winner: Variant, action: str, reason: str
    ) -> Change:
        before = {v.name: v.weight for v in dep.variants}
        winner.name, winner.weight, winner.role = "stable", 100.0, "stable"
        dep.variants = [winner]
        r.status, r.reason, r.ended_at = "succeeded", reason, now_ms()
        return f"rollout.{action}", {
            "reason": reason,
            "weights_before": before,
            "serving": winner.uri,
            "gates": r.last_gates,
        }

    def _refused(self, dep: Deployment, r: Rollout, winner: Variant) -> str | None:
        """Why the approval policy would refuse ``winner`` the rollout's alias (None
        when nothing stops it); checked before a promotion changes any weight."""
        if not r.promote_alias or self.registry is None or not winner.uri.startswith("models:/"):
            return None
        model, _, version = winner.uri[len("models:/") :].partition("/")
        problems = self.registry.policy_problems(model, int(version), r.promote_alias)
        if not problems:
            return None
        return (
            f"{winner.uri} cannot take {r.promote_alias!r}: {'; '.join(problems)}. Approve it "
            f"(modelyard models approve {model} {version}), then modelyard deploy promote "
            f"{dep.name}; or roll back"
        )

    def _take_alias(self, dep: Deployment) -> Deployment:
        """After a promotion: the stable version takes the rollout's alias. The policy
        was checked before; a refusal in between (a rejection that very moment) is
        recorded on the deployment, the promotion stands."""
        r = dep.rollout
        stable = dep.stable
        if r is None or not r.promote_alias or stable is None or self.registry is None:
            return dep
        if not stable.uri.startswith("models:/"):
            return dep
        model = stable.uri[len("models:/") :].split("/")[0]
        try:
            self.registry.set_alias(
                model, r.promote_alias, int(stable.version), f"deployment {dep.name}: {r.reason}"
            )
        except PolicyViolation as exc:
            message = exc.message
            return self.store.update(
                dep.name, lambda d: ("rollout.alias_refused", {"reason": message})
            )
        return dep

    def rollback(
        self,
        name: str,
        reason: str | None = None,
        *,
        rollout_id: str | None = None,
        gates: dict[str, Any] | None = None,
    ) -> Deployment:
        """Back to the version that served before the rollout, at once."""

        def change(dep: Deployment) -> Change:
            r = self._running(dep, rollout_id)
            before = {v.name: v.weight for v in dep.variants}
            back = dep.variant(r.previous) if r.previous else None
            if r.strategy == "bluegreen" and r.switched_at is None:
                back = next(v for v in dep.variants if v.name != r.candidate)
            if back is None:
                back = dep.stable if dep.stable and dep.stable.name != r.candidate else None
            if back is None:
                raise InvalidState(f"Deployment {name!r}: no earlier version to roll back to")
            back.name, back.weight, back.role = "stable", 100.0, "stable"
            dep.variants = [back]
            if gates is not None:
                r.last_gates = gates
            why = reason or "rolled back by hand"
            r.status, r.reason, r.ended_at = "rolled_back", why, now_ms()
            return "rollout.rolled_back", {
                "reason": why,
                "weights_before": before,
                "serving": back.uri,
                "gates": r.last_gates,
            }

        dep = self.store.update(name, change)
        r = dep.rollout
        if r is not None and r.strategy in ("bluegreen",) and r.switched_at is not None:
            return self._take_alias(dep)
        return dep

    # -- the controller's transitions ------------------------------------------
    def advance(self, name: str, rollout_id: str, gates: dict[str, Any]) -> Deployment:
        """A canary step passed: the next step's weight; at 100% the candidate is
        promoted."""

        def change(dep: Deployment) -> Change:
            r = self._running(dep, rollout_id)
            r.last_gates = gates
            if r.step + 1 >= len(r.steps) or r.steps[r.step + 1] >= 100:
                cand = dep.variant(r.candidate or "")
                assert cand is not None
                refused = self._refused(dep, r, cand)
                if refused is not None:  # weights stay as they are until a decision
                    r.status, r.reason = "paused", f"every gate passed, but {refused}"
                    return "rollout.paused", {"reason": r.reason, "gates": gates}
                return self._finish_with(
                    dep, r, cand, "promoted", f"every gate passed through {r.steps[r.step]:g}%"
                )
            r.step += 1
            r.step_started_at = now_ms()
            weight = r.steps[r.step]
            for v in dep.variants:
                v.weight = weight if v.name == r.candidate else 100.0 - weight
            return "rollout.step", {"step": r.step, "weight": weight, "gates": gates}

        dep = self.store.update(name, change)
        if dep.rollout is not None and dep.rollout.status == "succeeded":
            return self._take_alias(dep)
        return dep

    def switch(self, name: str, rollout_id: str, smoke: dict[str, Any]) -> Deployment:
        """Blue-green: the smoke test passed; green takes all traffic, blue stays
        loaded at 0% until ``finish``."""

        def change(dep: Deployment) -> Change:
            r = self._running(dep, rollout_id)
            green = dep.variant(r.candidate or "")
            blue = dep.stable
            assert green is not None and blue is not None
            refused = self._refused(dep, r, green)
            if refused is not None:  # blue keeps serving until a decision
                r.status, r.reason = "paused", f"the smoke test passed, but {refused}"
                r.last_gates = {"smoke": smoke}
                return "rollout.paused", {"reason": r.reason, "smoke": smoke}
            blue.name, blue.weight, blue.role = "previous", 0.0, "standby"
            green.name, green.weight, green.role = "stable", 100.0, "stable"
            r.previous, r.switched_at, r.last_gates = blue.name, now_ms(), {"smoke": smoke}
            return "rollout.switched", {"from": blue.uri, "to": green.uri, "smoke": smoke}

        dep = self.store.update(name, change)
        r = dep.rollout
        if r is not None and r.promote_alias:
            self._take_alias(dep)
        return dep

    def finish(self, name: str, rollout_id: str, reason: str) -> Deployment:
        """Blue-green: the rollback window is over; blue is unloaded."""

        def change(dep: Deployment) -> Change:
            r = self._running(dep, rollout_id)
            dep.variants = [v for v in dep.variants if v.role != "standby"]
            r.status, r.reason, r.ended_at = "succeeded", reason, now_ms()
            return "rollout.finished", {"reason": reason}

        return self.store.update(name, change)

    def write_live(self, name: str, live: dict[str, Any]) -> None:
        self.store.write_live(name, live)

    # -- feedback ------------------------------------------------------------------
    def log_feedback(
        self,
        request_id: str,
        *,
        label: Any = None,
        reward: float | None = None,
        lookup: Any,
    ) -> dict[str, Any]:
        """Join an outcome to the prediction answered as ``request_id``.

        ``lookup(request_id)`` finds that prediction (the gateway's recent requests,
        then the prediction log): a dict with model, variant, version, prediction and
        predicted_at, or None, in which case nothing is stored (404)."""
        if not isinstance(request_id, str) or not request_id or len(request_id) > 128:
            raise InvalidParameter("request_id must be a non-empty string (at most 128)")
        if label is None and reward is None:
            raise InvalidParameter("Feedback needs a label or a reward")
        if reward is not None:
            if isinstance(reward, bool) or not isinstance(reward, (int, float)):
                raise InvalidParameter(f"reward must be a number, got {reward!r}")
            if not math.isfinite(reward):
                raise InvalidParameter(f"reward must be finite, got {reward!r}")
        found = lookup(request_id)
        if found is None:
            raise ResourceNotFound(
                f"No prediction with request id {request_id!r} was logged: feedback joins "
                "to the x-request-id of an answered request"
            )
        row = {
            "request_id": request_id,
            "model": found["model"],
            "variant": found.get("variant"),
            "version": found.get("version"),
            "prediction": found.get("prediction"),
            "predicted_at": found.get("predicted_at"),
            "label": label,
            "reward": None if reward is None else float(reward),
        }
        self.store.add_feedback(row)
        return row

    def ab_report(self, name: str, **kw: Any):
        """The A/B test's per-variant outcomes and verdict (see ``deploy.ab``)."""
        from modelyard.deploy.ab import ab_report

        dep = self.store.get(name)
        r = dep.rollout
        if r is None or r.strategy != "ab":
            raise InvalidState(f"Deployment {name!r} has no A/B test")
        arms = r.arms
        since = r.started_at
        rows = self.store.feedback(name, since_ms=since)
        return ab_report(name, rows, arms, control=r.previous, **kw)
