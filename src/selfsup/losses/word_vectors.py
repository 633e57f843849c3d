"""word2vec's negative-sampling objectives (Mikolov et al. 2013, "Distributed Representations
of Words and Phrases and their Compositionality", eq. 4), skip-gram and CBOW, over windows.

Each centre position p has C window slots (`mask` (P, C) says which are real context words),
its output vector t_p (word2vec.c's syn1neg row of the centre word) and K noise output vectors
n_pk drawn from the unigram^0.75 distribution. The losses are sums over pairs, not means, so
that SGD at word2vec.c's alpha takes word2vec.c's step per pair.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _scores(inputs: torch.Tensor, target: torch.Tensor | None, noise: torch.Tensor) -> torch.Tensor:
    """(P, C, 1 + K): each input vector's dot product with the target, then with each noise
    vector, for inputs (P, C, D), target (P, D), noise (P, K, D); target None: `noise` already
    holds the target first, (P, 1 + K, D) (the method looks both up at once)."""
    outputs = noise if target is None else torch.cat([target.unsqueeze(1), noise], dim=1)
    return torch.bmm(inputs, outputs.transpose(1, 2))


def _negative_sampling(scores: torch.Tensor) -> torch.Tensor:
    """-log sigma(s_0) - sum_k log sigma(-s_k) along the last dimension."""
    return F.softplus(-scores[..., 0]) + F.softplus(scores[..., 1:]).sum(-1)


def skipgram_loss(
    context: torch.Tensor, target: torch.Tensor | None, noise: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Skip-gram with negative sampling, summed over the real (context, centre) pairs:

        sum_{p, c: mask} -log sigma(v_pc . t_p) - sum_k log sigma(-v_pc . n_pk)

    `context` (P, C, D) the input vectors (syn0) of centre p's window slots, `target` (P, D)
    the centre's output vector, `noise` (P, K, D) its noise output vectors, shared by the
    window's pairs (word2vec.c draws K per pair: docs/word2vec.md), `mask` (P, C) bool;
    `target` None when `noise` (P, 1 + K, D) holds the target first.
    As word2vec.c's skip-gram, each context word's input vector predicts the centre word.
    """
    losses = _negative_sampling(_scores(context, target, noise))
    return (losses * mask.to(losses.dtype)).sum()


def cbow_loss(
    context: torch.Tensor, target: torch.Tensor | None, noise: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """CBOW with negative sampling (cbow_mean=1), summed over centres with a context:

        sum_{p: |w_p| > 0} -log sigma(h_p . t_p) - sum_k log sigma(-h_p . n_pk),
        h_p = (1 / |w_p|) sum_{c in w_p} v_pc

    The gradient reaches each context vector undivided by |w_p|, as in word2vec.c and gensim
    (the forward pass averages, the update adds the whole error to every context word).
    """
    weight = mask.to(context.dtype).unsqueeze(-1)
    total = (context * weight).sum(1)  # (P, D)
    count = weight.sum(1).clamp_min(1)
    # value total / count, gradient d/d(total) = identity (word2vec.c's neu1e to every word)
    hidden = total - (total * (1 - 1 / count)).detach()
    losses = _negative_sampling(_scores(hidden.unsqueeze(1), target, noise)).squeeze(1)
    return (losses * mask.any(1).to(losses.dtype)).sum()
