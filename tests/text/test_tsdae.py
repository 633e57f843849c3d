"""TSDAE: the deletion noise, the token cross-entropy against a plain reference, a decoder that
sees the damaged sentence only through its pooled vector, exact resume, and a short run whose
reconstruction loss falls."""

import json

import method_harness
import pytest
import torch
from method_harness import assert_resume_exact
from text_fixtures import CORPUS

import selfsup
from selfsup.augment.text import word_deletion
from selfsup.errors import SelfsupError
from selfsup.losses import token_accuracy, token_cross_entropy
from selfsup.methods.tsdae import TSDAE, TSDAEConfig
from selfsup.models.text import TextEncoderSpec

LONG = [
    "a man is playing a guitar on the stage in the park today",
    "the cat sits on the mat",
    "a dog runs",
    "two dogs are running through a field",
]


def make_method(folder, **cfg) -> TSDAE:
    torch.manual_seed(0)
    return TSDAE(TextEncoderSpec(str(folder), max_length=24), TSDAEConfig(**cfg), augment=None)


def test_deletion_keeps_specials_order_and_deletes_about_60_percent(tiny_bert):
    method = make_method(tiny_bert)
    batch = method.encoder.tokenize_all(LONG * 4)
    torch.manual_seed(1)
    (damaged,) = method.views(batch)
    cls, sep = method.encoder.tokenizer.cls_token_id, method.encoder.tokenizer.sep_token_id
    rows = []
    columns = (batch["input_ids"], batch["attention_mask"])
    for ids, mask, new_ids, new_mask in zip(*columns, *damaged.values(), strict=True):
        old = ids[mask.bool()].tolist()
        new = new_ids[new_mask.bool()].tolist()
        assert new[0] == cls and new[-1] == sep  # specials kept, at their ends
        assert (new_ids[~new_mask.bool()] == method.pad_id).all()  # the freed tail is padding
        assert int(new_mask.sum()) == len(new) and new_mask[: len(new)].all()  # kept moved left
        content = old[1:-1]
        kept = new[1:-1]
        assert len(kept) == max(1, len(content) - round(0.6 * len(content)))
        it = iter(content)
        assert all(token in it for token in kept)  # a subsequence: order kept
        rows.append(tuple(new))
    # per-sentence randomness: copies of one sentence lose different tokens
    assert len(set(rows[0::4])) > 1
    # the function itself on a hand-made row: 10 content tokens -> 4 kept
    ids = torch.tensor([[2, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 3, 0, 0]])
    att = (ids != 0).long()
    out, out_mask = word_deletion(ids, att, torch.tensor([0, 1, 2, 3, 4]), 0.6, 0)
    assert int(out_mask.sum()) == 6 and out[0, 0] == 2 and out[0, 5] == 3


def reference_loss(logits, targets, mask):
    """Plain loops: -log p(target) summed over real tokens, divided by their count."""
    total, count = 0.0, 0
    for b in range(logits.shape[0]):
        for t in range(logits.shape[1]):
            if mask[b, t]:
                row = logits[b, t]
                total = total - (row[targets[b, t]] - torch.log(torch.exp(row).sum()))
                count += 1
    return total / count


def test_token_cross_entropy_matches_reference_values_and_gradients():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 7, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 7, (3, 5))
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    got = token_cross_entropy(logits, targets, mask)
    want = reference_loss(logits, targets, mask)
    assert torch.allclose(got.double(), want, atol=1e-6)
    (g1,) = torch.autograd.grad(got, logits)
    (g2,) = torch.autograd.grad(want, logits)
    assert torch.allclose(g1.double(), g2, atol=1e-6)
    assert (g1[1, 2:] == 0).all()  # padding gets no gradient
    hits = (logits.argmax(-1) == targets) & mask.bool()
    assert float(token_accuracy(logits, targets, mask)) == pytest.approx(hits.sum().item() / 8)
    with pytest.raises(ValueError, match="no token"):
        token_cross_entropy(logits, targets, torch.zeros_like(mask))
    with pytest.raises(ValueError, match="expected logits"):
        token_cross_entropy(logits, targets[:, :4], mask)


def test_decoder_sees_the_damaged_sentence_only_through_its_pooled_vector(tiny_bert):
    method = make_method(tiny_bert).eval()
    original = method.encoder.tokenize_all(LONG[:2])
    a = method.encoder.tokenize_all(["a man is playing", "the cat"])
    b = method.encoder.tokenize_all(["guitar on the stage today", "sits on the mat"])
    with torch.no_grad():
        logits_a, targets, _ = method.reconstruction_logits(a, original)
        logits_b, _, _ = method.reconstruction_logits(b, original)
        assert not torch.allclose(logits_a, logits_b)  # different damaged sentences differ...
        z = method.encoder(a)
        # ...but b, forced to a's pooled vector, decodes exactly like a
        hook = method.encoder.register_forward_hook(lambda module, args, out: z)
        forced, _, _ = method.reconstruction_logits(b, original)
        hook.remove()
        assert torch.equal(forced, logits_a)
        # the decoder's inputs are the ORIGINAL tokens shifted by one (teacher forcing)
        width = int(original["attention_mask"].sum(1).max())
        assert torch.equal(targets, original["input_ids"][:, 1:width])
    # a gradient reaches the encoder (through the vector) and the tied word embeddings
    method.train()
    loss, figures = method.loss(method.views(original), original)
    loss.backward()
    assert method.encoder.model.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0
    table = method.encoder.word_embeddings().weight
    assert table.grad.abs().sum() > 0 and 0 <= float(figures["token_accuracy"]) <= 1
    # the decoder is not part of the exported encoder and does not copy the tied table
    assert not any(n.startswith("decoder") for n, _ in method.encoder.named_parameters())
    assert sum(p is table for p in method.parameters()) == 1


def test_tsdae_errors(tiny_bert):
    with pytest.raises(SelfsupError, match=r"method\.augment"):
        TSDAE(TextEncoderSpec(str(tiny_bert)), TSDAEConfig(), augment=object())
    with pytest.raises(SelfsupError, match="decoder_heads"):
        make_method(tiny_bert, decoder_heads=3)
    with pytest.raises(SelfsupError, match="deletion must be"):
        TSDAE.make_config({"deletion": 1.0})


def run_config(tmp_path, folder, lines: int, **extra) -> dict:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join((CORPUS * lines)[:lines]) + "\n")
    return {
        "data.source": f"text:{corpus}",
        "method.name": "tsdae",
        "model.path": str(folder),
        "model.max_length": 16,
        "optim.name": "adamw",
        "optim.lr": 1e-3,
        "train.amp": False,
    } | extra


def test_tsdae_resume_is_exact(tmp_path, tiny_bert, monkeypatch):
    # The harness counts steps per epoch from the training set's size (digits' by default):
    # 160 sentences at batch 16 put its Ctrl-C in the second epoch (step 13 of 20).
    monkeypatch.setattr(method_harness, "DIGITS_TRAIN", 160)
    overrides = run_config(
        tmp_path, tiny_bert, 160, **{"method.decoder_layers": 1, "train.batch_size": 16}
    )
    state = assert_resume_exact(tmp_path, monkeypatch, overrides)
    assert any(k.startswith("decoder.") for k in state)  # the decoder's state was compared


@pytest.mark.slow
def test_tsdae_reconstruction_loss_falls(tmp_path, tiny_bert):
    overrides = run_config(
        tmp_path,
        tiny_bert,
        320,
        **{
            "train.epochs": 15,
            "train.batch_size": 32,
            "optim.lr": 1.6e-2,  # scaled by 32/256: AdamW at 2e-3
            "train.log_every": 5,
            "train.progress": False,
            "train.eval_every": 0,
            "train.report": False,
            "eval.protocols": "",
        },
    )
    selfsup.pretrain(selfsup.make_config(**overrides), tmp_path / "run")
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    first, last = train[0], train[-1]
    print("loss", first["loss"], "->", last["loss"], "accuracy", last.get("token_accuracy"))
    assert last["loss"] < 0.6 * first["loss"]
