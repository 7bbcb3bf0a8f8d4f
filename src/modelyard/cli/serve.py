"""``modelyard serve``: models behind the Open Inference Protocol and plain JSON."""

from __future__ import annotations

from typing import Annotated

import typer

from modelyard.cli import render
from modelyard.cli.listening import base_url, run_listening, warn_if_exposed

__all__ = ["MonitorFlag", "MonitorWindow", "apply_batch_overrides", "monitor_root", "serve"]

# Live monitoring, the same for `serve` and `gateway`.
MonitorFlag = Annotated[
    bool,
    typer.Option(
        help="With the prediction log: drift of the last --monitor-window against each "
        "version's baseline (modelyard monitor baseline) as gauges on /metrics."
    ),
]
MonitorWindow = Annotated[str, typer.Option(help="The live monitoring window (e.g. 15m, 1h).")]


def serve(
    models: Annotated[
        list[str],
        typer.Argument(
            help="[NAME=]MODEL_URI, one or more: models:/churn@production (follows the "
            "alias), models:/churn/3, runs:/<id>/model, a folder or a storage URL.",
            show_default=False,
        ),
    ],
    host: Annotated[
        str, typer.Option(help="Address to bind; loopback unless you mean to expose it.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8080,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (each loads the models).")
    ] = 1,
    name: Annotated[
        str | None, typer.Option(help="Serve a single MODEL_URI under this name.")
    ] = None,
    max_batch_size: Annotated[
        int, typer.Option(min=1, help="Most rows per model call (micro-batching; 1 = off).")
    ] = 64,
    max_latency_ms: Annotated[
        float, typer.Option(min=0, help="Longest an idle model waits for a batch to fill.")
    ] = 2.0,
    max_queue_rows: Annotated[
        int, typer.Option(min=1, help="Rows that may wait per model before requests get 503.")
    ] = 4096,
    batch: Annotated[
        list[str] | None,
        typer.Option(
            help="Per-model batching, repeatable: NAME=MAX_BATCH_SIZE[:MAX_LATENCY_MS] "
            "(e.g. churn=256:5); other models use the two options above.",
            show_default=False,
        ),
    ] = None,
    poll_seconds: Annotated[
        float, typer.Option(min=0, help="How often aliases are checked for a new version.")
    ] = 5.0,
    max_body_mb: Annotated[
        float, typer.Option(min=0.001, help="Larger request bodies get 413.")
    ] = 32.0,
    log_predictions: Annotated[
        str | None,
        typer.Option(help="Record every prediction as Parquet under this folder or URL."),
    ] = None,
    monitor: MonitorFlag = True,
    monitor_window: MonitorWindow = "1h",
    allow_pickle: Annotated[
        bool, typer.Option(help="Allow models stored with pickle (it can run arbitrary code).")
    ] = False,
    log_level: Annotated[
        str, typer.Option(help="uvicorn log level: critical, error, warning, info, debug.")
    ] = "warning",
) -> None:
    """Serve models over HTTP until Ctrl+C: Open Inference Protocol (/v2/...),
    plain JSON (/predict), Prometheus metrics (/metrics)."""
    from modelyard.core.durations import parse_seconds
    from modelyard.server.inference.app import ServingOptions
    from modelyard.server.inference.run import serve_models
    from modelyard.serving.batching import BatchPolicy
    from modelyard.serving.host import parse_model_arg

    if name is not None:
        if len(models) != 1:
            raise typer.BadParameter("--name takes a single MODEL_URI", param_hint="--name")
        models = [f"{name}={models[0]}"]
    policy = BatchPolicy(max_batch_size, max_latency_ms, max_queue_rows)
    specs = [parse_model_arg(m, policy, allow_pickle=allow_pickle) for m in models]
    specs = apply_batch_overrides(specs, batch or [])
    options = ServingOptions(
        specs,
        poll_seconds=poll_seconds,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        prediction_log=log_predictions,
        monitor_root=monitor_root() if monitor and log_predictions else None,
        monitor_window_seconds=parse_seconds(monitor_window, "--monitor-window"),
    )
    warn_if_exposed(
        host,
        port,
        "the model server has no authentication; anyone who can reach port {port} can "
        "call the models.",
    )
    url = base_url(host, port)
    lines = [f"modelyard model server on [bold]{url}[/bold] (Ctrl+C stops it)"]
    for spec in specs:
        follow = "  (follows the alias)" if spec.follows else ""
        lines.append(f"  {spec.name:<14} {spec.uri}{follow}")
        lines.append(f"  {'':<14} POST {url}/v2/models/{spec.name}/infer")
    lines.append(f"  {'health':<14} {url}/v2/health/ready    metrics {url}/metrics")
    render.stderr_console().print("\n".join(lines), soft_wrap=True, highlight=False)
    run_listening(
        lambda: serve_models(options, host, port, workers=workers, log_level=log_level),
        host,
        port,
    )


def monitor_root() -> str:
    """Where baselines live: the current store's artifact root."""
    from modelyard.sdk import fluent

    return fluent._current().settings.resolved_artifacts


def apply_batch_overrides(specs: list, overrides: list[str]) -> list:
    """``NAME=ROWS[:MS]`` gives one served model its own batch size and latency."""
    from dataclasses import replace

    by_name = {s.name: s for s in specs}
    for item in overrides:
        name, _, value = item.partition("=")
        rows, _, ms = value.partition(":")
        if name not in by_name:
            raise typer.BadParameter(
                f"{item!r}: no served model is named {name!r} ({', '.join(by_name)})",
                param_hint="--batch",
            )
        try:
            spec = by_name[name]
            policy = replace(
                spec.policy,
                max_batch_size=int(rows),
                max_latency_ms=float(ms) if ms else spec.policy.max_latency_ms,
            )
        except ValueError as exc:
            raise typer.BadParameter(
                f"{item!r}: expected NAME=MAX_BATCH_SIZE[:MAX_LATENCY_MS] ({exc})",
                param_hint="--batch",
            ) from None
        by_name[name] = replace(spec, policy=policy)
    return [by_name[s.name] for s in specs]
