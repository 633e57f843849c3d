"""Heads that methods put on top of the encoder."""

from __future__ import annotations

from torch import nn


def projection_head(
    in_dim: int, hidden_dim: int, out_dim: int, num_layers: int = 2
) -> nn.Sequential:
    """MLP projection head g(.) of SimCLR: (Linear-BN-ReLU) x (num_layers-1), then Linear."""
    layers: list[nn.Module] = []
    dim = in_dim
    for _ in range(num_layers - 1):
        layers += [
            nn.Linear(dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
        ]
        dim = hidden_dim
    layers.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*layers)


def classifier_head(in_dim: int, hidden_dim: int, num_classes: int) -> nn.Module:
    """A pretext task's classifier (rotation, jigsaw, relative position): a linear layer when
    hidden_dim is 0, else Linear-BN-ReLU-Linear."""
    if hidden_dim <= 0:
        return nn.Linear(in_dim, num_classes)
    return projection_head(in_dim, hidden_dim, num_classes, 2)
