"""A queue of past embeddings (MoCo's keys, NNCLR's support set, SwAV's features) in buffers
that checkpoints keep. Every rank pushes the same gathered rows: a method lists it in
`unsynced_buffers`, DDP need not broadcast it. The pointer stays on the device: no host sync."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from selfsup.errors import SelfsupError


class Queue(nn.Module):
    """A ring buffer of `size` rows of width `dim`: `rows` (its start: `start`, else zeros),
    `pointer` (where the next push begins) and `filled` (rows pushed, up to `size`; `size` when
    it starts from given rows)."""

    def __init__(self, size: int, dim: int, start: torch.Tensor | None = None):
        super().__init__()
        rows = torch.zeros(size, dim) if start is None else start
        self.register_buffer("rows", rows)
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))
        self.register_buffer("filled", torch.tensor(0 if start is None else size))

    @torch.no_grad()
    def push(self, rows: torch.Tensor) -> None:
        """Write `rows` (n, dim) from the pointer on, wrapping around the end, and advance the
        pointer by n; n may not exceed the size."""
        n, size = len(rows), len(self.rows)
        if n > size:
            raise SelfsupError(
                f"a step's {n} rows do not fit a queue of {size}; use a queue at least as large "
                f"as the global batch"
            )
        at = (self.pointer + torch.arange(n, device=self.rows.device)) % size
        self.rows[at] = rows.detach().to(self.rows.dtype)
        self.pointer.add_(n).remainder_(size)
        self.filled.add_(n).clamp_(max=size)

    def newest_first(self) -> torch.Tensor:
        """The rows from the last pushed back to the oldest: a push of reversed rows reads
        back in its own order, newest push first (SwAV's queue)."""
        size = len(self.rows)
        return self.rows[(self.pointer - 1 - torch.arange(size, device=self.rows.device)) % size]


def load_old_checkpoints(method: nn.Module, upgrade: Callable[[dict, str], None]) -> None:
    """Checkpoints from before this module keep loading: `upgrade(state, prefix)` rewrites
    their queue buffers into a Queue's keys before `method` loads them."""
    method.register_load_state_dict_pre_hook(lambda _, state, prefix, *rest: upgrade(state, prefix))


def ring_upgrade(old_rows: str, old_pointer: str, name: str) -> Callable[[dict, str], None]:
    """The upgrade of a full ring kept as two buffers (MoCo's queue, queue_ptr) into `name`."""

    def upgrade(state: dict, prefix: str) -> None:
        if prefix + old_rows in state and prefix + old_pointer in state:
            state[f"{prefix}{name}.rows"] = rows = state.pop(prefix + old_rows)
            state[f"{prefix}{name}.pointer"] = state.pop(prefix + old_pointer)
            state[f"{prefix}{name}.filled"] = torch.tensor(len(rows))

    return upgrade
