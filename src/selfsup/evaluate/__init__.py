"""Evaluation protocols on frozen features: kNN, linear probe, and embedding geometry."""

from selfsup.evaluate.features import extract_features
from selfsup.evaluate.geometry import alignment, collapse_stats, effective_rank, uniformity
from selfsup.evaluate.knn import knn_accuracy, knn_predict
from selfsup.evaluate.linear import linear_probe
from selfsup.evaluate.protocols import (
    PROTOCOLS,
    check_protocols,
    evaluate_encoder,
    evaluate_features,
    raw_pixel_features,
)

__all__ = [
    "PROTOCOLS",
    "alignment",
    "check_protocols",
    "collapse_stats",
    "effective_rank",
    "evaluate_encoder",
    "evaluate_features",
    "extract_features",
    "knn_accuracy",
    "knn_predict",
    "linear_probe",
    "raw_pixel_features",
    "uniformity",
]
