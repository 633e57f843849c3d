"""Data sources: images decoded once into uint8 tensors, sentences as strings; labels and
scored pairs are kept for evaluation only."""

from selfsup.data.images import ImageData
from selfsup.data.registry import available_sources, describe_sources, load_data
from selfsup.data.split import DataSplits, Split, holdout

__all__ = [
    "DataSplits",
    "ImageData",
    "Split",
    "available_sources",
    "describe_sources",
    "holdout",
    "load_data",
]
