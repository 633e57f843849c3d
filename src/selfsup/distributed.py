"""torch.distributed under torchrun: process-group set-up, gathering with gradient, rank zero.

Launch several processes with `torchrun --nproc_per_node N -m selfsup pretrain ...`; a plain
`selfsup pretrain` runs as one process with no process group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job."""

    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group torchrun describes in the environment (NCCL on CUDA, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank)


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main_process() -> bool:
    return rank() == 0


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward all-reduces the gradient and returns this rank's slice.

    Written here because torch.distributed.nn.functional.all_gather uses reduce_scatter in its
    backward, which gloo (the CPU backend) does not implement. Summing the gradient over ranks
    is what makes DDP's averaging give the gradient of the global loss (not 1/world_size of it).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        ctx.rank = dist.get_rank()
        out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(out, x.contiguous())
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        stacked = torch.stack(grads)
        dist.all_reduce(stacked)
        return stacked[ctx.rank]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` from every process along dim 0, keeping the gradient path to each rank.

    With one process this returns `x` itself.
    """
    if world_size() == 1:
        return x
    return torch.cat(_GatherWithGrad.apply(x), dim=0)


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Average a tensor over processes (for logging figures, not gradients)."""
    if world_size() == 1:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / world_size()


def gather_without_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` from every process along dim 0, without gradient (ids, hashes, labels).

    With one process this returns `x` itself.
    """
    if world_size() == 1:
        return x
    out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out, dim=0)
