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
