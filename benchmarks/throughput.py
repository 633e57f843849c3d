"""SimCLR training throughput beside the bare backbone on the same images, in one process.

Run by hand; prints a table. Figures are source images per second (one image = two views).

    python benchmarks/throughput.py --backbone resnet18 --batch-size 256
    python benchmarks/throughput.py --compile                    # torch.compile both sides
    python benchmarks/throughput.py --amp                        # bf16 where the CPU has it
    python benchmarks/throughput.py --device cuda --amp          # on a GPU, bf16
    # lightly's documented pipeline in the same run (needs `pip install lightly`):
    python benchmarks/throughput.py --lightly
"""

from __future__ import annotations

import argparse
import time

import torch

from selfsup.config import Config
from selfsup.devices import mixed_precision
from selfsup.methods import get_method
from selfsup.modalities import get_modality
from selfsup.models import ImageEncoder, ImageEncoderSpec
from selfsup.optim import build_optimizer
from selfsup.train import training_step

MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)


def timed(step, batch: int, warmup: int, steps: int, device: torch.device) -> float:
    """Source images per second of `step()` after `warmup` untimed calls."""
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def selfsup_simclr(args, images: torch.Tensor, device: torch.device, compiled: bool) -> float:
    cfg = Config()
    cfg.model.backbone, cfg.method.augment = args.backbone, "simclr-cifar"
    spec = ImageEncoderSpec(args.backbone, 3, 32, True, MEAN, STD)
    simclr = get_method("simclr")
    augment = get_modality("image").augment(cfg, spec)
    method = simclr(spec, simclr.make_config({}), augment)
    method.to(device=device, memory_format=torch.channels_last)
    optimizers = {"main": build_optimizer(method.param_groups(), cfg.optim, args.batch_size)}
    amp = mixed_precision(device, args.amp)
    batches = iter(_batches(images, args.batch_size, device))
    model = torch.compile(method) if compiled else method
    return timed(
        lambda: training_step(model, method, optimizers, {"image": next(batches)}, amp, ("main",)),
        args.batch_size,
        args.warmup,
        args.steps,
        device,
    )


def bare_backbone(
    args, images: torch.Tensor, device: torch.device, channels_last: bool, compiled: bool = False
) -> float:
    """Forward + backward of the encoder alone on two views' worth of images (no augmentation)."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    encoder = ImageEncoder(ImageEncoderSpec(args.backbone, 3, 32, True, MEAN, STD)).to(
        device, memory_format=fmt
    )
    views = [
        images[: args.batch_size].to(device).float().div(255).contiguous(memory_format=fmt)
        for _ in range(2)
    ]
    amp = mixed_precision(device, args.amp)

    forward = torch.compile(encoder) if compiled else encoder

    def step() -> None:
        encoder.zero_grad(set_to_none=True)
        with amp:
            loss = sum(forward(v).float().sum() for v in views)
        loss.backward()

    return timed(step, args.batch_size, args.warmup, args.steps, device)


def lightly_simclr(args, images: torch.Tensor) -> float:
    """lightly's SimCLR as its documentation shows: per-sample SimCLRTransform in 2 workers."""
    import torchvision
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead
    from lightly.transforms import SimCLRTransform
    from PIL import Image

    class Pil(torch.utils.data.Dataset):
        def __init__(self, x, transform):
            self.x, self.transform = x.permute(0, 2, 3, 1).numpy(), transform

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.transform(Image.fromarray(self.x[i])), 0

    net = torchvision.models.resnet18()
    net.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    net.maxpool, net.fc = torch.nn.Identity(), torch.nn.Identity()
    head = SimCLRProjectionHead(512, 512, 128)
    params = list(net.parameters()) + list(head.parameters())
    optimizer = torch.optim.SGD(params, lr=0.06)
    criterion = NTXentLoss(temperature=0.5)
    loader = torch.utils.data.DataLoader(
        Pil(images, SimCLRTransform(input_size=32)),
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=2,
        persistent_workers=True,
    )
    batches = iter(loader)

    def step() -> None:
        nonlocal batches
        try:
            (x0, x1), _ = next(batches)
        except StopIteration:
            batches = iter(loader)
            (x0, x1), _ = next(batches)
        loss = criterion(head(net(x0)), head(net(x1)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return timed(step, args.batch_size, args.warmup, args.steps, torch.device("cpu"))


def _batches(images: torch.Tensor, batch: int, device: torch.device):
    images = images.to(device)
    while True:
        for idx in torch.randperm(len(images)).split(batch):
            if len(idx) == batch:
                yield images[idx.to(device)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--amp", action="store_true", help="bf16 autocast (CUDA; CPUs with AVX512-BF16 or AMX)"
    )
    parser.add_argument("--lightly", action="store_true", help="also time lightly's pipeline")
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile selfsup and add a compiled bare row"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    images = torch.randint(0, 256, (max(4 * args.batch_size, 2048), 3, 32, 32), dtype=torch.uint8)
    layouts = [("contiguous", False, False), ("channels_last", True, False)]
    if args.compile:
        layouts.append(("channels_last, torch.compile", True, True))
    rows, bare = [], []
    for name, channels_last, compiled in layouts:
        rate = bare_backbone(args, images, device, channels_last, compiled)
        bare.append(rate)
        rows.append((f"bare {args.backbone} fwd+bwd, 2x{args.batch_size}, {name}", rate))
    best_bare = max(bare)
    ours = selfsup_simclr(args, images, device, args.compile)
    label = ", torch.compile" if args.compile else ""
    rows.append((f"selfsup SimCLR {args.backbone}, batch {args.batch_size}{label}", ours))
    if args.lightly:
        theirs = lightly_simclr(args, images)
        rows.append((f"lightly SimCLR {args.backbone}, batch {args.batch_size}, 2 workers", theirs))
    print(f"\ndevice {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'what':62s} {'images/s':>10s}")
    for name, rate in rows:
        print(f"{name:62s} {rate:10.1f}")
    print(f"selfsup / best bare backbone: {ours / best_bare:.2f}")
    if args.lightly:
        print(f"selfsup / lightly:            {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
