"""The captioning losses against plain loops over tokens and pairs (values and gradients)."""

import math

import torch

from selfsup.losses import contrastive_caption_loss, sequence_log_prob, token_nll


def _data(seed=0, b=4, length=6, v=7):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, length, v, generator=g, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, v, (b, length), generator=g)
    lengths = [6, 3, 1, 4][:b]
    mask = torch.tensor([[1] * n + [0] * (length - n) for n in lengths])
    return logits, targets, mask


def test_token_nll_matches_a_loop_over_real_tokens():
    logits, targets, mask = _data()
    got = token_nll(logits, targets, mask)
    terms = []
    for i in range(len(targets)):
        for t in range(targets.shape[1]):
            if mask[i, t]:
                p = torch.softmax(logits[i, t], 0)[targets[i, t]]
                terms.append(-torch.log(p))
    want = torch.stack(terms).mean()
    assert torch.allclose(got, want)
    (g1,) = torch.autograd.grad(got, logits)
    (g2,) = torch.autograd.grad(want, logits)
    assert torch.allclose(g1, g2)
    assert g1[1, 3:].abs().sum() == 0  # padding gets no gradient


def test_sequence_log_prob_sums_the_real_tokens():
    logits, targets, mask = _data(1)
    got = sequence_log_prob(logits, targets, mask)
    for i in range(len(targets)):
        want = sum(
            math.log(torch.softmax(logits[i, t], 0)[targets[i, t]].item())
            for t in range(int(mask[i].sum()))
        )
        assert abs(got[i].item() - want) < 1e-9


def _paper_loss(mp, rp, mn, rn, nu):
    """Dai & Lin eq. 4-7 written out: h = 1 / (1 + nu exp(-G)), one term per pair."""
    pos = [torch.log(1 / (1 + nu * torch.exp(-(a - b)))) for a, b in zip(mp, rp, strict=True)]
    neg = [torch.log(1 - 1 / (1 + nu * torch.exp(-(a - b)))) for a, b in zip(mn, rn, strict=True)]
    return -sum(pos) / len(pos) - sum(neg) / len(neg)


def test_contrastive_caption_loss_matches_the_paper_values_and_gradients():
    g = torch.Generator().manual_seed(2)
    for nu in (1.0, 5.0):
        mp = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)
        mn = torch.randn(12, generator=g, dtype=torch.float64, requires_grad=True)
        rp, rn = torch.randn(4, generator=g, dtype=torch.float64), torch.randn(12, generator=g)
        rn = rn.double()
        got, figures = contrastive_caption_loss(mp, rp, mn, rn, nu=nu)
        want = _paper_loss(mp, rp, mn, rn, nu)
        assert torch.allclose(got, want)
        g1 = torch.autograd.grad(got, (mp, mn))
        g2 = torch.autograd.grad(want, (mp, mn))
        for a, b in zip(g1, g2, strict=True):
            assert torch.allclose(a, b)
        assert torch.allclose(figures["g_pos"], (mp - rp).mean())


def test_equal_models_give_log_two_per_side_and_clipping_stops_gradients():
    z = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    loss, _ = contrastive_caption_loss(z, torch.zeros(3), z, torch.zeros(3))
    assert abs(loss.item() - 2 * math.log(2)) < 1e-12  # p_m = p_n: h = 1/2 on both sides
    far = torch.tensor([-100.0], dtype=torch.float64, requires_grad=True)  # h ~ e^-100 < 1e-20
    loss, _ = contrastive_caption_loss(far, torch.zeros(1), torch.zeros(1), torch.zeros(1))
    (grad,) = torch.autograd.grad(loss, far)
    assert abs(loss.item() - (-math.log(1e-20) + math.log(2))) < 1e-6
    assert grad.item() == 0.0  # the released code's Clip(1e-20, 1)
