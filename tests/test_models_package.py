"""Model packages: the manifest, signatures (inference and every enforcement rule),
integrity checks, the pickle opt-in and the requirements warning.

Models are real scikit-learn estimators fitted on its bundled datasets; packages are
saved into ``tmp_path`` and read back from disk.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression

import modelyard as my
from modelyard.core.errors import ArtifactIntegrityError, InvalidParameter, ResourceAlreadyExists
from modelyard.models import (
    FieldSpec,
    ModelEnvironmentWarning,
    Signature,
    SignatureWarning,
    UnsafeModelError,
    infer_signature,
)
from modelyard.models.manifest import MANIFEST_FILE, sha256_file


class Constant:
    """A model no flavor knows (only pickle can store it)."""

    def predict(self, X):
        return np.full(len(X), 7)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y, LogisticRegression(max_iter=500).fit(X, y)


@pytest.fixture
def iris_pkg(iris, tmp_path: Path) -> Path:
    X, _, clf = iris
    my.models.save(clf, tmp_path / "iris", input_example=X.head(3), metadata={"team": "a"})
    return tmp_path / "iris"


def _manifest(path: Path) -> dict:
    return yaml.safe_load((path / MANIFEST_FILE).read_text())


def _write_manifest(path: Path, data: dict) -> None:
    (path / MANIFEST_FILE).write_text(yaml.safe_dump(data, sort_keys=False))


# -- the package and its manifest ---------------------------------------------------
def test_saved_package_has_a_manifest_hashing_every_other_file(iris_pkg: Path) -> None:
    data = _manifest(iris_pkg)
    files = sorted(p.relative_to(iris_pkg).as_posix() for p in iris_pkg.rglob("*") if p.is_file())
    assert files == sorted([MANIFEST_FILE, "input_example.json", "model.skops", "requirements.txt"])
    assert set(data["files"]) == set(files) - {MANIFEST_FILE}
    for rel, sha in data["files"].items():
        assert sha == sha256_file(iris_pkg / rel)
    assert data["format_version"] == 1
    assert (data["flavor"], data["framework"], data["pickle"]) == ("sklearn", "scikit-learn", False)
    assert data["loader"] == {"model_file": "model.skops"}
    assert data["metadata"] == {"team": "a"}
    assert data["input_example"] == "input_example.json"
    names = sorted(r.split("==")[0] for r in data["requirements"])
    assert names == ["numpy", "pandas", "scikit-learn", "skops"]
    assert all("==" in r for r in data["requirements"])
    req_txt = (iris_pkg / "requirements.txt").read_text().split()
    assert req_txt == data["requirements"]
    assert isinstance(data["created_at"], int) and data["created_at"] > 1_600_000_000_000


def test_round_trip_predicts_like_the_raw_model(iris, iris_pkg: Path) -> None:
    X, _, clf = iris
    model = my.models.load(iris_pkg)
    np.testing.assert_array_equal(model.predict(X), clf.predict(X))
    np.testing.assert_allclose(model.predict_proba(X), clf.predict_proba(X))
    assert model.metadata.flavor == "sklearn" and model.metadata.metadata == {"team": "a"}
    assert isinstance(model.raw, LogisticRegression)
    pd.testing.assert_frame_equal(model.input_example, X.head(3))
    regressor = my.models.load(
        _saved(LinearRegression().fit(X, X["sepal length (cm)"]), X, iris_pkg.parent / "reg")
    )
    assert not hasattr(regressor, "predict_proba")


def _saved(model, X, path: Path) -> Path:
    my.models.save(model, path, input_example=X.head(2))
    return path


def test_save_refuses_an_existing_folder_and_leaves_nothing_behind_on_failure(
    iris, iris_pkg: Path, tmp_path: Path
) -> None:
    X, _, clf = iris
    with pytest.raises(ResourceAlreadyExists, match="already exists"):
        my.models.save(clf, iris_pkg)
    bad_example = pd.DataFrame({"a": [1.0]})  # the model cannot predict on it
    with pytest.raises(InvalidParameter, match="Predicting on input_example failed"):
        my.models.save(clf, tmp_path / "broken", input_example=bad_example)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iris"]  # no temp folder left
    with pytest.raises(InvalidParameter, match="signature must be 'auto'"):
        my.models.save(clf, tmp_path / "x", signature="yes")


def test_an_unknown_model_type_lists_the_supported_flavors(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter) as err:
        my.models.save(Constant(), tmp_path / "c")
    msg = str(err.value)
    assert "test_models_package.Constant" in msg
    for flavor in ("sklearn", "xgboost", "lightgbm", "onnx", "pyfunc"):
        assert flavor in msg
    assert "allow_pickle=True" in msg
    assert not (tmp_path / "c").exists()


# -- pickle: opt in at save and at load -----------------------------------------------
def test_pickle_needs_opt_in_at_save(tmp_path: Path) -> None:
    with pytest.raises(UnsafeModelError, match="needs allow_pickle=True"):
        my.models.save(Constant(), tmp_path / "c", flavor="pickle")
    assert not (tmp_path / "c").exists()


def test_pickle_is_refused_at_load_unless_opted_in(tmp_path: Path) -> None:
    my.models.save(Constant(), tmp_path / "c", allow_pickle=True, input_example=[[1, 2], [3, 4]])
    assert _manifest(tmp_path / "c")["pickle"] is True
    with pytest.raises(UnsafeModelError) as err:
        my.models.load(tmp_path / "c")
    msg = str(err.value)
    assert "arbitrary code" in msg and "allow_pickle=True" in msg
    model = my.models.load(tmp_path / "c", allow_pickle=True)
    np.testing.assert_array_equal(model.predict(np.ones((3, 2), dtype=np.int64)), [7, 7, 7])
    assert isinstance(model.raw, Constant)


# -- integrity -------------------------------------------------------------------------
def test_a_tampered_file_is_refused_naming_it(iris_pkg: Path) -> None:
    with open(iris_pkg / "model.skops", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ArtifactIntegrityError, match=r"file 'model.skops' does not match"):
        my.models.load(iris_pkg)


def test_an_extra_file_is_refused(iris_pkg: Path) -> None:
    (iris_pkg / "code").mkdir()
    (iris_pkg / "code" / "evil.py").write_text("import os\n")
    with pytest.raises(ArtifactIntegrityError, match=r"file 'code/evil.py' that its manifest"):
        my.models.load(iris_pkg)


def test_a_missing_file_is_refused(iris_pkg: Path) -> None:
    (iris_pkg / "input_example.json").unlink()
    with pytest.raises(ArtifactIntegrityError, match=r"'input_example.json' listed .* missing"):
        my.models.verify(iris_pkg)


def test_a_folder_without_manifest_is_not_a_package(tmp_path: Path) -> None:
    with pytest.raises(my.ModelyardError, match="not a model package"):
        my.models.load(tmp_path)


def test_a_newer_format_version_asks_for_an_upgrade(iris_pkg: Path) -> None:
    data = _manifest(iris_pkg)
    data["format_version"] = 2
    _write_manifest(iris_pkg, data)
    with pytest.raises(InvalidParameter, match="upgrade modelyard"):
        my.models.load(iris_pkg)


# -- requirements -----------------------------------------------------------------------
def test_requirement_differences_give_one_warning_listing_them(iris, iris_pkg: Path) -> None:
    data = _manifest(iris_pkg)
    data["requirements"] = [
        "scikit-learn==0.0.1" if r.startswith("scikit-learn==") else r for r in data["requirements"]
    ] + ["no-such-package-xyz==1.2"]
    _write_manifest(iris_pkg, data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = my.models.load(iris_pkg)
    env = [w for w in caught if issubclass(w.category, ModelEnvironmentWarning)]
    assert len(env) == 1
    running = __import__("sklearn").__version__
    msg = str(env[0].message)
    assert f"scikit-learn: saved 0.0.1, running {running}" in msg
    assert "no-such-package-xyz: saved 1.2, not installed" in msg
    np.testing.assert_array_equal(model.predict(iris[0]), iris[2].predict(iris[0]))


def test_matching_requirements_give_no_warning(iris_pkg: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        my.models.load(iris_pkg)


# -- signature inference ------------------------------------------------------------------
def test_signature_from_a_dataframe_and_a_prediction() -> None:
    df = pd.DataFrame(
        {"age": np.array([30, 40], dtype="int32"), "city": ["Oslo", "Rome"], "x": [0.5, 1.5]}
    )
    sig = infer_signature(df, np.array(["yes", "no"], dtype=object))
    assert sig.kind == "columns"
    assert [(f.name, f.dtype, f.shape) for f in sig.inputs] == [
        ("age", "int32", None),
        ("city", "string", None),
        ("x", "float64", None),
    ]
    assert [(f.name, f.dtype, f.shape) for f in sig.outputs] == [("output", "string", (-1,))]
    assert Signature.from_dict(sig.to_dict()) == sig


def test_signature_from_numpy_is_a_tensor_with_a_free_batch_axis() -> None:
    sig = infer_signature(np.zeros((5, 3, 2), dtype=np.float32), np.zeros(5))
    assert sig.kind == "tensor"
    assert sig.inputs == (FieldSpec("input", "float32", (-1, 3, 2)),)
    assert sig.outputs == (FieldSpec("output", "float64", (-1,)),)


def test_signature_from_records_is_columns() -> None:
    sig = infer_signature([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}])
    assert [(f.name, f.dtype) for f in sig.inputs] == [("a", "int64"), ("b", "string")]


def test_saved_signature_comes_from_the_example_and_a_prediction(iris_pkg: Path) -> None:
    sig = my.models.load(iris_pkg).signature
    assert sig.kind == "columns" and len(sig.inputs) == 4
    assert {f.dtype for f in sig.inputs} == {"float64"}
    assert sig.outputs == (FieldSpec("output", "int64", (-1,)),)


# -- signature enforcement -----------------------------------------------------------------
SIG = Signature(
    (FieldSpec("a", "float64"), FieldSpec("b", "int64"), FieldSpec("c", "string")),
)


def _frame(**cols) -> pd.DataFrame:
    return pd.DataFrame(cols)


def test_exact_input_takes_the_fast_path_without_a_copy() -> None:
    df = _frame(a=[1.0], b=[2], c=["x"])
    assert SIG.enforce(df) is df
    obj = _frame(a=[1.0], b=[2], c=pd.Series(["x"], dtype=object))
    assert SIG.enforce(obj) is obj  # object strings stay as they are


def test_a_missing_column_is_an_error_naming_it() -> None:
    with pytest.raises(InvalidParameter) as err:
        SIG.enforce(_frame(a=[1.0]))
    assert "missing column(s) 'b', 'c'" in str(err.value)
    assert "expected columns: a, b, c" in str(err.value)


def test_safe_widening_is_applied() -> None:
    df = _frame(a=np.array([1, 2], dtype="int32"), b=np.array([3, 4], dtype="int32"), c=["x", "y"])
    out = SIG.enforce(df)
    assert out["a"].dtype == np.float64 and out["b"].dtype == np.int64
    assert out["a"].tolist() == [1.0, 2.0]
    f32 = Signature((FieldSpec("v", "float64"),))
    assert f32.enforce(_frame(v=np.array([0.5], dtype=np.float32)))["v"].dtype == np.float64
    narrow = Signature((FieldSpec("v", "int32"),))
    with pytest.raises(InvalidParameter, match="column 'v': got int64, expected int32"):
        narrow.enforce(_frame(v=[1]))


def test_float_to_int_is_refused_naming_column_and_dtypes() -> None:
    with pytest.raises(InvalidParameter) as err:
        SIG.enforce(_frame(a=[1.0], b=[2.5], c=["x"]))
    assert "column 'b': got float64, expected int64" in str(err.value)
    assert "fractional part" in str(err.value)


def test_text_to_number_is_refused_naming_column_and_dtypes() -> None:
    with pytest.raises(InvalidParameter) as err:
        SIG.enforce(_frame(a=["1.5"], b=[2], c=["x"]))
    assert "column 'a': got str, expected float64" in str(err.value)
    with pytest.raises(InvalidParameter, match="column 'c': got int64, expected string"):
        SIG.enforce(_frame(a=[1.5], b=[2], c=[3]))


def test_extra_columns_are_dropped_with_one_warning_and_order_is_fixed() -> None:
    df = _frame(c=["x"], z=[0], b=[2], y=[1.0], a=[1.0])
    with pytest.warns(SignatureWarning) as record:
        out = SIG.enforce(df)
    assert len(record) == 1
    assert "'z', 'y'" in str(record[0].message)
    assert list(out.columns) == ["a", "b", "c"]


def test_records_dicts_and_arrays_are_accepted() -> None:
    expected = _frame(a=[1.0, 2.0], b=[1, 2], c=["x", "y"])
    records = [{"a": 1.0, "b": 1, "c": "x"}, {"a": 2.0, "b": 2, "c": "y"}]
    pd.testing.assert_frame_equal(SIG.enforce(records), expected)
    pd.testing.assert_frame_equal(
        SIG.enforce({"a": [1.0, 2.0], "b": [1, 2], "c": ["x", "y"]}), expected
    )
    pd.testing.assert_frame_equal(SIG.enforce({"a": 1.0, "b": 1, "c": "x"}), expected.head(1))
    nums = Signature((FieldSpec("p", "float64"), FieldSpec("q", "float64")))
    out = nums.enforce(np.array([[1.0, 2.0]]))
    assert list(out.columns) == ["p", "q"] and out.iloc[0].tolist() == [1.0, 2.0]
    with pytest.raises(InvalidParameter, match=r"reshape\(1, -1\)"):
        nums.enforce(np.array([1.0, 2.0]))
    with pytest.raises(InvalidParameter, match="got str"):
        SIG.enforce("a,b,c")


def test_tensor_signatures_check_shape_and_dtype() -> None:
    sig = Signature((FieldSpec("x", "float32", (-1, 4)),), kind="tensor")
    arr = np.zeros((2, 4), dtype=np.float32)
    assert sig.enforce(arr) is arr
    assert sig.enforce(np.zeros((2, 4))).dtype == np.float32  # float widths convert
    assert sig.enforce({"x": arr}) is arr
    assert sig.enforce(np.zeros((2, 4), dtype=np.int16)).dtype == np.float32
    with pytest.raises(InvalidParameter, match=r"'x' has shape \(2, 3\).*expects \(-1, 4\)"):
        sig.enforce(np.zeros((2, 3), dtype=np.float32))
    ints = Signature((FieldSpec("x", "int64", (-1, 2)),), kind="tensor")
    with pytest.raises(InvalidParameter, match="'x' has dtype float64.*expects int64"):
        ints.enforce(np.zeros((1, 2)))
    two = Signature(
        (FieldSpec("u", "float32", (-1,)), FieldSpec("v", "int64", (-1,))), kind="tensor"
    )
    with pytest.raises(InvalidParameter, match="missing tensor\\(s\\) 'v'"):
        two.enforce({"u": np.zeros(2, dtype=np.float32)})


def test_loaded_model_enforces_its_signature(iris, iris_pkg: Path) -> None:
    X, _, clf = iris
    model = my.models.load(iris_pkg)
    records = X.head(5).to_dict("records")
    np.testing.assert_array_equal(model.predict(records), clf.predict(X.head(5)))
    with pytest.raises(InvalidParameter, match="missing column\\(s\\) 'petal width \\(cm\\)'"):
        model.predict(X.drop(columns=["petal width (cm)"]))
    shuffled = X[list(reversed(X.columns))].assign(extra=1)
    with pytest.warns(SignatureWarning, match="'extra'"):
        np.testing.assert_array_equal(model.predict(shuffled), clf.predict(X))


def test_explicit_and_absent_signatures(iris, tmp_path: Path) -> None:
    X, _, clf = iris
    my.models.save(clf, tmp_path / "none", input_example=X.head(2), signature=None)
    assert my.models.load(tmp_path / "none").signature is None
    sig = infer_signature(X.head())
    my.models.save(clf, tmp_path / "given", signature=sig)
    loaded = my.models.load(tmp_path / "given")
    assert loaded.signature == sig and loaded.metadata.input_example is None
    saved = json.loads(json.dumps(loaded.metadata.to_dict()))
    assert saved["signature"]["kind"] == "columns"


def test_a_numpy_example_gives_a_tensor_model(tmp_path: Path) -> None:
    X, y = load_diabetes(return_X_y=True)
    reg = LinearRegression().fit(X, y)
    my.models.save(reg, tmp_path / "d", input_example=X[:3])
    model = my.models.load(tmp_path / "d")
    assert model.signature.kind == "tensor"
    assert model.signature.inputs[0].shape == (-1, 10)
    np.testing.assert_allclose(model.predict(X), reg.predict(X))
    np.testing.assert_allclose(model.predict(X.tolist()), reg.predict(X))
    with pytest.raises(InvalidParameter, match=r"shape \(3, 9\)"):
        model.predict(X[:3, :9])
