"""Encoders exported and checkpoints written before the text encoder became a chain
(transformer -> pooling) still load: `old_export/` is an MLM run on the tiny BERT made with the
code of then (first-last-avg pooling), with the embeddings it gave and its checkpoint's keys."""

import json
from pathlib import Path

import numpy as np
from text_fixtures import CORPUS

import selfsup
from selfsup.methods.mlm import MLM, MLMConfig
from selfsup.models.text import TextEncoderSpec

OLD = Path(__file__).parent / "old_export"


def test_an_old_export_loads_and_embeds_as_it_did():
    encoder = selfsup.load(OLD)
    expected = np.array(json.loads((OLD / "embeddings.json").read_text()), dtype=np.float32)
    assert np.allclose(selfsup.embed(encoder, CORPUS), expected, atol=1e-5)


def test_an_old_checkpoint_has_the_keys_of_the_method_now():
    old = json.loads((OLD / "checkpoint_keys.json").read_text())
    spec = TextEncoderSpec(str(OLD), pooling="first-last-avg", max_length=12)
    method = MLM(spec, MLMConfig(), None)  # the old run's encoder, as a resume builds it
    assert {key: list(value.shape) for key, value in method.state_dict().items()} == old
