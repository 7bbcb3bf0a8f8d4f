"""A deliberately bad model for the closed-loop demo (importable by the gateway).

`BrokenChurnModel` is what a hasty hand-pushed release looks like: a feature
transform that only handles short tenures, so it raises on most real requests.
Its canary's error-rate gate must catch it and roll it back.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BrokenChurnModel"]


class BrokenChurnModel:
    def load_context(self, context):  # noqa: ANN001 - the pyfunc contract
        pass

    def predict(self, context, model_input):  # noqa: ANN001
        tenure = model_input["tenure"].to_numpy(dtype="float64")
        if (tenure > 12).any():
            raise ValueError("tenure bucket out of range (the new transform knows 0-12 only)")
        return np.zeros(len(model_input), dtype="int64")
