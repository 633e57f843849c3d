"""Baselines are what their names say (issue 18, item 5): the fine-tuning protocol's
from-scratch arm is a random init even for a text model loaded pretrained, and a method that
trains with human labels (supervised SimCSE's NLI labels) is flagged as supervised everywhere."""

import importlib
import json

import torch
from test_simcse_supervised import config

import selfsup
from selfsup.evaluate.context import EncoderInputs, Features
from selfsup.models import build_encoder
from selfsup.models.text import TextEncoderSpec

finetune = importlib.import_module("selfsup.evaluate.finetune")


def test_finetune_scratch_arm_is_a_random_init_of_a_pretrained_text_model(tiny_bert, monkeypatch):
    pretrained = build_encoder(TextEncoderSpec(str(tiny_bert), pretrained=True))
    tuned = []

    def record(encoder, data, bank_labels, query_labels, subset, what="the encoder"):
        tuned.append(encoder)
        return 0.5

    monkeypatch.setattr(finetune, "finetune_accuracy", record)
    rows = pretrained.tokenize_all(["a man plays", "a dog runs", "the cat", "a woman cuts"])
    labels = torch.tensor([0, 1, 0, 1])
    model = EncoderInputs(pretrained, rows, rows, lambda batch: batch)
    features = Features(torch.zeros(4, 2), torch.zeros(4, 2), labels, labels, model=model)
    finetune.finetune_protocol(features)
    own, scratch = tuned
    assert own is pretrained and scratch.spec.pretrained is False
    name = "model.embeddings.word_embeddings.weight"
    weights = dict(scratch.named_parameters())[name]
    assert not torch.equal(weights, dict(pretrained.named_parameters())[name])


def test_supervised_simcse_is_flagged_at_start_in_eval_json_and_in_the_report(
    tmp_path, tiny_bert, capsys
):
    cfg = config(tmp_path, tiny_bert, **{"train.epochs": 1, "train.report": True})
    selfsup.pretrain(cfg, tmp_path / "run")
    assert "SUPERVISED: method 'simcse_sup'" in capsys.readouterr().out
    evaluation = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert "supervised" in evaluation["note"]
    assert "SUPERVISED: trained with labels" in (tmp_path / "run" / "report.html").read_text()
