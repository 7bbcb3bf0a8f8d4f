"""Batch prediction with the local engine: ``predict_batch`` and ``modelyard predict``
over a file, a folder, a glob and S3 (moto); id columns, probabilities, errors found
before any work, atomic output, and resuming a job killed with SIGKILL.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
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
from modelyard.core.errors import (
    InvalidParameter,
    InvalidState,
    ModelyardError,
    ResourceNotFound,
)
from modelyard.serving import batch
from modelyard.serving.batch import BatchWarning, predict_batch

FEATURES = ["f0", "f1", "f2", "f3"]

# Custom models for the tests, saved from a module written to a temporary folder
# (the pyfunc flavor stores the class's source with the package).
MODELS_SOURCE = '''
import time

import numpy as np


class BatchLength:
    """Predicts, for each row, how many rows its predict call got."""

    def load_context(self, context):
        pass

    def predict(self, context, model_input):
        return np.full(len(model_input), len(model_input), dtype="int64")


class SlowDouble:
    """2 * f0, taking 50 ms per call: slow enough to kill a job halfway."""

    def load_context(self, context):
        pass

    def predict(self, context, model_input):
        time.sleep(0.05)
        return model_input["f0"].to_numpy() * 2.0
'''


def frame(n: int, start: int = 0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.standard_normal((n, len(FEATURES))), columns=FEATURES)
    df.insert(0, "id", np.arange(start, start + n, dtype="int64"))
    return df


def write(df: pd.DataFrame, path: Path, row_group_size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Model packages: a LogisticRegression (classes 'no'/'yes'), BatchLength, SlowDouble."""
    root = tmp_path_factory.mktemp("models")
    train = frame(500, seed=1)
    y = np.where(train.f0 + train.f1 > 0, "yes", "no")
    clf = LogisticRegression().fit(train[FEATURES], y)
    my.models.save(clf, root / "clf", input_example=train[FEATURES].head(3))
    (root / "src").mkdir()
    (root / "src" / "batchtest_models.py").write_text(MODELS_SOURCE)
    sys.path.insert(0, str(root / "src"))
    try:
        mod = importlib.import_module("batchtest_models")
        my.models.save(mod.BatchLength(), root / "lengths", input_example=train[FEATURES].head(3))
        my.models.save(mod.SlowDouble(), root / "slow", input_example=train[FEATURES].head(3))
    finally:
        sys.path.remove(str(root / "src"))
        sys.modules.pop("batchtest_models", None)
    return {
        "clf": clf,
        "clf_path": root / "clf",
        "lengths": root / "lengths",
        "slow": root / "slow",
    }


def expected(models: dict, df: pd.DataFrame) -> np.ndarray:
    return models["clf"].predict(df[FEATURES])


def leftovers(folder: Path) -> list[str]:
    """Temporary files and parts folders the job should not have left behind."""
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name or p.suffix == ".parts")


class Interrupt(Exception):
    pass


class StopAfter:
    """A progress that stops the job (like Ctrl+C) once ``rows`` rows are predicted."""

    def __init__(self, rows: int) -> None:
        self.rows, self.seen, self.warnings = rows, 0, []

    def start(self, total_rows: int, done_rows: int) -> None:
        self.total, self.done = total_rows, done_rows

    def advance(self, rows: int) -> None:
        self.seen += rows
        if self.seen >= self.rows:
            raise Interrupt

    def warn(self, message: str) -> None:
        self.warnings.append(message)


# -- inputs --------------------------------------------------------------------------------
def test_a_file_streams_batches_and_keeps_the_ids(models, tmp_path: Path) -> None:
    df = frame(10_000)
    data = write(df, tmp_path / "data.parquet", row_group_size=1_500)
    report = predict_batch(
        models["clf_path"], data, tmp_path / "out" / "preds.parquet", batch_size=1_000
    )
    out = pd.read_parquet(tmp_path / "out" / "preds.parquet")
    assert list(out.columns) == ["id", "prediction"]
    np.testing.assert_array_equal(out["id"], df["id"])
    np.testing.assert_array_equal(out["prediction"], expected(models, df))
    assert (report.rows, report.predicted_rows, report.files) == (10_000, 10_000, 1)
    assert report.chunks == 7  # one per row group: each holds at least a batch
    assert report.columns == ("id", "prediction") and report.reused_chunks == ()
    assert report.output == str(tmp_path / "out" / "preds.parquet")
    assert leftovers(tmp_path / "out") == []


def test_batch_size_rows_per_predict_call_even_in_a_huge_row_group(models, tmp_path: Path) -> None:
    # One row group of 10,000 rows is re-chunked into predict calls of 3,000 rows; small
    # row groups (700 rows) are read together up to the batch size.
    data = write(frame(10_000), tmp_path / "big.parquet", row_group_size=10_000)
    predict_batch(models["lengths"], data, tmp_path / "a.parquet", batch_size=3_000)
    sizes = pd.read_parquet(tmp_path / "a.parquet")["prediction"]
    assert sizes.tolist() == [3_000] * 9_000 + [1_000] * 1_000
    small = write(frame(2_100), tmp_path / "small.parquet", row_group_size=700)
    report = predict_batch(models["lengths"], small, tmp_path / "b.parquet", batch_size=1_000)
    assert report.chunks == 2  # row groups 0+1 (1,400 rows), then 2 (700)
    sizes = pd.read_parquet(tmp_path / "b.parquet")["prediction"].tolist()
    assert sizes == [1_000] * 1_000 + [400] * 400 + [700] * 700


def test_a_folder_and_a_glob(models, tmp_path: Path) -> None:
    first, second = frame(1_000, 0, seed=2), frame(800, 1_000, seed=3)
    write(second, tmp_path / "in" / "part-b.parquet", 300)
    write(first, tmp_path / "in" / "part-a.parquet", 300)
    write(frame(5, 9_000), tmp_path / "in" / ".hidden.parquet", 300)
    write(frame(5, 9_000), tmp_path / "in" / "_temporary.parquet", 300)
    write(frame(5, 9_000), tmp_path / "in" / "sub" / "nested.parquet", 300)
    (tmp_path / "in" / "_SUCCESS").write_text("")
    (tmp_path / "in" / "notes.txt").write_text("not data")
    both = pd.concat([first, second], ignore_index=True)
    for source in (tmp_path / "in", str(tmp_path / "in" / "part-*.parquet")):
        report = predict_batch(
            models["clf_path"], source, tmp_path / "preds.parquet", batch_size=250
        )
        out = pd.read_parquet(tmp_path / "preds.parquet")
        np.testing.assert_array_equal(out["id"], both["id"])  # a's rows first: sorted names
        np.testing.assert_array_equal(out["prediction"], expected(models, both))
        assert report.files == 2
    report = predict_batch(
        models["clf_path"], str(tmp_path / "in" / "**" / "*.parquet"), "all.parquet"
    )
    assert report.files == 3  # a glob may reach into sub-folders (hidden names stay out)


def test_s3_input_and_output(models, s3_artifacts: str, tmp_path: Path) -> None:
    import fsspec

    fs = fsspec.filesystem("s3")
    first, second = frame(1_200, 0, seed=4), frame(700, 1_200, seed=5)
    for name, df in (("x1.parquet", first), ("x2.parquet", second)):
        with fs.open(f"{s3_artifacts}/in/{name}", "wb") as f:
            pq.write_table(pa.Table.from_pandas(df, preserve_index=False), f, row_group_size=400)
    output = f"{s3_artifacts}/out/preds.parquet"
    report = predict_batch(models["clf_path"], f"{s3_artifacts}/in/", output, batch_size=300)
    assert (report.rows, report.files, report.output) == (1_900, 2, output)
    with fs.open(output, "rb") as f:
        out = pq.read_table(f).to_pandas()
    both = pd.concat([first, second], ignore_index=True)
    np.testing.assert_array_equal(out["id"], both["id"])
    np.testing.assert_array_equal(out["prediction"], expected(models, both))
    fs.invalidate_cache()
    assert [p.rsplit("/", 1)[1] for p in fs.ls(f"{s3_artifacts}/out/")] == ["preds.parquet"]
    # a glob on S3, and a missing prefix
    report = predict_batch(models["clf_path"], f"{s3_artifacts}/in/x2*", tmp_path / "two.parquet")
    assert report.rows == 700
    with pytest.raises(ResourceNotFound, match="No input at"):
        predict_batch(models["clf_path"], f"{s3_artifacts}/nothing.parquet", tmp_path / "n.parquet")


# -- columns ---------------------------------------------------------------------------------
def test_id_column_choices(models, tmp_path: Path) -> None:
    df = frame(600)
    data = write(df.rename(columns={"id": "key"}), tmp_path / "keyed.parquet", 200)
    out = tmp_path / "out.parquet"
    predict_batch(models["clf_path"], data, out)  # no `id` column: none kept
    assert pq.read_schema(out).names == ["prediction"]
    predict_batch(models["clf_path"], data, out, id_column="key")
    kept = pd.read_parquet(out)
    assert list(kept.columns) == ["key", "prediction"]
    np.testing.assert_array_equal(kept["key"], df["id"])
    with pytest.raises(InvalidParameter, match=r"has no id column 'customer'.*--no-id"):
        predict_batch(models["clf_path"], data, out, id_column="customer")
    with_id = write(df, tmp_path / "with_id.parquet", 200)
    predict_batch(models["clf_path"], with_id, out, id_column="")
    assert pq.read_schema(out).names == ["prediction"]


@pytest.mark.filterwarnings("ignore:X has feature names")  # the unsigned model gets a frame
def test_tensor_and_unsigned_models_get_every_column_but_the_id(tmp_path: Path) -> None:
    df = frame(1_000)
    X = df[FEATURES].to_numpy()
    clf = LogisticRegression().fit(X, X[:, 0] > X[:, 3])
    my.models.save(clf, tmp_path / "tensor", input_example=X[:3])  # shape (-1, 4)
    my.models.save(clf, tmp_path / "unsigned", signature=None)
    data = write(df, tmp_path / "in" / "data.parquet", 300)
    for name in ("tensor", "unsigned"):
        predict_batch(tmp_path / name, data, tmp_path / f"{name}.parquet")
        out = pd.read_parquet(tmp_path / f"{name}.parquet")
        np.testing.assert_array_equal(out["id"], df["id"])
        np.testing.assert_array_equal(out["prediction"], clf.predict(X))
    wide = write(df.assign(f4=1.0), tmp_path / "wide.parquet", 300)
    with pytest.raises(InvalidParameter, match=r"takes one tensor 'input' of 4 columns, but .* 5"):
        predict_batch(tmp_path / "tensor", wide, tmp_path / "t.parquet")
    write(df.drop(columns=["f3"]), tmp_path / "in" / "narrow.parquet", 300)
    with pytest.raises(InvalidParameter, match=r"narrow.parquet' is missing column\(s\) 'f3'"):
        predict_batch(tmp_path / "unsigned", tmp_path / "in", tmp_path / "u.parquet")


def test_proba_columns_are_named_by_class(models, tmp_path: Path) -> None:
    df = frame(900)
    data = write(df, tmp_path / "data.parquet", 400)
    report = predict_batch(models["clf_path"], data, tmp_path / "p.parquet", proba=True)
    out = pd.read_parquet(tmp_path / "p.parquet")
    assert report.columns == ("id", "proba_no", "proba_yes")
    np.testing.assert_allclose(
        out[["proba_no", "proba_yes"]].to_numpy(), models["clf"].predict_proba(df[FEATURES])
    )
    with pytest.raises(InvalidParameter, match=r"has no predict_proba: drop --proba"):
        predict_batch(models["lengths"], data, tmp_path / "q.parquet", proba=True)
    assert not (tmp_path / "q.parquet.parts").exists()


def test_missing_columns_are_named_before_any_work(models, tmp_path: Path) -> None:
    write(frame(500), tmp_path / "in" / "a.parquet", 100)
    write(frame(500).drop(columns=["f1", "f3"]), tmp_path / "in" / "b.parquet", 100)
    out = tmp_path / "preds.parquet"
    with pytest.raises(InvalidParameter) as err:
        predict_batch(models["clf_path"], tmp_path / "in", out)
    assert str(tmp_path / "in" / "b.parquet") in err.value.message
    assert "missing column(s) 'f1', 'f3' required by the model's signature" in err.value.message
    assert not out.exists() and not Path(f"{out}.parts").exists()  # a.parquet not started

    result = CliRunner().invoke(
        app, ["predict", str(models["clf_path"]), "-i", str(tmp_path / "in"), "-o", str(out)],
        obj=Services(),
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "missing column(s) 'f1', 'f3'" in result.stderr
    assert "Traceback" not in result.output


def test_bad_inputs_are_clear_errors(models, tmp_path: Path) -> None:
    pkg = models["clf_path"]
    data = write(frame(100), tmp_path / "data.parquet", 50)
    cases = [
        (tmp_path / "nope.parquet", ResourceNotFound, "No input at"),
        (str(tmp_path / "*.csv"), ResourceNotFound, "No file matches"),
        (tmp_path / "empty", ResourceNotFound, r"holds no \*.parquet file"),
        (tmp_path / "notes.parquet", InvalidParameter, "is not a readable Parquet file"),
    ]
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.parquet").write_text("hello")
    for source, error, message in cases:
        with pytest.raises(error, match=message):
            predict_batch(pkg, source, tmp_path / "o.parquet")
    with pytest.raises(InvalidParameter, match="batch_size must be a positive"):
        predict_batch(pkg, data, tmp_path / "o.parquet", batch_size=0)
    with pytest.raises(InvalidParameter, match="engine must be one of local, ray"):
        predict_batch(pkg, data, tmp_path / "o.parquet", engine="spark")
    with pytest.raises(InvalidParameter, match="is also an input"):
        predict_batch(pkg, data, data)
    with pytest.raises(InvalidParameter, match="is a folder"):
        predict_batch(pkg, data, tmp_path / "empty")
    empty = write(frame(0), tmp_path / "zero.parquet", 50)
    with pytest.raises(InvalidParameter, match="holds no rows"):
        predict_batch(pkg, empty, tmp_path / "o.parquet")
    with pytest.raises(ResourceNotFound, match="No model package"):
        predict_batch(tmp_path / "no-model", data, tmp_path / "o.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "data.parquet", "empty", "notes.parquet", "zero.parquet",
    ]  # fmt: skip

    result = CliRunner().invoke(
        app, ["predict", str(pkg), "-i", str(tmp_path / "nope"), "-o", "o.parquet"], obj=Services()
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: No input at") and "Traceback" not in result.output


def test_a_missing_ray_names_the_extra(models, tmp_path: Path, monkeypatch) -> None:
    data = write(frame(100), tmp_path / "data.parquet", 50)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(InvalidParameter, match=r"pip install 'modelyard\[ray\]'"):
        predict_batch(models["clf_path"], data, tmp_path / "o.parquet", engine="ray")
    assert not (tmp_path / "o.parquet.parts").exists()
    with pytest.raises(InvalidParameter, match="only applies to engine='ray'"):
        predict_batch(models["clf_path"], data, tmp_path / "o.parquet", ray_address="auto")


def test_importing_modelyard_loads_neither_pyarrow_nor_ray() -> None:
    code = (
        "import sys, modelyard, modelyard.cli.predict\n"
        "assert 'pyarrow' not in sys.modules and 'ray' not in sys.modules\n"
        "import modelyard.serving.batch\n"
        "assert 'ray' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- atomic output, interruption and resume -------------------------------------------------
def test_a_failing_job_keeps_the_old_output_and_its_finished_parts(models, tmp_path: Path) -> None:
    df = frame(3_000)
    df.loc[2_500, "f2"] = np.nan  # LogisticRegression refuses NaN: chunk 5 fails
    data = write(df, tmp_path / "data.parquet", 500)
    out = tmp_path / "preds.parquet"
    out.write_bytes(b"the previous, complete output")
    with pytest.raises(ModelyardError) as err:
        predict_batch(models["clf_path"], data, out, batch_size=500)
    message = err.value.message
    assert "The model raised ValueError on rows 2,500-2,999 of" in message
    assert "5 finished chunk(s) kept in" in message and "--resume continues" in message
    assert out.read_bytes() == b"the previous, complete output"
    parts = Path(f"{out}.parts")
    assert sorted(p.name for p in parts.glob("part-*")) == [
        f"part-{i:05d}.parquet" for i in range(5)
    ]
    assert not [p for p in parts.iterdir() if ".tmp-" in p.name]

    # Fixed data is a changed input: --resume refuses, a plain run starts over.
    df.loc[2_500, "f2"] = 0.0
    write(df, data, 500)
    with pytest.raises(
        InvalidState, match=r"Cannot resume: the input changed: .*data.parquet changed"
    ):
        predict_batch(models["clf_path"], data, out, batch_size=500, resume=True)
    with pytest.warns(BatchWarning, match=r"discarding 5 finished part\(s\)"):
        report = predict_batch(models["clf_path"], data, out, batch_size=500)
    assert report.discarded_parts == 5 and report.reused_chunks == ()
    np.testing.assert_array_equal(pd.read_parquet(out)["prediction"], expected(models, df))
    assert leftovers(tmp_path) == []


def test_resume_reuses_finished_chunks_and_refuses_changes(models, tmp_path: Path) -> None:
    df = frame(4_000)
    data = write(df, tmp_path / "data.parquet", 500)
    out = tmp_path / "preds.parquet"
    with pytest.raises(Interrupt):
        predict_batch(models["clf_path"], data, out, batch_size=500, progress=StopAfter(1_600))
    parts = Path(f"{out}.parts")
    state = json.loads((parts / "progress.json").read_text())
    assert state["done"] == [0, 1, 2] and state["chunks"] == 8 and state["rows"] == 4_000

    other = tmp_path / "other-model"
    clf = LogisticRegression(C=0.01).fit(df[FEATURES], df.f2 > 0)
    my.models.save(clf, other, input_example=df[FEATURES].head(2))
    refusals = [
        ({"model_uri": other}, r"the model changed \(.*clf -> .*other-model\)"),
        ({"batch_size": 400}, r"--batch-size changed \(500 -> 400\)"),
        ({"proba": True}, "--proba changed"),
        ({"id_column": ""}, r"the id column changed \('id' -> None\)"),
    ]
    for change, message in refusals:
        args = {"model_uri": models["clf_path"], "batch_size": 500, **change}
        with pytest.raises(InvalidState, match=message):
            predict_batch(input=data, output=out, resume=True, **args)
    moved = tmp_path / "moved.parquet"
    data.rename(moved)
    with pytest.raises(InvalidState, match=r"input changed: .*data.parquet was removed"):
        predict_batch(models["clf_path"], moved, out, batch_size=500, resume=True)
    moved.rename(data)

    progress = StopAfter(10**9)
    report = predict_batch(
        models["clf_path"], data, out, batch_size=500, resume=True, progress=progress
    )
    assert report.reused_chunks == (0, 1, 2)
    assert (report.rows, report.predicted_rows) == (4_000, 2_500)
    assert (progress.total, progress.done, progress.seen) == (4_000, 1_500, 2_500)
    result = pd.read_parquet(out)
    np.testing.assert_array_equal(result["id"], df["id"])
    np.testing.assert_array_equal(result["prediction"], expected(models, df))
    assert not parts.exists()

    # Nothing to resume: a warning, then a full run.
    with pytest.warns(BatchWarning, match="nothing to resume"):
        report = predict_batch(models["clf_path"], data, out, batch_size=500, resume=True)
    assert report.predicted_rows == 4_000


def test_resume_pins_the_registry_version(models, sdk, tmp_path: Path) -> None:
    df = frame(2_000)
    data = write(df, tmp_path / "data.parquet", 500)
    out = tmp_path / "preds.parquet"
    first = my.register_model(str(models["clf_path"]), "churn")
    my.set_alias("churn", "prod", first.version)
    with pytest.raises(Interrupt):
        predict_batch("models:/churn@prod", data, out, batch_size=500, progress=StopAfter(1_000))
    state = json.loads(Path(f"{out}.parts/progress.json").read_text())
    assert state["fingerprint"]["model"]["name"] == "churn"
    assert state["fingerprint"]["model"]["version"] == 1
    second = my.register_model(str(models["lengths"]), "churn")
    my.set_alias("churn", "prod", second.version)
    with pytest.raises(InvalidState, match=r"the model changed \(churn version 1 -> 2\)"):
        predict_batch("models:/churn@prod", data, out, batch_size=500, resume=True)
    my.set_alias("churn", "prod", first.version)
    report = predict_batch("models:/churn@prod", data, out, batch_size=500, resume=True)
    assert report.reused_chunks == (0,)
    np.testing.assert_array_equal(pd.read_parquet(out)["prediction"], expected(models, df))


@pytest.fixture
def sdk(home: Path, db_url: str, tmp_path: Path):
    my.configure(home=home, db_url=db_url, artifacts=str(tmp_path / "artifacts"))
    service = my.client()
    yield service
    service.store.close()
    my.configure(home=tmp_path / "unused")


def test_resume_after_sigkill_predicts_every_row_once(models, tmp_path: Path) -> None:
    """The CLI killed with SIGKILL halfway, then run again with --resume: the output has
    every id once and in order, and the parts that were finished are reused as they are
    (one is altered between the runs, and the alteration shows in the output)."""
    rows, group = 12_000, 200
    df = frame(rows)
    data = write(df, tmp_path / "data.parquet", group)
    out = tmp_path / "preds.parquet"
    parts = Path(f"{out}.parts")
    cmd = [
        sys.executable, "-m", "modelyard.cli.main", "predict", str(models["slow"]),
        "--input", str(data), "--output", str(out), "--batch-size", str(group),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    deadline = time.monotonic() + 120  # a guard against a hung job, not a timing assertion
    while len(list(parts.glob("part-*.parquet"))) < 3:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the job ended or hung before writing 3 parts: {proc.communicate()}")
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    finished = sorted(int(p.name[5:10]) for p in parts.glob("part-*.parquet"))
    assert 3 <= len(finished) < rows // group and finished == list(range(len(finished)))
    state = json.loads((parts / "progress.json").read_text())
    assert set(state["done"]) <= set(finished)

    # Alter a finished part: if resuming recomputed it, the alteration would vanish.
    altered = pq.read_table(parts / "part-00001.parquet").to_pandas()
    altered["prediction"] = -1.0
    pq.write_table(
        pa.Table.from_pandas(altered, preserve_index=False), parts / "part-00001.parquet"
    )

    done = subprocess.run(
        [*cmd, "--resume", "--json"], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["reused_chunks"] == finished
    assert report["predicted_rows"] == rows - group * len(finished)
    result = pd.read_parquet(out)
    np.testing.assert_array_equal(result["id"], np.arange(rows))
    want = df["f0"].to_numpy() * 2.0
    want[group : 2 * group] = -1.0
    np.testing.assert_array_equal(result["prediction"], want)
    assert not parts.exists()


def test_the_cli_summary_and_json(models, tmp_path: Path) -> None:
    data = write(frame(1_000), tmp_path / "data.parquet", 300)
    runner = CliRunner()
    args = ["predict", str(models["clf_path"]), "-i", str(data), "-o", "p.parquet", "-b", "256"]
    result = runner.invoke(app, args, obj=Services())
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Wrote 1,000 rows (id, prediction) from 1 file to ")
    assert "rows/s, engine local)" in result.output
    result = runner.invoke(app, [*args, "--proba", "--json", "--no-id"], obj=Services())
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["columns"] == ["proba_no", "proba_yes"] and report["rows"] == 1_000
    result = runner.invoke(app, [*args, "--no-id", "--id-column", "id"], obj=Services())
    assert result.exit_code == 2 and "not both" in result.output


def test_the_plan_groups_row_groups_into_chunks() -> None:
    f = batch.InputFile("x.parquet", 1, "v", ("a",), (300, 0, 300, 500, 2_000, 100))
    chunks = batch.plan_chunks([f], batch_size=500)
    assert [(c.row_groups, c.rows, c.first_row) for c in chunks] == [
        ((0, 2), 600, 0),
        ((3,), 500, 600),
        ((4,), 2_000, 1_100),
        ((5,), 100, 3_100),
    ]


def test_the_cli_default_batch_size_is_the_service_default() -> None:
    from modelyard.cli import predict as predict_cli

    assert predict_cli.DEFAULT_BATCH_SIZE == batch.DEFAULT_BATCH_SIZE
