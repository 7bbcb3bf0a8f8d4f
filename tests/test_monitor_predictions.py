"""The prediction store's read side: windows of logged requests as feature tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelyard.core.errors import InvalidParameter
from modelyard.monitor.predictions import read_predictions
from modelyard.serving.prediction_log import ParquetSink, PredictionRecord

HOUR = 3_600_000
T0 = 1_790_000_000_000 - 1_790_000_000_000 % HOUR  # the start of an hour


@pytest.fixture
def log_root(tmp_path):
    sink = ParquetSink(str(tmp_path))
    frame = pd.DataFrame({"age": [30.0, 41.5], "plan": ["a", "b"]})
    sink.write(
        [
            # records with a DataFrame: two rows, named features
            PredictionRecord("r1", T0 + 10, "churn", "1", "predict", frame, np.array([0, 1]), 2.0),
            # a V2 tensor: unnamed columns
            PredictionRecord(
                "r2",
                T0 + HOUR + 5,
                "churn",
                "2",
                "v2/infer",
                np.ones((1, 3)),
                {"predict": [1]},
                1.0,
                variant="candidate",
            ),
            # two named outputs
            PredictionRecord(
                "r3",
                T0 + 2 * HOUR,
                "churn",
                "2",
                "predict",
                [[5.0, 6.0, 7.0]],
                {"label": [1], "score": [0.9]},
                1.5,
            ),
            PredictionRecord("x1", T0 + 20, "fraud", "1", "predict", [[1.0]], [0], 1.0),
        ]
    )
    return str(tmp_path)


def test_a_window_expands_requests_into_rows(log_root):
    df = read_predictions(log_root, "churn", start_ms=T0, end_ms=T0 + HOUR)
    assert df[["request_id", "age", "plan", "prediction"]].to_dict("records") == [
        {"request_id": "r1", "age": 30.0, "plan": "a", "prediction": 0},
        {"request_id": "r1", "age": 41.5, "plan": "b", "prediction": 1},
    ]
    assert set(df.version) == {"1"}


def test_unnamed_inputs_take_the_given_feature_names_and_outputs_their_names(log_root):
    df = read_predictions(
        log_root, "churn", start_ms=T0 + HOUR, feature_names=["a", "b", "c"], version="2"
    )
    first, second = df.to_dict("records")
    assert (first["request_id"], first["a"], first["variant"], first["prediction"]) == (
        "r2",
        1.0,
        "candidate",
        1,
    )
    assert (second["c"], second["prediction_label"], second["prediction_score"]) == (7.0, 1, 0.9)


def test_models_and_empty_windows_stay_apart(log_root, tmp_path):
    assert list(read_predictions(log_root, "fraud").request_id) == ["x1"]
    empty = read_predictions(log_root, "churn", start_ms=T0 + 5 * HOUR, end_ms=T0 + 6 * HOUR)
    assert empty.empty and "prediction" in empty.columns
    assert read_predictions(str(tmp_path / "nothing"), "churn").empty
    with pytest.raises(InvalidParameter, match="ends .* before it starts"):
        read_predictions(log_root, "churn", start_ms=T0 + 10, end_ms=T0)
