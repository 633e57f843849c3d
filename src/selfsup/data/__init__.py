"""Data sources: images decoded once into uint8 tensors, sentences as strings; labels and
scored pairs are kept for evaluation only."""

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
