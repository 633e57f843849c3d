"""Causal language modelling: the next-token loss against a loop, the causal mask (a changed
future token leaves earlier logits alone), the export stays causal, exact resume, and (slow) the
held-out next-token loss falls from random init on STS-B sentences."""

import pytest
import torch
from lm_fixtures import corpus_file, make_small_bert, stsb_run_config, stsb_sentences
from method_harness import assert_resume_exact
from text_fixtures import CORPUS

import selfsup
from selfsup.errors import SelfsupError
from selfsup.losses import next_token_loss
from selfsup.methods.causal_lm import CausalLM, CausalLMConfig
from selfsup.models.text import TextEncoderSpec


def test_next_token_loss_matches_a_loop_values_and_gradients():
    torch.manual_seed(0)
    logits = torch.randn(3, 6, 13, requires_grad=True)
    ids = torch.randint(0, 13, (3, 6))
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0]])
    loss = next_token_loss(logits, ids, mask)
    total, count = 0.0, 0
    for b in range(3):
        for t in range(5):
            if mask[b, t + 1]:
                row = logits[b, t]
                total = total + torch.logsumexp(row, 0) - row[ids[b, t + 1]]
                count += 1
    reference = total / count
    assert count == 5 + 2 + 1
    assert torch.allclose(loss, reference)
    (g1,) = torch.autograd.grad(loss, logits)
    (g2,) = torch.autograd.grad(reference, logits)
    assert torch.allclose(g1, g2, atol=1e-7)
    assert (g1[:, -1] == 0).all() and (g1[1, 2:] == 0).all()  # nothing predicted from there


def method(folder) -> CausalLM:
    torch.manual_seed(0)
    return CausalLM(TextEncoderSpec(str(folder)), CausalLMConfig(), None)


def test_a_changed_future_token_leaves_earlier_logits_alone(tiny_bert):
    m = method(tiny_bert).eval()
    batch = m.encoder.tokenize_all(CORPUS[:4])
    ids, mask = batch["input_ids"], batch["attention_mask"]
    changed = ids.clone()
    vocab = m.encoder.config.vocab_size
    changed[:, 4] = (ids[:, 4] - 5 + 7) % (vocab - 5) + 5
    assert (changed[:, 4] != ids[:, 4]).all() and (mask[:, 4] == 1).all()
    with torch.no_grad():
        a = m.logits(batch)[0]
        b = m.logits({"input_ids": changed, "attention_mask": mask})[0]
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-5)
    assert not torch.allclose(a[:, 4:], b[:, 4:], atol=1e-3)  # later positions see it
    loss, logs = m.loss(m.views(batch), batch)
    assert 0 <= logs["next_token_acc"] <= 1 and loss.requires_grad


def test_cls_pooling_is_refused(tiny_bert):
    with pytest.raises(SelfsupError, match="cls"):
        CausalLM(TextEncoderSpec(str(tiny_bert), pooling="cls"), CausalLMConfig(), None)


def test_resume_is_exact_and_the_export_stays_causal(tmp_path, tiny_bert, monkeypatch):
    assert_resume_exact(
        tmp_path,
        monkeypatch,
        {
            "data.source": f"text:{corpus_file(tmp_path)}",
            "method.name": "causal_lm",
            "model.path": str(tiny_bert),
            "model.max_length": 12,
            "optim.name": "adamw",
            "optim.lr": 1e-3,
            "train.amp": False,
        },
    )
    encoder = selfsup.load(tmp_path / "straight")
    assert encoder.spec.causal and encoder.config.is_decoder
    batch = encoder.preprocess(["a man is playing a guitar", "a man is playing the flute"])
    with torch.no_grad():
        hidden = encoder.forward_features(batch)["token_states"]
    assert torch.allclose(hidden[0, :4], hidden[1, :4], atol=1e-5)  # "[CLS] a man is" shared


@pytest.mark.slow
def test_causal_lm_from_random_init_lowers_heldout_loss_on_stsb(tmp_path):
    folder = make_small_bert(tmp_path / "small", stsb_sentences("train"))
    spec = TextEncoderSpec(str(folder), pretrained=False)
    cfg = stsb_run_config(folder, "causal_lm")

    def heldout(m: CausalLM) -> tuple[float, float]:
        sentences = stsb_sentences("test")[:1000]
        batch = m.encoder.tokenize_all(sentences)
        m.eval()
        with torch.no_grad():
            loss, logs = m.loss(m.views(batch), batch)
        return float(loss), float(logs["next_token_acc"])

    torch.manual_seed(cfg.train.seed)
    before, acc_before = heldout(CausalLM(spec, CausalLMConfig(), None))
    result = selfsup.pretrain(cfg, tmp_path / "run")
    trained = CausalLM(spec, CausalLMConfig(), None)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["method"]
    trained.load_state_dict(state)
    after, acc_after = heldout(trained)
    ev = result.evaluation
    print(
        f"held-out next-token loss {before:.3f} -> {after:.3f}, accuracy {acc_before:.3f} -> "
        f"{acc_after:.3f}; STS-B spearman learned {ev['selfsup']['sts_spearman']:.4f} "
        f"as loaded {ev['as_loaded']['sts_spearman']:.4f} tfidf {ev['tfidf']['sts_spearman']:.4f}"
    )
    assert after < before - 1.0
    assert acc_after > acc_before + 0.05
