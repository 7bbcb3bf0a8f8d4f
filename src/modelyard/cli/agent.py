"""``modelyard agent``: fire pipelines on their triggers; ``modelyard pipelines runs``:
what ran and why.

``agent --config agent.yaml`` runs until SIGTERM or Ctrl+C (the first stops new
runs and waits for the running ones, the second interrupts them); ``--once`` makes
one pass, waits for the runs it started, prints them and exits (for cron or CI).
Each is one call on `modelyard.pipelines.agent`; the views are in `render_agent`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from modelyard.cli import JsonFlag, Services, render

__all__ = ["agent", "pipelines_runs"]


def _log_to_stderr() -> None:
    logger = logging.getLogger("modelyard.agent")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO)


def agent(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The agent's YAML: pipelines and triggers.")
    ],
    poll: Annotated[str, typer.Option(help="Pause between passes: 10s, 1m.")] = "10s",
    once: Annotated[
        bool,
        typer.Option(
            "--once", help="One pass: fire what is due, wait for those runs, print them, exit."
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Fire pipelines on a cron schedule, new dataset versions and monitoring alerts.

    A trigger's first pass arms it: what exists then (versions, alerts, past ticks)
    is history, and what comes after fires, each event once."""
    from modelyard.core.config import load_settings
    from modelyard.core.durations import parse_seconds
    from modelyard.pipelines.agent import open_agent
    from modelyard.pipelines.agent_config import AgentConfig

    sys.path.insert(0, str(Path.cwd()))  # the project's pipelines, like `python -m`
    poll_seconds = parse_seconds(poll, "--poll")
    spec = AgentConfig.load(config)
    _log_to_stderr()
    runner = open_agent(spec, load_settings(), poll_seconds=poll_seconds)
    if not once:
        triggers = sum(len(p.triggers) for p in spec.pipelines)
        render.stderr_console().print(
            f"modelyard agent {runner.id}: {len(spec.pipelines)} pipeline(s), {triggers} "
            f"trigger(s), a pass every {render.fmt_seconds(poll_seconds)} (Ctrl+C stops it)",
            soft_wrap=True,
        )
        runner.run_forever()
        return
    try:
        report = runner.tick()
        runner.wait()
    except KeyboardInterrupt:
        runner.interrupt()
        runner.close()
        raise typer.Exit(130) from None
    runner.close()
    touched = [*report.recovered, *report.launched]
    records = [r for r in (runner.store.get(e.event_id) for e in touched) if r is not None]
    if as_json:
        render.print_json(
            {
                "agent": runner.id,
                "armed": [{"pipeline": p, "trigger": t} for p, t in report.armed],
                "recorded": [{"pipeline": p, "key": k} for p, k in report.recorded],
                "events": [r.__dict__ for r in records],
                "errors": report.errors,
            }
        )
        return
    from modelyard.cli import render_agent

    render.stdout_console().print(
        render_agent.events_table(records, f"Agent pass: {len(report.recorded)} new event(s)")
    )
    if report.armed:
        names = ", ".join(f"{p}: {t}" for p, t in report.armed)
        render.stderr_console().print(
            f"Armed {names}; from now on, new events fire.", soft_wrap=True
        )
    for error in report.errors:
        render.print_warning(error)


def pipelines_runs(
    ctx: typer.Context,
    pipeline: Annotated[str | None, typer.Option(help="Only this pipeline's runs.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List pipeline runs, newest first, with why each ran (trigger and event)."""
    from modelyard.pipelines.agent_history import pipeline_runs
    from modelyard.pipelines.agent_store import SqlAgentStore
    from modelyard.pipelines.agent_worker import engine_of

    tracking = ctx.ensure_object(Services).tracking
    rows = pipeline_runs(SqlAgentStore(engine_of(tracking)), tracking, pipeline, limit)
    if as_json:
        render.print_json([r.to_dict() for r in rows])
        return
    from modelyard.cli import render_agent

    render.stdout_console().print(render_agent.runs_table(rows))
