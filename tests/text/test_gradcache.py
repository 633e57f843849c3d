"""GradCache gives the gradients of the plain big-batch graph, dropout on."""

import pytest
import torch
from text_fixtures import CORPUS

from selfsup.methods.contrastive_tension import ContrastiveTension, ContrastiveTensionConfig
from selfsup.methods.simcse import SimCSE, SimCSEConfig
from selfsup.methods.simcse_supervised import SupervisedSimCSE, SupervisedSimCSEConfig
from selfsup.models.gradcache import cached_embeddings
from selfsup.models.text import TextEncoderSpec


def _grads(method, batch, seed):
    method.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    loss, _ = method.loss(method.views(batch), batch)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in method.named_parameters()}


def _plain_chunked_graph(method, batch, chunk, seed):
    """The reference: the whole doubled batch in ONE autograd graph, embedded in the same
    chunks from the same seed (so the dropout masks are the ones GradCache replays)."""
    from selfsup.losses import info_nce
    from selfsup.methods.simcse import row_hashes

    method.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    both = {k: torch.cat([batch[k], batch[k]]) for k in batch}
    n = both["input_ids"].shape[0]
    z = torch.cat(
        [method.embed({k: v[i : i + chunk] for k, v in both.items()}) for i in range(0, n, chunk)]
    )
    z1, z2 = z.chunk(2)
    h = row_hashes(batch["input_ids"], batch["attention_mask"])
    exclude = (h[:, None] == h[None, :]) & ~torch.eye(len(h), dtype=torch.bool)
    loss = info_nce(z1, z2, 0.05, exclude)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in method.named_parameters()}


def same_gradient(got: torch.Tensor, want: torch.Tensor) -> bool:
    """Equal up to float rounding at the tensor's own scale: each chunk drops its own padding
    columns, so sums over tokens run in another order than the whole batch's."""
    return torch.allclose(got, want, atol=1e-5 * max(1.0, want.abs().max().item()), rtol=1e-4)


def test_simcse_gradcache_equals_the_plain_graph_with_dropout_on(tiny_bert):
    torch.manual_seed(0)
    method = SimCSE(TextEncoderSpec(str(tiny_bert)), SimCSEConfig(chunk_size=3), None).train()
    assert method.encoder.model.config.hidden_dropout_prob > 0
    batch = method.encoder.tokenize_all(CORPUS[:8])
    loss, grads = _grads(method, batch, seed=5)
    ref_loss, ref = _plain_chunked_graph(method, batch, 3, seed=5)
    assert torch.allclose(loss, ref_loss, atol=1e-6)
    for name, g in ref.items():
        assert same_gradient(grads[name], g), name
    # the replay matters: another seed (other masks) gives other gradients
    _, other = _plain_chunked_graph(method, batch, 3, seed=6)
    assert not all(torch.allclose(other[n], g, atol=1e-6) for n, g in ref.items())


def test_supervised_gradcache_equals_the_unchunked_batch_without_dropout(tiny_bert_no_dropout):
    torch.manual_seed(0)
    spec = TextEncoderSpec(str(tiny_bert_no_dropout))
    method = SupervisedSimCSE(spec, SupervisedSimCSEConfig(), None)
    tokens = [method.encoder.tokenize_all(CORPUS[i : i + 4]) for i in (0, 3, 6)]
    batch = tokens[0] | {f"positive_{k}": v for k, v in tokens[1].items()}
    batch |= {f"negative_{k}": v for k, v in tokens[2].items()}
    loss, ref = _grads(method, batch, seed=1)
    method.cfg.chunk_size = 5
    chunked_loss, grads = _grads(method, batch, seed=1)
    assert torch.allclose(loss, chunked_loss, atol=1e-6)
    for name, g in ref.items():
        assert same_gradient(grads[name], g), name


def test_contrastive_tension_gradcache_equals_the_unchunked_batch_without_dropout(
    tiny_bert_no_dropout,
):
    torch.manual_seed(0)
    spec = TextEncoderSpec(str(tiny_bert_no_dropout))
    method = ContrastiveTension(spec, ContrastiveTensionConfig(), None)
    with torch.no_grad():  # the two towers apart, as after some training
        for p in method.partner.parameters():
            p.add_(0.01 * torch.randn_like(p))
    batch = method.encoder.tokenize_all(CORPUS[:7])
    loss, ref = _grads(method, batch, seed=1)
    method.cfg.chunk_size = 3
    chunked_loss, grads = _grads(method, batch, seed=1)
    assert torch.allclose(loss, chunked_loss, atol=1e-6)
    assert any(n.startswith("partner.") for n in grads) and len(grads) == len(ref)
    for name, g in ref.items():
        assert same_gradient(grads[name], g), name


def test_rng_is_left_as_the_plain_forward_leaves_it(tiny_bert):
    torch.manual_seed(0)
    method = SimCSE(TextEncoderSpec(str(tiny_bert)), SimCSEConfig(chunk_size=4), None)
    batch = method.encoder.tokenize_all(CORPUS[:8])
    torch.manual_seed(3)
    loss, _ = method.loss(method.views(batch), batch)
    after_forward = torch.get_rng_state()
    loss.backward()  # the replay must not move the generator
    assert torch.equal(torch.get_rng_state(), after_forward)


def test_chunk_size_is_checked():
    with pytest.raises(ValueError, match="chunk_size"):
        SimCSEConfig(chunk_size=0)
    lin = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="positive"):
        cached_embeddings(lambda x: lin(x["x"]), {"x": torch.ones(4, 2)}, [lin.weight], -1)
