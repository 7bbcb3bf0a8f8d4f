"""TrackingService conveniences shared by the SDK and the CLI."""

from __future__ import annotations

import pytest

from modelyard.core.artifacts import open_artifact_store
from modelyard.core.errors import InvalidParameter, ResourceNotFound
from modelyard.core.store.engine import open_engine
from modelyard.tracking.service import TrackingService
from modelyard.tracking.sql_store import SqlTrackingStore


@pytest.fixture
def svc(db_url, tmp_path):
    store = SqlTrackingStore(open_engine(db_url), str(tmp_path / "art"))
    yield TrackingService(store, open_artifact_store)
    store.close()


def test_resolve_run_id_from_a_unique_prefix(svc):
    run_id = svc.create_run("0").info.run_id
    assert svc.resolve_run_id(run_id[:8]) == run_id
    assert svc.resolve_run_id(run_id.upper()) == run_id
    with pytest.raises(InvalidParameter, match="at least 6"):
        svc.resolve_run_id(run_id[:4])
    with pytest.raises(InvalidParameter, match="at least 6"):
        svc.resolve_run_id("zzzzzzzz")
    other = "0123456789" if not run_id.startswith("0123456789") else "abcdefabcd"
    with pytest.raises(ResourceNotFound, match=f"No run id starts with '{other}'"):
        svc.resolve_run_id(other)


def test_ambiguous_prefix_is_refused(svc):
    a = svc.store.create_run("0", run_id="abcdef" + "1" * 26).info.run_id
    b = svc.store.create_run("0", run_id="abcdef" + "2" * 26).info.run_id
    with pytest.raises(InvalidParameter, match="'abcdef' is ambiguous"):
        svc.resolve_run_id("abcdef")
    assert svc.resolve_run_id("abcdef1") == a
    assert svc.resolve_run_id("abcdef2") == b


def test_find_runs_follows_pages(svc):
    eid = svc.create_experiment("many")
    made = {svc.create_run(eid).info.run_id for _ in range(7)}
    assert {r.info.run_id for r in svc.find_runs([eid], max_results=100)} == made
    assert len(svc.find_runs([eid], max_results=5)) == 5
    assert [e.name for e in svc.all_experiments()] == ["Default", "many"]
