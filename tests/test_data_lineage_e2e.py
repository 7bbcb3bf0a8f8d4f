"""Done-when of data versioning: a model's training data, recovered byte-exact from
its registry entry on a machine that never saw it (an empty cache, no workspace
copy), through a local-folder remote and through S3 (moto, over the wire)."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import modelyard as my


@pytest.fixture
def project(db_url: str, tmp_path: Path) -> Iterator[Path]:
    (tmp_path / ".git").mkdir()
    yield tmp_path
    while my.active_run():
        my.end_run()
    my.client().store.close()


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def train_and_register(project: Path, remote: str) -> tuple[pd.DataFrame, dict[str, str]]:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(4)
    df = pd.DataFrame(
        {
            "customer_id": np.arange(2_000),
            "tenure": rng.integers(1, 72, 2_000),
            "charges": rng.normal(70, 20, 2_000),
            "churned": rng.integers(0, 2, 2_000),
        }
    )
    data = project / "data" / "churn"
    data.mkdir(parents=True)
    for i in range(4):
        df.iloc[i * 500 : (i + 1) * 500].to_parquet(data / f"part-{i}.parquet", index=False)
    (data / "README.txt").write_text("exported from the warehouse\n")
    original = digests(data)

    version = my.data.register("churn", data, remote=remote)
    assert version.remote == remote
    parts = my.data.split(my.data.get("churn@1"), by="customer_id", seed=1)
    with my.start_run(experiment="churn") as run:
        my.log_input(version, "train", split=parts)
        train = parts["train"]
        model = LogisticRegression(max_iter=300).fit(train[["tenure", "charges"]], train.churned)
        my.log_model(model, "model", input_example=train[["tenure", "charges"]].head(2))
    my.register_model(f"runs:/{run.run_id}/model", "churn")
    return df, original


def recover_on_a_fresh_machine(project: Path, db_url: str, df: pd.DataFrame, original: dict):
    # Another machine: its own empty home (cache), the same registry and remote, and
    # no copy of the data in the workspace.
    shutil.rmtree(project / "data")
    my.configure(home=project / "elsewhere", db_url=db_url, artifacts=str(project / "artifacts"))
    svc = my.data.data_service()
    assert not list(svc.cache.iter_oids())

    lineage = my.lineage("models:/churn/1")
    (train,) = lineage.inputs
    assert train.context == "train" and train.version.ref == "churn@1"
    files = svc.materialize(train.version.ref)
    recovered = {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in files}
    assert recovered == original  # byte-exact, every file, nothing more
    got = my.data.get(train.version.ref)
    pd.testing.assert_frame_equal(got, df)
    assert my.data.verify_split(got, train.split, "train")


def test_training_data_comes_back_byte_exact_from_a_folder_remote(project, db_url):
    remote = str(project / "remote")
    my.configure(home=project / "home", db_url=db_url, artifacts=str(project / "artifacts"))
    df, original = train_and_register(project, remote)
    recover_on_a_fresh_machine(project, db_url, df, original)


def test_training_data_comes_back_byte_exact_from_s3(project, db_url, s3_artifacts):
    remote = f"{s3_artifacts}/data"
    my.configure(home=project / "home", db_url=db_url, artifacts=str(project / "artifacts"))
    df, original = train_and_register(project, remote)
    recover_on_a_fresh_machine(project, db_url, df, original)
