"""timm vs torchvision ViT-Tiny/4 on 32 px batches: training-step images/s on this machine.

    python benchmarks/vit_backbones.py [--batch 128] [--steps 5]

Why `selfsup.models.vit` builds timm's model; prints one table.
"""

from __future__ import annotations

import argparse
import time

import timm.models.vision_transformer as timm_vit
import torch
from torchvision.models.vision_transformer import VisionTransformer


def step_rate(model: torch.nn.Module, batch: int, steps: int) -> float:
    """Images/s of SGD training steps on random 32 px images, after two warm-up steps."""
    x = torch.randn(batch, 3, 32, 32)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for i in range(2 + steps):
        if i == 2:
            start = time.perf_counter()
        opt.zero_grad()
        model(x).float().pow(2).mean().backward()
        opt.step()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    timm_model = timm_vit.VisionTransformer(
        img_size=32, patch_size=4, embed_dim=192, depth=12, num_heads=3, num_classes=0
    )
    tv_model = VisionTransformer(
        image_size=32, patch_size=4, num_layers=12, num_heads=3, hidden_dim=192, mlp_dim=768
    )
    tv_model.heads = torch.nn.Identity()
    print("| ViT-Tiny/4, 32 px | images/s (train step) | parameters |")
    print("|---|---|---|")
    for name, model in (("timm", timm_model), ("torchvision", tv_model)):
        rate = step_rate(model, args.batch, args.steps)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"| {name} | {rate:.0f} | {params:.2f} M |")


if __name__ == "__main__":
    main()
