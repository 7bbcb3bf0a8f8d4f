"""``modelyard monitor ...``: production monitoring from the command line.

``baseline`` stores a version's reference; ``status`` judges a window of logged
predictions (drift, quality, performance; fires alert rules); ``report`` writes the
HTML report; ``alerts`` lists what fired; ``labels add`` joins ground truth.
``drift`` and ``profile`` work on plain files, without serving. Each command is one
call on `modelyard.monitor` or its service; the views are in `render_monitor`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from modelyard.cli import JsonFlag, render
from modelyard.core.errors import InvalidParameter

__all__ = ["app", "parse_method", "parse_threshold"]

Categorical = Annotated[
    str | None, typer.Option(help="Columns to treat as categories (comma-separated).")
]

app = typer.Typer(
    help="Monitoring: baselines, drift, data quality, performance, alerts and reports.",
    no_args_is_help=True,
)


def parse_method(value: str | None) -> str | dict[str, str] | None:
    """``ks`` (every column it applies to) or ``numerical=ks,categorical=chi2,col=psi``."""
    if not value:
        return None
    if "=" not in value:
        return value.strip()
    out = {}
    for part in value.split(","):
        key, sep, method = part.partition("=")
        if not sep or not key.strip() or not method.strip():
            raise InvalidParameter(
                f"--method takes a name or KIND=NAME pairs (numerical=ks,categorical=chi2), "
                f"got {value!r}"
            )
        out[key.strip()] = method.strip()
    return out


def parse_threshold(value: str | None) -> float | dict[str, float] | None:
    """``0.1`` (every method) or ``wasserstein=0.2,ks=0.01``."""
    if not value:
        return None
    try:
        if "=" not in value:
            return float(value)
        return {k.strip(): float(v) for k, v in (p.split("=", 1) for p in value.split(","))}
    except ValueError:
        raise InvalidParameter(
            f"--threshold takes a number or METHOD=NUMBER pairs, got {value!r}"
        ) from None


def _source(path: str) -> Any:
    """A saved profile (``.json``) or the data file itself."""
    from modelyard.monitor import DatasetProfile

    if path.lower().endswith(".json"):
        if not Path(path).is_file():
            raise InvalidParameter(f"No profile at {path!r}")
        return DatasetProfile.load(path)
    return path


def _names(value: str | None) -> list[str] | None:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


@app.command("drift")
def drift_command(
    reference: Annotated[str, typer.Argument(help="Reference: .parquet, .csv or a saved profile.")],
    current: Annotated[str, typer.Argument(help="Current window: .parquet, .csv or a profile.")],
    method: Annotated[
        str | None,
        typer.Option(help="ks | wasserstein | psi | jensen_shannon | chi2 | z, or KIND=NAME,..."),
    ] = None,
    threshold: Annotated[
        str | None, typer.Option(help="A number for every method, or METHOD=NUMBER,...")
    ] = None,
    drift_share: Annotated[
        float, typer.Option(help="Share of drifted columns at which the dataset drifts.")
    ] = 0.5,
    columns: Annotated[
        str | None, typer.Option(help="Only these columns (comma-separated).")
    ] = None,
    categorical: Categorical = None,
    out: Annotated[Path | None, typer.Option(help="Also write the report as JSON here.")] = None,
    fail_on_drift: Annotated[
        bool, typer.Option(help="Exit with code 1 when the dataset drifts (for CI).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Compare CURRENT with REFERENCE column by column and give the dataset's verdict."""
    from modelyard.cli import render_monitor
    from modelyard.monitor import drift

    report = drift(
        _source(reference),
        _source(current),
        columns=_names(columns),
        categorical=_names(categorical) or (),
        method=parse_method(method),
        threshold=parse_threshold(threshold),
        drift_share=drift_share,
    )
    document = report.to_dict()
    if out is not None:
        out.write_text(_dumps(document))
    if as_json:
        render.print_json(document)
    else:
        render.stdout_console().print(render_monitor.drift_table(report))
    if fail_on_drift and report.dataset_drift:
        raise typer.Exit(1)


def _dumps(document: Any) -> str:
    """A JSON file's text, formatted as ``--json`` prints it."""
    import json

    return json.dumps(render.jsonable(document), indent=2, allow_nan=False, default=str)


@app.command("profile")
def profile_command(
    data: Annotated[str, typer.Argument(help="The reference data: .parquet or .csv.")],
    out: Annotated[Path, typer.Option(help="Where to save the profile (JSON).")],
    categorical: Categorical = None,
    reference: Annotated[
        str | None,
        typer.Option(help="Count DATA on this saved reference profile's bins (a window)."),
    ] = None,
) -> None:
    """Save DATA's profile: later windows are compared with it without the raw data."""
    from modelyard.monitor import DatasetProfile, profile

    if reference:
        prof = DatasetProfile.load(reference).profile(data)
    else:
        prof = profile(data, categorical=_names(categorical) or ())
    prof.save(out)
    kinds: dict[str, int] = {}
    for col in prof.columns.values():
        kinds[col.kind] = kinds.get(col.kind, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    render.stdout_console().print(
        f"Saved the profile of {prof.rows:,} rows ({summary}) to {out}", soft_wrap=True
    )


def _service():
    from modelyard.sdk.monitor import monitor_service

    return monitor_service()


def _seconds(value: str, option: str) -> float:
    from modelyard.core.durations import parse_seconds

    return parse_seconds(value, option)


@app.command("baseline")
def baseline_command(
    model_uri: Annotated[str, typer.Argument(help="The version: models:/churn/3 or @alias.")],
    data: Annotated[str, typer.Option(help="Training or validation data: .parquet or .csv.")],
    target: Annotated[
        str | None, typer.Option(help="The label column (to profile it and compute metrics).")
    ] = None,
    task: Annotated[str, typer.Option(help="classification or regression.")] = "classification",
    categorical: Categorical = None,
    allow_pickle: Annotated[
        bool, typer.Option(help="Allow loading pickled models (runs their code).")
    ] = False,
) -> None:
    """Store MODEL_URI's baseline: profiles of DATA, its predictions and the target."""
    from modelyard.sdk.monitor import set_baseline

    base = set_baseline(
        model_uri,
        data,
        target=target,
        task=task,
        categorical=_names(categorical) or (),
        allow_pickle=allow_pickle,
    )
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in base.metrics.items()) or "none"
    render.stdout_console().print(
        f"Baseline of {base.model} v{base.version}: {base.rows:,} rows, "
        f"{len(base.features)} features; metrics: {metrics}",
        soft_wrap=True,
    )


@app.command("status")
def status_command(
    model: Annotated[str, typer.Argument(help="The served model (or deployment) name.")],
    window: Annotated[str, typer.Option(help="How far back: 30m, 1h, 24h, 7d.")] = "1h",
    version: Annotated[str | None, typer.Option(help="Only this version's answers.")] = None,
    rows: Annotated[
        int | None, typer.Option(min=1, help="Only the newest ROWS predictions of the window.")
    ] = None,
    label_delay: Annotated[
        str, typer.Option(help="How long labels take to arrive (e.g. 1h): younger is pending.")
    ] = "0",
    rules: Annotated[
        Path | None, typer.Option(help="Alert rules (YAML): fire those that hold.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Judge MODEL's last WINDOW of predictions: drift, quality, performance, alerts."""
    from modelyard.cli import render_monitor
    from modelyard.monitor.alerts import load_rules

    check = _service().check(
        model,
        window_seconds=_seconds(window, "--window"),
        version=version,
        rules=load_rules(rules) if rules else (),
        label_delay_seconds=_seconds(label_delay, "--label-delay"),
        rows=rows,
    )
    if as_json:
        render.print_json(check.to_dict())
        return
    console = render.stdout_console()
    for part in render_monitor.check_view(check):
        console.print(part)


@app.command("report")
def report_command(
    model: Annotated[str, typer.Option(help="The served model (or deployment) name.")],
    out: Annotated[Path, typer.Option(help="The HTML file; its JSON twin goes beside it.")],
    window: Annotated[str, typer.Option(help="How far back: 1h, 24h, 7d.")] = "24h",
    version: Annotated[str | None, typer.Option(help="Only this version's answers.")] = None,
    label_delay: Annotated[str, typer.Option(help="How long labels take to arrive.")] = "0",
) -> None:
    """Write MODEL's monitoring report: one self-contained HTML file and its JSON."""
    from modelyard.monitor.report import render_html

    report = _service().report(
        model,
        window_seconds=_seconds(window, "--window"),
        version=version,
        label_delay_seconds=_seconds(label_delay, "--label-delay"),
    )
    out.write_text(render_html(report), encoding="utf-8")
    twin = out.with_suffix(".json")
    twin.write_text(_dumps(report.to_dict()))
    render.stdout_console().print(
        f"Wrote {out} and {twin} ({report.check.rows:,} predictions)", soft_wrap=True
    )


@app.command("alerts")
def alerts_command(
    model: Annotated[str | None, typer.Option(help="Only this model's alerts.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List fired alerts, newest first."""
    from modelyard.cli import render_monitor

    alerts = _service().alerts(model, limit)
    if as_json:
        render.print_json([a.to_dict() for a in alerts])
    else:
        render.stdout_console().print(render_monitor.alerts_table(alerts))


labels_app = typer.Typer(help="Ground truth for logged predictions.", no_args_is_help=True)
app.add_typer(labels_app, name="labels")


@labels_app.command("add")
def labels_add_command(
    model: Annotated[str, typer.Argument(help="The served model (or deployment) name.")],
    file: Annotated[str, typer.Argument(help="A .parquet or .csv with request_id and label.")],
) -> None:
    """Join the labels in FILE to MODEL's logged predictions by request id."""
    from modelyard.sdk.monitor import log_labels

    stored = log_labels(model, file)
    render.stdout_console().print(f"Stored {stored:,} label(s) for {model}", soft_wrap=True)
