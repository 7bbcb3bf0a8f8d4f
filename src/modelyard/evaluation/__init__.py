"""Model evaluation: standard metrics, feature importance, and promotion gates."""

from modelyard.evaluation.evaluate import EvaluationResult, evaluate
from modelyard.evaluation.gates import GateResult, Verdict, check

__all__ = ["EvaluationResult", "GateResult", "Verdict", "check", "evaluate"]
