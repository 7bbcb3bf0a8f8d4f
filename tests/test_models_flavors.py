"""Every flavor round-trips: save a real model, load the package, predict exactly (or,
for floating-point scores, to within float tolerance) what the raw model predicts.

Also: skops refuses types it does not trust unless the user trusted them at save
time, and a custom Python model is packaged as source, so a fresh interpreter that
cannot import its class still loads it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import lightgbm as lgb
import numpy as np
import onnxruntime as ort
import pytest
import xgboost as xgb
import yaml
from skl2onnx import to_onnx
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import modelyard as my
from modelyard.core.errors import InvalidParameter
from modelyard.models import UnsafeModelError
from modelyard.models.manifest import MANIFEST_FILE


class ShiftedMean(RegressorMixin, BaseEstimator):
    """A custom estimator: skops does not trust its type by default."""

    def __init__(self, shift: float = 1.0) -> None:
        self.shift = shift

    def fit(self, X, y):
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X):
        return np.full(len(X), self.mean_ + self.shift)


SHIFTED = f"{ShiftedMean.__module__}.{ShiftedMean.__qualname__}"


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True, as_frame=True)


@pytest.fixture(scope="module")
def cancer():
    return load_breast_cancer(return_X_y=True, as_frame=True)


def _round_trip(model, example, path: Path, **kwargs):
    my.models.save(model, path, input_example=example, **kwargs)
    return my.models.load(path)


# -- scikit-learn (skops) ------------------------------------------------------------
def test_sklearn_pipeline_round_trip(cancer, tmp_path: Path) -> None:
    X, y = cancer
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    model = _round_trip(pipe, X.head(3), tmp_path / "p")
    assert model.metadata.flavor == "sklearn" and (tmp_path / "p" / "model.skops").is_file()
    np.testing.assert_array_equal(model.predict(X), pipe.predict(X))
    np.testing.assert_allclose(model.predict_proba(X), pipe.predict_proba(X))


def test_skops_untrusted_type_is_refused_at_save_listing_it(iris, tmp_path: Path) -> None:
    X, _ = iris
    est = ShiftedMean().fit(X, X["sepal length (cm)"])
    with pytest.raises(UnsafeModelError) as err:
        my.models.save(est, tmp_path / "m")
    assert SHIFTED in str(err.value) and "trusted=" in str(err.value)
    assert not (tmp_path / "m").exists()


def test_skops_trusted_type_loads_and_an_untrusted_manifest_is_refused(
    iris, tmp_path: Path
) -> None:
    X, _ = iris
    est = ShiftedMean(shift=2.0).fit(X, X["sepal length (cm)"])
    model = _round_trip(est, X.head(2), tmp_path / "m", trusted=[SHIFTED])
    np.testing.assert_allclose(model.predict(X), est.predict(X))
    assert model.metadata.trusted == [SHIFTED]
    # The same package whose manifest no longer trusts the type: refused at load.
    manifest = yaml.safe_load((tmp_path / "m" / MANIFEST_FILE).read_text())
    manifest["trusted"] = []
    (tmp_path / "m" / MANIFEST_FILE).write_text(yaml.safe_dump(manifest))
    with pytest.raises(UnsafeModelError) as err:
        my.models.load(tmp_path / "m")
    assert SHIFTED in str(err.value) and "not trusted when it was saved" in str(err.value)


# -- LightGBM --------------------------------------------------------------------------
def test_lightgbm_multiclass_classifier(iris, tmp_path: Path) -> None:
    X, y = iris
    clf = lgb.LGBMClassifier(n_estimators=15, verbose=-1).fit(X, y.map(["a", "b", "c"].__getitem__))
    model = _round_trip(clf, X.head(3), tmp_path / "l")
    assert (tmp_path / "l" / "model.lgb.txt").is_file()
    assert isinstance(model.raw, lgb.Booster)
    np.testing.assert_array_equal(model.predict(X), clf.predict(X))
    np.testing.assert_allclose(model.predict_proba(X), clf.predict_proba(X))


def test_lightgbm_binary_classifier_regressor_and_booster(cancer, tmp_path: Path) -> None:
    X, y = cancer
    clf = lgb.LGBMClassifier(n_estimators=15, verbose=-1).fit(X, y)
    model = _round_trip(clf, X.head(3), tmp_path / "bin")
    np.testing.assert_array_equal(model.predict(X), clf.predict(X))
    np.testing.assert_allclose(model.predict_proba(X), clf.predict_proba(X))
    Xd, yd = load_diabetes(return_X_y=True)
    reg = lgb.LGBMRegressor(n_estimators=15, verbose=-1).fit(Xd, yd)
    model = _round_trip(reg, Xd[:3], tmp_path / "reg")
    np.testing.assert_allclose(model.predict(Xd), reg.predict(Xd))
    assert not hasattr(model, "predict_proba")
    booster = lgb.train({"verbose": -1}, lgb.Dataset(Xd, yd), num_boost_round=10)
    model = _round_trip(booster, Xd[:3], tmp_path / "booster")
    np.testing.assert_allclose(model.predict(Xd), booster.predict(Xd))


# -- XGBoost ---------------------------------------------------------------------------
def test_xgboost_sklearn_models_are_rebuilt_as_their_wrapper(iris, tmp_path: Path) -> None:
    X, y = iris
    clf = xgb.XGBClassifier(n_estimators=10, max_depth=3).fit(X, y)
    model = _round_trip(clf, X.head(3), tmp_path / "c")
    assert type(model.raw) is xgb.XGBClassifier
    assert model.metadata.loader["wrapper"] == "XGBClassifier"
    np.testing.assert_array_equal(model.predict(X), clf.predict(X))
    np.testing.assert_allclose(model.predict_proba(X), clf.predict_proba(X))
    Xd, yd = load_diabetes(return_X_y=True)
    reg = xgb.XGBRegressor(n_estimators=10).fit(Xd, yd)
    model = _round_trip(reg, Xd[:3], tmp_path / "r")
    assert type(model.raw) is xgb.XGBRegressor
    np.testing.assert_allclose(model.predict(Xd), reg.predict(Xd))


def test_xgboost_booster(tmp_path: Path) -> None:
    Xd, yd = load_diabetes(return_X_y=True)
    booster = xgb.train({"max_depth": 3}, xgb.DMatrix(Xd, yd), num_boost_round=10)
    model = _round_trip(booster, Xd[:3], tmp_path / "b")
    assert isinstance(model.raw, xgb.Booster) and model.metadata.loader["wrapper"] == "Booster"
    np.testing.assert_allclose(model.predict(Xd), booster.predict(xgb.DMatrix(Xd)), rtol=1e-6)


def test_xgboost_wrapper_name_is_not_an_arbitrary_import(tmp_path: Path) -> None:
    Xd, yd = load_diabetes(return_X_y=True)
    booster = xgb.train({}, xgb.DMatrix(Xd, yd), num_boost_round=2)
    my.models.save(booster, tmp_path / "b")
    path = tmp_path / "b" / MANIFEST_FILE
    manifest = yaml.safe_load(path.read_text())
    manifest["loader"]["wrapper"] = "DMatrix"
    path.write_text(yaml.safe_dump(manifest))
    with pytest.raises(InvalidParameter, match="'DMatrix', which is not an xgboost model"):
        my.models.load(tmp_path / "b")


# -- ONNX ------------------------------------------------------------------------------
def test_onnx_model_proto_and_file(iris, tmp_path: Path) -> None:
    X, y = iris
    Xf = X.to_numpy(dtype=np.float32)
    clf = LogisticRegression(max_iter=500).fit(Xf, y)
    proto = to_onnx(clf, Xf[:1], options={"zipmap": False})
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    labels, probs = session.run(None, {"X": Xf})
    model = _round_trip(proto, Xf[:2], tmp_path / "o")
    sig = model.signature
    assert sig.kind == "tensor" and [f.name for f in sig.inputs] == ["X"]
    assert (sig.inputs[0].dtype, sig.inputs[0].shape) == ("float32", (-1, 4))
    assert [f.name for f in sig.outputs] == ["label", "probabilities"]
    out = model.predict(Xf)
    np.testing.assert_array_equal(out["label"], labels)
    np.testing.assert_allclose(out["probabilities"], probs)
    np.testing.assert_allclose(model.predict_proba(X.to_numpy()), probs)  # float64 accepted
    onnx_file = tmp_path / "iris.onnx"
    onnx_file.write_bytes(proto.SerializeToString())
    from_file = _round_trip(str(onnx_file), None, tmp_path / "f")
    assert from_file.metadata.flavor == "onnx"
    np.testing.assert_array_equal(from_file.predict(Xf)["label"], labels)
    with pytest.raises(InvalidParameter, match=r"'X' has shape \(150, 3\)"):
        model.predict(Xf[:, :3])


# -- custom Python models ---------------------------------------------------------------
CUSTOM_MODEL = textwrap.dedent(
    """
    from pathlib import Path

    import numpy as np
    from scaling_helpers import scale


    class Scaler:
        def load_context(self, context):
            self.factor = float(Path(context.artifacts["factor"]).read_text())

        def predict(self, context, model_input):
            return scale(np.asarray(model_input, dtype=float), self.factor)
    """
)


@pytest.fixture
def custom_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    src = tmp_path / "src"
    src.mkdir()
    (src / "custom_scaler.py").write_text(CUSTOM_MODEL)
    (src / "scaling_helpers.py").write_text("def scale(x, f):\n    return x * f\n")
    (tmp_path / "factor.txt").write_text("2.5")
    monkeypatch.syspath_prepend(str(src))
    import custom_scaler

    yield custom_scaler
    for name in ("custom_scaler", "scaling_helpers"):
        sys.modules.pop(name, None)


def test_custom_python_model_is_packaged_as_code(custom_model, tmp_path: Path) -> None:
    X = np.arange(6, dtype=float).reshape(3, 2)
    my.models.save(
        custom_model.Scaler(),
        tmp_path / "pkg",
        input_example=X,
        code_paths=[tmp_path / "src" / "scaling_helpers.py"],
        artifacts={"factor": tmp_path / "factor.txt"},
    )
    pkg = tmp_path / "pkg"
    manifest = yaml.safe_load((pkg / MANIFEST_FILE).read_text())
    assert manifest["loader"]["class"] == "custom_scaler:Scaler"
    assert manifest["pickle"] is False
    assert sorted(manifest["files"]) == [
        "artifacts/factor/factor.txt",
        "code/custom_scaler.py",
        "code/scaling_helpers.py",
        "input_example.json",
        "requirements.txt",
    ]
    model = my.models.load(pkg)
    np.testing.assert_allclose(model.predict(X), X * 2.5)
    assert sys.modules["custom_scaler"] is custom_model  # the import was isolated
    assert type(model.raw).__name__ == "Scaler" and type(model.raw) is not custom_model.Scaler
    assert not list(pkg.rglob("__pycache__"))  # loading wrote nothing into the package
    # A fresh interpreter that cannot import custom_scaler still loads and predicts.
    script = (
        "import json, sys, numpy as np, modelyard as my\n"
        "try:\n    import custom_scaler\nexcept ImportError:\n    pass\n"
        "else:\n    sys.exit('custom_scaler is importable here')\n"
        f"m = my.models.load({str(pkg)!r})\n"
        "print(json.dumps(m.predict(np.arange(6.0).reshape(3, 2)).tolist()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(sys.prefix),
    )
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(json.loads(done.stdout), X * 2.5)


def test_custom_model_rules(tmp_path: Path) -> None:
    class Local:  # defined in a function: not importable
        def load_context(self, context):
            pass

        def predict(self, context, model_input):
            return model_input

    with pytest.raises(InvalidParameter, match="inside a function"):
        my.models.save(Local(), tmp_path / "x")
    with pytest.raises(InvalidParameter, match="artifacts.*does not exist|does not exist"):
        my.models.save(
            my.models.PythonModel(), tmp_path / "y", artifacts={"w": tmp_path / "missing"}
        )
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
