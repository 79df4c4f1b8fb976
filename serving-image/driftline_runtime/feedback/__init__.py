"""Ground truth for served predictions: the bounded store of predictions awaiting labels, the window of labelled rows,
and the live performance computed from it. Pure of server code: the model server feeds it and exports it."""

from driftline_runtime.feedback.evaluation import LiveEvaluation, PerformanceSnapshot, metric_names
from driftline_runtime.feedback.store import Outcome, PredictionStore

__all__ = ["LiveEvaluation", "Outcome", "PerformanceSnapshot", "PredictionStore", "metric_names"]
