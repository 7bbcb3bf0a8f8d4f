"""Rich views of deployments for ``modelyard deploy ...``: status, reports, history.

Everything here turns `Deployment` entities, A/B reports, the gateway's live figures
and audit events into rich tables and text; nothing here talks to a store or loads
the data stack (the CLI imports this module at start-up).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from modelyard.cli import render

if TYPE_CHECKING:  # pragma: no cover
    from modelyard.deploy.ab import ABReport
    from modelyard.deploy.entities import Deployment

__all__ = [
    "LIVE_SECONDS",
    "ab_table",
    "ab_view",
    "deployments_table",
    "describe_variants",
    "event_details",
    "fmt_pct",
    "gates_view",
    "gateway_live",
    "history_table",
    "rollout_grid",
    "shadow_report",
    "shadow_view",
    "status_view",
    "variants_table",
]

LIVE_SECONDS = 5.0  # figures older than this: the gateway is not running

_STATUS_STYLE = {
    "running": "blue",
    "paused": "yellow",
    "succeeded": "green",
    "rolled_back": "red",
    "aborted": "red",
    "stable": "green",
}


# -- cell formatting ----------------------------------------------------------------------
def fmt_pct(value: float | None) -> str:
    return "" if value is None else f"{value:g}%"


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.2f}%"


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _passed(value: Any) -> Text:
    if value is True:
        return Text("pass", style="green")
    if value is False:
        return Text("FAIL", style="bold red")
    return Text("waiting", style="dim")


def _status_text(status: str) -> Text:
    return Text(status, style=_STATUS_STYLE.get(status, ""))


# -- deployments --------------------------------------------------------------------------
def describe_variants(dep: Deployment) -> str:
    """The variants on one line: ``stable models:/churn/1 (v1) 100%, ...``."""
    return ", ".join(
        f"{v.name} {v.uri} (v{v.version}) {fmt_pct(v.weight)}"
        if v.role != "shadow"
        # a shadow gets mirrored copies only
        else f"{v.name} {v.uri} (v{v.version}) mirrored"
        for v in dep.variants
    )


def deployments_table(deployments: Sequence[Deployment], now: int | None = None) -> Table:
    """What ``deploy list`` prints: one row per deployment, with whether a gateway serves it."""
    now = int(time.time() * 1000) if now is None else now
    table = Table(title="Deployments", title_justify="left")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("strategy", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("variants", overflow="fold")
    table.add_column("revision", justify="right", no_wrap=True)
    table.add_column("updated", no_wrap=True)
    table.add_column("gateway", no_wrap=True)
    for d in deployments:
        table.add_row(
            d.name,
            d.strategy,
            _status_text(d.status),
            describe_variants(d),
            str(d.revision),
            render.fmt_time(d.updated_at),
            Text("live", style="green") if gateway_live(d, now) else Text("-", style="dim"),
        )
    return table


# -- status -------------------------------------------------------------------------------
def gateway_live(dep: Deployment, now: int | None = None) -> bool:
    """True when a gateway wrote this deployment's figures in the last few seconds."""
    now = int(time.time() * 1000) if now is None else now
    return dep.live_at is not None and now - dep.live_at <= LIVE_SECONDS * 1000


def _gateway_line(dep: Deployment, now: int) -> Text:
    if gateway_live(dep, now):
        pid = (dep.live or {}).get("gateway", {}).get("pid")
        age = (now - (dep.live_at or now)) / 1000
        return Text.assemble(
            ("gateway  ", "bold"), ("live", "green"), f" (pid {pid}, figures {age:.1f}s old)"
        )
    hint = f" — start it: modelyard gateway {dep.name}"
    if dep.live_at is None:
        return Text.assemble(
            ("gateway  ", "bold"), ("not running", "yellow"), " (never seen)", hint
        )
    return Text.assemble(
        ("gateway  ", "bold"),
        ("not running", "yellow"),
        f" (last figures {render.fmt_time(dep.live_at)})",
        hint,
    )


def variants_table(dep: Deployment, live: bool) -> Table:
    """The stored variants with the gateway's figures for each (when it is live)."""
    figures = (dep.live or {}).get("variants", {}) if live else {}
    shadow_share = dep.rollout.shadow_share if dep.rollout and dep.rollout.running else None
    table = Table(title="Variants", title_justify="left")
    for col in ("variant", "role", "version", "uri"):
        table.add_column(col, no_wrap=col != "uri", overflow="fold")
    table.add_column("weight", justify="right", no_wrap=True)
    table.add_column("loaded", no_wrap=True)
    for col in ("requests", "errors", "error rate", "p50 ms", "p99 ms"):
        table.add_column(col, justify="right", no_wrap=True)
    for v in dep.variants:
        f = figures.get(v.name) or {}
        if f.get("uri") != v.uri:
            f = {}
        if v.role == "shadow":
            weight = f"mirror {fmt_pct(shadow_share)}" if shadow_share is not None else "mirror"
        else:
            weight = fmt_pct(v.weight)
            if f and abs(float(f.get("weight", v.weight)) - v.weight) > 1e-9:
                weight += f" (routing {fmt_pct(f.get('weight'))})"
        if not live:
            loaded = Text("")
        elif f.get("loaded"):
            loaded = Text("yes", style="green")
        elif f.get("load_error"):
            loaded = Text(f"failed: {f['load_error']}", style="red")
        else:
            loaded = Text("loading", style="yellow")
        table.add_row(
            Text(v.name, style="bold"),
            v.role,
            v.version,
            v.uri,
            weight,
            loaded,
            _num(f.get("requests")),
            _num(f.get("errors")),
            _rate(f.get("error_rate")),
            _ms(f.get("p50_ms")),
            _ms(f.get("p99_ms")),
        )
    return table


def rollout_grid(dep: Deployment) -> Table:
    """The rollout as label/value rows: strategy and status, then what that strategy
    stores (plan and gates, smoke test, mirrored share, arms), times and reason."""
    r = dep.rollout
    assert r is not None
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    state = Text.assemble(f"{r.strategy} ", _status_text(r.status), f"  {r.id[:8]}")
    grid.add_row("rollout", state)
    cand = dep.variant(r.candidate or "")
    if cand is not None and cand.role != "stable":  # (a promoted candidate is the stable)
        grid.add_row("candidate", f"{cand.name}: {cand.uri} (v{cand.version})")
    if r.strategy == "canary" and r.steps:
        plan = " → ".join(fmt_pct(s) for s in r.steps)
        grid.add_row(
            "step",
            f"{r.step + 1}/{len(r.steps)} at {fmt_pct(r.steps[r.step])} "
            f"(each step at least {render.fmt_seconds(r.step_seconds)}; plan {plan})",
        )
        g = r.gates
        limits = [f"≥ {g.min_requests} candidate requests"]
        for label, value in (
            ("error rate ≤", g.max_error_rate),
            ("p99 ms ≤", g.max_p99_ms),
            ("latency ratio ≤", g.max_latency_ratio),
            ("prediction drift (PSI) ≤", g.max_prediction_drift),
            ("feedback drop ≤", g.max_feedback_drop),
        ):
            if value is not None:
                limits.append(f"{label} {value:g}")
        grid.add_row("gates", ", ".join(limits))
    if r.strategy == "bluegreen":
        smoke = f"{len(r.smoke_inputs)} rows" if r.smoke_inputs else "none"
        if r.smoke_inputs and r.smoke_tolerance is not None:
            smoke += f", tolerance {r.smoke_tolerance:g}"
        grid.add_row("smoke test", smoke)
        if r.switched_at is not None:
            grid.add_row(
                "switched",
                f"{render.fmt_time(r.switched_at)} (previous kept loaded "
                f"{render.fmt_seconds(r.keep_previous_seconds)})",
            )
    if r.strategy == "shadow":
        grid.add_row("mirrored", f"{fmt_pct(r.shadow_share)} of requests")
    if r.strategy == "ab":
        grid.add_row("arms", ", ".join(r.arms))
        key = r.key_header and f"header {r.key_header}" or r.key_field and f"field {r.key_field}"
        grid.add_row("sticky key", key or "none (each request drawn at random)")
    if r.promote_alias and r.strategy in ("canary", "bluegreen"):
        grid.add_row("promotes to", f"alias {r.promote_alias}")
    grid.add_row("started", render.fmt_time(r.started_at))
    if r.ended_at is not None:
        grid.add_row("ended", render.fmt_time(r.ended_at))
    if r.reason:
        grid.add_row("reason", r.reason)
    return grid


def _gate_rows(gates: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The gates of one evaluation, whatever its shape: the canary's ``{verdict,
    gates: {...}}``, blue-green's ``{smoke: {...}}``, a load failure's ``{load:
    {...}}`` or a bare smoke result ``{passed, rows, problem}``."""
    inner = gates.get("gates")
    if isinstance(inner, Mapping):
        return [(k, dict(v)) for k, v in inner.items() if isinstance(v, Mapping)]
    if "passed" in gates:
        return [("smoke", dict(gates))]
    return [(k, dict(v)) for k, v in gates.items() if isinstance(v, Mapping)]


def gates_view(gates: Mapping[str, Any], title: str) -> list[RenderableType]:
    """A line with the verdict, then one row per gate: value, limit, passed."""
    rows = _gate_rows(gates)
    if not rows:
        return []
    facts = []
    if gates.get("verdict"):
        facts.append(f"verdict {gates['verdict']}")
    if gates.get("requests") is not None:
        facts.append(f"{gates['requests']} candidate requests")
    if gates.get("step") is not None and gates.get("weight") is not None:
        facts.append(f"step {int(gates['step']) + 1} at {fmt_pct(gates['weight'])}")
    line = Text.assemble((title, "bold"), f" ({', '.join(facts)})" if facts else "")
    table = Table()
    table.add_column("gate", style="bold", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("limit", justify="right", no_wrap=True)
    table.add_column("passed", no_wrap=True)
    table.add_column("details", overflow="fold")
    for name, g in rows:
        value = g.get("value", g.get("max_delta"))
        details = g.get("problem") or g.get("error") or ""
        if not details and g.get("rows") is not None:
            details = f"{g['rows']} rows"
        table.add_row(name, _num(value), _num(g.get("limit")), _passed(g.get("passed")), details)
    return [line, table]


def shadow_view(report: Mapping[str, Any]) -> list[RenderableType]:
    """The shadow comparison: agreement and deltas, then primary vs shadow figures."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    agreement = report.get("agreement_rate")
    for label, value in (
        ("mirrored requests", _num(report.get("mirrored"))),
        ("skipped (busy)", _num(report.get("skipped"))),
        ("rows compared", _num(report.get("rows_compared"))),
        ("agreement rate", "" if agreement is None else f"{agreement * 100:.2f}%"),
        ("mean abs delta", _num(report.get("mean_abs_delta"))),
        ("p99 abs delta", _num(report.get("p99_abs_delta"))),
        ("max abs delta", _num(report.get("max_abs_delta"))),
    ):
        grid.add_row(label, value or "n/a")
    table = Table(title="Primary vs shadow (mirrored requests)", title_justify="left")
    table.add_column("", style="bold", no_wrap=True)
    table.add_column("primary", justify="right", no_wrap=True)
    table.add_column("shadow", justify="right", no_wrap=True)
    primary, shadow = report.get("primary") or {}, report.get("shadow") or {}
    for label, key, fmt in (
        ("requests", "requests", _num),
        ("errors", "errors", _num),
        ("error rate", "error_rate", _rate),
        ("p50 ms", "p50_ms", _ms),
        ("p99 ms", "p99_ms", _ms),
    ):
        table.add_row(label, fmt(primary.get(key)), fmt(shadow.get(key)))
    return [Text("Shadow comparison", style="bold"), grid, table]


def status_view(dep: Deployment, now: int | None = None) -> Group:
    """What ``deploy status`` prints: the header, the gateway, the variants, the
    rollout, the last gate values and, for a shadow rollout, the comparison."""
    now = int(time.time() * 1000) if now is None else now
    live = gateway_live(dep, now)
    header = Text.assemble(
        ("deployment  ", "bold"),
        (dep.name, "bold"),
        f"  revision {dep.revision}, updated {render.fmt_time(dep.updated_at)}  ",
        _status_text(dep.status),
    )
    parts: list[RenderableType] = [header, _gateway_line(dep, now), variants_table(dep, live)]
    r = dep.rollout
    if r is not None:
        parts.append(rollout_grid(dep))
        gates = (dep.live or {}).get("gates") if live and r.running else None
        title = "Gates now" if gates else "Last gates"
        parts.extend(gates_view(gates or r.last_gates or {}, title))
        report = (dep.live or {}).get("shadow")
        if r.strategy == "shadow" and report:
            parts.extend(shadow_view(report))
    else:
        parts.append(Text("no rollout yet", style="dim"))
    return Group(*parts)


# -- reports ------------------------------------------------------------------------------
def ab_table(report: ABReport) -> Table:
    """Per arm of an A/B test: outcomes, mean with its interval, difference to control."""
    table = Table(
        title=f"A/B test of {report.deployment} (outcome: {report.kind})", title_justify="left"
    )
    table.add_column("variant", style="bold", no_wrap=True)
    table.add_column("n", justify="right", no_wrap=True)
    table.add_column("mean [95% CI]", no_wrap=True)
    table.add_column("diff vs control [CI]", no_wrap=True)
    table.add_column("p-value", justify="right", no_wrap=True)
    table.add_column("significant", no_wrap=True)
    for arm in report.arms:
        mean = _num(arm.mean)
        if arm.ci is not None:
            mean += f" [{arm.ci[0]:.4g}, {arm.ci[1]:.4g}]"
        if arm.variant == report.control:
            diff = Text("control", style="dim")
        elif arm.difference is None:
            diff = Text("")
        else:
            ci = f" [{arm.diff_ci[0]:+.4g}, {arm.diff_ci[1]:+.4g}]" if arm.diff_ci else ""
            diff = Text(f"{arm.difference:+.4g}{ci}")
        significant = (
            Text("")
            if arm.variant == report.control or arm.p_value is None
            else Text("yes", style="green")
            if arm.significant
            else Text("no")
        )
        table.add_row(
            arm.variant,
            str(arm.n),
            mean,
            diff,
            "" if arm.p_value is None else f"{arm.p_value:.4g}",
            significant,
        )
    return table


def ab_view(report: ABReport, alpha: float) -> list[RenderableType]:
    """What ``deploy report`` prints for an A/B test: the table, then the control, the
    sample size needed, the verdict and the winner (with the command to promote it)."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("control", report.control or "")
    needed = "n/a" if report.required_per_arm is None else str(report.required_per_arm)
    grid.add_row("needed per arm", f"{needed} outcomes (power 0.8, alpha {alpha:g})")
    grid.add_row("verdict", report.verdict)
    if report.winner is not None:
        grid.add_row(
            "winner",
            f"{report.winner} (promote it: modelyard deploy promote {report.deployment} "
            f"--variant {report.winner})",
        )
    return [ab_table(report), grid]


def shadow_report(dep: Deployment) -> list[RenderableType]:
    """What ``deploy report`` prints for a shadow rollout: the comparison the gateway
    last wrote (dated when the gateway is not running), or why there is none yet."""
    shadow = (dep.live or {}).get("shadow")
    if not shadow:
        return [
            Text(
                f"No mirrored requests yet: is the gateway running (modelyard gateway {dep.name})?"
            )
        ]
    parts = shadow_view(shadow)
    if not gateway_live(dep):
        parts.append(Text(f"figures of {render.fmt_time(dep.live_at)}", style="dim"))
    return parts


# -- history ------------------------------------------------------------------------------
def _summary(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _gates_summary(gates: Mapping[str, Any]) -> str:
    rows = _gate_rows(gates)
    if not rows:
        return ""
    parts = []
    for name, g in rows:
        mark = {True: "ok", False: "FAILED", None: "waiting"}[g.get("passed")]
        value = g.get("value", g.get("max_delta"))
        shown = f" {_num(value)}" if value is not None else ""
        limit = f"/{_num(g.get('limit'))}" if g.get("limit") is not None else ""
        parts.append(f"{name}{shown}{limit} {mark}")
    verdict = f"{gates['verdict']}: " if gates.get("verdict") else ""
    return verdict + ", ".join(parts)


def event_details(after: Any) -> str:
    """One line per audit event: the reason first, then what changed."""
    if not isinstance(after, Mapping):
        return "" if after is None else _summary(after)
    parts: list[str] = []
    if after.get("reason"):
        parts.append(str(after["reason"]))
    for key, value in after.items():
        if key in ("reason", "state") or value in (None, {}, []):
            continue
        if key == "gates" and isinstance(value, Mapping):
            summary = _gates_summary(value) or ", ".join(  # limits, when a canary starts
                f"{k}={v:g}" for k, v in value.items() if isinstance(v, int | float)
            )
            parts.append(f"gates: {summary}")
        elif key == "weights_before" and isinstance(value, Mapping):
            parts.append("weights before: " + ", ".join(f"{k} {v:g}%" for k, v in value.items()))
        elif key == "variants" and isinstance(value, list):
            shown = [
                f"{v.get('name')}={v.get('uri')} {v.get('weight', 0):g}%"
                for v in value
                if isinstance(v, Mapping)
            ]
            parts.append("variants: " + ", ".join(shown))
        elif key == "steps" and isinstance(value, list):
            parts.append("steps: " + " → ".join(f"{s:g}%" for s in value))
        else:
            parts.append(f"{key}: {_summary(value)}")
    return "; ".join(parts)


def history_table(name: str, events: Sequence[dict[str, Any]]) -> Table:
    """What ``deploy history`` prints: one row per audit event, oldest first."""
    table = Table(title=f"History of deployment {name}", title_justify="left")
    table.add_column("time", no_wrap=True)
    table.add_column("actor", no_wrap=True)
    table.add_column("action", style="bold", no_wrap=True)
    table.add_column("reason / details", overflow="fold")
    for e in events:
        table.add_row(
            render.fmt_time(e.get("created_at")),
            str(e.get("actor") or ""),
            str(e.get("action") or ""),
            event_details(e.get("after")),
        )
    return table
