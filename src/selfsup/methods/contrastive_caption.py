"""Contrastive learning for image captioning (Dai & Lin, NeurIPS 2017): a caption generator
trained by maximum likelihood, then made distinctive against a frozen copy of itself.

The captioner is the run's image tower (`model.backbone`) and a one-layer GRU decoder over the
word vocabulary of the training captions (the `text-words` tower's vocabulary:
`--set model.text_tower=words`); see `selfsup.models.captioner`. Two stages by training
progress (`plan`), each with its own optimiser:

1. "mle", until `contrastive_start`: token negative log-likelihood of each image's caption
   (teacher forcing, padding masked; `selfsup.losses.token_nll`).
2. "contrastive", from `contrastive_start`: on the first contrastive step the captioner is
   copied into `reference` (frozen; a buffer of the checkpoint, so a resume after the switch
   restores it exactly). Each step scores the batch's matched pairs (image i, caption i) and
   `negatives` re-pairings (image i, caption i+k of the batch, k = 1..negatives) under both
   models and minimises Dai & Lin's loss on G = log p_m(c|I) - log p_n(c|I)
   (`selfsup.losses.contrastive_caption_loss`). As in the released code the image tower is
   fixed in this stage (`finetune_cnn_after` 21 > its 20 epochs) and only the decoder learns.

Reference: doubledaibo/clcaption_nips2017 (misc/cl_cross.lua: the criterion, sigmoid(G - log
nu) with log nu = 0, each of vu = 5 mismatched draws weighted 1/vu, h clipped at 1e-20;
cl_train_cross.lua: Adam lr 4e-4, alpha 0.8, elementwise gradient clip 0.1, GRU/LSTM of 512).
Nothing is gathered across processes: every term is per pair and its negatives come from the
process's own batch, so DDP's gradient average is the whole story (no 1-vs-2 difference beyond
which captions a rank may pair with).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from selfsup.errors import SelfsupError
from selfsup.losses import contrastive_caption_loss, sequence_log_prob, token_nll
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models.captioner import Captioner, WordTextSpec, decode_words

MLE, CONTRASTIVE = "mle", "contrastive"


@dataclass
class ContrastiveCaptionConfig:
    """Defaults: the released code's criterion (nu 1, 5 negatives), a smaller decoder for
    small data (the paper: 512 units)."""

    contrastive_start: float = 0.7  # training progress where the contrastive stage starts
    negatives: int = 5  # mismatched captions per image (the released code's vu)
    nu: float = 1.0  # h = 1 / (1 + nu exp(-G)); the released code: 1 (log nu = 0)
    width: int = 256  # GRU width (the paper: 512)
    dropout: float = 0.0  # the released code: 0.5 on COCO; small data here, none
    contrastive_lr_scale: float = 1.0  # the contrastive optimiser's lr over the MLE one's
    train_image_tower: bool = False  # in the contrastive stage (the released code: fixed)
    beam: int = 1  # decoding for figures and evaluation: greedy (1) or beam search
    # the released code's constant Adam lr (its decay is commented out); false: the run's
    # warm-up + cosine over the whole run, which would leave the contrastive stage its tail
    constant_lr: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.contrastive_start <= 1.0:
            raise ValueError("contrastive_start must lie in (0, 1] (1: maximum likelihood only)")
        if self.negatives < 1 or self.nu <= 0 or self.width < 1 or self.beam < 1:
            raise ValueError("negatives, width and beam must be >= 1 and nu positive")


@register
class ContrastiveCaption(Method):
    """Captioner: image tower + GRU decoder; losses: token_nll, then contrastive_caption_loss."""

    name = "contrastive_caption"
    family = "image-text"
    paper = "Dai & Lin 2017, Contrastive Learning for Image Captioning"
    summary = "a captioner trained by likelihood, then to tell its image from others"
    Config = ContrastiveCaptionConfig
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "adamw",  # weight decay 0: Adam
        "lr": 1e-3,
        "weight_decay": 0.0,
        "betas": (0.8, 0.999),
    }
    optimiser_reference = (
        "doubledaibo/clcaption_nips2017 cl_train_cross.lua: Adam 4e-4 at 100 captions a batch "
        "(1e-3 per 256), alpha 0.8"
    )
    inputs = frozenset({"image", "input_ids", "attention_mask"})
    modalities = frozenset({"pair"})
    augment_family = "none"  # no views: a flip would swap left and right in the captions
    views_note = "none: images as they are (a flip would swap left and right in the captions)"
    updates: ClassVar[tuple[str, ...]] = (MLE, CONTRASTIVE)
    # captions name positions ("left of"): a tower that keeps the layout (the DCGAN trunk's
    # 4x4 grid of max-pooled maps), not one global average pool; --backbone names another
    backbones: ClassVar[dict[str, str]] = {"pair": "dcgan"}
    find_unused_parameters = True  # the contrastive stage leaves the image tower out
    exported_as = "clip encoder whose image tower is the captioner's (text side untrained)"

    def __init__(self, spec: Any, cfg: ContrastiveCaptionConfig, augment: Any):
        if not isinstance(getattr(spec, "text", None), WordTextSpec):
            raise SelfsupError(
                "contrastive_caption generates words from the training captions' vocabulary: "
                "run it with --set model.text_tower=words"
            )
        super().__init__(spec, cfg, augment)
        self.vocab = spec.text.vocab
        self.max_len = spec.text.context - 1
        # the exported clip encoder's text side and projections are not the captioner's
        for module in (self.encoder.text, self.encoder.text_projection):
            module.requires_grad_(False)
        self.encoder.image_projection.requires_grad_(False)
        self.captioner = Captioner(self.encoder.image, len(self.vocab) + 4, cfg.width, cfg.dropout)
        self.reference = copy.deepcopy(self.captioner).requires_grad_(False)
        self.register_counter("switched")

    def views(self, batch: Batch) -> list[Any]:
        return [batch["image"]]

    def _tokens(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Ids and mask cut to the batch's longest caption (start and end included)."""
        mask = batch["attention_mask"]
        length = int(mask.sum(dim=1).max())
        if length < 3:
            raise SelfsupError("every caption of this batch has no words: nothing to learn")
        return batch["input_ids"][:, :length], mask[:, :length]

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        ids, mask = self._tokens(batch)
        logits = self.captioner(views[0], ids)
        nll = token_nll(logits, ids[:, 1:], mask[:, 1:])
        return nll, {"token_nll": nll.detach()}

    def contrastive_loss(
        self, views: list[Any], batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Dai & Lin's loss on the batch's pairs and `negatives` re-pairings of its captions."""
        if not self.counter("switched"):
            self.reference.load_state_dict(self.captioner.state_dict())
            self.set_counter("switched", 1)
        ids, mask = self._tokens(batch)
        b = len(ids)
        k = min(self.cfg.negatives, b - 1)
        if k < 1:
            raise SelfsupError("the contrastive stage needs at least 2 pairs a batch")
        shifts = torch.arange(k + 1, device=ids.device)  # 0: the matched caption
        rows = (torch.arange(b, device=ids.device)[None] + shifts[:, None]) % b
        all_ids, all_mask = ids[rows].flatten(0, 1), mask[rows].flatten(0, 1)
        images = views[0]
        features = self.captioner.image(images)
        if not self.cfg.train_image_tower:
            features = features.detach()
        feats = features.repeat(k + 1, 1)
        lp_model = sequence_log_prob(
            self.captioner.decoder(feats, all_ids[:, :-1]), all_ids[:, 1:], all_mask[:, 1:]
        )
        self.reference.eval()
        with torch.no_grad():
            ref_feats = self.reference.image(images).repeat(k + 1, 1)
            lp_ref = sequence_log_prob(
                self.reference.decoder(ref_feats, all_ids[:, :-1]), all_ids[:, 1:], all_mask[:, 1:]
            )
        loss, figures = contrastive_caption_loss(
            lp_model[:b], lp_ref[:b], lp_model[b:], lp_ref[b:], nu=self.cfg.nu
        )
        return loss, {"contrastive_loss": loss.detach(), **figures}

    def update_loss(
        self, update: str, views: list[Any], batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if update == MLE:
            return self.loss(views, batch)
        if update == CONTRASTIVE:
            return self.contrastive_loss(views, batch)
        raise SelfsupError(f"method {self.name} has the updates mle, contrastive, not {update!r}")

    def update_groups(self, update: str) -> list[dict[str, Any]]:
        fixed = self.cfg.constant_lr
        if update == MLE:
            return [{"params": list(self.captioner.parameters()), "fixed_lr": fixed}]
        learning = self.captioner if self.cfg.train_image_tower else self.captioner.decoder
        scale = self.cfg.contrastive_lr_scale
        return [{"params": list(learning.parameters()), "lr_scale": scale, "fixed_lr": fixed}]

    def plan(self, progress: float) -> tuple[str, ...]:
        return (MLE,) if progress < self.cfg.contrastive_start else (CONTRASTIVE,)

    def captions(self, images: torch.Tensor, model: str = "captioner") -> list[str]:
        """Generated captions of uint8 images by the trained captioner or the frozen
        `reference` (the MLE model once the contrastive stage has started)."""
        net = self.captioner if model == "captioner" else self.reference
        net.eval()
        return decode_words(net.generate(images, self.max_len, self.cfg.beam), self.vocab)

    def heldout_figures(self, batch: Batch) -> dict[str, torch.Tensor]:
        ids, mask = self._tokens(batch)
        logp = sequence_log_prob(self.captioner(batch["image"], ids), ids[:, 1:], mask[:, 1:])
        return {"caption_nll_per_token": -logp / mask[:, 1:].sum(1)}

    def figures(self, batch: Batch) -> dict[str, Any]:
        images = batch["image"][:8]
        rows = [("model", self.captions(images))]
        if self.counter("switched"):
            rows = [("MLE", self.captions(images, "reference")), ("contrastive", rows[0][1])]
        return {f"{self.name}: generated captions": caption_sheet(images, rows)}


def caption_sheet(images: torch.Tensor, rows: list[tuple[str, list[str]]]) -> np.ndarray:
    """An (H, W, 3) uint8 sheet: each image enlarged on the left, each model's caption beside it."""
    from PIL import Image, ImageDraw

    scale = max(1, 64 // images.shape[-1])
    side = images.shape[-1] * scale
    line = 14
    height = max(side, line * len(rows)) + 6
    sheet = Image.new("RGB", (side + 420, height * len(images)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, image in enumerate(images):
        pixels = image.expand(3, -1, -1).permute(1, 2, 0).cpu().numpy()
        tile = Image.fromarray(pixels).resize((side, side), Image.NEAREST)
        sheet.paste(tile, (0, i * height))
        for j, (name, texts) in enumerate(rows):
            draw.text((side + 8, i * height + j * line + 2), f"{name}: {texts[i]}", fill=(0, 0, 0))
    return np.asarray(sheet)


def load_trained(run: str | Path) -> tuple[ContrastiveCaption, Any]:
    """A finished run's method (captioner and frozen MLE reference, as the checkpoint holds
    them) and its data splits (the held-out split the run recorded applied)."""
    import json

    from selfsup.config import config_from_dict
    from selfsup.modalities import get_modality
    from selfsup.run import build_method, method_backbone
    from selfsup.run_data import load_run_splits

    run = Path(run)
    cfg = config_from_dict(json.loads((run / "config.json").read_text())["config"])
    if cfg.method.name != ContrastiveCaption.name:
        raise SelfsupError(f"{run} is a {cfg.method.name} run, not {ContrastiveCaption.name}")
    modality = get_modality("pair")
    cfg = method_backbone(cfg, ContrastiveCaption, modality)
    splits = load_run_splits(cfg, run)
    method = build_method(cfg, modality, splits.train)
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)["method"]
    method.load_state_dict(state)
    return method.eval(), splits
