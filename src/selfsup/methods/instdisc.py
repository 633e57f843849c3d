"""Instance discrimination with a memory bank (InstDisc; Wu, Xiong, Yu & Lin 2018): every
training image is its own class, scored against a bank of all images' past embeddings.

f_i = normalize(W h(x_i)) is a 128-d embedding of one augmented view of sample i. The memory
bank V (n, 128) holds one L2-normalised embedding per training sample; v_i scores f_i against
the bank through the non-parametric softmax P(i | f) = exp(v_i . f / T) / Z. With the paper's
NCE (`instdisc_nce`) m noise samples are drawn uniformly from the bank and the partition
function Z is estimated by Monte Carlo (`instdisc_z`, eq. 8) at every step from them (the
paper estimates it once, at the first step, and holds it: `z_estimate="fixed"`); for small
banks `loss="softmax"` scores the whole bank exactly (`instdisc_softmax`).
After each step the bank rows of the batch move towards the new embeddings (sec. 3.3, the
proximal update) and are normalised again:

    v_i <- normalize( momentum * v_i + (1 - momentum) * f_i ),   momentum 0.5

The bank needs the training set's size, given by `bind_data` before training (and before a
resume restores the bank). Under DDP the indices and embeddings of the whole batch are
gathered before the update, so every rank's bank stays identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.distributed import all_reduce_mean, gather_without_grad
from selfsup.errors import SelfsupError
from selfsup.losses import instdisc_nce, instdisc_softmax, instdisc_z
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register


@dataclass
class InstDiscConfig:
    """The authors' CIFAR-10 values (lemniscate.pytorch `cifar.py`): 128-d, T 0.1 (0.07 at
    ImageNet: the "imagenet" preset), m 4096, bank momentum 0.5; Z re-estimated every step."""

    embed_dim: int = 128
    temperature: float = 0.1
    loss: str = "nce"  # "nce" (the paper's) or "softmax" (exact, over the whole bank)
    nce_negatives: int = 4096  # m, noise samples per embedding
    bank_momentum: float = 0.5
    # "step": re-estimated at every step from that step's noise samples; "fixed": estimated at
    # the first step and held (the paper's). The fixed Z goes stale by ~1000x as the
    # embeddings learn, the noise term swamps the loss and the embeddings collapse (digits,
    # T 0.07: kNN 0.264 fixed, 0.981 step; docs/methods-queues.md).
    z_estimate: str = "step"

    def __post_init__(self) -> None:
        if self.z_estimate not in ("fixed", "step"):
            raise ValueError(f"z_estimate must be 'fixed' or 'step', got {self.z_estimate!r}")
        if self.loss not in ("nce", "softmax"):
            raise ValueError(f"loss must be 'nce' or 'softmax', got {self.loss!r}")
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")
        if self.nce_negatives < 1:
            raise ValueError("nce_negatives must be at least 1")
        if not 0.0 <= self.bank_momentum < 1.0:
            raise ValueError("bank_momentum must lie in [0, 1)")


@register
class InstDisc(Method):
    """Encoder, linear 128-d embedding, memory bank of every training sample."""

    name = "instdisc"
    family = "contrastive, queue or memory"
    paper = "Wu et al. 2018, instance discrimination"
    summary = "every image is its own class, scored by NCE against a memory bank"
    Config = InstDiscConfig
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "sgd",
        "lr": 0.06,
        "weight_decay": 5e-4,
        "momentum": 0.9,
    }
    optimiser_reference = (
        "the authors' CIFAR-10 script (lemniscate cifar.py: SGD 0.03 at batch 128, wd 5e-4)"
    )
    presets: ClassVar[dict[str, dict[str, Any]]] = {"imagenet": {"temperature": 0.07}}
    inputs = frozenset({"image", "index"})
    modalities = frozenset({"image"})
    augment_family = "instdisc"
    num_views = 1  # one augmented image
    # DDP would broadcast the whole bank from rank 0 at every step (655 MB on ImageNet);
    # the ranks keep it identical themselves (gathered updates), so DDP leaves it alone.
    unsynced_buffers = ("bank",)

    def __init__(self, spec: Any, cfg: InstDiscConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        self.embed = nn.Linear(self.encoder.out_dim, cfg.embed_dim)
        self.register_buffer("bank", torch.empty(0, cfg.embed_dim))
        # Z of the NCE loss; 0 until the first step estimates it.
        self.register_buffer("nce_z", torch.zeros(()))
        self._z_known = False  # read the buffer once per process, not at every step
        self._negatives: torch.Tensor | None = None  # reused (B, m, D) buffer, see gather_negatives

    def bind_data(self, num_samples: int) -> None:
        """Allocate the memory bank: one random unit vector per training sample."""
        if num_samples < 2:
            raise SelfsupError(f"instdisc needs at least 2 training samples, got {num_samples}")
        bank = torch.randn(num_samples, self.cfg.embed_dim, device=self.bank.device)
        self.bank = F.normalize(bank, dim=1)

    def sample_negatives(self, batch_size: int) -> torch.Tensor:
        """(batch_size, m) indices drawn uniformly from the whole bank (the noise P_n = 1/n)."""
        return torch.randint(
            len(self.bank), (batch_size, self.cfg.nce_negatives), device=self.bank.device
        )

    def gather_negatives(self, batch_size: int) -> torch.Tensor:
        """The bank rows of `sample_negatives`, (B, m, D), copied into one buffer kept across
        steps: a fresh (B, m, D) tensor (512 MB at B 256, m 4096) cost more in page faults on
        the CPU than the small convnet's whole step (docs/benchmarks.md, method overhead)."""
        index = self.sample_negatives(batch_size).reshape(-1)
        shape = (batch_size, self.cfg.nce_negatives, self.bank.shape[1])
        kept = self._negatives
        fits = kept is not None and kept.shape == shape and kept.dtype == self.bank.dtype
        if not fits or kept.device != self.bank.device:
            self._negatives = self.bank.new_empty(shape)
        torch.index_select(self.bank, 0, index, out=self._negatives.view(-1, shape[2]))
        return self._negatives

    @torch.no_grad()
    def update_bank(self, index: torch.Tensor, f: torch.Tensor) -> None:
        """v_i <- normalize(momentum v_i + (1 - momentum) f_i) at each (gathered) index."""
        index, f = gather_without_grad(index), gather_without_grad(f.detach())
        mixed = torch.lerp(f.to(self.bank.dtype), self.bank[index], self.cfg.bank_momentum)
        self.bank[index] = F.normalize(mixed, dim=1)

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if len(self.bank) == 0:
            raise SelfsupError("instdisc's memory bank is empty: call bind_data(num_samples)")
        index = batch["index"].long()
        f = F.normalize(self.embed(self.encoder(views[0])), dim=1)
        self.watch(f)
        n, t = len(self.bank), self.cfg.temperature
        if self.cfg.loss == "softmax":
            loss = instdisc_softmax(f, self.bank.clone(), index, t)
        else:
            negatives = self.gather_negatives(len(f))
            every_step = self.cfg.z_estimate == "step"
            if every_step or not self._z_known:
                if every_step or float(self.nce_z) == 0.0:
                    self.nce_z.copy_(all_reduce_mean(instdisc_z(f, negatives, n, t)))
                self._z_known = True
            loss = instdisc_nce(f, self.bank[index], negatives, n, self.nce_z, t)
        self.update_bank(index, f)
        return loss, {}
