"""TS-TCC, Time-Series representation learning via Temporal and Contextual Contrasting (Eldele
et al., IJCAI 2021), as its reference code (github.com/emadeldeen24/TS-TCC) computes it.

Each series gets a weak view (`ts-tcc-weak`: a random factor per time step) and a strong one
(`ts-tcc-strong`: segments permuted, then jitter). The encoder's per-step latents z (normalised
over channels) of view a up to a random step t are summarised by a transformer into a context
c_t; one linear W_k per step k = 1..K maps c_t to a prediction of view b's z_{t+k}, which must
pick its own prediction among the batch's (`selfsup.losses.temporal_contrast`): temporal
contrasting, both ways (a -> b and b -> a, each with its own t). The two contexts, through a
projection head, are contrasted with NT-Xent (cosine, temperature 0.2): contextual contrasting.
Loss = 1 * (TC(weak -> strong) + TC(strong -> weak)) + 0.7 * NT-Xent.

t is one number per step and direction, the same for every series of the batch (the
reference's), scaled to each series' valid length; it comes from a CPU generator seeded by the
step count, so the step never waits for the device, every rank draws the same t and a resume
draws what the straight run drew.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.augment.series import SERIES_RECIPES, SeriesAugment
from selfsup.distributed import gather_with_grad, gather_without_grad
from selfsup.errors import SelfsupError
from selfsup.losses import nt_xent, temporal_contrast
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models.tstcc import ContextTransformer

# the recipe the series modality hands a method when the user names none (`--augment`)
MODALITY_DEFAULT = "series-default"


@dataclass
class TSTCCConfig:
    # The reference's configs for its small sets (Epilepsy: K = 10; HAR: K = 6), hidden 100,
    # its Seq_Transformer (depth 4, 4 heads, MLP 64, dropout 0.1), NT-Xent at 0.2, lambda 1 and
    # 0.7. K is cut to the latents' length - 1 on short series (ItalyPowerDemand: 5 latents).
    timesteps: int = 10
    hidden_dim: int = 100
    depth: int = 4
    heads: int = 4
    mlp_dim: int = 64
    dropout: float = 0.1
    temperature: float = 0.2
    lambda_temporal: float = 1.0
    lambda_contextual: float = 0.7
    weak: str = "ts-tcc-weak"  # series recipes of the two views
    strong: str = "ts-tcc-strong"
    gather_negatives: bool = True  # under DDP, both losses contrast over the global batch

    def __post_init__(self) -> None:
        if self.timesteps < 1:
            raise ValueError("timesteps must be at least 1")
        if self.hidden_dim % self.heads:
            raise ValueError(f"hidden_dim {self.hidden_dim} must divide into {self.heads} heads")
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")
        for recipe in (self.weak, self.strong):
            if recipe not in SERIES_RECIPES:
                raise ValueError(
                    f"unknown series recipe {recipe!r}; choose one of: {', '.join(SERIES_RECIPES)}"
                )


@register
class TSTCC(Method):
    """Series encoder, context transformer, W_1..W_K, projection head; TC both ways + CC."""

    name = "tstcc"
    family = "series"
    paper = "Eldele et al. 2021, TS-TCC"
    summary = "a context of the weak view predicts the strong view's future latents, and back"
    views_note = (
        "TS-TCC's weak view ({cfg.weak}) and strong view ({cfg.strong}); set others with "
        "--set method.weak=NAME / method.strong=NAME"
    )
    Config = TSTCCConfig
    # The reference's Adam (lr 3e-4 at batch 128, betas (0.9, 0.99), weight decay 3e-4, no
    # schedule) as AdamW: decoupled decay, lr 6e-4 per 256 samples, constant.
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "adamw",
        "lr": 6e-4,
        "weight_decay": 3e-4,
        "betas": (0.9, 0.99),
        "warmup": 0.0,
        "final_lr_fraction": 1.0,
    }
    optimiser_reference = "the reference code's Adam (3e-4 at batch 128, betas (0.9, 0.99))"
    inputs = frozenset({"series", "mask"})
    modalities = frozenset({"series"})
    backbones: ClassVar[dict[str, str]] = {"series": "tstcc"}
    # predictors of steps beyond a short series' latents get no gradient (DDP must know)
    find_unused_parameters = True

    def __init__(self, spec: Any, cfg: TSTCCConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        recipe = getattr(getattr(augment, "recipe", None), "name", MODALITY_DEFAULT)
        if recipe != MODALITY_DEFAULT:
            raise SelfsupError(
                f"tstcc makes its own weak and strong views; --augment {recipe} would be "
                f"ignored: set --set method.weak={recipe} and/or method.strong={recipe} instead"
            )
        if not hasattr(self.encoder, "latents"):
            raise SelfsupError(
                f"tstcc trains a series encoder; this data gives a {spec.kind!r} one"
            )
        self.weak, self.strong = SeriesAugment(cfg.weak), SeriesAugment(cfg.strong)
        width = spec.channels
        self.context = ContextTransformer(
            width, cfg.hidden_dim, cfg.depth, cfg.heads, cfg.mlp_dim, cfg.dropout
        )
        self.predictors = nn.ModuleList(
            nn.Linear(cfg.hidden_dim, width) for _ in range(cfg.timesteps)
        )
        self.projection_head = nn.Sequential(
            nn.Linear(cfg.hidden_dim, width // 2),
            nn.BatchNorm1d(width // 2),
            nn.ReLU(),
            nn.Linear(width // 2, width // 4),
        )
        self.register_counter("draws")

    def views(self, batch: Batch) -> list[Any]:
        x = {"series": batch["series"], "mask": batch["mask"]}
        return [self.weak(x), self.strong(x)]

    def generator(self) -> torch.Generator:
        """A CPU generator seeded by the step count (same on every rank, resumes exactly)."""
        return torch.Generator().manual_seed(1_000_003 * int(self.counter("draws")) + 29)

    def after_step(self, progress: float) -> None:
        self.set_counter("draws", self.counter("draws") + 1)

    def temporal(
        self, za: torch.Tensor, zb: torch.Tensor, length: torch.Tensor, k: int, u: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """TC loss of view a's context predicting view b's next k latents, and that context.
        `length` (B,) counts each series' valid latents; t = floor(u * (length - k))."""
        steps = torch.arange(za.shape[1], device=za.device)
        span = (length - k).clamp_min(1)
        t = (span * u).long().clamp_max(span - 1)  # (B,): one u, scaled to each length
        c = self.context(za, steps[None] <= t[:, None])
        ahead = t[:, None] + torch.arange(1, k + 1, device=za.device)  # (B, k)
        valid = ahead < length[:, None]
        index = ahead.clamp_max(za.shape[1] - 1)[..., None].expand(-1, -1, zb.shape[2])
        target = zb.gather(1, index).transpose(0, 1)  # (k, B, D)
        pred = torch.stack([w(c) for w in self.predictors[:k]])  # (k, B, D)
        if self.cfg.gather_negatives:
            pred, target = (
                gather_with_grad(pred.transpose(0, 1)),
                gather_with_grad(target.transpose(0, 1)),
            )
            pred, target = pred.transpose(0, 1), target.transpose(0, 1)
            valid = gather_without_grad(valid.to(torch.uint8)).bool()  # gloo: no bool
        return temporal_contrast(pred, target, valid.T), c

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        (z1, valid), (z2, _) = (self.encoder.latents(v) for v in views)
        z1, z2 = F.normalize(z1, dim=2), F.normalize(z2, dim=2)
        steps = z1.shape[1]
        if steps < 2:
            raise SelfsupError(
                f"tstcc: the series give {steps} latent step(s), too few to predict one ahead"
            )
        k = min(self.cfg.timesteps, steps - 1)
        if valid is None:
            length = torch.full((len(z1),), steps, device=z1.device)
        else:
            length = valid.sum(1)
        u1, u2 = torch.rand(2, generator=self.generator()).tolist()
        tc1, c1 = self.temporal(z1, z2, length, k, u1)
        tc2, c2 = self.temporal(z2, z1, length, k, u2)
        p1, p2 = self.projection_head(c1), self.projection_head(c2)
        self.watch(F.normalize(p1, dim=1))
        if self.cfg.gather_negatives:
            p1, p2 = gather_with_grad(p1), gather_with_grad(p2)
        cc = nt_xent(p1, p2, self.cfg.temperature)
        tc = tc1 + tc2
        loss = self.cfg.lambda_temporal * tc + self.cfg.lambda_contextual * cc
        return loss, {"temporal": tc.detach(), "contextual": cc.detach()}
