"""Tracking with artifacts on S3 (a moto server over the wire): the local SDK writes
through s3fs; a server with an S3 root proxies uploads for HTTP clients."""

from __future__ import annotations

import pytest

import modelyard as my
from infra.server import running_server


@pytest.fixture
def reset_sdk(tmp_path):
    yield
    while my.active_run():
        my.end_run()
    my.configure(home=tmp_path / "unused")


def test_local_sdk_with_s3_artifacts(db_url, s3_artifacts, tmp_path, reset_sdk):
    my.configure(home=tmp_path / "home", db_url=db_url, artifacts=s3_artifacts)
    with my.start_run(experiment="s3") as run:
        my.log_text("on s3", "notes/a.txt")
        my.log_dict({"k": 1}, "cfg.json")
    assert run.info.artifact_uri.startswith(s3_artifacts + "/")
    svc = my.client()
    assert svc.read_artifact(run.run_id, "notes/a.txt") == b"on s3"
    assert sorted(f.path for f in svc.list_artifacts(run.run_id)) == ["cfg.json", "notes"]
    # The bytes really are in the bucket, under the run's prefix.
    from modelyard.core.artifacts import open_artifact_store

    bucket = open_artifact_store(run.info.artifact_uri)
    assert bucket.fs.cat_file(bucket._full("notes/a.txt")) == b"on s3"


def test_remote_sdk_through_a_server_with_s3_root(db_url, s3, s3_artifacts, tmp_path, reset_sdk):
    import os

    env = {
        "MODELYARD_HOME": str(tmp_path / "server-home"),
        "MODELYARD_DB_URL": db_url,
        "MODELYARD_ARTIFACTS": s3_artifacts,
        **{k: v for k, v in os.environ.items() if k.startswith(("AWS_", "FSSPEC_"))},
    }
    with running_server(env, tmp_path / "server.log") as server:
        my.configure(home=tmp_path / "client-home", tracking_uri=server.url)
        with my.start_run(experiment="s3-remote") as run:
            my.log_text("through the proxy", "p/x.txt")
        assert my.client().read_artifact(run.run_id, "p/x.txt") == b"through the proxy"
    from modelyard.core.artifacts import open_artifact_store

    root = open_artifact_store(s3_artifacts)
    found = [f.path for f in root.walk("") if f.path.endswith("p/x.txt")]
    assert len(found) == 1
