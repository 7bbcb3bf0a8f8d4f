"""A full disk: the database and the artifact store refuse the write with a clear
error and keep everything written before it. The disk is "filled" by a file-size
limit (RLIMIT_FSIZE) in a child process, which fails writes the way a full disk does."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from modelyard.core.artifacts import open_artifact_store
from modelyard.core.store.engine import open_engine
from modelyard.tracking.sql_store import SqlTrackingStore

SRC = str(Path(__file__).resolve().parents[1] / "src")

PRELUDE = f"""
import json, os, resource, signal, sys
sys.path.insert(0, {SRC!r})
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
from modelyard.core.errors import StorageFull

def fill_disk(limit):
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
"""


def _child(body: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_full_disk_under_sqlite_rolls_back_and_says_so(tmp_path):
    db = tmp_path / "full.db"
    out = _child(
        f"""
        from modelyard.core.store.engine import open_engine
        from modelyard.tracking.sql_store import SqlTrackingStore
        from modelyard.tracking.entities import Metric
        store = SqlTrackingStore(open_engine("sqlite:///{db}"), {str(tmp_path / "a")!r})
        run_id = store.create_run("0").info.run_id
        used = sum(os.path.getsize(p) for p in [{str(db)!r}, {str(db)!r} + "-wal"]
                   if os.path.exists(p))
        fill_disk(used + 400_000)
        ok = 0
        try:
            for b in range(1000):
                store.log_batch(run_id, metrics=[
                    Metric("m", float(i), 1000 + i, b * 1000 + i) for i in range(1000)])
                ok += 1
        except StorageFull as exc:
            print(json.dumps({{"ok": ok, "run_id": run_id, "error": str(exc)}}))
        """
    )
    assert out["ok"] >= 1
    assert "could not write" in out["error"] and "out of space" in out["error"]
    assert "nothing of this call was written" in out["error"]
    store = SqlTrackingStore(open_engine(f"sqlite:///{db}"), str(tmp_path / "a"))
    assert store.count_metric_points(out["run_id"], "m") == out["ok"] * 1000
    assert store.get_run(out["run_id"]).data.metrics["m"] == 999.0
    store.close()


def test_full_disk_under_artifacts_leaves_no_partial_file(tmp_path):
    root = tmp_path / "art"
    open_artifact_store(str(root)).put_bytes(b"kept", "run/kept.txt")
    out = _child(
        f"""
        from modelyard.core.artifacts import open_artifact_store
        store = open_artifact_store({str(root)!r})
        fill_disk(1_000_000)
        try:
            store.put_bytes(os.urandom(5_000_000), "run/model.bin")
        except StorageFull as exc:
            print(json.dumps({{"error": str(exc)}}))
        """
    )
    assert "Could not store artifact 'run/model.bin'" in out["error"]
    assert "Nothing was written" in out["error"]
    store = open_artifact_store(str(root))
    assert [f.path for f in store.list("run")] == ["run/kept.txt"]
    assert store.read_bytes("run/kept.txt") == b"kept"
    assert list((root / ".my-tmp").iterdir()) == []
