"""An autoregressive prior over a grid of discrete codes: a gated PixelCNN (van den Oord et al.
2016, "Conditional Image Generation with PixelCNN Decoders"), the prior the VQ-VAE paper fits.

Codes are read in raster order (row by row, left to right). Each layer has a vertical stack,
which sees the rows above, and a horizontal stack, which sees the row so far; with their masks
(the first layer's also hides the position itself) the logits at (i, j) depend only on codes
before (i, j), with no blind spot. Gates are tanh(a) * sigmoid(b); the horizontal stack is
residual after the first layer. Layout as the gated layers of ritheshkumar95/pytorch-vqvae's
`GatedPixelCNN`, with the masks applied to the weights in each forward (no in-place edits).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GatedMaskedLayer(nn.Module):
    """One gated layer; `first` hides each position itself (PixelCNN's mask "A")."""

    def __init__(self, width: int, kernel: int, first: bool):
        super().__init__()
        half = kernel // 2
        self.first, self.half = first, half
        # vertical: rows i - half .. i (the last row hidden in the first layer), all columns
        self.vertical = nn.Conv2d(width, 2 * width, (half + 1, kernel), padding=(half, half))
        # horizontal: columns j - half .. j of row i (column j hidden in the first layer)
        self.horizontal = nn.Conv2d(width, 2 * width, (1, half + 1), padding=(0, half))
        self.vertical_to_horizontal = nn.Conv2d(2 * width, 2 * width, 1)
        self.horizontal_out = nn.Conv2d(width, width, 1)
        v_mask = torch.ones_like(self.vertical.weight)
        h_mask = torch.ones_like(self.horizontal.weight)
        if first:
            v_mask[:, :, -1] = 0
            h_mask[:, :, :, -1] = 0
        self.register_buffer("vertical_mask", v_mask, persistent=False)
        self.register_buffer("horizontal_mask", h_mask, persistent=False)

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows, cols = v.shape[-2:]
        pre_v = F.conv2d(
            v,
            self.vertical.weight * self.vertical_mask,
            self.vertical.bias,
            padding=(self.half, self.half),
        )[:, :, :rows]
        pre_h = F.conv2d(
            h,
            self.horizontal.weight * self.horizontal_mask,
            self.horizontal.bias,
            padding=(0, self.half),
        )[:, :, :, :cols]
        # the vertical stack at row i has seen rows < i only (row i is hidden in the first layer
        # and never reaches it later), so it may feed the horizontal stack at row i
        out_h = self.horizontal_out(_gate(self.vertical_to_horizontal(pre_v) + pre_h))
        return _gate(pre_v), out_h if self.first else h + out_h


def _gate(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedPixelCNN(nn.Module):
    """Codes (B, h, w) in [0, K) -> logits (B, K, h, w) of each code given the codes before it."""

    def __init__(self, num_codes: int, width: int = 64, layers: int = 8, kernel: int = 3):
        super().__init__()
        self.num_codes = num_codes
        self.embed = nn.Embedding(num_codes, width)
        self.layers = nn.ModuleList(
            GatedMaskedLayer(width, kernel, first=i == 0) for i in range(layers)
        )
        self.out = nn.Sequential(
            nn.Conv2d(width, 2 * width, 1), nn.ReLU(), nn.Conv2d(2 * width, num_codes, 1)
        )

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        x = self.embed(codes).permute(0, 3, 1, 2)
        v = h = x
        for layer in self.layers:
            v, h = layer(v, h)
        return self.out(h)

    def nll(self, codes: torch.Tensor) -> torch.Tensor:
        """-log p(codes) in nats, one value per grid (B,)."""
        logits = self(codes).float()
        return F.cross_entropy(logits, codes, reduction="none").flatten(1).sum(1)

    @torch.no_grad()
    def sample(
        self, n: int, rows: int, cols: int, generator: torch.Generator, device: torch.device
    ) -> torch.Tensor:
        """`n` grids of codes (n, rows, cols) drawn position by position in raster order."""
        codes = torch.zeros(n, rows, cols, dtype=torch.long, device=device)
        for i in range(rows):
            for j in range(cols):
                probs = self(codes)[:, :, i, j].float().softmax(dim=1)
                draw = torch.multinomial(probs.cpu(), 1, generator=generator)[:, 0]
                codes[:, i, j] = draw.to(device)
        return codes
