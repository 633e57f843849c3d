"""GradCache (Gao, Zhang, Han & Callan 2021, "Scaling deep contrastive learning batch size under
memory limited setup"): a contrastive loss over a large batch with the activation memory of
one chunk.

The embedding function runs in two passes. First, every chunk is embedded without a graph
(the RNG state before each chunk is kept). The loss is then computed on those embeddings as
usual, with its graph. When backward reaches the embeddings, each chunk is embedded again
with a graph, replaying its saved RNG state so dropout draws the same masks, and the cached
gradient of the loss with respect to that chunk's embeddings is pushed through it. The
parameter gradients equal those of the plain big-batch graph (same masks); only one chunk's
activations are alive at a time.

Everything happens inside autograd (a custom Function whose inputs are the parameters), so the
training loop's `loss.backward()`, its `zero_grad` and DDP's gradient hooks see an ordinary
graph.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

Inputs = dict[str, torch.Tensor]


def _rng_state(device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    cpu = torch.get_rng_state()
    accel = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return cpu, accel


def _chunks(inputs: Inputs, size: int) -> list[Inputs]:
    n = next(iter(inputs.values())).shape[0]
    return [{k: v[i : i + size] for k, v in inputs.items()} for i in range(0, n, size)]


class _CachedEmbedding(torch.autograd.Function):
    """Embeddings computed chunk by chunk without a graph; backward replays each chunk."""

    @staticmethod
    def forward(ctx: Any, embed: Callable, inputs: Inputs, size: int, *params: torch.Tensor):
        device = next(iter(inputs.values())).device
        ctx.embed, ctx.params, ctx.device = embed, params, device
        ctx.chunks = _chunks(inputs, size)
        ctx.states = []
        ctx.autocast = (
            torch.is_autocast_enabled(device.type),
            torch.get_autocast_dtype(device.type),
        )
        outputs = []
        with torch.no_grad():
            for chunk in ctx.chunks:
                ctx.states.append(_rng_state(device))
                outputs.append(embed(chunk))
        return torch.cat(outputs)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor):
        params = [p for p in ctx.params if p.requires_grad]
        totals: list[torch.Tensor | None] = [None] * len(params)
        start = 0
        devices = [ctx.device] if ctx.device.type == "cuda" else []
        enabled, dtype = ctx.autocast
        for chunk, (cpu, accel) in zip(ctx.chunks, ctx.states, strict=True):
            with torch.random.fork_rng(devices=devices), torch.enable_grad():
                torch.set_rng_state(cpu)
                if accel is not None:
                    torch.cuda.set_rng_state(accel, ctx.device)
                with torch.autocast(ctx.device.type, dtype=dtype, enabled=enabled):
                    out = ctx.embed(chunk)
                part = grad[start : start + out.shape[0]].to(out.dtype)
                start += out.shape[0]
                grads = torch.autograd.grad(out, params, part, allow_unused=True)
            for i, g in enumerate(grads):
                if g is not None:
                    totals[i] = g if totals[i] is None else totals[i] + g
        by_param = iter(totals)
        result = [next(by_param) if p.requires_grad else None for p in ctx.params]
        return (None, None, None, *result)


def cached_embeddings(
    embed: Callable[[Inputs], torch.Tensor],
    inputs: Inputs,
    params: Sequence[nn.Parameter],
    chunk_size: int | None,
) -> torch.Tensor:
    """`embed(inputs)` (N, D) whose backward costs the memory of one chunk of `chunk_size` rows.

    `params` are every parameter `embed` uses (their gradients come back through this call).
    With chunk_size None (or >= N) this is `embed(inputs)` itself. Use it for the embeddings
    a contrastive loss compares; the loss's own layers after it keep their usual graph.
    """
    n = next(iter(inputs.values())).shape[0]
    if chunk_size is None or chunk_size >= n or not torch.is_grad_enabled():
        return embed(inputs)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of rows, got {chunk_size}")
    return _CachedEmbedding.apply(embed, inputs, chunk_size, *params)


def check_chunk_size(chunk_size: int | None) -> None:
    """The `method.chunk_size` check every GradCache method's config shares."""
    if chunk_size is not None and chunk_size < 1:
        raise ValueError("chunk_size must be a positive number of sentences, or None")
