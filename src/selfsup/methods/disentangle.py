"""Content/style disentanglement (AdaIN-VC): a content encoder that instance-normalises every
layer, so it cannot carry a sample's global statistics, a globally pooled style encoder, and a
decoder that puts the style back by adaptive instance normalisation, trained by reconstruction
alone; for images and for series.

Chou, Yeh & Lee 2019, "One-shot voice conversion by separating speaker and content
representations with instance normalization"; checked against the authors' code
(jjery2243542/adaptive_voice_conversion: model.py's ContentEncoder, SpeakerEncoder, Decoder;
solver.py's loss; config.yaml's settings). Loss: 10 * L1(x_hat, x) + lambda_kl * KL of the
content code (mu, log-variance: a VAE's code, sampled in training), lambda_kl rising linearly
to 1 over the first 4 % of training (the reference's 20,000 of 500,000 iterations). Where ours
differs (input instance norm, no conv bank, sizes): docs/methods-generative.md.

Either code is the exported encoder (`method.export`): "content" (the content map mu, pooled
as `models.adain.AdainEncoder` says) or "style" (the style vector); a run evaluates one, so the
benchmark and tests train once per code or read both from the method (`codes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from selfsup.errors import SelfsupError
from selfsup.losses import disentangle_loss
from selfsup.methods.base import MAIN, Batch, Method
from selfsup.methods.registry import register
from selfsup.models import build_encoder
from selfsup.models.adain import AdainDecoder, AdainSpec

EXPORTS = ("content", "style")


@dataclass
class DisentangleConfig:
    export: str = "content"  # which code is the exported encoder: content | style
    width: int = 32  # hidden channels (reference: 128, for 512 mel bins)
    blocks: int = 2  # residual blocks per network (reference: 6)
    downsample: int = 1  # blocks that halve the resolution (reference: 3 of 6)
    content_channels: int = 8  # channels of the content map (reference: 128)
    style_dim: int = 32  # length of the style vector (reference: 128)
    content_grid: int = 4  # images: the content map's pooled grid (the exported vector)
    input_norm: bool = True  # the content encoder instance-normalises its input too
    lambda_rec: float = 10.0
    lambda_kl: float = 1.0
    kl_anneal: float = 0.04  # share of training over which the KL weight rises to lambda_kl
    swap_samples: int = 6  # rows and columns of the swap grid

    def __post_init__(self) -> None:
        if self.export not in EXPORTS:
            raise ValueError(
                f"export must be one of {', '.join(EXPORTS)} (which code the run saves and "
                f"evaluates); got {self.export!r}"
            )
        if self.lambda_rec <= 0 or self.lambda_kl < 0 or not 0 <= self.kl_anneal <= 1:
            raise ValueError("lambda_rec must be > 0, lambda_kl >= 0, kl_anneal in [0, 1]")
        if self.swap_samples < 1:
            raise ValueError("swap_samples must be positive")


def adain_spec(spec: Any, cfg: DisentangleConfig, part: str) -> AdainSpec:
    """The content or style encoder's spec for the data the modality's `spec` describes."""
    image = spec.kind == "image"
    if not image and getattr(spec, "modality", spec.kind) != "series":
        raise SelfsupError(
            f"disentangle trains on images or series; this data gives a {spec.kind!r} encoder"
        )
    if image and spec.backbone != "convnet":
        raise SelfsupError(
            f"disentangle brings its own networks (models/adain.py); leave model.backbone unset "
            f"(got {spec.backbone!r}) and size them with method.width / method.blocks"
        )
    return AdainSpec(
        modality="image" if image else "series",
        part=part,
        in_channels=spec.in_channels,
        image_size=spec.image_size if image else 0,
        width=cfg.width,
        blocks=cfg.blocks,
        downsample=cfg.downsample,
        content_channels=cfg.content_channels,
        style_dim=cfg.style_dim,
        content_grid=cfg.content_grid,
        input_norm=cfg.input_norm,
        channel_groups=tuple(spec.channel_groups) if image else (),
    )


@register
class Disentangle(Method):
    """x -> content map (instance-normalised encoder) + style vector (pooled encoder) ->
    AdaIN decoder -> x_hat; loss 10 * |x_hat - x| + KL(content code)."""

    name = "disentangle"
    family = "generative"
    paper = "Chou et al. 2019, AdaIN-VC (content/style by instance normalisation)"
    summary = "instance-normalised content and pooled style codes redraw the sample by AdaIN"
    Config = DisentangleConfig
    inputs = frozenset({MAIN})
    modalities = frozenset({"image", "series"})
    augment_family = "none"
    views_note = "no augmentation: the sample is reconstructed from its content and style codes"
    # Adam 5e-4 at batch 128 (config.yaml), per 256 samples under linear scaling; the
    # reference's amsgrad and gradient clipping at norm 5 are not among optim's settings
    optimiser: ClassVar[dict[str, Any]] = {"name": "adamw", "lr": 1e-3, "weight_decay": 1e-4}
    optimiser_reference = "AdaIN-VC's config.yaml (Adam 5e-4 at batch 128, weight decay 1e-4)"
    num_views = 1

    def __init__(self, spec: Any, cfg: Any, augment: Any):
        content = adain_spec(spec, cfg, "content")
        super().__init__(content, cfg, augment)  # self.encoder: the content encoder
        self.style_encoder = build_encoder(adain_spec(spec, cfg, "style"))
        self.decoder = AdainDecoder(content)
        self.exported_as = f"{cfg.export} encoder (method.export={cfg.export})"
        self.register_counter("progress")

    def views(self, batch: Batch) -> list[Any]:
        x = self.main(batch)
        if self.main_field == "image":
            return [self.augment(x, view=0)] if self.augment is not None else [x.float() / 255]
        return [x]

    def codes(self, x: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(content mu, its log-variance, style vector) of a model input."""
        x = self.encoder.input(x)
        mu, log_var = self.encoder.code(x)
        return mu, log_var, self.style_encoder.code(x)

    def decode(self, content: torch.Tensor, style: torch.Tensor, size: tuple[int, ...]) -> Any:
        """The sample drawn from a content map and a style vector, at spatial `size`."""
        return self.decoder(content, style, size)

    def kl_weight(self) -> float:
        """lambda_kl, rising linearly over the first `kl_anneal` of training (host number)."""
        c = self.cfg
        done = self.counter("progress")
        return c.lambda_kl if c.kl_anneal == 0 else c.lambda_kl * min(1.0, done / c.kl_anneal)

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x = self.encoder.input(views[0])
        mu, log_var = self.encoder.code(x)
        style = self.style_encoder.code(x)
        z = mu + torch.randn_like(mu) * (log_var / 2).exp() if self.training else mu
        x_hat = self.decode(z, style, tuple(x.shape[2:]))
        self.watch(torch.nn.functional.normalize(style, dim=1))
        loss, rec, kl = disentangle_loss(
            x_hat.float(),
            x.float(),
            mu.float(),
            log_var.float(),
            self.cfg.lambda_rec,
            self.kl_weight(),
        )
        return loss, {"rec_l1": rec.detach(), "kl": kl.detach()}

    def after_step(self, progress: float) -> None:
        self.set_counter("progress", progress)

    def exported(self) -> torch.nn.Module:
        return self.encoder if self.cfg.export == "content" else self.style_encoder

    def heldout_figures(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Each held-out sample's mean absolute reconstruction error from its own codes."""
        x = self.encoder.input(batch[self.main_field])
        mu, _, style = self.codes(x)
        x_hat = self.decode(mu, style, tuple(x.shape[2:]))
        return {"heldout_rec_l1": (x_hat - x).abs().flatten(1).mean(1)}

    def figures(self, batch: Batch) -> dict[str, Any]:
        """The swap grid: the content of row i decoded with the style of column j (the
        diagonal is each sample's own reconstruction); the inputs head the rows and columns."""
        x = self.encoder.input(batch[self.main_field])[: self.cfg.swap_samples]
        n = len(x)
        mu, _, style = self.codes(x)
        size = tuple(x.shape[2:])
        grid = self.decode(
            mu.repeat_interleave(n, 0), style.repeat(n, 1), size
        )  # row i, column j at i * n + j
        grid = grid.view(n, n, *x.shape[1:])
        title = f"{self.name}: content of row i, style of column j"
        if self.main_field == "image":
            return {title: image_swap_grid(x, grid)}
        return {title: series_swap_grid(x, grid)}


def image_swap_grid(x: torch.Tensor, grid: torch.Tensor, gap: int = 1) -> np.ndarray:
    """uint8 (H, W, 3): the top row the style sources, the left column the content sources,
    cell (i, j) the decoded image; images in [0, 1], tiny ones enlarged."""
    n, c, h, w = x.shape
    scale = max(1, 64 // max(h, w))
    cells = torch.cat([torch.ones(1, c, h, w), x.cpu()])[:, None].repeat(1, n + 1, 1, 1, 1)
    cells[0, 1:] = x.cpu()
    cells[1:, 1:] = grid.cpu().float()
    cells = cells.clamp(0, 1).mul(255).round().to(torch.uint8)
    if c == 1:
        cells = cells.expand(-1, -1, 3, -1, -1)
    cells = cells[:, :, :3].repeat_interleave(scale, 3).repeat_interleave(scale, 4)
    hs, ws = h * scale, w * scale
    out = np.full(((n + 1) * (hs + gap) + gap, (n + 1) * (ws + gap) + gap, 3), 255, np.uint8)
    for i in range(n + 1):
        for j in range(n + 1):
            top, left = gap + i * (hs + gap), gap + j * (ws + gap)
            out[top : top + hs, left : left + ws] = cells[i, j].permute(1, 2, 0).numpy()
    return out


def series_swap_grid(x: torch.Tensor, grid: torch.Tensor) -> np.ndarray:
    """uint8 (H, W, 3) drawn with matplotlib: the top row the style sources, the left column
    the content sources (grey), cell (i, j) the decoded series (first channel), one y scale."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(x)
    x, grid = x[:, 0].cpu().numpy(), grid[:, :, 0].cpu().float().numpy()
    low, high = min(x.min(), grid.min()), max(x.max(), grid.max())
    pad = 0.05 * (high - low + 1e-6)
    fig = Figure(figsize=(1.2 * (n + 1), 0.8 * (n + 1)), dpi=80)
    axes = fig.subplots(n + 1, n + 1, squeeze=False)
    for i in range(n + 1):
        for j in range(n + 1):
            ax = axes[i][j]
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_ylim(low - pad, high + pad)
            if i == 0 and j == 0:
                ax.axis("off")
            elif i == 0 or j == 0:
                ax.plot(x[j - 1] if i == 0 else x[i - 1], color="0.45", lw=0.8)
            else:
                ax.plot(grid[i - 1, j - 1], color="C0", lw=0.8)
    fig.subplots_adjust(0.01, 0.01, 0.99, 0.99, 0.05, 0.05)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
