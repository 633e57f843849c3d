"""The text encoders as a chain (sentence-transformers' shape): token states
(`forward_features`) -> a `Pooling` module (`pool`); `forward` is the two in a row, and the
language-model methods read token states through these calls, not the transformer's insides."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from text_fixtures import CORPUS

import selfsup
from selfsup.models.text import Pooling, TextEncoder, TextEncoderSpec
from selfsup.models.text_scratch import ScratchTextEncoder, ScratchTextSpec


@pytest.mark.parametrize("pooling", ["cls", "mean", "first-last-avg"])
def test_forward_is_pool_of_the_token_states(tiny_bert, pooling):
    torch.manual_seed(0)
    enc = TextEncoder(TextEncoderSpec(str(tiny_bert), pooling=pooling)).eval()
    batch = enc.tokenize_all(CORPUS[:4])
    with torch.no_grad():
        features = enc.forward_features(batch)
        out = enc.model(**batch, output_hidden_states=True)  # the transformer by hand
    states, mask = features["token_states"], features["attention_mask"]
    assert torch.equal(mask, batch["attention_mask"][:, : states.shape[1]])
    assert torch.allclose(states, out.last_hidden_state[:, : states.shape[1]], atol=1e-5)
    weights = mask.unsqueeze(-1).float()
    if pooling == "first-last-avg":
        states = (out.hidden_states[1][:, : states.shape[1]] + states) / 2
    expected = states[:, 0] if pooling == "cls" else (states * weights).sum(1) / weights.sum(1)
    assert torch.allclose(enc.pool(features), expected, atol=1e-5)
    assert torch.equal(enc(batch), enc.pool(features))


def test_the_scratch_tower_pools_its_last_real_token():
    torch.manual_seed(0)
    tower = ScratchTextEncoder(ScratchTextSpec(width=16, layers=1, heads=2, context=20)).eval()
    batch = tower.tokenize_all(["cat", "a longer one"])
    with torch.no_grad():
        features, pooled = tower.forward_features(batch), tower(batch)
    assert features["token_states"].shape[:2] == (2, 14)  # padding to the context dropped
    assert torch.equal(pooled[0], features["token_states"][0, 4])  # SOT c a t EOT
    assert torch.equal(pooled, Pooling("last")(features))


def test_language_model_methods_call_the_encoder_not_its_transformer():
    methods = Path(selfsup.__file__).parent / "methods"
    for name in ("mlm", "causal_lm", "_lm_head", "tsdae", "simcse", "simcse_supervised"):
        source = (methods / f"{name}.py").read_text()
        assert not re.search(r"encoder\.model\b|last_hidden_state|hidden_states", source), name


def test_many_sentences_embed_by_length_and_come_back_in_their_order(tiny_bert):
    """`selfsup.embed` runs the sentences in order of token length (batches of similar length,
    little padding) and returns them in the caller's order, equal to one sentence at a time."""
    torch.manual_seed(0)
    enc = TextEncoder(TextEncoderSpec(str(tiny_bert))).eval()
    sentences = [CORPUS[i % 10] + " and more" * (i % 4) for i in range(23)]
    widths = []
    hook = enc.model.register_forward_hook(
        lambda m, args, kw, out: widths.append(kw["input_ids"].shape), with_kwargs=True
    )
    together = selfsup.embed(enc, sentences, batch_size=4)
    hook.remove()
    alone = [selfsup.embed(enc, [s])[0] for s in sentences]
    assert np.allclose(together, np.stack(alone), atol=1e-5)
    lengths = enc.tokenize_all(sentences)["attention_mask"].sum(1).sort(descending=True).values
    padded = sum(int(chunk[0]) * len(chunk) for chunk in lengths.split(4))
    assert sum(rows * width for rows, width in widths) == padded < len(sentences) * lengths[0]
