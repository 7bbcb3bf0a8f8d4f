"""Batch prediction on Ray (a local Ray with 2 CPUs, started once for this module):
the same output as the local engine, progress per partition, errors from tasks
without Ray's traceback, and a Ray run resuming a local run's finished parts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

import modelyard as my
from modelyard.cli import Services
from modelyard.cli.main import app
from modelyard.core.errors import ModelyardError
from modelyard.serving.batch import predict_batch

ray = pytest.importorskip("ray")

FEATURES = ["f0", "f1", "f2"]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[LogisticRegression, Path]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.standard_normal((400, 3)), columns=FEATURES)
    clf = LogisticRegression().fit(X, np.where(X.f0 - X.f2 > 0, 1, 0))
    path = tmp_path_factory.mktemp("ray-models") / "clf"
    my.models.save(clf, path, input_example=X.head(3))
    return clf, path


def dataset(folder: Path, files: int = 3, rows: int = 2_000, group: int = 300) -> pd.DataFrame:
    """``files`` Parquet files of ``rows`` rows each, ids running on across files."""
    rng = np.random.default_rng(1)
    frames = []
    for i in range(files):
        df = pd.DataFrame(rng.standard_normal((rows, 3)), columns=FEATURES)
        df.insert(0, "id", np.arange(i * rows, (i + 1) * rows, dtype="int64"))
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(df, preserve_index=False)
        pq.write_table(table, folder / f"part-{i}.parquet", row_group_size=group)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


class Recorder:
    def __init__(self, stop_after: int | None = None) -> None:
        self.advances: list[int] = []
        self.stop_after = stop_after

    def start(self, total_rows: int, done_rows: int) -> None:
        self.total, self.done = total_rows, done_rows

    def advance(self, rows: int) -> None:
        self.advances.append(rows)
        if self.stop_after is not None and sum(self.advances) >= self.stop_after:
            raise KeyboardInterrupt

    def warn(self, message: str) -> None:
        raise AssertionError(message)


def test_ray_writes_what_the_local_engine_writes(local_ray, model, tmp_path: Path) -> None:
    clf, path = model
    df = dataset(tmp_path / "in")
    progress = Recorder()
    report = predict_batch(
        path, tmp_path / "in", tmp_path / "ray.parquet", batch_size=500, engine="ray",
        progress=progress,
    )  # fmt: skip
    local = predict_batch(path, tmp_path / "in", tmp_path / "local.parquet", batch_size=500)
    assert pq.read_table(tmp_path / "ray.parquet").equals(pq.read_table(tmp_path / "local.parquet"))
    out = pd.read_parquet(tmp_path / "ray.parquet")
    np.testing.assert_array_equal(out["id"], df["id"])
    np.testing.assert_array_equal(out["prediction"], clf.predict(df[FEATURES]))
    assert (report.engine, report.rows, report.files, report.chunks) == (
        "ray",
        6_000,
        3,
        local.chunks,
    )
    # one advance per partition (row groups 300+300 = 600 rows, the last of a file 200)
    assert sorted(progress.advances) == sorted([600, 600, 600, 200] * 3)
    assert progress.total == 6_000 and progress.done == 0
    assert not Path(f"{tmp_path / 'ray.parquet'}.parts").exists()

    predict_batch(path, tmp_path / "in", tmp_path / "p.parquet", proba=True, engine="ray")
    proba = pd.read_parquet(tmp_path / "p.parquet")
    assert list(proba.columns) == ["id", "proba_0", "proba_1"]
    np.testing.assert_allclose(proba[["proba_0", "proba_1"]], clf.predict_proba(df[FEATURES]))


def test_ray_resumes_a_local_run(local_ray, model, tmp_path: Path) -> None:
    clf, path = model
    df = dataset(tmp_path / "in", files=2)
    out = tmp_path / "preds.parquet"
    with pytest.raises(KeyboardInterrupt):
        predict_batch(path, tmp_path / "in", out, batch_size=600, progress=Recorder(1_300))
    progress = Recorder()
    report = predict_batch(
        path, tmp_path / "in", out, batch_size=600, resume=True, engine="ray", progress=progress
    )
    assert report.reused_chunks == (0, 1) and report.predicted_rows == 4_000 - 1_200
    assert progress.done == 1_200 and sum(progress.advances) == 2_800
    out_df = pd.read_parquet(out)
    np.testing.assert_array_equal(out_df["id"], df["id"])
    np.testing.assert_array_equal(out_df["prediction"], clf.predict(df[FEATURES]))


def test_a_failing_task_is_a_plain_error(local_ray, model, tmp_path: Path) -> None:
    _, path = model
    df = dataset(tmp_path / "in", files=1)
    df.loc[1_000, "f1"] = np.nan
    pq.write_table(
        pa.Table.from_pandas(df, preserve_index=False), tmp_path / "in" / "part-0.parquet"
    )
    with pytest.raises(ModelyardError) as err:
        predict_batch(path, tmp_path / "in", tmp_path / "o.parquet", batch_size=500, engine="ray")
    assert err.value.message.startswith("The model raised ValueError on rows 1,000-1,499 of")
    assert "Traceback" not in err.value.message
    assert not (tmp_path / "o.parquet").exists()
    assert not (tmp_path / "o.parquet.parts").exists()  # nothing finished, nothing to resume


def test_the_cli_on_ray(local_ray, model, tmp_path: Path) -> None:
    _, path = model
    dataset(tmp_path / "in", files=2)
    result = CliRunner().invoke(
        app,
        ["predict", str(path), "-i", str(tmp_path / "in"), "-o", "o.parquet", "--engine", "ray"],
        obj=Services(),
    )
    assert result.exit_code == 0, result.output
    assert "Wrote 4,000 rows (id, prediction) from 2 files" in result.stdout
    assert "engine ray" in result.stdout
    assert pq.read_metadata(tmp_path / "o.parquet").num_rows == 4_000
