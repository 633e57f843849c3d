"""VQ-VAE networks: the encoder's conv stack (an image backbone), the decoder, and the vector
quantiser whose codebook follows exponential moving averages and restarts dead codes.

Layout as DeepMind's sonnet `vqvae_example` and zalandoresearch/pytorch-vq-vae (its PyTorch
port): two 4x4 stride-2 convolutions, a 3x3 convolution, two residual blocks (ReLU, 3x3 conv to
32 channels, ReLU, 1x1 conv), 128 hidden channels, then a 1x1 convolution to the codebook's
dimension D = 64; the decoder mirrors it with two 4x4 stride-2 transposed convolutions. The
grid of codes is the image's size / 4 (CIFAR: 8x8, Fashion-MNIST: 7x7, digits: 2x2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfsup import distributed

HIDDEN = 128  # channels of the encoder and decoder (sonnet's CIFAR example)
RESIDUAL_HIDDEN = 32  # channels inside a residual block
RESIDUAL_LAYERS = 2
CODE_DIM = 64  # D, the codebook vectors' dimension
DOWNSAMPLE = 4  # two stride-2 convolutions


class ResidualStack(nn.Module):
    """`layers` blocks x + conv1x1(ReLU(conv3x3(ReLU(x)))), then a ReLU (as sonnet's)."""

    def __init__(self, channels: int, hidden: int = RESIDUAL_HIDDEN, layers: int = RESIDUAL_LAYERS):
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(channels, hidden, 3, padding=1, bias=False),
                nn.ReLU(),
                nn.Conv2d(hidden, channels, 1, bias=False),
            )
            for _ in range(layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = x + block(x)
        return F.relu(x)


class VQVAEEncoderNet(nn.Module):
    """The VQ-VAE encoder as an image backbone: `feature_map(x)` is the pre-quantisation grid
    z_e(x) (B, D, H/4, W/4); `forward(x)` its average over the grid (B, D), the pooled feature
    that export and evaluation see."""

    def __init__(self, in_channels: int, hidden: int = HIDDEN, code_dim: int = CODE_DIM):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden // 2, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden // 2, hidden, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            ResidualStack(hidden),
            nn.Conv2d(hidden, code_dim, 1),  # sonnet's pre-VQ convolution
        )
        self.out_dim = code_dim
        self.downsample = DOWNSAMPLE

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images (B, C, H, W) -> z_e (B, D, H/4, W/4)."""
        return self.net(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(x).mean(dim=(2, 3))


class VQVAEDecoder(nn.Module):
    """Quantised grid (B, D, h, w) -> normalised pixels (B, channels, 4h, 4w)."""

    def __init__(self, code_dim: int, channels: int, hidden: int = HIDDEN):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(code_dim, hidden, 3, padding=1),
            ResidualStack(hidden),
            nn.ConvTranspose2d(hidden, hidden // 2, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(hidden // 2, channels, 4, stride=2, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class EMAQuantiser(nn.Module):
    """Nearest-code vector quantisation with a codebook that follows exponential moving
    averages (VQ-VAE paper, appendix A.1; sonnet's `VectorQuantizerEMA`) and restarts dead codes.

    Buffers (saved in checkpoints, so a resume continues exactly): `cluster_size` (K), the EMA
    count of vectors assigned to each code; `embed_sum` (K, D), the EMA sum of those vectors;
    `codebook` (K, D) = embed_sum / Laplace-smoothed cluster_size. Both start consistent (count
    1, sum = the initial code), so an unused code keeps its place while its count decays.

    `update(z, codes)` (training, stage one) adds one batch: counts and sums are all-reduced
    over processes first, so every rank's codebook stays equal under DDP. A code whose EMA count
    falls below `restart_threshold` (Jukebox; lucidrains' `threshold_ema_dead_code`) is moved
    onto an encoder output drawn from the gathered batch by a generator seeded from
    (`seed`, the number of updates so far): the same draw on every rank and after a resume.
    """

    def __init__(
        self,
        num_codes: int,
        code_dim: int,
        decay: float = 0.99,
        epsilon: float = 1e-5,
        restart_threshold: float = 1.0,
        seed: int = 0,
    ):
        super().__init__()
        self.num_codes, self.code_dim = num_codes, code_dim
        self.decay, self.epsilon = decay, epsilon
        self.restart_threshold, self.seed = restart_threshold, seed
        init = torch.randn(num_codes, code_dim)
        self.register_buffer("codebook", init.clone())
        self.register_buffer("embed_sum", init.clone())
        self.register_buffer("cluster_size", torch.ones(num_codes))

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code (squared Euclidean distance) of each row of z (N, D)."""
        z = z.float()
        distances = (
            z.pow(2).sum(1, keepdim=True)
            - 2 * z @ self.codebook.t()
            + self.codebook.pow(2).sum(1)[None]
        )
        return distances.argmin(dim=1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Code vectors of integer codes (any shape) -> (*codes.shape, D)."""
        return self.codebook[codes]

    def usage(self, codes: torch.Tensor) -> torch.Tensor:
        """Counts per code (K,) of integer codes, summed over every process."""
        counts = torch.bincount(codes.flatten(), minlength=self.num_codes).float()
        return _all_reduce_sum(counts)

    @torch.no_grad()
    def update(self, z: torch.Tensor, codes: torch.Tensor, step: int) -> torch.Tensor:
        """One EMA step from this rank's vectors z (N, D) and their codes (N,); returns the
        counts per code over every process (for the perplexity)."""
        z = z.detach().float()
        one_hot = F.one_hot(codes, self.num_codes).to(z.dtype)
        both = _all_reduce_sum(torch.cat([one_hot.sum(0)[:, None], one_hot.t() @ z], dim=1))
        counts, sums = both[:, 0], both[:, 1:]
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        self._restart_dead(z, step)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.epsilon) / (total + self.num_codes * self.epsilon)
        self.codebook.copy_(self.embed_sum / (smoothed * total)[:, None])
        return counts

    def _restart_dead(self, z: torch.Tensor, step: int) -> None:
        """Codes used less than `restart_threshold` times (EMA count) restart on batch samples."""
        if self.restart_threshold <= 0:
            return
        pool = distributed.gather_without_grad(z)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        pick = torch.randint(len(pool), (self.num_codes,), generator=g).to(pool.device)
        dead = (self.cluster_size < self.restart_threshold)[:, None]
        reset = self.restart_threshold
        self.embed_sum.copy_(torch.where(dead, pool[pick] * reset, self.embed_sum))
        self.cluster_size.copy_(torch.where(dead[:, 0], reset, self.cluster_size))


def _all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """`t` summed over every process (itself with one)."""
    if distributed.world_size() == 1:
        return t
    t = t.clone()
    torch.distributed.all_reduce(t)
    return t
