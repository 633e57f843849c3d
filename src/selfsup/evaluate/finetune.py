"""Fine-tuning as an evaluation protocol (issue 9): the whole encoder plus a linear head trained
with labels, on a stratified, seeded fraction of the bank, scored on the held-out queries, beside
the same architecture trained from random initialisation on the same labels.

Unlike kNN and the linear probe this protocol needs the encoder and the model inputs rather than
frozen features: `Features.model` (an `EncoderInputs`) carries them, and the registry marks it
`uses_encoder`. It is not a default protocol (it trains two networks); ask for it with
`--set eval.protocols=knn,linear,finetune`.

Recipe: AdamW (weight decay 0.05), cosine decay of the lr over `eval.finetune_epochs` epochs,
batches of `eval.finetune_batch_size` (a last batch of one sample is dropped, for BatchNorm);
layer-wise lr decay for ViT backbones (`eval.finetune_llrd`, 0.75 as in BEiT/MAE fine-tuning:
block i of L gets lr * llrd^(L + 1 - i), the patch embedding lr * llrd^(L + 1), the head lr). No
augmentation during fine-tuning: the model sees the clean inputs, which keeps the protocol
modality-agnostic (text fine-tunes the same way) and cheap.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from selfsup.errors import SelfsupError
from selfsup.evaluate.context import EncoderInputs, Features, NonFiniteError
from selfsup.evaluate.ties import label_hits

_BLOCK = re.compile(r"(?:^|\.)blocks\.(\d+)\.")
_EMBEDDING = ("patch_embed", "cls_token", "pos_embed", "reg_token")
WEIGHT_DECAY = 0.05


def stratified_subset(labels: Tensor, fraction: float, seed: int = 0) -> Tensor:
    """Sorted positions of a seeded, stratified `fraction` of `labels`: each class keeps
    round(fraction * its count) samples, at least one, so that rare classes stay present."""
    if not 0 < fraction <= 1:
        raise SelfsupError(f"the fine-tuning fraction must be in (0, 1]; got {fraction}")
    labels = labels.cpu()
    gen = torch.Generator().manual_seed(seed)
    keep = []
    for c in torch.unique(labels):
        members = torch.nonzero(labels == c).flatten()
        k = max(1, round(fraction * len(members)))
        keep.append(members[torch.randperm(len(members), generator=gen)[:k]])
    return torch.cat(keep).sort().values


def layer_ids(encoder: nn.Module) -> tuple[dict[str, int], int]:
    """Layer index of every parameter for layer-wise lr decay, and the number of layers + 1.

    Transformer blocks (`...blocks.i...`) are layers 1..L, the embeddings (patch, position,
    class token) layer 0, everything after the blocks (final norm) layer L + 1. An encoder
    without blocks (a convnet, a ResNet) is one layer: every parameter gets L + 1 = 1.
    """
    names = [n for n, _ in encoder.named_parameters()]
    blocks = [int(m.group(1)) for n in names if (m := _BLOCK.search(n))]
    depth = max(blocks) + 1 if blocks else 0
    ids = {}
    for n in names:
        m = _BLOCK.search(n)
        if m:
            ids[n] = int(m.group(1)) + 1
        elif depth and any(part in n for part in _EMBEDDING):
            ids[n] = 0
        else:
            ids[n] = depth + 1
    return ids, depth + 1


def finetune_param_groups(
    encoder: nn.Module, head: nn.Module, lr: float, llrd: float
) -> list[dict[str, Any]]:
    """Optimizer groups: the head at `lr`, each encoder layer at lr * llrd^(top - layer).
    Biases and norm weights (1-D parameters) get no weight decay."""
    ids, top = layer_ids(encoder)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, p in encoder.named_parameters():
        decay = p.ndim > 1
        key = (ids[name], decay)
        if key not in groups:
            groups[key] = {
                "params": [],
                "lr": lr * llrd ** (top - ids[name]),
                "weight_decay": WEIGHT_DECAY if decay else 0.0,
                "layer": ids[name],
            }
        groups[key]["params"].append(p)
    head_params = list(head.parameters())
    return [
        *groups.values(),
        {"params": head_params, "lr": lr, "weight_decay": WEIGHT_DECAY, "layer": top},
    ]


def _rows(inputs: dict[str, Tensor], idx: Tensor, device: torch.device) -> dict[str, Tensor]:
    return {k: v[idx].to(device) for k, v in inputs.items()}


def scratch_spec(spec: Any) -> Any:
    """The spec of a random init of the same architecture: every `pretrained` flag turned off
    (a text model folder loaded with its weights, CLIP's text tower); other specs as they are."""
    if not dataclasses.is_dataclass(spec):
        return spec
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if f.name == "pretrained" and value:
            changes[f.name] = False
        elif dataclasses.is_dataclass(value) and (inner := scratch_spec(value)) is not value:
            changes[f.name] = inner
    return dataclasses.replace(spec, **changes) if changes else spec


def finetune_accuracy(
    encoder: nn.Module,
    data: EncoderInputs,
    bank_labels: Tensor,
    query_labels: Tensor,
    subset: Tensor,
    what: str = "the encoder",
) -> float:
    """Top-1 on the queries of a copy of `encoder` plus a linear head trained on `subset`
    (ties count against the true class). A NaN or infinite loss or logit raises
    NonFiniteError naming `what` was fine-tuned."""
    device = torch.device(data.device)
    model = copy.deepcopy(encoder).to(device)
    for p in model.parameters():
        p.requires_grad_(True)
    num_classes = int(max(bank_labels.max(), query_labels.max())) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(data.seed)
        head = nn.Linear(model.out_dim, num_classes).to(device)
    groups = finetune_param_groups(model, head, data.lr, data.llrd)
    for g in groups:
        g["base_lr"] = g["lr"]
    opt = torch.optim.AdamW(groups)
    gen = torch.Generator().manual_seed(data.seed)
    y_bank = bank_labels.long()
    steps_per_epoch = max(1, math.ceil(len(subset) / data.batch_size))
    total, step = data.epochs * steps_per_epoch, 0
    model.train()
    diverged = torch.zeros((), dtype=torch.bool, device=device)  # read once an epoch: no sync
    with torch.enable_grad():
        for epoch in range(data.epochs):
            order = subset[torch.randperm(len(subset), generator=gen)]
            for start in range(0, len(order), data.batch_size):
                idx = order[start : start + data.batch_size]
                if len(idx) < 2:  # BatchNorm cannot train on one sample
                    continue
                for g in groups:
                    g["lr"] = g["base_lr"] * 0.5 * (1 + math.cos(math.pi * step / total))
                logits = head(model(data.to_input(_rows(data.bank, idx, device))))
                loss = F.cross_entropy(logits, y_bank[idx].to(device))
                diverged |= ~torch.isfinite(loss.detach())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
            if bool(diverged):
                raise NonFiniteError(
                    f"fine-tuning {what} gave a NaN or infinite loss in epoch {epoch + 1}; if "
                    "its features are finite, lower eval.finetune_lr"
                )
    model.eval()
    correct = 0
    n = len(query_labels)
    with torch.no_grad():
        for start in range(0, n, 512):
            idx = torch.arange(start, min(n, start + 512))
            logits = head(model(data.to_input(_rows(data.queries, idx, device))))
            if not bool(torch.isfinite(logits).all()):
                raise NonFiniteError(f"fine-tuned {what} gives NaN or infinite outputs")
            correct += int(label_hits(logits, query_labels[idx]).sum())
    return correct / n


def finetune_protocol(features: Features) -> dict[str, float]:
    """`finetune_top1` (the encoder fine-tuned) and `finetune_scratch_top1` (the same
    architecture from random init, same labels, same recipe) on the held-out queries. The
    scratch arm is a random init even when the encoder started from pretrained weights (a text
    model folder): `scratch_spec` turns the pretrained flags off."""
    data = features.model
    if data is None or features.bank_labels is None or features.query_labels is None:
        raise SelfsupError("fine-tuning needs the encoder, its inputs and labels on both splits")
    subset = stratified_subset(features.bank_labels, data.fraction, data.seed)
    tuned = finetune_accuracy(
        data.encoder, data, features.bank_labels, features.query_labels, subset
    )
    from selfsup.models import build_encoder

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(data.seed)
        scratch_encoder = build_encoder(scratch_spec(data.encoder.spec))
    scratch = finetune_accuracy(
        scratch_encoder,
        data,
        features.bank_labels,
        features.query_labels,
        subset,
        what="the from-scratch copy",
    )
    return {
        "finetune_top1": tuned,
        "finetune_scratch_top1": scratch,
        "finetune_labels": float(len(subset)),
    }
