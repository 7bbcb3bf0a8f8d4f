"""``modelyard gateway``: serve named deployments and carry out their rollouts.

The process loads every variant of each deployment, routes requests among them by
weight, and runs each deployment's controller (canary gates, blue-green switch,
shadow mirroring), which follows what ``modelyard deploy ...`` stores.
"""

from __future__ import annotations

from typing import Annotated

import typer

from modelyard.cli import render
from modelyard.cli.listening import base_url, run_listening, warn_if_exposed
from modelyard.cli.serve import MonitorFlag, MonitorWindow, monitor_root

__all__ = ["gateway"]


def gateway(
    names: Annotated[
        list[str],
        typer.Argument(
            help="The deployments to serve (create them: modelyard deploy create NAME URI).",
            show_default=False,
        ),
    ],
    host: Annotated[
        str, typer.Option(help="Address to bind; loopback unless you mean to expose it.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8080,
    poll_seconds: Annotated[
        float,
        typer.Option(min=0.01, help="How often the stored deployments are checked for changes."),
    ] = 0.5,
    tick_seconds: Annotated[
        float, typer.Option(min=0.01, help="How often the rollout controllers evaluate gates.")
    ] = 0.1,
    max_batch_size: Annotated[
        int, typer.Option(min=1, help="Most rows per model call (micro-batching; 1 = off).")
    ] = 64,
    max_latency_ms: Annotated[
        float, typer.Option(min=0, help="Longest an idle model waits for a batch to fill.")
    ] = 2.0,
    max_queue_rows: Annotated[
        int, typer.Option(min=1, help="Rows that may wait per model before requests get 503.")
    ] = 4096,
    max_body_mb: Annotated[
        float, typer.Option(min=0.001, help="Larger request bodies get 413.")
    ] = 32.0,
    log_predictions: Annotated[
        str | None,
        typer.Option(
            help="Record every prediction as Parquet under this folder or URL (feedback "
            "joins to it). Default: <artifacts>/predictions.",
            show_default=False,
        ),
    ] = None,
    no_log_predictions: Annotated[
        bool,
        typer.Option(
            "--no-log-predictions",
            help="Do not log predictions (feedback then joins only to recent requests).",
        ),
    ] = False,
    monitor: MonitorFlag = True,
    monitor_window: MonitorWindow = "1h",
    allow_pickle: Annotated[
        bool, typer.Option(help="Allow models stored with pickle (it can run arbitrary code).")
    ] = False,
    log_level: Annotated[
        str, typer.Option(help="uvicorn log level: critical, error, warning, info, debug.")
    ] = "warning",
) -> None:
    """Serve deployments over HTTP until Ctrl+C and carry out their rollouts: Open
    Inference Protocol (/v2/models/NAME/infer), plain JSON (/predict/NAME), feedback
    (/feedback), Prometheus metrics (/metrics)."""
    from modelyard.core.durations import parse_seconds
    from modelyard.sdk.deploy import predictions_root
    from modelyard.server.inference.gateway_app import GatewayOptions
    from modelyard.server.inference.run import serve_gateway
    from modelyard.serving.batching import BatchPolicy

    if no_log_predictions and log_predictions is not None:
        raise typer.BadParameter(
            "give --log-predictions URL or --no-log-predictions, not both",
            param_hint="--no-log-predictions",
        )
    unique = list(dict.fromkeys(names))
    prediction_log = None if no_log_predictions else (log_predictions or predictions_root())
    options = GatewayOptions(
        deployments=unique,
        poll_seconds=poll_seconds,
        tick_seconds=tick_seconds,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        prediction_log=prediction_log,
        monitor_root=monitor_root() if monitor and prediction_log else None,
        monitor_window_seconds=parse_seconds(monitor_window, "--monitor-window"),
        policy=BatchPolicy(max_batch_size, max_latency_ms, max_queue_rows),
        allow_pickle=allow_pickle,
    )
    warn_if_exposed(
        host,
        port,
        "the gateway has no authentication; anyone who can reach port {port} can call "
        "the deployments and send feedback.",
    )
    url = base_url(host, port)
    lines = [f"modelyard gateway on [bold]{url}[/bold] (Ctrl+C stops it)"]
    for name in unique:
        lines.append(f"  {name:<14} POST {url}/predict/{name}")
        lines.append(f"  {'':<14} POST {url}/v2/models/{name}/infer")
    lines.append(f"  {'feedback':<14} POST {url}/feedback")
    lines.append(f"  {'health':<14} {url}/v2/health/ready    metrics {url}/metrics")
    if prediction_log:
        lines.append(f"  {'predictions':<14} {prediction_log}")
    render.stderr_console().print("\n".join(lines), soft_wrap=True, highlight=False)
    run_listening(lambda: serve_gateway(options, host, port, log_level=log_level), host, port)
