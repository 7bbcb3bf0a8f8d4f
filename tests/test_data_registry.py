"""The dataset registry, run inputs, lineage, splits and gc, through the SDK.

Each test has its own store (SQLite, or PostgreSQL with MODELYARD_TEST_BACKEND) and
its own project folder (the test's cwd).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import modelyard as my
from modelyard.core.errors import InvalidParameter, ResourceNotFound
from modelyard.tracking.entities import RunInput


@pytest.fixture
def project(home: Path, db_url: str, tmp_path: Path) -> Iterator[Path]:
    (tmp_path / ".git").mkdir()
    my.configure(home=home, db_url=db_url, artifacts=str(tmp_path / "artifacts"))
    yield tmp_path
    while my.active_run():
        my.end_run()
    my.client().store.close()


def churn(n: int = 400, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "tenure": rng.integers(1, 72, n),
            "charges": rng.normal(70 + shift, 20, n),
            "plan": rng.choice(["basic", "pro", "max"], n),
            "churned": rng.integers(0, 2, n),
        }
    )


def write_parts(folder: Path, df: pd.DataFrame, parts: int = 2) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, chunk in enumerate(np.array_split(np.arange(len(df)), parts)):
        df.iloc[chunk].to_parquet(folder / f"part-{i}.parquet", index=False)


def test_register_records_content_schema_rows_and_profile(project):
    df = churn()
    write_parts(project / "data" / "churn", df)
    v1 = my.data.register("churn", "data/churn", description="first export")
    assert v1.ref == "churn@1" and v1.oid.endswith(".dir")
    assert v1.rows == 400 and v1.files == 2 and v1.format == "parquet"
    assert [c["name"] for c in v1.columns] == list(df.columns)
    assert v1.path == "data/churn"
    profile = my.data.data_service().profile("churn@1")
    assert profile.rows == 400 and set(profile.columns) == set(df.columns)
    assert (project / "data" / "churn.yard").exists()

    # Unchanged content is the same version; changed content is the next one.
    assert my.data.register("churn", "data/churn") == v1
    write_parts(project / "data" / "churn", churn(500, seed=1), parts=2)
    v2 = my.data.register("churn", "data/churn")
    assert v2.version == 2 and v2.rows == 500 and v2.oid != v1.oid
    assert my.data.get_version("churn") == v2
    assert my.data.get_version("churn@latest") == v2
    assert [v.ref for v in my.data.versions("churn")] == ["churn@1", "churn@2"]


def test_unknown_datasets_and_bad_references_get_clear_errors(project):
    with pytest.raises(ResourceNotFound, match="No dataset named 'nope'"):
        my.data.get_version("nope@1")
    write_parts(project / "d", churn(50))
    my.data.register("small", "d")
    with pytest.raises(ResourceNotFound, match="has no version 7 .latest: 1"):
        my.data.get("small@7")
    for bad in ("small@zero", "small@0", "bad name@1"):
        with pytest.raises(InvalidParameter, match="Invalid dataset"):
            my.data.get_version(bad)


def test_get_returns_the_exact_version_even_after_the_files_changed(project):
    df = churn()
    write_parts(project / "data", df)
    my.data.register("churn", "data")
    shutil.rmtree(project / "data")
    write_parts(project / "data", churn(10, seed=9))
    got = my.data.get("churn@1")
    pd.testing.assert_frame_equal(got, df)
    arrow = my.data.get("churn@1", as_="arrow")
    assert arrow.num_rows == 400 and arrow.column_names == list(df.columns)
    with pytest.raises(InvalidParameter, match="as_ must be"):
        my.data.get("churn@1", as_="excel")


def test_splits_are_reproducible_group_aware_and_verifiable():
    df = pd.concat([churn(300), churn(300).assign(tenure=0)], ignore_index=True)
    a = my.data.split(df, by="customer_id", fractions={"train": 0.7, "test": 0.3}, seed=11)
    b = my.data.split(
        df.sample(frac=1, random_state=3),
        by="customer_id",
        fractions={"train": 0.7, "test": 0.3},
        seed=11,
    )
    assert a.row_hashes == b.row_hashes  # row order does not matter
    assert set(a["train"].customer_id).isdisjoint(a["test"].customer_id)  # groups stay whole
    assert len(a["train"]) + len(a["test"]) == len(df)
    assert 0.6 < len(a["train"]) / len(df) < 0.8
    other = my.data.split(df, by="customer_id", fractions={"train": 0.7, "test": 0.3}, seed=12)
    assert other.row_hashes != a.row_hashes
    record = a.record()
    assert my.data.verify_split(df, record)
    assert not my.data.verify_split(df.iloc[5:], record)
    assert not my.data.verify_split(df.assign(customer_id=df.customer_id + 1), record)
    with pytest.raises(InvalidParameter, match="sum to 1"):
        my.data.split(df, fractions={"train": 0.7, "test": 0.7})
    with pytest.raises(InvalidParameter, match="no column 'id'"):
        my.data.split(df, by="id")


def test_lineage_walks_model_run_dataset_and_content(project):
    from sklearn.linear_model import LogisticRegression

    write_parts(project / "data", churn())
    version = my.data.register("churn", "data")
    df = my.data.get("churn@1")
    parts = my.data.split(df, by="customer_id", fractions={"train": 0.8, "test": 0.2}, seed=5)
    with my.start_run(experiment="lineage") as run:
        my.log_input("churn@1", "train", split=parts)
        my.log_input(version, "test", split=parts)
        train = parts["train"]
        model = LogisticRegression(max_iter=200).fit(train[["tenure", "charges"]], train.churned)
        my.log_model(model, "model", input_example=train[["tenure", "charges"]].head(3))
    my.register_model(f"runs:/{run.run_id}/model", "churn-model")

    lineage = my.lineage("models:/churn-model/1")
    assert lineage.run_id == run.run_id
    by_context = {i.context: i for i in lineage.inputs}
    assert set(by_context) == {"train", "test"}
    train_in = by_context["train"]
    assert train_in.version.ref == "churn@1" and train_in.digest == version.oid
    # The recorded split verifies against the data the registry returns today.
    assert my.data.verify_split(my.data.get(train_in.version.ref), train_in.split, "train")
    assert train_in.split["parts"]["train"]["rows"] == len(parts["train"])
    assert set(by_context["test"].split["parts"]) == {"test"}
    with pytest.raises(InvalidParameter, match="no part 'valid'"), my.start_run(experiment="x"):
        my.log_input("churn@1", "valid", split=parts)


def test_gc_frees_only_what_nothing_references(project):
    write_parts(project / "data", churn())
    my.data.register("churn", "data")
    svc = my.data.data_service()
    # Content known only to a run input (logged by hand) is kept too.
    (project / "run-only").mkdir()
    (project / "run-only" / "x.bin").write_bytes(b"kept for the run")
    run_only = svc.add("run-only")
    with my.start_run(experiment="gc") as run:
        my.client().log_inputs(run.run_id, [RunInput("adhoc", run_only.oid, None, "train")])
    (project / "run-only.yard").unlink()
    # Scratch data whose pointer is gone: garbage.
    (project / "scratch").mkdir()
    (project / "scratch" / "big.bin").write_bytes(b"\0" * 10_000)
    scratch = svc.add("scratch")
    (project / "scratch.yard").unlink()
    before = set(svc.cache.iter_oids())

    planned = svc.gc(dry_run=True)
    scratch_objects = {scratch.oid, *(e.oid for e in svc.tree(scratch.oid).entries)}
    assert set(planned.removed) == scratch_objects
    assert planned.freed >= 10_000
    assert set(svc.cache.iter_oids()) == before  # a dry run deletes nothing

    done = svc.gc(dry_run=False)
    assert set(done.removed) == scratch_objects
    assert set(svc.cache.iter_oids()) == before - scratch_objects
    shutil.rmtree(project / "data")
    assert len(my.data.get("churn@1")) == 400  # still whole
    assert svc.cache.has(run_only.oid)
