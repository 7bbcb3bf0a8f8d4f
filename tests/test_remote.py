"""The SDK against a real server over HTTP: the same behaviour as the local store,
and no loss when the server is killed (SIGKILL) or away for a while."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import modelyard as my
from infra.server import tracking_server  # noqa: F401 - fixture
from modelyard.core.errors import InvalidParameter, ResourceNotFound
from modelyard.core.store.engine import open_engine
from modelyard.tracking.sql_store import SqlTrackingStore

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture
def server_store(db_url, tmp_path):
    """The server's own store, opened directly, to check what really landed."""
    store = SqlTrackingStore(open_engine(db_url), str(tmp_path / "server-artifacts"))
    yield store
    store.close()


@pytest.fixture
def remote(tracking_server, tmp_path):  # noqa: F811
    my.configure(home=tmp_path / "client-home", tracking_uri=tracking_server.url)
    yield tracking_server
    while my.active_run():
        my.end_run()
    my.configure(home=tmp_path / "unused")


def test_sdk_round_trip_over_http(remote, server_store, tmp_path):
    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(100_000))
    with my.start_run(experiment="remote", run_name="r1", tags={"team": "ml"}) as run:
        my.log_params({"lr": 0.1, "depth": 4})
        for step in range(1000):
            my.log_metric("loss", 1 / (step + 1), step=step)
        my.log_text("hello", "notes/hello.txt")
        my.log_dict({"features": ["a", "b"]}, "features.json")
        my.log_artifact(model, "weights")
    rid = run.run_id

    stored = server_store.get_run(rid)
    assert stored.info.status == "FINISHED"
    assert stored.data.params == {"lr": "0.1", "depth": "4"}
    assert stored.data.tags["team"] == "ml"
    assert server_store.count_metric_points(rid, "loss") == 1000
    assert stored.data.metrics["loss"] == pytest.approx(1 / 1000)

    svc = my.client()
    assert len(my.get_metric_history(rid, "loss")) == 1000
    assert len(my.get_metric_history(rid, "loss", max_points=40)) <= 40
    assert svc.read_artifact(rid, "notes/hello.txt") == b"hello"
    assert svc.read_artifact(rid, "weights/model.bin") == model.read_bytes()
    names = sorted(f.path for f in svc.list_artifacts(rid))
    assert names == ["features.json", "notes", "weights"]
    out = svc.download_artifacts(rid, "weights", tmp_path / "dl")
    assert (out / "model.bin").read_bytes() == model.read_bytes()

    frame = my.search_runs(["remote"], "params.lr = '0.1' and metrics.loss < 0.01")
    assert list(frame["run_id"]) == [rid]


def test_errors_cross_the_wire_typed(remote, server_store):
    with my.start_run(experiment="remote-errors") as run:
        my.log_param("lr", 0.1)
        with pytest.raises(InvalidParameter, match="immutable"):
            my.log_param("lr", 0.2)
        with pytest.raises(InvalidParameter, match="6001 characters"):
            my.log_param("blob", "x" * 6001)
    assert server_store.get_run(run.run_id).data.params == {"lr": "0.1"}
    with pytest.raises(ResourceNotFound, match="not found"):
        my.get_run("f" * 32)


def _client_script(url: str, home: Path, n_points: int, marker: Path) -> str:
    return textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {SRC!r})
        import modelyard as my
        my.configure(home={str(home)!r}, tracking_uri={url!r})
        run = my.start_run(experiment="stream", run_name="stream")
        open({str(marker)!r}, "w").write(run.run_id)
        for step in range({n_points}):
            my.log_metric("x", float(step), step=step)
            if step % 5000 == 0:
                time.sleep(0.05)  # a training loop does some work between points
        my.end_run()
        print("CLIENT DONE", run.run_id)
        """
    )


def test_server_sigkill_while_streaming_100k_points(tracking_server, server_store, tmp_path):  # noqa: F811
    marker = tmp_path / "run_id.txt"
    script = tmp_path / "client.py"
    script.write_text(
        _client_script(tracking_server.url, tmp_path / "client-home", 100_000, marker)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    client = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while not marker.exists() or not marker.read_text():
        assert time.monotonic() < deadline and client.poll() is None
        time.sleep(0.05)
    rid = marker.read_text()
    while server_store.count_metric_points(rid, "x") < 20_000:  # mid-stream
        assert time.monotonic() < deadline
        time.sleep(0.02)

    tracking_server.kill()  # SIGKILL: no graceful shutdown, requests cut mid-flight
    time.sleep(1.5)
    tracking_server.start()

    out, _ = client.communicate(timeout=180)
    assert client.returncode == 0, out.decode()[-3000:]
    assert b"CLIENT DONE" in out
    assert server_store.count_metric_points(rid, "x") == 100_000  # every point, exactly once
    history = server_store.get_metric_history(rid, "x")
    assert [p.step for p in history] == list(range(100_000))
    assert server_store.get_run(rid).info.status == "FINISHED"


def test_writes_spill_while_server_is_down_and_resend_later(
    tracking_server,  # noqa: F811
    server_store,
    tmp_path,
):
    home = tmp_path / "client-home"
    my.configure(home=home, tracking_uri=tracking_server.url)
    try:
        run = my.start_run(experiment="spill")
        store = my.client().store
        store.retries, store.backoff = 1, 0.05
        my.log_metric("a", 1.0, step=0)
        my.flush()
        tracking_server.kill()
        for step in range(1, 200):
            my.log_metric("a", float(step), step=step)
        my.flush()  # the server is away: the batch goes to the journal, nothing raises
        journals = list((home / "spill").glob("journal-*.jsonl"))
        assert len(journals) == 1 and journals[0].stat().st_size > 0
        my.end_run()  # journaled too
        tracking_server.start()
        assert store.resend_spilled() >= 2
        assert list((home / "spill").glob("journal-*.jsonl")) == []
        assert server_store.count_metric_points(run.run_id, "a") == 200
        assert server_store.get_run(run.run_id).info.status == "FINISHED"
    finally:
        while my.active_run():
            my.end_run()
