"""The contrastive loss of structured world models (C-SWM, Kipf, van der Pol & Welling 2020).

The energy of a state pair is the squared Euclidean distance over each object's D dimensions,
averaged over the K objects and scaled by 1 / (2 sigma^2):

    d(z, z') = 1 / (2 sigma^2) * mean_k || z_k - z'_k ||^2

and the loss, as tkipf/c-swm's `ContrastiveSWM.contrastive_loss` computes it, is

    H = mean_b d(z_t + T(z_t, a_t), z_{t+1}) + mean_b max(0, gamma - d(z_t, z~_t)),

where z~_t is the state of another transition of the batch (the batch's states in a random
order). The paper's equation writes the negative term as d(z~_t, z_{t+1}); the reference code
(whose figures the paper reports) compares the negative with z_t, and so does this loss.
"""

from __future__ import annotations

import torch
from torch import Tensor


def transition_energy(z: Tensor, target: Tensor, sigma: float) -> Tensor:
    """(B,) energies of (B, K, D) state pairs: mean over objects of the squared distance,
    over 2 sigma^2."""
    return (z - target).pow(2).sum(-1).mean(-1) / (2 * sigma**2)


def cswm_hinge_loss(
    state: Tensor,
    predicted_next: Tensor,
    next_state: Tensor,
    negative: Tensor,
    sigma: float = 0.5,
    hinge: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """(loss, positive term, negative term): the predicted next state's energy against the
    true next state, plus the hinge max(0, hinge - energy) of each state against a negative
    state (another transition's, drawn by the caller). All states (B, K, D)."""
    positive = transition_energy(predicted_next, next_state, sigma).mean()
    negative_term = torch.relu(hinge - transition_energy(state, negative, sigma)).mean()
    return positive + negative_term, positive, negative_term
