"""``modelyard deploy ...``: deployments and their rollouts from the command line.

Every command is one call on the `DeploymentService` of the current store
(`modelyard.sdk.deploy.deployment_service`): the CLI only writes the desired state;
the gateway (``modelyard gateway NAME``) carries it out and writes back the live
figures that ``status`` shows. The tables and panels come from `render_deploy`. The
service and the data stack load when a command runs, not when the CLI starts.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from modelyard.cli import JsonFlag, render
from modelyard.cli import render_deploy as view
from modelyard.core.durations import parse_seconds
from modelyard.core.errors import InvalidParameter, InvalidState

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import RenderableType

    from modelyard.deploy.entities import Deployment
    from modelyard.deploy.service import DeploymentService

__all__ = ["app", "parse_duration", "parse_label", "parse_steps", "read_smoke_inputs"]

app = typer.Typer(
    help="Deployments: canary, blue-green, shadow and A/B rollouts behind the gateway; "
    "status, reports, promotion, rollback, feedback, deletion.",
    no_args_is_help=True,
)


def _service() -> DeploymentService:
    from modelyard.sdk.deploy import deployment_service

    return deployment_service()


def _echo(message: str) -> None:
    render.stdout_console().print(message, soft_wrap=True, markup=False)


def _interactive() -> bool:
    """True when a person can answer a confirmation prompt (stdin is a terminal)."""
    return sys.stdin.isatty()


def _report(as_json: bool, dep: Deployment, message: str) -> None:
    if as_json:
        render.print_json(dep.to_dict())
    else:
        _echo(message)


def _show(parts: Sequence[RenderableType]) -> None:
    console = render.stdout_console()
    for part in parts:
        console.print(part)


# -- parsing ----------------------------------------------------------------------------
def parse_duration(text: str, option: str = "--step-duration") -> float:
    """``500ms``, ``30s``, ``2m``, ``1h`` or plain seconds (``90``) -> seconds."""
    try:
        return parse_seconds(text)
    except InvalidParameter:
        raise typer.BadParameter(
            f"{text!r} is not a duration; expected e.g. 500ms, 30s, 2m, 1h or plain seconds",
            param_hint=option,
        ) from None


def parse_steps(text: str) -> list[float]:
    """``5,25,50,100`` (a ``%`` after each is allowed) -> percentages."""
    try:
        return [float(part.strip().rstrip("%")) for part in text.split(",")]
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a list of percentages; expected e.g. 5,25,50,100",
            param_hint="--steps",
        ) from None


def parse_label(text: str) -> Any:
    """A ``--label`` as JSON (``1``, ``true``, ``"yes"``, ``[0, 1]``); text that is
    not JSON is taken as a string label."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _plain(value: Any) -> Any:
    """A cell as a JSON value (the rows are stored): missing -> None, numpy scalars ->
    Python, timestamps -> ISO text; floats keep every digit."""
    import pandas as pd

    if hasattr(value, "tolist") and not pd.api.types.is_scalar(value):  # a list cell
        value = value.tolist()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if pd.api.types.is_scalar(value) and pd.isna(value):  # None, NaN, NaT, pd.NA
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return value.item()
    return value


def read_smoke_inputs(path: Path) -> list[dict[str, Any]]:
    """Rows for a blue-green smoke test: a ``.json`` list of records, ``.jsonl``
    (one record a line), ``.csv`` or ``.parquet``."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            rows = json.loads(path.read_text(encoding="utf-8"))
        elif suffix == ".jsonl":
            lines = path.read_text(encoding="utf-8").splitlines()
            rows = [json.loads(line) for line in lines if line.strip()]
        elif suffix in (".csv", ".parquet"):
            import pandas as pd

            frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
            rows = [
                {str(k): _plain(v) for k, v in record.items()}
                for record in frame.to_dict(orient="records")
            ]
        else:
            raise InvalidParameter(
                f"Smoke inputs {str(path)!r}: expected a .json, .jsonl, .csv or .parquet file"
            )
    except OSError as exc:
        raise InvalidParameter(
            f"Cannot read smoke inputs {str(path)!r}: {exc.strerror or exc}"
        ) from None
    except ValueError as exc:  # JSON, CSV or Parquet that does not parse
        raise InvalidParameter(f"Smoke inputs {str(path)!r} do not parse: {exc}") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InvalidParameter(
            f"Smoke inputs {str(path)!r}: expected a list of records (objects of column: value)"
        )
    if not rows:
        raise InvalidParameter(f"Smoke inputs {str(path)!r} hold no rows")
    return rows


# -- messages ----------------------------------------------------------------------------
def _follow(name: str) -> str:
    return (
        f"The gateway carries it out (modelyard gateway {name}); "
        f"follow it: modelyard deploy status {name} --watch"
    )


# -- reading ------------------------------------------------------------------------------
@app.command("list")
def list_deployments(as_json: JsonFlag = False) -> None:
    """List deployments: strategy, status, variants and whether a gateway serves them."""
    deployments = _service().list()
    if as_json:
        render.print_json({"deployments": [d.to_dict() for d in deployments]})
        return
    console = render.stdout_console()
    if not deployments:
        console.print("No deployments (create one: modelyard deploy create NAME MODEL_URI).")
        return
    console.print(view.deployments_table(deployments))


@app.command("status")
def status(
    name: Annotated[str, typer.Argument(help="The deployment.")],
    watch: Annotated[
        bool,
        typer.Option(
            "--watch", "-w", help="Refresh until Ctrl+C or until the running rollout ends."
        ),
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds between refreshes with --watch.")
    ] = 1.0,
    as_json: JsonFlag = False,
) -> None:
    """Variants with their live figures, the rollout, the last gate values and, for a
    shadow rollout, how the shadow compares."""
    svc = _service()
    dep = svc.get(name)
    if as_json:
        render.print_json(dep.to_dict())
        return
    console = render.stdout_console()
    if not watch:
        console.print(view.status_view(dep))
        return
    from rich.live import Live

    was_running = dep.rollout is not None and dep.rollout.running
    try:
        with Live(view.status_view(dep), console=console, auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                dep = svc.get(name)
                live.update(view.status_view(dep), refresh=True)
                running = dep.rollout is not None and dep.rollout.running
                if was_running and not running:
                    break
                was_running = was_running or running
    except KeyboardInterrupt:
        pass


@app.command("history")
def history(
    name: Annotated[str, typer.Argument(help="The deployment.")],
    as_json: JsonFlag = False,
) -> None:
    """Every change to the deployment, oldest first: who, what, why (gates, weights)."""
    events = _service().history(name)
    if as_json:
        render.print_json({"name": name, "events": events})
        return
    render.stdout_console().print(view.history_table(name, events))


@app.command("report")
def report(
    name: Annotated[str, typer.Argument(help="The deployment.")],
    alpha: Annotated[
        float, typer.Option(min=0.0001, max=0.5, help="Significance level (A/B test).")
    ] = 0.05,
    mde: Annotated[
        float | None,
        typer.Option(
            "--mde",
            help="Minimum detectable effect for the sample size (A/B test): an absolute "
            "difference for rates (default 0.02), outcome units for means.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The A/B test's per-variant outcomes and verdict, or the shadow comparison."""
    svc = _service()
    dep = svc.get(name)
    r = dep.rollout
    if r is not None and r.strategy == "ab":
        result = svc.ab_report(name, alpha=alpha, min_detectable_effect=mde)
        if as_json:
            render.print_json(result.to_dict())
            return
        _show(view.ab_view(result, alpha))
        return
    if r is not None and r.strategy == "shadow":
        if as_json:
            shadow = (dep.live or {}).get("shadow")
            render.print_json(
                {"deployment": name, "strategy": "shadow", "shadow": shadow, "live_at": dep.live_at}
            )
            return
        _show(view.shadow_report(dep))
        return
    what = f"a {r.strategy} rollout" if r is not None else "no rollout"
    raise InvalidState(
        f"Deployment {name!r} has {what}: a report needs an A/B test (modelyard deploy ab) "
        "or a shadow rollout (modelyard deploy shadow)"
    )


# -- creating and starting ------------------------------------------------------------------
VariantOption = Annotated[
    list[str] | None,
    typer.Option(
        "--variant",
        help="A variant NAME=URI:WEIGHT (weight in percent); repeat for each.",
        show_default=False,
    ),
]


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The deployment (the name clients call).")],
    model_uri: Annotated[
        str | None,
        typer.Argument(help="The model to serve at 100%: models:/churn/1, models:/churn@prod."),
    ] = None,
    variant: VariantOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a deployment of one model, or of several weighted variants."""
    dep = _service().create(name, model_uri, variants=variant or [])
    _report(as_json, dep, f"Created deployment {dep.name}: {view.describe_variants(dep)}")


@app.command("canary")
def canary(
    name: Annotated[str, typer.Argument(help="The deployment.")],
    candidate: Annotated[
        str, typer.Option(help="The version to roll out, e.g. models:/churn/2.", show_default=False)
    ],
    steps: Annotated[
        str, typer.Option(help="Traffic percentages, increasing; 100 is added when missing.")
    ] = "5,25,50,100",
    step_duration: Annotated[
        str, typer.Option(help="Least time per step: 500ms, 30s, 2m or plain seconds.")
    ] = "60s",
    min_requests: Annotated[
        int, typer.Option(min=1, help="Candidate requests a step needs before it can pass.")
    ] = 200,
    max_error_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Largest share of 5xx answers.")
    ] = 0.01,
    max_p99_ms: Annotated[
        float | None, typer.Option(min=0, help="Largest candidate p99 latency (ms).")
    ] = None,
    max_latency_ratio: Annotated[
        float | None, typer.Option(min=0, help="Largest candidate p99 / stable p99.")
    ] = None,
    max_prediction_drift: Annotated[
        float | None,
        typer.Option(min=0, help="Largest PSI of candidate predictions vs the stable's."),
    ] = None,
    max_feedback_drop: Annotated[
        float | None,
        typer.Option(
            min=0, help="How far the candidate's mean feedback outcome may fall below stable's."
        ),
    ] = None,
    min_feedback: Annotated[
        int, typer.Option(min=1, help="Feedback outcomes each side needs for that gate.")
    ] = 50,
    promote_alias: Annotated[
        str, typer.Option(help="Registry alias the candidate takes when it reaches 100%.")
    ] = "production",
    no_promote: Annotated[
        bool, typer.Option("--no-promote", help="Do not move any registry alias at the end.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Move traffic to the candidate step by step; the gateway checks the gates on each
    step and rolls back at once when one fails."""
    from modelyard.deploy.entities import Gates

    gates = Gates(
        min_requests=min_requests,
        max_error_rate=max_error_rate,
        max_p99_ms=max_p99_ms,
        max_latency_ratio=max_latency_ratio,
        max_prediction_drift=max_prediction_drift,
        max_feedback_drop=max_feedback_drop,
        min_feedback=min_feedback,
    )
    dep = _service().canary(
        name,
        candidate,
        steps=parse_steps(steps),
        step_seconds=parse_duration(step_duration),
        gates=gates,
        promote_alias=None if no_promote else promote_alias,
    )
    r = dep.rollout
    assert r is not None
    plan = " → ".join(view.fmt_pct(s) for s in r.steps)
    _report(
        as_json,
        dep,
        f"Canary of {dep.variant(r.candidate or '').uri} on {name} started: {plan}, "
        f"each step at least {render.fmt_seconds(r.step_seconds)}. {_follow(name)}",
    )


@app.command("bluegreen")
def bluegreen(
    name: Annotated[str, typer.Argument(help="The deployment.")],
    green: Annotated[
        str,
        typer.Option(help="The version to switch to, e.g. models:/churn/2.", show_default=False),
    ],
    smoke_inputs: Annotated[
        Path | None,
        typer.Option(
            help="Rows green must answer before the switch: .json (a list of records), "
            ".jsonl, .csv or .parquet.",
            show_default=False,
        ),
    ] = None,
    tolerance: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Green must agree with blue on the smoke rows within this (largest absolute "
            "difference; share of differing labels).",
        ),
    ] = None,
    keep_previous: Annotated[
        str, typer.Option(help="How long blue stays loaded after the switch (instant rollback).")
    ] = "5m",
    promote_alias: Annotated[
        str, typer.Option(help="Registry alias green takes at the switch.")
    ] = "production",
    no_promote: Annotated[
        bool, typer.Option("--no-promote", help="Do not move any registry alias.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Load green beside the serving version, smoke-test it, then switch all traffic at once."""
    rows = read_smoke_inputs(smoke_inputs) if smoke_inputs is not None else None
    dep = _service().bluegreen(
        name,
        green,
        smoke_inputs=rows,
        tolerance=tolerance,
        keep_previous_seconds=parse_duration(keep_previous, "--keep-previous"),
        promote_alias=None if no_promote else promote_alias,
    )
    smoke = f" after a smoke test on {len(rows)} rows" if rows else ""
    _report(
        as_json,
        dep,
        f"Blue-green on {name} started: {dep.variant('green').uri} takes all traffic"
        f"{smoke}. {_follow(name)}",
    )


@app.command("shadow")
def shadow(
    name: Annotated[str, typer.Argument(help="The deployment.")],
    candidate: Annotated[
        str, typer.Option(help="The version to mirror requests to.", show_default=False)
    ],
    share: Annotated[
        float, typer.Option(min=0, max=100, help="Percent of requests mirrored.")
    ] = 100.0,
    as_json: JsonFlag = False,
) -> None:
    """Mirror requests to a candidate; users only ever get the stable's answers."""
    dep = _service().shadow(name, candidate, share=share)
    _report(
        as_json,
        dep,
        f"Shadow of {dep.variant('shadow').uri} on {name} started: {share:g}% of requests "
        f"mirrored. Compare: modelyard deploy report {name}",
    )


@app.command("ab")
def ab(
    name: Annotated[str, typer.Argument(help="The deployment.")],
    variant: VariantOption = None,
    key_header: Annotated[
        str | None,
        typer.Option(help="Requests with the same value of this header get the same variant."),
    ] = None,
    key_field: Annotated[
        str | None,
        typer.Option(help="Requests with the same value of this input field get the same variant."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Start an A/B test among two or more variants; outcomes come through feedback."""
    dep = _service().ab(name, variant or [], key_header=key_header, key_field=key_field)
    arms = [v for v in dep.variants if v.role == "variant"]
    _report(
        as_json,
        dep,
        f"A/B test on {name} started: "
        + ", ".join(f"{v.name} {v.uri} {view.fmt_pct(v.weight)}" for v in arms)
        + f". Send feedback, then: modelyard deploy report {name}",
    )


# -- ending ------------------------------------------------------------------------------
ReasonOption = Annotated[
    str | None, typer.Option("--reason", "-r", help="Why (kept in the history).")
]


@app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="The deployment.")],
    variant: Annotated[
        str | None,
        typer.Option(help="The A/B variant to promote (default: the rollout's candidate)."),
    ] = None,
    reason: ReasonOption = None,
    as_json: JsonFlag = False,
) -> None:
    """End the rollout now: the candidate (or the named variant) serves 100%."""
    dep = _service().promote(name, variant, reason)
    if as_json:
        render.print_json(dep.to_dict())
        return
    r, stable = dep.rollout, dep.stable
    assert r is not None and stable is not None
    _echo(f"Promoted on {name}: {stable.uri} (v{stable.version}) serves 100%; reason: {r.reason}")


@app.command("rollback")
def rollback(
    name: Annotated[str, typer.Argument(help="The deployment.")],
    reason: ReasonOption = None,
    as_json: JsonFlag = False,
) -> None:
    """End the rollout now: back to the version that served before it."""
    dep = _service().rollback(name, reason)
    r, stable = dep.rollout, dep.stable
    assert r is not None and stable is not None
    _report(
        as_json,
        dep,
        f"Rolled back {name}: {stable.uri} (v{stable.version}) serves 100%; reason: {r.reason}",
    )


# -- deleting ------------------------------------------------------------------------------
@app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="The deployment.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Delete a deployment; a rollout in progress must be promoted or rolled back
    first. The audit log keeps its events."""
    if not yes:
        if not _interactive():
            raise InvalidParameter(
                f"Not deleting deployment {name} without confirmation: pass --yes"
            )
        typer.confirm(f"Delete deployment {name}?", abort=True)
    _service().delete(name)
    if as_json:
        render.print_json({"deleted": name})
        return
    _echo(f"Deleted deployment {name}")


# -- feedback ------------------------------------------------------------------------------
@app.command("feedback")
def feedback(
    request_id: Annotated[str, typer.Argument(help="The x-request-id of the answered request.")],
    label: Annotated[
        str | None,
        typer.Option(help="The true outcome as JSON (1, true, [0, 1]); other text is a string."),
    ] = None,
    reward: Annotated[float | None, typer.Option(help="A numeric outcome (reward).")] = None,
    predictions: Annotated[
        str | None,
        typer.Option(help="Where the gateway logs predictions (default: <artifacts>/predictions)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Record the outcome of an answered request (joined to its logged prediction)."""
    from modelyard.sdk.deploy import log_feedback

    if label is None and reward is None:
        raise typer.BadParameter("give --label or --reward", param_hint="--label / --reward")
    row = log_feedback(
        request_id,
        label=None if label is None else parse_label(label),
        reward=reward,
        predictions=predictions,
    )
    if as_json:
        render.print_json(row)
        return
    outcome = f"reward {row['reward']:g}" if row["reward"] is not None else ""
    if row["label"] is not None:
        outcome = ", ".join(filter(None, [f"label {json.dumps(row['label'])}", outcome]))
    _echo(
        f"Feedback stored for {request_id}: {row['model']} variant {row['variant']} "
        f"(v{row['version']}), {outcome}"
    )
