"""The command line both drift runners share (stdlib only: the Evidently runner runs
in its own virtual environment, without modelyard)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("reference", help="reference Parquet file (or saved profile)")
    p.add_argument("current", help="current Parquet file (or saved profile)")
    p.add_argument("--categorical", default="", help="comma-separated categorical columns")
    p.add_argument("--num-method", help="force this test on numerical columns (ks, ...)")
    p.add_argument("--cat-method", help="force this test on categorical columns")
    p.add_argument("--out", type=Path, help="write the JSON here")
    p.add_argument("--json", action="store_true", help="print the JSON as the last line")
    return p


def emit(result: dict[str, Any], args: argparse.Namespace) -> int:
    """Write the result where the arguments say; the exit code."""
    text = json.dumps(result)
    if args.out:
        args.out.write_text(text)
    if args.json:
        print(text, flush=True)
    return 0
