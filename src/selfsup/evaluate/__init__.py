"""Evaluation protocols on frozen features (a registry of knn, linear, geometry, sts), and the
run-level suite that puts the learned encoder beside its baselines."""

from selfsup.evaluate.context import Features
from selfsup.evaluate.geometry import alignment, collapse_stats, effective_rank, uniformity
from selfsup.evaluate.knn import knn_accuracy, knn_predict
from selfsup.evaluate.linear import linear_probe
from selfsup.evaluate.registry import PROTOCOLS, Protocol, parse_protocols, run_protocols

__all__ = [
    "PROTOCOLS",
    "Features",
    "Protocol",
    "alignment",
    "collapse_stats",
    "effective_rank",
    "knn_accuracy",
    "knn_predict",
    "linear_probe",
    "parse_protocols",
    "run_protocols",
    "uniformity",
]
