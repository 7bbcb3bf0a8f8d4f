"""``modelyard monitor ...``: drift between datasets, windows and saved profiles.

``monitor drift REFERENCE CURRENT`` compares two Parquet/CSV files (or saved
profiles) column by column with `modelyard.monitor.drift`; ``monitor profile DATA``
saves the profile that later windows are compared with, without the raw data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from modelyard.cli import render
from modelyard.core.errors import InvalidParameter

__all__ = ["app", "parse_method", "parse_threshold"]

app = typer.Typer(
    help="Monitoring: data and prediction drift between datasets, windows and profiles.",
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
    categorical: Annotated[
        str | None, typer.Option(help="Columns to treat as categories (comma-separated).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the report as JSON here.")] = None,
    fail_on_drift: Annotated[
        bool, typer.Option(help="Exit with code 1 when the dataset drifts (for CI).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Compare CURRENT with REFERENCE column by column and give the dataset's verdict."""
    from modelyard.cli import render_monitor
    from modelyard.monitor import drift

    ref, cur = _source(reference), _source(current)
    if isinstance(ref, str) is not isinstance(cur, str):
        if isinstance(cur, str):  # a reference profile and a raw window: profile the window
            cur = ref.profile(cur)
        else:
            raise InvalidParameter(
                "A window profile compares with its reference profile: give the reference's "
                "saved profile too"
            )
    report = drift(
        ref,
        cur,
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
    import json

    return json.dumps(render.jsonable(document), indent=2, allow_nan=False, default=str)


@app.command("profile")
def profile_command(
    data: Annotated[str, typer.Argument(help="The reference data: .parquet or .csv.")],
    out: Annotated[Path, typer.Option(help="Where to save the profile (JSON).")],
    categorical: Annotated[
        str | None, typer.Option(help="Columns to treat as categories (comma-separated).")
    ] = None,
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
