"""C-SWM's loss and transition model against plain references written from tkipf/c-swm's
`modules.py`, and the ranking of `transition_ranking` by hand."""

import pytest
import torch

from selfsup.evaluate.context import Features
from selfsup.evaluate.transitions import target_ranks, transition_ranking_protocol
from selfsup.losses import cswm_hinge_loss, transition_energy
from selfsup.models.cswm import CswmEncoder, CswmSpec


def reference_energy(a, b, sigma):
    """ContrastiveSWM.energy: 0.5 / sigma^2 * diff.pow(2).sum(2).mean(1), one sample at a time."""
    out = []
    for i in range(a.shape[0]):
        per_object = [float(((a[i, k] - b[i, k]).detach() ** 2).sum()) for k in range(a.shape[1])]
        out.append(0.5 / sigma**2 * sum(per_object) / len(per_object))
    return out


def reference_loss(state, predicted, next_state, negative, sigma, hinge):
    """ContrastiveSWM.contrastive_loss after the permutation: mean positive energy plus the
    mean of max(0, hinge - energy(state, negative))."""
    pos = reference_energy(predicted, next_state, sigma)
    neg = reference_energy(state, negative, sigma)
    b = len(pos)
    return sum(pos) / b + sum(max(0.0, hinge - e) for e in neg) / b


@pytest.mark.parametrize("sigma,hinge", [(0.5, 1.0), (0.8, 0.3)])
def test_hinge_loss_value_and_gradients_match_the_reference(sigma, hinge):
    gen = torch.Generator().manual_seed(0)
    state = (torch.randn(6, 3, 2, generator=gen) * 0.4).requires_grad_()
    predicted = torch.randn(6, 3, 2, generator=gen).requires_grad_()
    next_state = torch.randn(6, 3, 2, generator=gen).requires_grad_()
    negative = (torch.randn(6, 3, 2, generator=gen) * 0.4).requires_grad_()
    loss, positive, negative_term = cswm_hinge_loss(
        state, predicted, next_state, negative, sigma, hinge
    )
    want = reference_loss(state, predicted, next_state, negative, sigma, hinge)
    assert float(loss) == pytest.approx(want, rel=1e-6)
    assert float(positive + negative_term) == pytest.approx(want, rel=1e-6)
    # gradients against autograd of the plain formula in double precision
    inputs = [
        t.detach().double().requires_grad_() for t in (state, predicted, next_state, negative)
    ]
    s, p, n, g = inputs
    pos = 0.5 / sigma**2 * ((p - n) ** 2).sum(2).mean(1)
    neg = torch.clamp(hinge - 0.5 / sigma**2 * ((s - g) ** 2).sum(2).mean(1), min=0)
    (pos.mean() + neg.mean()).backward()
    loss.backward()
    for mine, ref in zip((state, predicted, next_state, negative), inputs, strict=True):
        torch.testing.assert_close(mine.grad.double(), ref.grad, rtol=1e-5, atol=1e-7)
    # some negatives are inside the margin, some outside: both branches of the hinge ran
    energies = transition_energy(state, negative, sigma)
    assert bool((energies < hinge).any()) and bool((energies > hinge).any())


def reference_transition(model, states, action):
    """TransitionGNN.forward as the reference writes it: an edge list of i != j per sample,
    edge MLP on (source, target), unsorted segment sum into the source node, the action's
    one-hot over K * A reshaped per node, node MLP on [node, action, aggregate]."""
    b, k, d = states.shape
    a = model.actions_per_object
    nodes = states.reshape(b * k, d)
    edges = [(s * k + i, s * k + j) for s in range(b) for i in range(k) for j in range(k) if i != j]
    row = torch.tensor([e[0] for e in edges])
    col = torch.tensor([e[1] for e in edges])
    edge_attr = model.edge(torch.cat([nodes[row], nodes[col]], dim=1))
    agg = torch.zeros(b * k, edge_attr.shape[1]).index_add(0, row, edge_attr)
    onehot = torch.zeros(b, k * a)
    onehot[torch.arange(b), action] = 1
    node_in = torch.cat([nodes, onehot.view(b * k, a), agg], dim=1)
    return model.node(node_in).view(b, k, d)


def test_transition_gnn_matches_the_reference_edge_list():
    torch.manual_seed(0)
    model = CswmEncoder(CswmSpec(3, (50, 50), 20, hidden_dim=32, embedding_dim=3))
    states = torch.randn(4, 5, 3)
    action = torch.tensor([0, 7, 13, 19])
    torch.testing.assert_close(
        model.transition(states, action), reference_transition(model.transition, states, action)
    )
    # the action reaches only its object's slot: slot 3 of action 13 (13 // 4 = 3)
    onehot = torch.nn.functional.one_hot(action, 20).float().view(4, 5, 4)
    assert onehot[2, 3, 1] == 1 and onehot[2].sum() == 1


def test_ranks_count_ties_against_the_target():
    pred = torch.tensor([[0.0], [0.0], [5.0]])
    target = torch.tensor([[0.0], [1.0], [5.0]])
    # target 0: predictions 0 and 1 both at distance 0 -> rank 2 (the reference's stable
    # sort would give rank 1); target 1: its prediction (distance 1) ties with prediction 0
    # -> rank 2; target 2: its own prediction is nearest -> rank 1
    assert target_ranks(pred, target).tolist() == [2, 2, 1]
    constant = torch.zeros(4, 2)
    assert target_ranks(constant, torch.randn(4, 2)).tolist() == [4, 4, 4, 4]


def test_protocol_figures_by_hand():
    pred = torch.tensor([[0.0], [0.0], [5.0], [9.0]])
    target = torch.tensor([[0.0], [1.0], [5.0], [2.0]])
    out = transition_ranking_protocol(
        Features(torch.zeros(4, 1), extra={"rollout_1": pred, "target_1": target})
    )
    ranks = [2, 2, 1, 4]  # target 3 (at 2): predictions at 0, 0 and 5 are all nearer than 9
    assert out["transition_step1_hit@1"] == pytest.approx(1 / 4)
    assert out["transition_step1_mrr"] == pytest.approx(sum(1 / r for r in ranks) / 4)
