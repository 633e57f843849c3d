"""On the generated scenes: the MLE captioner's BLEU-4 far above the untrained captioner's, and
the contrastive stage's captions retrieved (R@1, by a CLIP trained on the same training split)
more often than the MLE model's, on the same held-out images."""

import dataclasses

import pytest
from method_harness import torch_threads

import selfsup
from selfsup.evaluate.captioning import caption_scores
from selfsup.methods.contrastive_caption import load_trained
from selfsup.modalities import get_modality
from selfsup.run import build_method

COMMON = {
    "data.source": "scenes",
    "model.text_tower": "words",
    "model.backbone": "dcgan",
    "train.batch_size": 64,
    "train.progress": False,
    "train.eval_every": 0,
    "eval.protocols": "",
    "train.report": False,
}


@pytest.mark.slow
def test_contrastive_stage_raises_retrieval_without_losing_bleu(tmp_path):
    with torch_threads(1):
        clip = selfsup.make_config(
            **COMMON,
            **{
                "method.name": "clip",
                "train.epochs": 3,
                "model.text_width": 64,
                "model.text_layers": 2,
                "model.text_heads": 2,
                "model.embed_dim": 128,
            },
        )
        clip = dataclasses.replace(clip, method=dataclasses.replace(clip.method, augment="none"))
        selfsup.pretrain(clip, tmp_path / "clip")
        cap = selfsup.make_config(
            **COMMON,
            **{
                "method.name": "contrastive_caption",
                "train.epochs": 6,
                "method.contrastive_start": 0.5,
            },
        )
        selfsup.pretrain(cap, tmp_path / "cap")
        retriever = selfsup.load(tmp_path / "clip")
        method, splits = load_trained(tmp_path / "cap")
        images, refs = splits.test.images, splits.test.references
        untrained = build_method(cap, get_modality("pair"), splits.train).eval()
        scores = {
            name: caption_scores(net.captions(images, which), refs, retriever, images)
            for name, net, which in (
                ("mle", method, "reference"),
                ("contrastive", method, "captioner"),
                ("untrained", untrained, "captioner"),
            )
        }
    print(scores)
    assert scores["mle"]["bleu4"] > scores["untrained"]["bleu4"] + 0.4
    assert scores["contrastive"]["r1"] > scores["mle"]["r1"]
    assert scores["contrastive"]["bleu4"] > scores["mle"]["bleu4"] - 0.05
