"""Fine-tuning protocol: stratified seeded label fractions, layer-wise lr decay on ViT blocks, a
pretrained encoder fine-tuned beats the same architecture from scratch, and the run wiring."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

import selfsup
from selfsup.evaluate.context import EncoderInputs, Features
from selfsup.evaluate.finetune import finetune_param_groups, finetune_protocol, stratified_subset
from selfsup.modalities.image import ImageModality
from selfsup.models import ImageEncoderSpec, build_encoder


def test_stratified_subset_is_stratified_and_seeded():
    labels = torch.tensor([0] * 100 + [1] * 50 + [2] * 10 + [3] * 1)
    a = stratified_subset(labels, 0.1, seed=3)
    counts = torch.bincount(labels[a], minlength=4).tolist()
    assert counts == [10, 5, 1, 1]  # round(0.1 * n), at least one per class
    assert torch.equal(a, stratified_subset(labels, 0.1, seed=3))
    assert not torch.equal(a, stratified_subset(labels, 0.1, seed=4))
    assert len(set(a.tolist())) == len(a)
    assert torch.equal(stratified_subset(labels, 1.0), torch.arange(len(labels)))
    with pytest.raises(selfsup.SelfsupError, match="fraction"):
        stratified_subset(labels, 0.0)


def test_llrd_gives_vit_blocks_decaying_learning_rates():
    spec = ImageEncoderSpec("vit-mini-p4", 1, 8, True, (0.5,), (0.25,))
    encoder = build_encoder(spec)
    depth = len(encoder.backbone.vit.blocks)
    head = nn.Linear(encoder.out_dim, 10)
    groups = finetune_param_groups(encoder, head, lr=1.0, llrd=0.5)
    lr_of = {}
    for g in groups:
        for p in g["params"]:
            lr_of[id(p)] = g["lr"]
    for name, p in encoder.named_parameters():
        if ".blocks." in name:
            i = int(name.split(".blocks.")[1].split(".")[0])
            assert lr_of[id(p)] == pytest.approx(0.5 ** (depth - i)), name
        elif "patch_embed" in name or "pos_embed" in name or "cls_token" in name:
            assert lr_of[id(p)] == pytest.approx(0.5 ** (depth + 1)), name
        else:  # the final norm, after the blocks
            assert lr_of[id(p)] == pytest.approx(1.0), name
    assert all(lr_of[id(p)] == 1.0 for p in head.parameters())
    # a convnet has no blocks: one lr for everything
    conv = build_encoder(ImageEncoderSpec("convnet", 1, 8, True, (0.5,), (0.25,)))
    assert {g["lr"] for g in finetune_param_groups(conv, head, 1.0, 0.5)} == {1.0}


def _digits():
    x, y = load_digits(return_X_y=True)
    images = torch.from_numpy((x * 255 / 16).round().astype(np.uint8).reshape(-1, 1, 8, 8))
    return images, torch.from_numpy(y)


def test_finetuning_a_pretrained_encoder_beats_scratch():
    images, labels = _digits()
    bank, bank_y, queries, query_y = images[:1400], labels[:1400], images[1400:], labels[1400:]
    torch.manual_seed(0)
    spec = ImageEncoderSpec("convnet", 1, 8, True, (0.3,), (0.4,))
    encoder = build_encoder(spec)
    # "pretrained" by three supervised epochs on the bank (a stand-in for any good start):
    # the protocol must carry what the encoder knows into a small labelled fraction
    head = nn.Linear(encoder.out_dim, 10)
    opt = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=3e-3)
    for _ in range(3):
        for idx in torch.randperm(1400).split(64):
            loss = F.cross_entropy(head(encoder(bank[idx])), bank_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    data = EncoderInputs(
        encoder,
        {"image": bank},
        {"image": queries},
        lambda b: b["image"],
        fraction=0.02,
        epochs=5,
        lr=1e-3,
        batch_size=16,
    )
    features = Features(
        queries=torch.zeros(len(queries), 1), bank_labels=bank_y, query_labels=query_y, model=data
    )
    out = finetune_protocol(features)
    assert out["finetune_labels"] == 30  # round(2 % of about 140) = 3 of each of 10 classes
    assert out["finetune_top1"] > out["finetune_scratch_top1"] + 0.2, out


def test_finetune_is_opt_in_and_reports_beside_scratch(tmp_path):
    cfg = selfsup.make_config(
        **{
            "method.name": "rotation",
            "method.head_hidden_dim": 16,
            "train.epochs": 1,
            "train.progress": False,
            "train.eval_every": 0,
            "train.report": False,
            "eval.protocols": "knn,finetune",
            "eval.finetune_fraction": 0.1,
            "eval.finetune_epochs": 1,
        }
    )
    result = selfsup.pretrain(cfg, tmp_path / "run")
    row = result.evaluation["selfsup"]
    assert {"knn_top1", "finetune_top1", "finetune_scratch_top1"} <= set(row)
    assert "finetune_top1" not in result.evaluation["random"]
    assert selfsup.make_config().eval.protocols is None  # the modality's defaults...
    assert "finetune" not in ImageModality.default_protocols  # ...which leave it out
    with pytest.raises(selfsup.SelfsupError, match="finetune_fraction"):
        selfsup.make_config(**{"eval.finetune_fraction": 1.5})


class _NaNAfterOneStep(nn.Module):
    """Finite features until fine-tuning moves its weight: then NaN (a diverging fine-tune)."""

    kind = "image"
    out_dim = 4

    def __init__(self):
        super().__init__()
        self.spec = ImageEncoderSpec("convnet", 1, 8, True, (0.5,), (0.25,))
        self.weight = nn.Parameter(torch.zeros(4))

    def forward(self, x):
        level = torch.where(self.weight.abs().sum() > 0, float("nan"), 1.0)
        return x.float().flatten(1)[:, :4] / 255 + self.weight + level


def test_a_diverging_fine_tune_is_one_clear_error_naming_who():
    from selfsup.evaluate.registry import run_protocols

    images = torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8)
    labels = torch.arange(40) % 2
    encoder = _NaNAfterOneStep()
    model = EncoderInputs(
        encoder, {"image": images[:30]}, {"image": images[30:]}, lambda b: b["image"], epochs=2
    )
    features = Features(torch.zeros(10, 4), torch.zeros(30, 4), labels[:30], labels[30:])
    features.model = model
    with pytest.raises(selfsup.SelfsupError, match=r"the learned encoder of R at step 3: fine"):
        run_protocols(features, ("finetune",), who="the learned encoder of R at step 3")
