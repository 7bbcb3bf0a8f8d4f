"""What a deployment is: its variants and weights, and the rollout moving them.

Plain data, saved as JSON in the ``deployments`` table (``to_dict``/``from_dict``), so
a restarted gateway rebuilds exactly the routing and the rollout step it had.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["STRATEGIES", "Deployment", "Gates", "Rollout", "Variant"]

STRATEGIES = ("canary", "bluegreen", "shadow", "ab")

# Variant roles: "stable" serves by default; a "candidate" is under a rollout (canary
# or green); "shadow" gets mirrored copies only; "variant" is one arm of an A/B test;
# "standby" stays loaded at 0% for an instant rollback (blue after a switch, the
# version that served before an A/B test).
ROLES = ("stable", "candidate", "shadow", "variant", "standby")


@dataclass
class Variant:
    """One model version behind a deployment, with its share of traffic (percent)."""

    name: str
    uri: str  # the exact model (models:/churn/7) or an upstream server (http://...)
    version: str
    weight: float
    role: str = "stable"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Gates:
    """A canary step passes when the candidate, over the step's window, has at least
    ``min_requests`` requests and stays within every limit that is set.

    - ``max_error_rate``: share of 5xx answers;
    - ``max_p99_ms``: absolute 99th percentile latency;
    - ``max_latency_ratio``: candidate p99 / stable p99;
    - ``max_prediction_drift``: PSI of the candidate's predictions against the stable's
      in the same window;
    - ``max_feedback_drop``: how far the candidate's mean outcome from feedback (reward,
      or accuracy from labels) may fall below the stable's, once both have
      ``min_feedback`` outcomes.
    """

    min_requests: int = 200
    max_error_rate: float | None = 0.01
    max_p99_ms: float | None = None
    max_latency_ratio: float | None = None
    max_prediction_drift: float | None = None
    max_feedback_drop: float | None = None
    min_feedback: int = 50

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Rollout:
    """A change in progress (or finished) on a deployment.

    ``status``: running | succeeded | rolled_back | aborted | paused (a canary that
    reached 100% but whose promotion the registry's approval policy refuses).
    """

    id: str
    strategy: str
    status: str
    started_at: int
    candidate: str | None = None  # the variant under test (canary, green, shadow)
    steps: list[float] = field(default_factory=list)  # canary weights, percent
    step: int = 0
    step_started_at: int | None = None
    step_seconds: float = 60.0
    gates: Gates = field(default_factory=Gates)
    last_gates: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    ended_at: int | None = None
    promote_alias: str | None = "production"
    # blue-green
    smoke_inputs: list[dict[str, Any]] | None = None
    smoke_tolerance: float | None = None
    keep_previous_seconds: float = 300.0
    switched_at: int | None = None
    previous: str | None = None  # the variant switched away from (blue)
    # shadow
    shadow_share: float = 100.0
    # A/B
    key_header: str | None = None
    key_field: str | None = None
    arms: list[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rollout:
        data = dict(data)
        data["gates"] = Gates(**data.get("gates") or {})
        return cls(**data)


@dataclass
class Deployment:
    """A named endpoint and the versions behind it."""

    name: str
    variants: list[Variant]
    rollout: Rollout | None = None
    revision: int = 0
    created_at: int = 0
    updated_at: int = 0
    live: dict[str, Any] | None = None  # the gateway's latest figures
    live_at: int | None = None

    @property
    def strategy(self) -> str:
        return self.rollout.strategy if self.rollout and self.rollout.running else "single"

    @property
    def status(self) -> str:
        return self.rollout.status if self.rollout else "stable"

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)

    @property
    def stable(self) -> Variant | None:
        return next((v for v in self.variants if v.role == "stable"), None)

    def weights(self) -> dict[str, float]:
        return {v.name: v.weight for v in self.variants if v.role != "shadow"}

    def state_dict(self) -> dict[str, Any]:
        return {
            "variants": [v.to_dict() for v in self.variants],
            "rollout": self.rollout.to_dict() if self.rollout else None,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "strategy": self.strategy,
            "status": self.status,
            "revision": self.revision,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            **self.state_dict(),
            "live": self.live,
            "live_at": self.live_at,
        }

    @classmethod
    def from_state(cls, name: str, state: dict[str, Any], **meta: Any) -> Deployment:
        rollout = state.get("rollout")
        return cls(
            name=name,
            variants=[Variant(**v) for v in state["variants"]],
            rollout=Rollout.from_dict(rollout) if rollout else None,
            **meta,
        )
