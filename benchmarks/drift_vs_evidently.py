"""Data drift, modelyard vs Evidently's DataDriftPreset, on the same Parquet files.

    .venv/bin/python benchmarks/drift_vs_evidently.py                  # cases A, B and scale
    .venv/bin/python benchmarks/drift_vs_evidently.py --quick          # smaller sizes (~2 min)
    .venv/bin/python benchmarks/drift_vs_evidently.py --cases A --methods ks --skip-scale
    .venv/bin/python benchmarks/drift_vs_evidently.py --no-evidently   # modelyard alone

The data is seeded numpy, written with pyarrow into a temporary folder (``--data-dir``
keeps it for the next run):

- case A: 100,000 rows × (50 numerical + 10 categorical); 10 columns shifted;
- case B: 1,000,000 rows × (16 numerical + 4 categorical); 4 columns shifted;
- scale: 1,000,000 rows × 1,000 float32 columns (every 20th: mean + 0.25), modelyard only
  (Evidently would take hours): drift straight from the Parquet files, then the same
  from saved profiles of both sides (no raw data).

Numerical columns cycle through normal, lognormal, uniform, normal with 5% NaN and
Poisson (discrete) values; categorical ones hold 3–20 string levels with Zipf
frequencies (every 4th with 2% nulls). Reference and current are independent draws;
a shifted column's current moves its mean by 0.5, 0.1 or 0.03 standard deviations,
widens its spread by 25%, moves 10% or 2% of the frequency from the top level to the
last, or gets 3% of a new level.

Each report runs in a fresh subprocess per tool, so each side's peak memory is its
own: ``_evidently_runner.py`` under ``.venv-evidently`` (Evidently 0.7 needs pandas
< 3; ``make bench-evidently-venv``) and ``_modelyard_drift_runner.py`` under this
interpreter. Both are given the same categorical columns and time the same work:
reading the two Parquet files and computing every column's test, imports excluded.
Three method sets: each tool's own default choice; KS + chi-square forced on both;
Wasserstein + Jensen–Shannon forced on both (each tool's default thresholds). The
table per case: seconds, peak RSS, Evidently ÷ modelyard, per-column verdict
agreement (overall, numerical, categorical), and how many of the shifted (and of the
unshifted) columns each flagged; the disagreeing columns are listed with both scores.
The issue's goals (≥ 30× faster, the same verdict on ≥ 95% of the columns, less peak
memory) are judged on the full sizes, for the rows where every column ran the same
test on both sides (by name: our chi2 is a contingency test, Evidently's chisquare a
goodness of fit; see the README). Results also go to
``benchmarks/results/drift_vs_evidently.json``; exits 1 when a run failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _harness as h  # noqa: E402

REPO = HERE.parent
RESULTS = HERE / "results" / "drift_vs_evidently.json"
EVIDENTLY_RUNNER = HERE / "_evidently_runner.py"
OURS_RUNNER = HERE / "_modelyard_drift_runner.py"
SEED = 20_240_607
SCALE_ROW_GROUP = 100_000
SCALE_SHIFT_EVERY, SCALE_SHIFT = 20, 0.25  # every 20th column: mean + 0.25 (sd 1)

# The goals: ≥ 30× faster, the same verdict on ≥ 95% of the columns when both
# use the same test, less peak memory; the scale case < 2 min within 8 GB, and drift
# from saved profiles < 1 s.
GOAL_SPEEDUP, GOAL_AGREEMENT = 30.0, 0.95
GOAL_SCALE_S, GOAL_SCALE_MB, GOAL_PROFILES_S = 120.0, 8192.0, 1.0
# The reference for Evidently 0.7 on this kind of machine (its default preset).
EVIDENTLY_REFERENCE_S = {"A": 15.0, "B": 68.0}


@dataclass(frozen=True)
class Case:
    name: str
    rows: int
    numerical: int
    categorical: int
    shifted_numerical: int
    shifted_categorical: int


CASES = {
    "A": Case("A", 100_000, 50, 10, 7, 3),
    "B": Case("B", 1_000_000, 16, 4, 3, 1),
}
QUICK_ROWS = {"A": 10_000, "B": 100_000}
SCALE = (1_000_000, 1_000)  # rows, float32 columns
QUICK_SCALE = (100_000, 100)

# Method sets: label -> (modelyard's names, Evidently's names), numerical then
# categorical; None: the tool's own choice per column.
METHODS: dict[str, tuple[tuple[str | None, str | None], tuple[str | None, str | None]]] = {
    "default": ((None, None), (None, None)),
    "ks": (("ks", "chi2"), ("ks", "chisquare")),
    "wasserstein": (("wasserstein", "jensen_shannon"), ("wasserstein", "jensenshannon")),
}
# The same test under each tool's name (modelyard -> Evidently). Not chi-square: ours
# is a two-sample contingency test, Evidently's a goodness-of-fit test against the
# reference's frequencies taken as exact (see modelyard.monitor.drift), so their
# verdicts differ by design on large samples; those columns are shown, not judged.
SAME_TEST = {
    "ks": "ks",
    "wasserstein": "wasserstein",
    "jensen_shannon": "jensenshannon",
    "psi": "psi",
    "z": "z",
}
METHOD_LABELS = {
    "default": "each tool's default",
    "ks": "KS + chi-square",
    "wasserstein": "Wasserstein + JS",
}

# The shifts, in turn over a case's shifted columns of each kind.
NUM_SHIFTS = (("mean", 0.5), ("mean", 0.1), ("scale", 1.25), ("mean", 0.03))
CAT_SHIFTS = (("move", 0.10), ("new", 0.03), ("move", 0.02))
NUM_FAMILIES = ("normal", "lognormal", "uniform", "normal+nan", "poisson")


# -- the data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "numerical" or "categorical"
    family: str  # a NUM_FAMILIES name, or "zipfN" (N levels)
    shift: tuple[str, float] | None  # None: the same distribution on both sides

    def describe(self) -> str:
        if self.shift is None:
            return "unshifted"
        how, amount = self.shift
        return {
            "mean": f"mean +{amount:g} sd",
            "scale": f"spread ×{amount:g}",
            "move": f"{amount:.0%} from the top level to the last",
            "new": f"{amount:.0%} in a new level",
        }[how]


def _spread(count: int, chosen: int) -> set[int]:
    """``chosen`` indices spread evenly over ``range(count)``."""
    return {round(k * count / chosen) for k in range(chosen)} if chosen else set()


def columns_of(case: Case) -> list[Column]:
    shifted_num = sorted(_spread(case.numerical, case.shifted_numerical))
    shifted_cat = sorted(_spread(case.categorical, case.shifted_categorical))
    cols = []
    for i in range(case.numerical):
        shift = NUM_SHIFTS[shifted_num.index(i) % len(NUM_SHIFTS)] if i in shifted_num else None
        cols.append(Column(f"n{i:02d}", "numerical", NUM_FAMILIES[i % len(NUM_FAMILIES)], shift))
    for j in range(case.categorical):
        levels = 3 + round(j * 17 / max(1, case.categorical - 1))
        shift = CAT_SHIFTS[shifted_cat.index(j) % len(CAT_SHIFTS)] if j in shifted_cat else None
        cols.append(Column(f"c{j}", "categorical", f"zipf{levels}", shift))
    return cols


def _numerical(col: Column, index: int, rng: Any, rows: int, current: bool) -> Any:
    import numpy as np

    family = col.family
    if family in ("normal", "normal+nan"):
        x = rng.normal(10.0 + index, 1.0 + index % 3, rows)
    elif family == "lognormal":
        x = rng.lognormal(0.0, 0.5, rows)
    elif family == "uniform":
        x = rng.uniform(0.0, 100.0, rows)
    else:
        x = rng.poisson(4.0, rows).astype("float64")
    if current and col.shift is not None:
        how, amount = col.shift
        mean, sd = float(x.mean()), float(x.std())
        x = x + amount * sd if how == "mean" else mean + (x - mean) * amount
    if family == "normal+nan":
        x[rng.random(rows) < 0.05] = np.nan
    return x


def _categorical(col: Column, index: int, rng: Any, rows: int, current: bool) -> Any:
    import numpy as np
    import pyarrow as pa

    n = int(col.family.removeprefix("zipf"))
    levels = [f"L{k:02d}" for k in range(n)]
    p = 1.0 / np.arange(1, n + 1)
    p /= p.sum()
    if current and col.shift is not None:
        how, amount = col.shift
        if how == "move":
            moved = min(amount, p[0] / 2)
            p[0] -= moved
            p[-1] += moved
        else:
            levels.append("NEW")
            p = np.append(p * (1 - amount), amount)
    values = np.array(levels, dtype=object)[rng.choice(len(levels), size=rows, p=p)]
    mask = rng.random(rows) < 0.02 if index % 4 == 3 else None
    return pa.array(values, type=pa.string(), mask=mask)


def write_case(folder: Path, case: Case) -> dict[str, Path]:
    """``reference.parquet`` and ``current.parquet`` of ``case``; reused when ``folder``
    already holds them for the same case (its ``case.json``)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = {side: folder / f"{side}.parquet" for side in ("reference", "current")}
    stamp = folder / "case.json"
    spec = json.dumps({"case": asdict(case), "seed": SEED})
    if stamp.exists() and stamp.read_text() == spec and all(p.exists() for p in paths.values()):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    for side_no, (side, path) in enumerate(paths.items()):
        arrays = {}
        for index, col in enumerate(columns_of(case)):
            # one stream per (case, column, side): the data does not depend on the order
            rng = np.random.default_rng([SEED, ord(case.name), index, side_no])
            make = _numerical if col.kind == "numerical" else _categorical
            arrays[col.name] = make(col, index, rng, case.rows, side == "current")
        pq.write_table(pa.table(arrays), path)
    stamp.write_text(spec)
    return paths


def scale_shifted(columns: int) -> set[str]:
    return {f"f{i:04d}" for i in range(0, columns, SCALE_SHIFT_EVERY)}


def write_scale(folder: Path, rows: int, columns: int) -> dict[str, Path]:
    """Two Parquet files of ``rows`` × ``columns`` float32 standard normals, written a
    row group at a time (the whole table would be 4 GB per side in memory)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = {side: folder / f"{side}.parquet" for side in ("reference", "current")}
    stamp = folder / "scale.json"
    spec = json.dumps({"rows": rows, "columns": columns, "seed": SEED, "dictionary": False})
    if stamp.exists() and stamp.read_text() == spec and all(p.exists() for p in paths.values()):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"f{i:04d}" for i in range(columns)]
    shifted = [i for i, n in enumerate(names) if n in scale_shifted(columns)]
    schema = pa.schema([(n, pa.float32()) for n in names])
    for side_no, (side, path) in enumerate(paths.items()):
        rng = np.random.default_rng([SEED, side_no])
        # no dictionary pages: useless for continuous floats, and 1.5× the file size
        with pq.ParquetWriter(path, schema, use_dictionary=False) as writer:
            for start in range(0, rows, SCALE_ROW_GROUP):
                n = min(SCALE_ROW_GROUP, rows - start)
                # column-major: each column's values contiguous, no copy into Arrow
                block = rng.standard_normal((columns, n), dtype=np.float32)
                if side == "current":
                    block[shifted] += SCALE_SHIFT
                arrays = [pa.array(block[i]) for i in range(columns)]
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema), n)
                del arrays, block
    stamp.write_text(spec)
    return paths


# -- the runs ----------------------------------------------------------------------------------


def _runner_args(
    cur: Path, categorical: list[str], methods: tuple[str | None, str | None]
) -> list[str]:
    """The runners' arguments after the reference (the same for both tools)."""
    args = [str(cur), "--categorical", ",".join(categorical)]
    num, cat = methods
    args += ["--num-method", num] if num else []
    args += ["--cat-method", cat] if cat else []
    return args


def run_side(
    tool: str,
    python: str,
    paths: dict[str, Path],
    categorical: list[str],
    methods: tuple[str | None, str | None],
    cwd: Path,
    extra: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One report in a fresh process (3 and the median when it takes under 10 s)."""
    runner = EVIDENTLY_RUNNER if tool == "evidently" else OURS_RUNNER
    args = [*_runner_args(paths["current"], categorical, methods), *extra]
    env = {"EVIDENTLY_DISABLE_TELEMETRY": "1"}

    def once() -> h.WorkloadResult:
        # the harness runs `python RUNNER FIRST --json ARGS`: FIRST is the reference
        return h.run_workload(python, runner, str(paths["reference"]), env=env, cwd=cwd, args=args)

    best, runs = h.median_of(once, "seconds")
    children = best.data.get("children_peak_rss_mb") or 0.0
    return best.data | {
        "wall_s": best.wall_s,
        # the process's own peak (wait4), plus its largest child's if it had any
        "peak_rss_mb": best.peak_rss_mb + children,
        "all_seconds": [r.data["seconds"] for r in runs],
    }


def compare(theirs: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """Per-column verdict agreement and the columns where the verdicts differ."""
    a, b = theirs["columns"], ours["columns"]
    common = sorted(set(a) & set(b))
    differ = [c for c in common if a[c]["drifted"] != b[c]["drifted"]]
    by_kind = {}
    for kind in ("numerical", "categorical"):
        cols = [c for c in common if b[c].get("kind") == kind]
        if cols:
            by_kind[kind] = 1 - sum(c in differ for c in cols) / len(cols)
    # the goal's condition: agreement where both sides ran the same test
    same = [c for c in common if SAME_TEST.get(b[c]["method"]) == a[c]["method"]]
    return {
        "columns": len(common),
        "agree_by_kind": by_kind,
        "same_tests": bool(same),
        "same_test_columns": len(same),
        "agree_same": 1 - sum(c in differ for c in same) / len(same) if same else None,
        "agree": 1 - len(differ) / len(common) if common else None,
        "differ": [{"column": c, "evidently": a[c], "modelyard": b[c]} for c in differ],
        "only_evidently": sorted(set(a) - set(b)),
        "only_modelyard": sorted(set(b) - set(a)),
    }


def flagged(result: dict[str, Any] | None, shifted: set[str]) -> tuple[int, int] | None:
    """(shifted columns flagged, unshifted columns flagged)."""
    if result is None:
        return None
    drifted = {name for name, c in result["columns"].items() if c["drifted"]}
    return len(drifted & shifted), len(drifted - shifted)


def methods_used(result: dict[str, Any] | None) -> str:
    if result is None:
        return "—"
    counts = Counter(c["method"] for c in result["columns"].values())
    return ", ".join(f"{m} ×{n}" for m, n in counts.most_common())


@dataclass
class Bench:
    """What one run measured, filled case by case."""

    ours_python: str
    theirs_python: str | None
    quick: bool
    errors: list[str]
    cases: dict[str, dict[str, Any]]
    scale: dict[str, Any] | None = None

    def side(self, label: str, run: Any) -> dict[str, Any] | None:
        try:
            return run()
        except h.BenchError as exc:
            self.errors.append(f"{label}: {exc}")
            print(f"error: {label}: {exc}", file=sys.stderr)
            return None

    def run_case(self, case: Case, folder: Path, methods: list[str], step: Any) -> None:
        step(f"case {case.name}: writing {case.rows:,} rows × {case.numerical + case.categorical}")
        paths = write_case(folder / f"case-{case.name}", case)
        cols = columns_of(case)
        categorical = [c.name for c in cols if c.kind == "categorical"]
        out: dict[str, Any] = {
            "case": asdict(case),
            "columns": {c.name: asdict(c) | {"shift": c.describe()} for c in cols},
            "methods": {},
        }
        for label in methods:
            ours_names, theirs_names = METHODS[label]
            row: dict[str, Any] = {}
            if self.theirs_python:
                step(f"case {case.name}, {METHOD_LABELS[label]}: Evidently")
                row["evidently"] = self.side(
                    f"case {case.name} {label} Evidently",
                    lambda n=theirs_names: run_side(
                        "evidently", self.theirs_python, paths, categorical, n, folder
                    ),
                )
            step(f"case {case.name}, {METHOD_LABELS[label]}: modelyard")
            row["modelyard"] = self.side(
                f"case {case.name} {label} modelyard",
                lambda n=ours_names: run_side(
                    "modelyard", self.ours_python, paths, categorical, n, folder
                ),
            )
            if row.get("evidently") and row["modelyard"]:
                row["compare"] = compare(row["evidently"], row["modelyard"])
            out["methods"][label] = row
        self.cases[case.name] = out

    def versions(self) -> dict[str, str]:
        """Each tool's version, as its runner reported it ("(not run)" otherwise)."""
        runs = [r for c in self.cases.values() for r in c["methods"].values()]
        runs += [{"modelyard": (self.scale or {}).get("raw")}]
        return {
            tool: next((r[tool]["version"] for r in runs if r.get(tool)), "(not run)")
            for tool in ("evidently", "modelyard")
        }

    def run_scale(self, folder: Path, rows: int, columns: int, step: Any) -> None:
        step(f"scale: writing {rows:,} rows × {columns:,} float32 columns, twice")
        paths = write_scale(folder / "scale", rows, columns)
        out: dict[str, Any] = {"rows": rows, "columns": columns}
        step("scale: modelyard drift from the Parquet files")
        out["raw"] = self.side(
            "scale modelyard",
            lambda: run_side("modelyard", self.ours_python, paths, [], (None, None), folder),
        )
        profiles = folder / "scale-profiles"
        step("scale: profiling both sides and saving the profiles")
        out["profile"] = self.side(
            "scale profiles",
            lambda: run_side(
                "modelyard", self.ours_python, paths, [], (None, None), folder,
                ("--save-profiles", str(profiles)),
            ),
        )  # fmt: skip
        if out["profile"]:
            step("scale: drift from the saved profiles")
            saved = {s: profiles / f"{s}.json" for s in ("reference", "current")}
            out["from_profiles"] = self.side(
                "scale from profiles",
                lambda: run_side(
                    "modelyard", self.ours_python, saved, [], (None, None), folder,
                    ("--from-profiles",),
                ),
            )  # fmt: skip
        self.scale = out


# -- the tables ---------------------------------------------------------------------------------


def _mb(r: dict[str, Any] | None) -> str:
    return "—" if r is None else f"{r['peak_rss_mb']:,.0f} MB"


def _secs(r: dict[str, Any] | None) -> str:
    return "—" if r is None else h.fmt_seconds(r["seconds"])


def _flags(r: dict[str, Any] | None, shifted: set[str]) -> str:
    f = flagged(r, shifted)
    return "—" if f is None else f"{f[0]}/{len(shifted)} + {f[1]}"


def case_table(bench: Bench, name: str) -> None:
    data = bench.cases[name]
    case = Case(**data["case"])
    shifted = {c for c, spec in data["columns"].items() if spec["shift"] != "unshifted"}
    rows = []
    for label, row in data["methods"].items():
        theirs, ours = row.get("evidently"), row.get("modelyard")
        speed = theirs["seconds"] / ours["seconds"] if theirs and ours else None
        agree = row.get("compare", {}).get("agree_same")
        judged = row.get("compare", {}).get("same_tests", False) and not bench.quick
        met = None
        if judged and speed is not None and agree is not None:
            less = ours["peak_rss_mb"] < theirs["peak_rss_mb"]
            met = speed >= GOAL_SPEEDUP and agree >= GOAL_AGREEMENT and less
        goal = f"≥{GOAL_SPEEDUP:g}×, ≥{GOAL_AGREEMENT:.0%}, less RSS" if judged else "info"
        rows.append([
            METHOD_LABELS[label], _secs(theirs), _secs(ours), h.fmt_ratio(speed),
            _mb(theirs), _mb(ours), _agreement(row.get("compare")),
            _flags(theirs, shifted), _flags(ours, shifted), goal,
            "—" if met is None else ("yes" if met else "NO"),
        ])  # fmt: skip
    n = case.numerical + case.categorical
    h.render_table(
        f"case {name}: drift of {case.rows:,} rows × {n} columns ({case.numerical} numerical + "
        f"{case.categorical} categorical, {len(shifted)} shifted), Evidently vs modelyard",
        [
            "methods", "Evidently s", "modelyard s", "Ev ÷ ours", "Evidently RSS",
            "modelyard RSS", "same verdict, same test (all num / cat)", "flags Ev",
            "flags ours", "goal",
            "met?",
        ],
        rows,
    )  # fmt: skip


def _agreement(compared: dict[str, Any] | None) -> str:
    """Where both ran the same test (how many columns), then numerical / categorical
    over all columns: "100% of 50 (100% / 60%)"."""
    if not compared or compared["agree"] is None:
        return "—"
    kinds = " / ".join(f"{v:.0%}" for v in compared["agree_by_kind"].values())
    same = compared.get("agree_same")
    head = "no same test" if same is None else f"{same:.0%} of {compared['same_test_columns']}"
    return f"{head} ({kinds})" if kinds else head


def case_notes(bench: Bench, name: str) -> list[str]:
    data = bench.cases[name]
    notes = []
    for label, row in data["methods"].items():
        used = (
            f"case {name}, {METHOD_LABELS[label]}: Evidently used "
            f"{methods_used(row.get('evidently'))}; modelyard used "
            f"{methods_used(row.get('modelyard'))}"
        )
        notes.append(used)
        ours, reference_s = row.get("modelyard"), EVIDENTLY_REFERENCE_S.get(name)
        if label == "default" and ours and reference_s and not bench.quick:
            notes.append(
                f"  against the issue's {reference_s:g} s for Evidently's default preset on "
                f"case {name}: {h.fmt_ratio(reference_s / ours['seconds'])}"
            )
        for d in row.get("compare", {}).get("differ", [])[:20]:
            col = d["column"]
            shift = data["columns"][col]["shift"]
            e, o = d["evidently"], d["modelyard"]
            notes.append(
                f"  {col} ({data['columns'][col]['family']}, {shift}): Evidently {e['method']} "
                f"{_score(e)} → {_verdict(e)}; modelyard {o['method']} {_score(o)} → "
                f"{_verdict(o)}"
            )
    return notes


def _score(c: dict[str, Any]) -> str:
    s, t = c.get("score"), c.get("threshold")
    said = "—" if s is None else f"{s:.4g}"
    return said if t is None else f"{said} (threshold {t:g})"


def _verdict(c: dict[str, Any]) -> str:
    return "drift" if c["drifted"] else "no drift"


def scale_table(bench: Bench) -> None:
    s = bench.scale
    assert s is not None
    shifted = scale_shifted(s["columns"])
    judged = not bench.quick
    raw, prof, saved = s.get("raw"), s.get("profile"), s.get("from_profiles")

    def met(ok: bool | None) -> str:
        return "—" if ok is None or not judged else ("yes" if ok else "NO")

    rows = [
        [
            "drift from the Parquet files", _secs(raw), _mb(raw), _flags(raw, shifted),
            f"< {GOAL_SCALE_S:g} s, < {GOAL_SCALE_MB / 1024:g} GB" if judged else "info",
            met(raw and raw["seconds"] < GOAL_SCALE_S and raw["peak_rss_mb"] < GOAL_SCALE_MB),
        ],
        ["profile both sides, save", _secs(prof), _mb(prof), "", "info", "—"],
        [
            "drift from saved profiles", _secs(saved), _mb(saved), _flags(saved, shifted),
            f"< {GOAL_PROFILES_S:g} s" if judged else "info",
            met(saved and saved["seconds"] < GOAL_PROFILES_S),
        ],
    ]  # fmt: skip
    h.render_table(
        f"scale: modelyard drift of {s['rows']:,} rows × {s['columns']:,} float32 columns "
        f"({len(shifted)} shifted by {SCALE_SHIFT:g} sd)",
        ["what", "seconds", "peak RSS", "flags", "goal", "met?"],
        rows,
    )


def scale_note(s: dict[str, Any]) -> str:
    """What the profile rows are made of: sizes and the load / compute split."""
    prof, saved = s.get("profile"), s.get("from_profiles")
    said = [f"scale: {SCALE_ROW_GROUP:,}-row groups, no dictionary encoding"]
    if prof:
        sizes = prof.get("profile_bytes", {})
        said.append(
            f"profiles: reference {h.fmt_seconds(prof['reference_seconds'])}, current "
            f"{h.fmt_seconds(prof['current_seconds'])} (counted on the reference's bins), "
            f"saved in {h.fmt_seconds(prof['save_seconds'])}, "
            + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sorted(sizes.items()))
        )
    if saved and saved.get("load_seconds") is not None:
        said.append(
            f"from profiles: loading both files {h.fmt_seconds(saved['load_seconds'])}, "
            f"drift {h.fmt_seconds(saved['compute_seconds'])}"
        )
    return "; ".join(said)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--cases", default="A,B", help="comma-separated: A, B (default both)")
    parser.add_argument(
        "--methods",
        default=",".join(METHODS),
        help="comma-separated method sets: "
        + "; ".join(f"{k} = {v}" for k, v in METHOD_LABELS.items()),
    )
    parser.add_argument("--skip-scale", action="store_true", help="no 1,000,000 × 1,000 case")
    parser.add_argument("--scale-rows", type=int, help=f"scale case rows ({SCALE[0]:,})")
    parser.add_argument("--scale-columns", type=int, help=f"scale case columns ({SCALE[1]:,})")
    parser.add_argument(
        "--evidently-python",
        default=str(REPO / ".venv-evidently" / "bin" / "python"),
        help="the interpreter with evidently 0.7 (default: .venv-evidently)",
    )
    parser.add_argument("--no-evidently", action="store_true", help="run modelyard only")
    parser.add_argument("--data-dir", type=Path, help="keep the generated data here")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args(argv)
    for option, allowed in (("cases", tuple(CASES)), ("methods", tuple(METHODS))):
        chosen = [x for x in getattr(args, option).split(",") if x]
        if set(chosen) - set(allowed):
            parser.error(f"--{option}: a comma-separated subset of {','.join(allowed)}")
        setattr(args, option, [x for x in allowed if x in chosen])
    return args


def evidently_python(args: argparse.Namespace) -> str | None:
    """The Evidently interpreter, or None (said on stderr) to run ours alone."""
    if args.no_evidently:
        return None
    if not Path(args.evidently_python).exists():
        print(
            f"no Evidently interpreter at {args.evidently_python} (make bench-evidently-venv); "
            "modelyard only",
            file=sys.stderr,
        )
        return None
    return args.evidently_python


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cases = [replace(CASES[n], rows=QUICK_ROWS[n]) if args.quick else CASES[n] for n in args.cases]
    default_scale = QUICK_SCALE if args.quick else SCALE
    scale = (args.scale_rows or default_scale[0], args.scale_columns or default_scale[1])
    bench = Bench(sys.executable, evidently_python(args), args.quick, [], {})
    sides = 2 if bench.theirs_python else 1
    steps = len(cases) * (1 + sides * len(args.methods)) + (0 if args.skip_scale else 4)
    clock = h.RunClock()
    with h.terminate_cleanly(), h.temp_home("drift") as tmp, h.progress(steps) as step:
        folder = args.data_dir or tmp
        for case in cases:
            bench.run_case(case, folder, args.methods, step)
        if not args.skip_scale:
            bench.run_scale(folder, *scale, step)
    clock.stop()

    notes = [clock.note()]
    for name in bench.cases:
        case_table(bench, name)
    if bench.scale:
        scale_table(bench)
    versions = bench.versions()
    notes.append(
        f"Evidently {versions['evidently']} (its own venv, pandas < 3) · modelyard "
        f"{versions['modelyard']} · seconds = reading both Parquet files + every column's "
        "test, imports excluded; peak RSS = the runner process's ru_maxrss (wait4); "
        "flags = shifted columns flagged / shifted + unshifted columns flagged; the "
        "issue's reference for Evidently's default preset: "
        + ", ".join(f"case {k} {v:g} s" for k, v in EVIDENTLY_REFERENCE_S.items())
    )
    for name in bench.cases:
        notes += case_notes(bench, name)
    if bench.scale:
        notes.append(scale_note(bench.scale))
    for n in notes:
        print(n)
    meta = {"quick": args.quick, "seed": SEED, "versions": versions, "notes": notes}
    return h.finish(
        args.out,
        meta | clock.meta(),
        bench.errors,
        cases=bench.cases,
        scale=bench.scale,
    )


if __name__ == "__main__":
    h.run_main(main)
