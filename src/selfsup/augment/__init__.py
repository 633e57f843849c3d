"""Batched, per-sample-random image augmentation on the training device, and named recipes."""

from selfsup.augment.pipeline import Augment, build_augment, clean_transform
from selfsup.augment.preview import augmented_grid
from selfsup.augment.recipes import (
    Recipe,
    ViewRecipe,
    available_recipes,
    default_recipe,
    get_recipe,
)

__all__ = [
    "Augment",
    "Recipe",
    "ViewRecipe",
    "augmented_grid",
    "available_recipes",
    "build_augment",
    "clean_transform",
    "default_recipe",
    "get_recipe",
]
