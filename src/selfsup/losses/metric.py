"""Metric-learning losses in their self-supervised form: contrastive margin, triplet, N-pair,
SupCon and block-contrastive.

In the self-supervised form the positive of a sample is its other augmented view and the
negatives are the other samples of the batch. The inputs are `z1[i]`, `z2[i]` (two views of
sample i, each (N, D)); losses that see all 2N embeddings as one pool use u = concat(z1, z2),
where the positive of row i is row p(i) = (i + N) mod 2N. Pure functions: a method gathers
across ranks and normalises (where it wants) before the call.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_pair(name: str, z1: torch.Tensor, z2: torch.Tensor) -> None:
    if z1.shape != z2.shape or z1.dim() != 2 or z1.shape[0] < 2:
        raise ValueError(
            f"{name} expects two (N, D) tensors of equal shape with N >= 2, got "
            f"{tuple(z1.shape)} and {tuple(z2.shape)}"
        )


def _pool(z1: torch.Tensor, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """u = concat(z1, z2) in fp32, and the boolean (2N, 2N) mask of positive pairs."""
    n = z1.shape[0]
    u = torch.cat([z1, z2]).float()
    idx = torch.arange(2 * n, device=u.device)
    positive = idx[None, :] == ((idx + n) % (2 * n))[:, None]
    return u, positive


def contrastive_margin(z1: torch.Tensor, z2: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Contrastive loss with a margin (Hadsell, Chopra & LeCun 2006, "Dimensionality reduction
    by learning an invariant mapping", eq. 4).

    With D_ij = ||u_i - u_j||_2 over the pool u of 2N embeddings, positive pairs (the two views
    of a sample) are pulled together and negative pairs (views of different samples) pushed
    apart until they are `margin` away:

        loss = mean_{(i,j) positive} D_ij^2 / 2  +  mean_{(i,j) negative} max(0, m - D_ij)^2 / 2

    The paper sums over labelled pairs; here every ordered pair i != j of the batch is a pair,
    and the two terms are averaged separately so that the 2N - 2 negatives of each anchor do
    not drown its one positive.
    """
    _check_pair("contrastive_margin", z1, z2)
    if margin <= 0:
        raise ValueError(f"margin must be positive, got {margin}")
    with torch.autocast(z1.device.type, enabled=False):
        u, positive = _pool(z1, z2)
        # Squared distances from the Gram matrix; clamp before the root, whose gradient at 0
        # is infinite (the diagonal, which no term uses, is 0).
        sq = u.pow(2).sum(1)
        d2 = (sq[:, None] + sq[None, :] - 2 * u @ u.T).clamp_min(1e-12)
        eye = torch.eye(len(u), dtype=torch.bool, device=u.device)
        negative = ~(positive | eye)
        # Masked sums over known counts (2N positives, 2N (2N - 2) negatives): no boolean
        # indexing, so no host sync on an accelerator.
        m = len(u)
        pull = (d2 * positive).sum() / m / 2
        push = ((margin - d2.sqrt()).clamp_min(0).pow(2) * negative).sum() / (m * (m - 2)) / 2
    return pull + push


def triplet(
    z1: torch.Tensor,
    z2: torch.Tensor,
    margin: float = 0.2,
    negatives: torch.Tensor | str = "semi-hard",
) -> torch.Tensor:
    """Triplet loss with a margin (Schroff, Kalenichenko & Philbin 2015, FaceNet, eq. 1;
    Weinberger & Saul 2009), on squared Euclidean distances of the embeddings given (FaceNet
    L2-normalises them; the method does that before the call).

    Every row i of the pool u of 2N embeddings is an anchor; its positive is p(i), the other
    view of the same sample; its negative n(i) is a row of another sample:

        loss = mean_i max(0, ||u_i - u_p(i)||^2 - ||u_i - u_n(i)||^2 + margin)

    `negatives` names how n(i) is mined in the batch:

    - "semi-hard" (FaceNet sec. 3.2, as TF's `triplet_semihard_loss`): the closest negative
      that is farther from the anchor than its positive; where no negative is farther, the
      farthest negative. FaceNet warns that the hardest negatives collapse the model early.
    - "hardest": the closest row of another sample (batch-hard mining).
    - a (2N,) long tensor naming n(i) for each anchor (random mining: the method draws them);
      naming the anchor itself or its positive is an error.
    """
    _check_pair("triplet", z1, z2)
    if margin < 0:
        raise ValueError(f"margin must be non-negative, got {margin}")
    if isinstance(negatives, str) and negatives not in ("semi-hard", "hardest"):
        raise ValueError(f"negatives must be 'semi-hard', 'hardest' or indices; got {negatives!r}")
    with torch.autocast(z1.device.type, enabled=False):
        u, positive = _pool(z1, z2)
        sq = u.pow(2).sum(1)
        d2 = sq[:, None] + sq[None, :] - 2 * u @ u.T
        n2 = len(u)
        idx = torch.arange(n2, device=u.device)
        d_pos = d2[idx, (idx + n2 // 2) % n2]
        if isinstance(negatives, str):
            other = ~(positive | torch.eye(n2, dtype=torch.bool, device=u.device))
            closest = d2.masked_fill(~other, float("inf")).min(dim=1).values
            if negatives == "hardest":
                d_neg = closest
            else:
                outside = other & (d2 > d_pos[:, None])
                semi = d2.masked_fill(~outside, float("inf")).min(dim=1).values
                farthest = d2.masked_fill(~other, float("-inf")).max(dim=1).values
                d_neg = torch.where(outside.any(dim=1), semi, farthest)
        else:
            if negatives.shape != (n2,):
                raise ValueError(f"negatives must have shape ({n2},), got {negatives.shape}")
            # Checked where the caller made them (the methods draw them on the CPU: no sync).
            own = torch.arange(n2, device=negatives.device) % (n2 // 2)
            if bool(((negatives % (n2 // 2)) == own).any()):
                raise ValueError("a negative names its anchor's own sample")
            d_neg = d2[idx, negatives.to(u.device)]
        return (d_pos - d_neg + margin).clamp_min(0).mean()


def npair(anchors: torch.Tensor, positives: torch.Tensor, l2_reg: float = 0.002) -> torch.Tensor:
    """Multi-class N-pair loss (Sohn 2016, "Improved deep metric learning with multi-class
    N-pair loss objective", eq. 6) with its L2 regularisation of the embeddings (Sec. 3.2.2).

    Anchor f_i = anchors[i], its positive f_i^+ = positives[i]; the other positives of the
    batch are its negatives. On raw (unnormalised) embeddings, no temperature:

        loss = mean_i log(1 + sum_{j != i} exp(f_i . f_j^+ - f_i . f_i^+))
               + l2_reg / 4 * mean_i (||f_i||^2 + ||f_i^+||^2)

    The first term is the cross-entropy of the logits f_i . f_j^+ with target i. The penalty
    keeps the norms small, which is what stops the unnormalised logits from growing without
    bound; its factor 1/4 is the reference implementation's (TF's `npairs_loss`:
    `0.25 * reg_lambda * (reg_anchor + reg_positive)`, reg_lambda 0.002).
    """
    _check_pair("npair", anchors, positives)
    if l2_reg < 0:
        raise ValueError(f"l2_reg must be non-negative, got {l2_reg}")
    with torch.autocast(anchors.device.type, enabled=False):
        a, p = anchors.float(), positives.float()
        logits = a @ p.T
        targets = torch.arange(len(a), device=a.device)
        reg = (a.pow(2).sum(1) + p.pow(2).sum(1)).mean()
        return F.cross_entropy(logits, targets) + 0.25 * l2_reg * reg


def supcon(z: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Supervised contrastive loss, L^sup_out (Khosla et al. 2020, "Supervised contrastive
    learning", eq. 2).

    `z` (M, D) are the embeddings of every view of the batch (L2-normalised here), `labels`
    (M,) their classes. With s_ia = u_i . u_a / temperature, A(i) every row but i and P(i) the
    rows of A(i) with the label of i:

        loss = mean_{i : |P(i)| > 0}  -1/|P(i)| sum_{p in P(i)} log( exp(s_ip) / sum_{a in A(i)}
               exp(s_ia) )

    With two views and every sample its own class this is SimCLR's NT-Xent. Anchors with no
    positive (a class seen once, one view) are left out of the mean; with none at all the loss
    is 0 (never the case with two views per sample). No host sync: the mean is a masked sum.
    """
    if z.dim() != 2 or labels.shape != (z.shape[0],):
        raise ValueError(
            f"supcon expects z (M, D) and labels (M,), got {tuple(z.shape)} and "
            f"{tuple(labels.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    with torch.autocast(z.device.type, enabled=False):
        u = F.normalize(z.float(), dim=1)
        logits = u @ u.T / temperature
        eye = torch.eye(len(u), dtype=torch.bool, device=u.device)
        log_prob = logits.masked_fill(eye, float("-inf")).log_softmax(dim=1)
        pos = (labels[:, None] == labels[None, :]) & ~eye
        count = pos.sum(1)
        has = count > 0
        per_anchor = -log_prob.masked_fill(~pos, 0.0).sum(1) / count.clamp_min(1)
        return (per_anchor * has).sum() / has.sum().clamp_min(1)


def block_contrastive(
    anchors: torch.Tensor,
    positive_blocks: torch.Tensor,
    negative_blocks: torch.Tensor,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Block contrastive loss (Arora et al. 2019, "A theoretical analysis of contrastive
    unsupervised representation learning", Sec. 6.2), with the logistic loss.

    Anchor f(x) = anchors[i] (N, D); its positive block positive_blocks[i] (N, b, D) holds b
    embeddings similar to x, its negative block negative_blocks[i] (N, b', D) b' embeddings of
    other samples. The blocks are averaged before the inner product:

        loss = mean_i log(1 + exp(-f(x_i) . (mean_k f(x_ik^+) - mean_k f(x_ik^-)) / temperature))

    Averaging a block lowers the variance of the class mean it estimates, which is the point
    of the paper's bound. temperature 1 is the paper's plain inner product.
    """
    if (
        anchors.dim() != 2
        or positive_blocks.dim() != 3
        or negative_blocks.dim() != 3
        or positive_blocks.shape[0] != anchors.shape[0]
        or negative_blocks.shape[0] != anchors.shape[0]
        or positive_blocks.shape[2] != anchors.shape[1]
        or negative_blocks.shape[2] != anchors.shape[1]
    ):
        raise ValueError(
            f"block_contrastive expects anchors (N, D) and blocks (N, b, D), got "
            f"{tuple(anchors.shape)}, {tuple(positive_blocks.shape)} and "
            f"{tuple(negative_blocks.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    with torch.autocast(anchors.device.type, enabled=False):
        diff = positive_blocks.float().mean(1) - negative_blocks.float().mean(1)
        score = (anchors.float() * diff).sum(1) / temperature
        return F.softplus(-score).mean()
