"""Masked language modelling: BERT's masking statistics (15 %, 80/10/10, never special or
padding, whole words intact), the loss against a loop, the tied head, exact resume, MLM then
SimCSE from the exported encoder, and (slow) convergence from random init on STS-B."""

import json

import pytest
import torch
from lm_fixtures import corpus_file, make_small_bert, stsb_run_config, stsb_sentences
from method_harness import assert_resume_exact
from safetensors.torch import load_file
from text_fixtures import CORPUS

import selfsup
from selfsup.augment.token_masking import (
    bert_masking,
    word_start_positions,
    word_starts_from_vocab,
)
from selfsup.errors import SelfsupError
from selfsup.losses import masked_token_loss
from selfsup.methods.mlm import MLM, MLMConfig
from selfsup.models.text import TextEncoder, TextEncoderSpec

CLS, SEP, PAD, MASK = 2, 3, 0, 4
SPECIAL_IDS = torch.tensor([PAD, 1, CLS, SEP, MASK])


def synthetic_batch(rows: int = 3000, length: int = 24, seed: int = 0):
    """[CLS] w... [SEP] [PAD]... rows of random lengths over ids 5..299."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 300, (rows, length), generator=g)
    n = torch.randint(3, length + 1, (rows,), generator=g)
    position = torch.arange(length).expand(rows, length)
    ids[:, 0] = CLS
    ids = torch.where(position == (n - 1)[:, None], SEP, ids)
    ids = torch.where(position >= n[:, None], PAD, ids)
    special = torch.isin(ids, SPECIAL_IDS)
    return ids, special, position < n[:, None]


def mask(ids, special, seed=1, **kw):
    random_ids = torch.arange(5, 300)
    g = torch.Generator().manual_seed(seed)
    return bert_masking(ids, special, mask_id=MASK, random_ids=random_ids, generator=g, **kw)


def test_fifteen_percent_chosen_never_special_and_80_10_10():
    ids, special, _ = synthetic_batch()
    out, chosen = mask(ids, special)
    content = ~special
    assert not (chosen & special).any()
    assert torch.equal(out[special], ids[special])  # specials and padding untouched
    assert torch.equal(out[~chosen], ids[~chosen])  # only chosen tokens change
    rate = chosen.sum() / content.sum()
    assert abs(rate - 0.15) < 0.01, rate
    n = chosen.sum()
    masked = (out == MASK) & chosen
    changed = chosen & (out != MASK) & (out != ids)
    same = chosen & (out == ids)
    assert abs(masked.sum() / n - 0.8) < 0.02
    # a random draw equal to the original (1 in 295) counts as unchanged
    assert abs(changed.sum() / n - 0.1 * 294 / 295) < 0.015
    assert abs(same.sum() / n - (0.1 + 0.1 / 295)) < 0.015
    assert not torch.isin(out[changed], SPECIAL_IDS).any()  # random tokens are never special


def test_masking_is_a_function_of_the_generator_and_the_ratios_apply():
    ids, special, _ = synthetic_batch(500)
    a, b = mask(ids, special, seed=3), mask(ids, special, seed=3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    out, chosen = mask(ids, special, ratio=0.4, mask_prob=1.0, random_prob=0.0)
    assert abs(chosen.sum() / (~special).sum() - 0.4) < 0.02
    assert (out[chosen] == MASK).all()
    with pytest.raises(SelfsupError, match="probabilities"):
        mask(ids, special, ratio=0.0)


def test_whole_word_masking_keeps_words_together_at_fifteen_percent():
    ids, special, _ = synthetic_batch(4000)
    g = torch.Generator().manual_seed(5)
    word_start = (torch.rand(ids.shape, generator=g) < 0.5) | special
    word_start[:, 1] = True  # the first content token starts a word
    _, chosen = mask(ids, special, word_start=word_start)
    assert not (chosen & special).any()
    rate = chosen.sum() / (~special).sum()
    assert abs(rate - 0.15) < 0.01, rate
    # plain loop: every content token of a word shares the choice of the word's first token
    for row in range(200):
        start = None
        for t in range(ids.shape[1]):
            if special[row, t]:
                continue
            if word_start[row, t]:
                start = t
            assert chosen[row, t] == chosen[row, start], (row, t)
    # some words of several tokens are chosen whole (the test can see a broken group)
    assert (chosen[:, 1:] & ~word_start[:, 1:] & chosen[:, :-1]).sum() > 100


def test_word_start_positions_and_vocab_marks():
    starts = torch.tensor([[True, True, False, False, True, False]])
    assert word_start_positions(starts).tolist() == [[0, 1, 1, 1, 4, 4]]
    assert word_starts_from_vocab(["[CLS]", "play", "##ing", "a"]).tolist() == [
        True,
        True,
        False,
        True,
    ]
    assert word_starts_from_vocab(["<s>", "▁play", "ing"]).tolist() == [False, True, False]
    with pytest.raises(SelfsupError, match="whole-word"):
        word_starts_from_vocab(["a", "b"])


def test_masked_token_loss_matches_a_loop_values_and_gradients():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 11, requires_grad=True)
    targets = torch.randint(0, 11, (3, 5))
    selected = torch.rand(3, 5) < 0.4
    selected[0, 0] = True
    loss = masked_token_loss(logits, targets, selected)
    total, count = 0.0, 0
    for b in range(3):
        for t in range(5):
            if selected[b, t]:
                row = logits[b, t]
                total = total + (torch.logsumexp(row, 0) - row[targets[b, t]])
                count += 1
    reference = total / count
    assert torch.allclose(loss, reference)
    (g1,) = torch.autograd.grad(loss, logits)
    (g2,) = torch.autograd.grad(reference, logits)
    assert torch.allclose(g1, g2, atol=1e-7)
    assert (g1[~selected] == 0).all()
    none = masked_token_loss(logits, targets, torch.zeros_like(selected))
    assert none.item() == 0.0 and none.requires_grad
    flat = masked_token_loss(logits[selected], targets[selected])
    assert torch.allclose(flat, reference)


def method(folder, **cfg) -> MLM:
    torch.manual_seed(0)
    return MLM(TextEncoderSpec(str(folder)), MLMConfig(**cfg), None)


def test_the_method_masks_whole_words_of_real_wordpiece_ids_and_ties_the_head(tiny_bert):
    m = method(tiny_bert, whole_word=True)
    tokenizer = m.encoder.tokenizer
    batch = m.encoder.tokenize_all(CORPUS * 40)
    _, chosen = m.corrupt(batch, torch.Generator().manual_seed(0))
    special = torch.isin(batch["input_ids"], torch.tensor(tokenizer.all_special_ids))
    assert not (chosen & special).any()
    assert abs(chosen.sum() / (~special).sum() - 0.15) < 0.03
    pieces = [tokenizer.convert_ids_to_tokens(row) for row in batch["input_ids"].tolist()]
    for row, tokens in enumerate(pieces):
        for t, token in enumerate(tokens):
            if token.startswith("##"):
                assert chosen[row, t] == chosen[row, t - 1]
    loss, logs = m.loss(m.views(batch), batch)
    assert 0 <= logs["masked_acc"] <= 1
    loss.backward()
    embeddings = m.encoder.word_embeddings().weight
    assert embeddings.grad is not None and embeddings.grad.abs().sum() > 0
    # the decoder is the embedding matrix itself: the head holds no (V, H) weight of its own
    vocab = embeddings.shape[0]
    assert all(p.shape[0] != vocab for p in m.head.parameters() if p.dim() == 2)
    assert not any(p is embeddings for p in m.head.parameters())


def mlm_config(tmp_path, tiny_bert, **extra):
    return {
        "data.source": f"text:{corpus_file(tmp_path)}",
        "method.name": "mlm",
        "model.path": str(tiny_bert),
        "model.max_length": 12,
        "optim.name": "adamw",
        "optim.lr": 1e-3,
        "train.amp": False,
    } | extra


def test_resume_after_ctrl_c_is_exact(tmp_path, tiny_bert, monkeypatch):
    state = assert_resume_exact(tmp_path, monkeypatch, mlm_config(tmp_path, tiny_bert))
    assert "head.bias" in state and "head.dense.weight" in state
    exported = load_file(str(tmp_path / "straight" / "encoder.safetensors"))
    assert not any(key.startswith("head") for key in exported)


def test_mlm_then_simcse_starts_from_the_mlm_encoder(tmp_path, tiny_bert):
    fast = {
        "train.epochs": 1,
        "train.batch_size": 128,
        "train.progress": False,
        "train.eval_every": 0,
        "eval.protocols": "",
        "train.report": False,
    }
    cfg = selfsup.make_config(**(mlm_config(tmp_path, tiny_bert) | fast))
    selfsup.pretrain(cfg, tmp_path / "mlm")
    trained = load_file(str(tmp_path / "mlm" / "encoder.safetensors"))
    # the run directory is a model folder: its weights, architecture and tokenizer
    encoder = TextEncoder(TextEncoderSpec(str(tmp_path / "mlm")))
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, trained[key]), key
    scratch = TextEncoder(TextEncoderSpec(str(tmp_path / "mlm"), pretrained=False))
    assert not torch.equal(
        scratch.state_dict()["model.embeddings.word_embeddings.weight"],
        trained["model.embeddings.word_embeddings.weight"],
    )
    cfg = selfsup.make_config(
        **(
            mlm_config(tmp_path, tiny_bert)
            | fast
            | {"method.name": "simcse", "model.path": str(tmp_path / "mlm")}
        )
    )
    selfsup.pretrain(cfg, tmp_path / "simcse")
    meta = json.loads((tmp_path / "simcse" / "encoder.json").read_text())
    assert meta["spec"]["model"] == str(tmp_path / "mlm")
    after = selfsup.load(tmp_path / "simcse")
    assert selfsup.embed(after, ["a dog runs"]).shape == (1, 32)


def test_a_tokenizer_without_mask_token_is_refused(tmp_path, tiny_bert):
    import shutil

    folder = tmp_path / "nomask"
    shutil.copytree(tiny_bert, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("mask_token", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    special = folder / "special_tokens_map.json"
    if special.is_file():
        data = json.loads(special.read_text())
        data.pop("mask_token", None)
        special.write_text(json.dumps(data))
    with pytest.raises(SelfsupError, match="mask token"):
        method(folder)


@pytest.mark.slow
def test_mlm_from_random_init_lowers_heldout_loss_on_stsb(tmp_path):
    folder = make_small_bert(tmp_path / "small", stsb_sentences("train"))
    spec = TextEncoderSpec(str(folder), pretrained=False)
    cfg = stsb_run_config(folder, "mlm")

    def heldout_loss(m: MLM) -> float:
        sentences = stsb_sentences("test")[:1000]
        batch = m.encoder.tokenize_all(sentences)
        m.eval()
        with torch.no_grad():
            ids, chosen = m.corrupt(batch, torch.Generator().manual_seed(0))
            view = {"input_ids": ids, "attention_mask": batch["attention_mask"], "chosen": chosen}
            loss, logs = m.loss([view], batch)
        return float(loss), float(logs["masked_acc"])

    torch.manual_seed(cfg.train.seed)
    start = MLM(spec, MLMConfig(), None)
    before, acc_before = heldout_loss(start)
    result = selfsup.pretrain(cfg, tmp_path / "run")
    trained = MLM(spec, MLMConfig(), None)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["method"]
    trained.load_state_dict(state)
    after, acc_after = heldout_loss(trained)
    ev = result.evaluation
    print(
        f"held-out masked loss {before:.3f} -> {after:.3f}, accuracy {acc_before:.3f} -> "
        f"{acc_after:.3f}; STS-B spearman learned {ev['selfsup']['sts_spearman']:.4f} "
        f"as loaded {ev['as_loaded']['sts_spearman']:.4f} tfidf {ev['tfidf']['sts_spearman']:.4f}"
    )
    assert after < before - 1.0
    assert acc_after > acc_before + 0.05
