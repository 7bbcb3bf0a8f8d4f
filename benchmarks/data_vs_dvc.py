"""Data versioning, ``modelyard data`` vs DVC, on the same files, in one run.

    .venv/bin/python benchmarks/data_vs_dvc.py                       # the issue's sizes
    .venv/bin/python benchmarks/data_vs_dvc.py --files-small 10000 --big-gb 0.2   # smaller
    .venv/bin/python benchmarks/data_vs_dvc.py --only big            # the 1 GB folder only
    .venv/bin/python benchmarks/data_vs_dvc.py --skip-s3 --tools modelyard,dvc

Two data sets, written once with ``os.urandom`` into a temporary folder:

- big: a folder of 1,000 files totalling 1 GiB (``--big-gb``, ``--big-files``):
  ``add``, then one file replaced by new bytes of the same size and ``add`` again;
- small: 100,000 files of 10 KiB in folders of 1,000 (``--files-small``): ``add``, a
  no-op ``add``; ``push`` to a local-folder remote and to an S3-compatible server
  (``moto_server`` from our venv on 127.0.0.1, one per tool), each followed by a
  no-op ``push``; then, from each remote in turn, ``pull`` after removing the
  workspace copy and the local cache, and a no-op ``pull``.

Each tool works in its own fresh project folder on its own copy of the data (made
untimed): modelyard in a plain folder with ``MODELYARD_HOME=<project>/.modelyard``;
DVC after ``git init`` + ``dvc init``, analytics and the update check off, autostage
off, everything else DVC's default: its cache links ``reflink,copy``, so where the
filesystem has no reflinks (ext4) it copies while modelyard (``reflink,hardlink,
copy``) hardlinks. The "dvc (hardlink)" rows run DVC again with ``cache.type
hardlink`` for the local phases (a link type changes adding and checking out, not
the transfers to S3). Phases run in turn for every tool (modelyard, dvc, dvc
(hardlink)), so all see the machine at about the same time.

A time is the wall time of the command as a user runs it: ``.venv/bin/modelyard
data ...`` and ``.venv-dvc/bin/dvc ...`` (``make bench-dvc-venv``) in subprocesses,
output to files (no terminal, so no progress bars), after ``sync``. Each command
runs once. Every step is checked afterwards, untimed: the workspace still holds the
original bytes (every file hashed) and the cache holds them after ``add``; a no-op
leaves the pointer file (``data.yard`` / ``data.dvc``) and the remote as they were;
a changed file changes the pointer; the remote holds at least the data's bytes after
``push``; and after each ``pull`` every file is byte-identical to the original.

The table: seconds per tool, DVC ÷ modelyard, the issue's goal and whether it was
met (≥ 2× on the first add and ≥ 5× on the re-add of the big folder; no-op push and
pull of the small set < 2 s for ours, judged at the issue's sizes only). The same
numbers, every command and what it printed, go to ``--json``
(``benchmarks/results/data_vs_dvc.json``). Exits 1 when a command or a check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _dvc_tools as dt  # noqa: E402
import _harness as h  # noqa: E402

REPO = HERE.parent
RESULTS = HERE / "results" / "data_vs_dvc.json"
TARGET = "data"  # the folder each project versions
PER_FOLDER = 1_000  # small files per subfolder

# The sizes and goals.
BIG_GIB, BIG_FILES = 1.0, 1_000
SMALL_FILES, SMALL_BYTES = 100_000, 10 * 1024
GOAL_ADD, GOAL_READD, GOAL_NOOP_S = 2.0, 5.0, 2.0
GROUPS = ("big", "small", "s3")


# -- the data ------------------------------------------------------------------------------


@dataclass
class Dataset:
    """Files under ``root`` (the untouched original), their SHA-1 by relative path."""

    name: str
    root: Path
    digests: dict[str, str]
    sizes: dict[str, int]

    @property
    def files(self) -> int:
        return len(self.digests)

    @property
    def total(self) -> int:
        return sum(self.sizes.values())


def make_dataset(name: str, root: Path, files: int, size: int, per_folder: int | None) -> Dataset:
    """``files`` files of ``size`` random bytes, flat or in subfolders of
    ``per_folder``."""
    digests, sizes = {}, {}
    for i in range(files):
        rel = f"f{i:06d}.bin" if per_folder is None else f"d{i // per_folder:03d}/f{i:06d}.bin"
        path = root / rel
        if per_folder is None or i % per_folder == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(size)
        path.write_bytes(data)
        digests[rel] = hashlib.sha1(data).hexdigest()
        sizes[rel] = size
    return Dataset(name, root, digests, sizes)


def _files_under(root: Path) -> dict[str, Path]:
    out = {}
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for n in names:
            full = Path(folder, n)
            out[full.relative_to(root).as_posix()] = full
    return out


def check_tree(root: Path, data: Dataset, *, hashes: bool = True) -> str:
    """ "" when ``root`` holds exactly ``data``'s files with its bytes (or sizes only),
    else what differs."""
    found = _files_under(root)
    missing = sorted(set(data.digests) - set(found))
    extra = sorted(set(found) - set(data.digests))
    if missing or extra:
        return f"{len(missing)} missing (e.g. {missing[:3]}), {len(extra)} extra (e.g. {extra[:3]})"
    wrong = []
    for rel, path in found.items():
        if path.stat().st_size != data.sizes[rel]:
            wrong.append(rel)
        elif hashes:
            with open(path, "rb") as f:
                if hashlib.file_digest(f, "sha1").hexdigest() != data.digests[rel]:
                    wrong.append(rel)
    return f"{len(wrong)} files differ (e.g. {wrong[:3]})" if wrong else ""


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in _files_under(root).values())


def link_kind(root: Path) -> str:
    """How the workspace files relate to the cache: hardlinked (nlink > 1) or not."""
    files = list(_files_under(root).values())[:50]
    linked = sum(os.stat(p).st_nlink > 1 for p in files)
    return "hardlinks" if linked == len(files) else "own copies" if not linked else "mixed"


def reflink_supported(folder: Path) -> bool:
    """Whether ``folder``'s filesystem clones files (FICLONE): DVC's first choice."""
    ficlone = 0x40049409
    with tempfile.TemporaryDirectory(dir=folder) as d:
        src, dst = Path(d, "a"), Path(d, "b")
        src.write_bytes(b"x" * 4096)
        with open(src, "rb") as s, open(dst, "wb") as t:
            try:
                fcntl.ioctl(t.fileno(), ficlone, s.fileno())
            except OSError:
                return False
    return True


def fs_type(folder: Path) -> str:
    best = ("", "?")
    with contextlib.suppress(OSError), open("/proc/mounts") as f:
        for line in f:
            _, mount, kind, *_ = line.split()
            if str(folder).startswith(mount) and len(mount) > len(best[0]):
                best = (mount, kind)
    return best[1]


# -- the phases -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Goal:
    kind: str  # "ratio": DVC ÷ ours ≥ value; "under": ours < value seconds
    value: float
    full_size_only: bool = False

    def text(self) -> str:
        return f"≥ {self.value:g}×" if self.kind == "ratio" else f"ours < {self.value:g} s"


@dataclass(frozen=True)
class Phase:
    key: str
    group: str  # "big", "small" (local remote), "s3"
    label: str
    goal: Goal | None = None
    hardlink: bool = True  # whether the "dvc (hardlink)" variant runs it


@dataclass
class Bench:
    """What one run measured: ``results[phase][tool]``."""

    tools: list[dt.Tool]
    errors: list[str] = field(default_factory=list)
    results: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    phases: list[Phase] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    step_no: int = 0

    def run_phase(
        self,
        phase: Phase,
        projects: list[dt.Project],
        action: Callable[[dt.Project], dict[str, Any]],
    ) -> None:
        """``action`` on every project in turn (not the hardlink variant unless the
        phase says so); a failure skips that tool's later phases."""
        self.phases.append(phase)
        row = self.results.setdefault(phase.key, {})
        for project in projects:
            key = project.tool.key
            if key.startswith("dvc-") and not phase.hardlink:
                continue
            if project.failed:
                row[key] = {"skipped": project.failed}
                continue
            self.step_no += 1
            say(f"[{self.step_no}] {phase.label} · {project.tool.label} …")
            try:
                row[key] = action(project)
            except h.BenchError as exc:
                msg = f"{phase.label} · {project.tool.label}: {exc}"
                self.errors.append(msg)
                project.failed = f"skipped after the failure in {phase.label!r}"
                row[key] = {"error": str(exc)}
                say(f"    FAILED: {exc}")
                continue
            check = row[key].get("check", "")
            say(f"    {h.fmt_seconds(row[key]['seconds'])}  {check}")


def say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def _fail(what: str) -> None:
    raise h.BenchError(f"check failed: {what}")


def _timed(project: dt.Project, cmd: list[str], remote: dt.Remote | None = None) -> dict:
    """Run ``cmd``; its summary, with the S3 server's CPU seconds meanwhile."""
    cpu0 = remote.server_cpu_s() if remote else None
    out = project.run(cmd, remote).summary()
    if remote and cpu0 is not None:
        out["s3_server_cpu_s"] = remote.server_cpu_s() - cpu0
    return out


def do_add(project: dt.Project, data: Dataset, *, expect: str) -> dict[str, Any]:
    """``add`` (timed), then check: ``expect`` "new", "changed" or "same" pointer;
    the workspace still holds the data; the cache holds at least its bytes."""
    pointer = project.pointer(TARGET)
    before = pointer.read_bytes() if pointer.exists() else None
    out = _timed(project, project.tool.add(TARGET))
    if not pointer.exists():
        _fail(f"no {pointer.name} after add")
    after = pointer.read_bytes()
    if expect == "same" and after != before:
        _fail(f"{pointer.name} changed on a no-op add")
    if expect == "changed" and after == before:
        _fail(f"{pointer.name} did not change after a file changed")
    differs = check_tree(project.root / TARGET, data, hashes=expect != "same")
    if differs:
        _fail(f"the workspace after add: {differs}")
    cached = tree_bytes(project.tool.cache_dir(project.root))
    if cached < data.total:
        _fail(f"the cache holds {cached:,} bytes, fewer than the data's {data.total:,}")
    out["check"] = (
        f"pointer {'unchanged' if after == before else 'written'}, workspace "
        f"{'sizes' if expect == 'same' else 'bytes'} verified, cache {cached / 1e9:.2f} GB, "
        f"workspace files: {link_kind(project.root / TARGET)}"
    )
    out["link"] = link_kind(project.root / TARGET)
    return out


def do_push(project: dt.Project, data: Dataset, remote: dt.Remote, *, noop: bool) -> dict[str, Any]:
    before = project.stored.get(remote.kind)  # what the remote held after the last push
    out = _timed(project, project.tool.push(TARGET, remote), remote)
    count, stored = project.stored[remote.kind] = remote.stored_bytes()
    if stored < data.total:
        _fail(f"the remote holds {stored:,} bytes after push, fewer than {data.total:,}")
    if noop and (count, stored) != before:
        _fail(f"a no-op push changed the remote: {before} -> {(count, stored)}")
    out["check"] = f"remote: {count:,} objects, {stored / 1e9:.2f} GB"
    out["remote_objects"], out["remote_bytes"] = count, stored
    return out


def do_pull(project: dt.Project, data: Dataset, remote: dt.Remote, *, noop: bool) -> dict[str, Any]:
    if not noop:
        project.remove_data_and_cache(TARGET)
    out = _timed(project, project.tool.pull(TARGET, remote), remote)
    differs = check_tree(project.root / TARGET, data, hashes=not noop)
    if differs:
        _fail(f"the workspace after pull: {differs}")
    out["check"] = (
        f"all {data.files:,} files {'present, sizes' if noop else 'byte-identical'} "
        f"({link_kind(project.root / TARGET)})"
    )
    return out


def run_startup(bench: Bench, tmp: Path) -> None:
    """Each CLI's ``--version`` in an empty folder, median of 3: the fixed cost that
    every command above carries."""
    folder = tmp / "startup"
    folder.mkdir()
    projects = [dt.Project(t, folder) for t in bench.tools if t.key != "dvc-hardlink"]

    def median_of_3(p: dt.Project) -> dict[str, Any]:
        runs = sorted((_timed(p, p.tool.version_cmd()) for _ in range(3)), key=_by_seconds)
        return runs[1] | {"all_seconds": [r["seconds"] for r in runs], "check": "median of 3"}

    bench.run_phase(
        Phase("startup", "startup", "start-up: `--version`, median of 3", hardlink=False),
        projects,
        median_of_3,
    )


def _by_seconds(result: dict[str, Any]) -> float:
    return result["seconds"]


def new_projects(bench: Bench, parent: Path, data: Dataset) -> list[dt.Project]:
    """A fresh project per tool, each with its own copy of ``data`` under TARGET."""
    projects = []
    for tool in bench.tools:
        root = parent / f"{data.name}-{tool.key}"
        project = dt.Project(tool, root)
        try:
            tool.setup(root)
            shutil.copytree(data.root, root / TARGET)
        except (h.BenchError, OSError) as exc:
            bench.errors.append(f"{tool.label}: setting up {root}: {exc}")
            project.failed = f"set-up failed: {exc}"
        projects.append(project)
    return projects


def run_big(bench: Bench, tmp: Path, files: int, gib: float) -> None:
    size = int(gib * 2**30 / files)
    say(f"writing {files:,} files of {size:,} bytes ({files * size / 2**30:.2f} GiB)")
    data = make_dataset("big", tmp / "src-big", files, size, None)
    projects = new_projects(bench, tmp, data)
    label = f"{files:,} files, {data.total / 2**30:.2f} GiB"
    try:
        bench.run_phase(
            Phase("big.add", "big", f"{label}: add", Goal("ratio", GOAL_ADD)),
            projects,
            lambda p: do_add(p, data, expect="new"),
        )
        # one file replaced by new bytes (a new file, as an editor or a tool writes
        # one: the workspace copy may be a read-only hardlink into the cache)
        changed = f"f{files // 2:06d}.bin"
        new = os.urandom(size)
        data.digests[changed] = hashlib.sha1(new).hexdigest()
        for p in projects:
            path = p.root / TARGET / changed
            if not p.failed:
                path.unlink()
                path.write_bytes(new)
        bench.run_phase(
            Phase("big.readd", "big", f"{label}, 1 changed: re-add", Goal("ratio", GOAL_READD)),
            projects,
            lambda p: do_add(p, data, expect="changed"),
        )
    finally:
        for p in projects:
            p.remove()
        dt._rmtree(data.root)


def run_small(
    bench: Bench, tmp: Path, files: int, groups: set[str], moto: Path, full_size: bool
) -> None:
    say(f"writing {files:,} files of {SMALL_BYTES:,} bytes")
    data = make_dataset("small", tmp / "src-small", files, SMALL_BYTES, PER_FOLDER)
    projects = new_projects(bench, tmp, data)
    label = f"{files:,} × 10 KiB"
    noop = Goal("under", GOAL_NOOP_S, full_size_only=True)
    local = {p.tool.key: dt.Remote("local", str(tmp / f"remote-{p.tool.key}")) for p in projects}
    with contextlib.ExitStack() as stack:
        try:
            bench.run_phase(
                Phase("small.add", "small", f"{label}: add"),
                projects,
                lambda p: do_add(p, data, expect="new"),
            )
            bench.run_phase(
                Phase("small.noop_add", "small", f"{label}: no-op re-add"),
                projects,
                lambda p: do_add(p, data, expect="same"),
            )
            s3: dict[str, dt.Remote] = {}
            if "small" in groups:
                for p in projects:
                    _configure(bench, p, local[p.tool.key])
                bench.run_phase(
                    Phase("small.push", "small", f"{label}: push → local folder"),
                    projects,
                    lambda p: do_push(p, data, local[p.tool.key], noop=False),
                )
                bench.run_phase(
                    Phase("small.noop_push", "small", f"{label}: no-op push → local", noop),
                    projects,
                    lambda p: do_push(p, data, local[p.tool.key], noop=True),
                )
            if "s3" in groups:
                for p in projects:
                    if p.tool.key.startswith("dvc-") or p.failed:
                        continue
                    server = stack.enter_context(dt.MotoServer(moto, tmp))
                    url = f"s3://{dt.S3_BUCKET}/{p.tool.key}"
                    s3[p.tool.key] = dt.Remote("s3", url, server.endpoint, server.pid)
                    _configure(bench, p, s3[p.tool.key])
                bench.run_phase(
                    Phase("s3.push", "s3", f"{label}: push → S3", hardlink=False),
                    projects,
                    lambda p: do_push(p, data, s3[p.tool.key], noop=False),
                )
                bench.run_phase(
                    Phase("s3.noop_push", "s3", f"{label}: no-op push → S3", noop, False),
                    projects,
                    lambda p: do_push(p, data, s3[p.tool.key], noop=True),
                )
            if "small" in groups:
                bench.run_phase(
                    Phase("small.pull", "small", f"{label}: pull ← local folder"),
                    projects,
                    lambda p: do_pull(p, data, local[p.tool.key], noop=False),
                )
                bench.run_phase(
                    Phase("small.noop_pull", "small", f"{label}: no-op pull ← local", noop),
                    projects,
                    lambda p: do_pull(p, data, local[p.tool.key], noop=True),
                )
            if "s3" in groups:
                bench.run_phase(
                    Phase("s3.pull", "s3", f"{label}: pull ← S3", hardlink=False),
                    projects,
                    lambda p: do_pull(p, data, s3[p.tool.key], noop=False),
                )
                bench.run_phase(
                    Phase("s3.noop_pull", "s3", f"{label}: no-op pull ← S3", noop, False),
                    projects,
                    lambda p: do_pull(p, data, s3[p.tool.key], noop=True),
                )
        finally:
            for p in projects:
                p.remove()
            for r in local.values():
                dt._rmtree(Path(r.url))
            dt._rmtree(data.root)


def _configure(bench: Bench, project: dt.Project, remote: dt.Remote) -> None:
    if project.failed:
        return
    try:
        project.tool.add_remote(project.root, remote)
        project.remotes[remote.kind] = remote
    except h.BenchError as exc:
        bench.errors.append(f"{project.tool.label}: adding the {remote.kind} remote: {exc}")
        project.failed = f"adding the {remote.kind} remote failed"


# -- the table ------------------------------------------------------------------------------


def _cell(result: dict[str, Any] | None) -> str:
    if result is None:
        return "—"
    if "error" in result:
        return "failed"
    if "skipped" in result:
        return "skipped"
    return h.fmt_seconds(result["seconds"])


def _seconds(result: dict[str, Any] | None) -> float | None:
    return result.get("seconds") if result else None


def judge(phase: Phase, ours: float | None, theirs: float | None, full: bool) -> tuple[str, str]:
    """(goal cell, met? cell)."""
    goal = phase.goal
    if goal is None:
        return "info", "—"
    if goal.full_size_only and not full:
        return f"{goal.text()} (at full size)", "—"
    if goal.kind == "ratio":
        if ours is None or theirs is None:
            return goal.text(), "—"
        return goal.text(), "yes" if theirs / ours >= goal.value else "NO"
    if ours is None:
        return goal.text(), "—"
    return goal.text(), "yes" if ours < goal.value else "NO"


def table_rows(bench: Bench, full: dict[str, bool]) -> list[list[str]]:
    rows = []
    anchors = [t for t in bench.tools if t.key != "modelyard"]
    for phase in bench.phases:
        row = bench.results.get(phase.key, {})
        ours = row.get("modelyard")
        shown = [t for t in anchors if t.key in row] or [None]
        for i, tool in enumerate(shown):
            theirs = row.get(tool.key) if tool else None
            o, t = _seconds(ours), _seconds(theirs)
            ratio = t / o if o and t else None
            goal, met = judge(phase, o, t, full[phase.group])
            name = phase.label if i == 0 else f"  ↳ vs {tool.label}"
            if i == 0 and tool is not None and tool.key != "dvc":
                name += f" (vs {tool.label})"
            rows.append([name, _cell(ours), _cell(theirs), h.fmt_ratio(ratio), goal, met])
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--files-small", type=int, default=SMALL_FILES, help=f"small files ({SMALL_FILES:,})"
    )
    parser.add_argument("--big-gb", type=float, default=BIG_GIB, help="the big folder's GiB (1)")
    parser.add_argument(
        "--big-files", type=int, default=BIG_FILES, help=f"files in the big folder ({BIG_FILES:,})"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=GROUPS,
        metavar="GROUP",
        help="big (1 GiB folder), small (100k files, local remote), s3 (100k files, S3)",
    )
    parser.add_argument("--skip-s3", action="store_true", help="no S3 phases")
    parser.add_argument(
        "--tools",
        default="modelyard,dvc,dvc-hardlink",
        help="comma-separated subset of modelyard,dvc,dvc-hardlink",
    )
    parser.add_argument(
        "--modelyard", type=Path, default=REPO / ".venv" / "bin" / "modelyard", help="our CLI"
    )
    parser.add_argument(
        "--dvc",
        type=Path,
        default=REPO / ".venv-dvc" / "bin" / "dvc",
        help="DVC's CLI (default .venv-dvc/bin/dvc: make bench-dvc-venv)",
    )
    parser.add_argument(
        "--moto-server",
        type=Path,
        default=Path(sys.executable).parent / "moto_server",
        help="the S3-compatible server (default: moto_server beside this interpreter)",
    )
    parser.add_argument(
        "--tmp-dir", type=Path, default=Path(tempfile.gettempdir()), help="where data goes"
    )
    parser.add_argument("--json", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args(argv)
    if args.files_small < 1 or args.big_files < 2 or args.big_gb <= 0:
        parser.error("--files-small ≥ 1, --big-files ≥ 2 and --big-gb > 0")
    tools = [t for t in args.tools.split(",") if t]
    if not tools or set(tools) - {"modelyard", "dvc", "dvc-hardlink"}:
        parser.error("--tools: a comma-separated subset of modelyard,dvc,dvc-hardlink")
    args.tools = tools
    args.groups = set(args.only or GROUPS) - ({"s3"} if args.skip_s3 else set())
    if not args.groups:
        parser.error("nothing to run: --only s3 with --skip-s3")
    return args


def pick_tools(args: argparse.Namespace, errors: list[str]) -> list[dt.Tool]:
    tools: list[dt.Tool] = []
    if "modelyard" in args.tools:
        ours = dt.Modelyard(args.modelyard)
        why = ours.missing()
        if why:
            say(f"modelyard is left out: {why}")
            errors.append(f"modelyard not run: {why}")
        else:
            tools.append(ours)
    dvc_wanted = [t for t in args.tools if t.startswith("dvc")]
    if dvc_wanted and not args.dvc.exists():
        say(f"no DVC at {args.dvc} (make bench-dvc-venv): DVC is left out")
        errors.append(f"DVC not run: no {args.dvc}")
    elif dvc_wanted:
        if "dvc" in dvc_wanted:
            tools.append(dt.Dvc(args.dvc))
        if "dvc-hardlink" in dvc_wanted:
            tools.append(dt.Dvc(args.dvc, "hardlink"))
    return tools


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = Bench([])
    bench.tools = pick_tools(args, bench.errors)
    if not bench.tools:
        return h.finish(args.json, {"args": vars(args)}, bench.errors)
    full = {
        "startup": True,
        "big": args.big_files == BIG_FILES and args.big_gb == BIG_GIB,
        "small": args.files_small == SMALL_FILES,
    }
    full["s3"] = full["small"]
    versions = {t.key: t.version() for t in bench.tools}
    clock = h.RunClock()
    tmp = Path(tempfile.mkdtemp(prefix="bench-data-", dir=args.tmp_dir))
    fs = {"type": fs_type(tmp), "reflink": reflink_supported(tmp)}
    say(f"working in {tmp} ({fs['type']}, reflink {'yes' if fs['reflink'] else 'no'})")
    try:
        with h.terminate_cleanly():
            run_startup(bench, tmp)
            if "big" in args.groups:
                run_big(bench, tmp, args.big_files, args.big_gb)
            if args.groups & {"small", "s3"}:
                run_small(
                    bench, tmp, args.files_small, args.groups, args.moto_server, full["small"]
                )
    finally:
        dt._rmtree(tmp)
    clock.stop()

    sizes = ", ".join(
        ([f"big {args.big_files:,} files / {args.big_gb:g} GiB"] if "big" in args.groups else [])
        + ([f"small {args.files_small:,} files"] if args.groups & {"small", "s3"} else [])
    )
    scaled = "" if all(full[g] for g in args.groups) else " — scaled down from the issue's sizes"
    h.render_table(
        f"modelyard data vs DVC ({sizes}){scaled}: seconds, wall time of each CLI command",
        ["phase", "modelyard", "dvc", "dvc ÷ ours", "goal", "met?"],
        table_rows(bench, full),
    )
    links = {
        t.key: bench.results.get(ph, {}).get(t.key, {}).get("link")
        for t in bench.tools
        for ph in ("big.add", "small.add")
        if bench.results.get(ph, {}).get(t.key, {}).get("link")
    }
    notes = [
        clock.note(),
        "versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"filesystem {fs['type']}, reflink {'supported' if fs['reflink'] else 'not supported'}: "
        "DVC's default cache.type is reflink,copy, ours reflink,hardlink,copy; workspace "
        "files after add: " + ", ".join(f"{k} {v}" for k, v in links.items()),
        "each command once, wall time from spawn to exit (interpreter start-up included); "
        "a pull starts with no workspace copy and no local cache; checks are untimed",
    ]
    for ph in bench.phases:
        cpu = {
            t: r["s3_server_cpu_s"]
            for t, r in bench.results[ph.key].items()
            if r.get("s3_server_cpu_s") is not None
        }
        if cpu:
            notes.append(
                f"{ph.label}: the S3 server's CPU meanwhile: "
                + ", ".join(f"{t} {h.fmt_seconds(c)}" for t, c in cpu.items())
            )
    for n in notes:
        print(n)
    meta = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "versions": versions,
        "filesystem": fs,
        "full_size": full,
        "notes": notes,
    }
    phases = {p.key: {"label": p.label, "goal": p.goal and p.goal.text()} for p in bench.phases}
    return h.finish(
        args.json,
        meta | clock.meta(),
        bench.errors,
        phases=phases,
        results=bench.results,
    )


if __name__ == "__main__":
    h.run_main(main)
