"""Image sources decoded once into uint8 tensors in memory; labels are kept for evaluation."""

from selfsup.data.images import DataSplits, ImageData, holdout
from selfsup.data.registry import available_sources, describe_sources, load_data

__all__ = [
    "DataSplits",
    "ImageData",
    "available_sources",
    "describe_sources",
    "holdout",
    "load_data",
]
