"""One process on the global batch and two gloo processes on its halves give the same gradients.

`run_two_processes` is shared by every method's version of this test (SimCSE's is in tests/text).
"""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from selfsup.methods.simclr import SimCLR, SimCLRConfig
from selfsup.models import ImageEncoderSpec

SPEC = ImageEncoderSpec("convnet", 3, 16, True, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
BATCH = 8


def make_method() -> SimCLR:
    torch.manual_seed(0)
    return SimCLR(SPEC, SimCLRConfig(proj_hidden_dim=32, proj_dim=16), augment=None)


def fixed_views() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(BATCH, 3, 16, 16, generator=g), torch.rand(BATCH, 3, 16, 16, generator=g)


def reference_gradients() -> dict[str, torch.Tensor]:
    """One process: each half goes through the network alone, as on its own rank (BatchNorm),
    and the loss is over the whole batch."""
    method = make_method()
    v1, v2 = fixed_views()
    h = BATCH // 2
    z1 = torch.cat(
        [
            method.projection_head(method.encoder(v1[:h])),
            method.projection_head(method.encoder(v1[h:])),
        ]
    )
    z2 = torch.cat(
        [
            method.projection_head(method.encoder(v2[:h])),
            method.projection_head(method.encoder(v2[h:])),
        ]
    )
    from selfsup.losses import nt_xent

    nt_xent(z1, z2, method.cfg.temperature).backward()
    return {n: p.grad.clone() for n, p in method.named_parameters()}


def _worker(rank: int, port: int, queue, make_method, make_inputs) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    method = make_method()
    model = DistributedDataParallel(method)
    views, batch = make_inputs(rank)
    loss, _ = model(views, batch)
    loss.backward()
    if rank == 0:
        # numpy arrays travel by value; torch tensors would travel as shared memory that is
        # freed when this process exits, racing the parent's read.
        queue.put({n: p.grad.numpy().copy() for n, p in method.named_parameters()})
    dist.barrier()
    dist.destroy_process_group()


def run_two_processes(make_method, make_inputs) -> dict[str, torch.Tensor]:
    """Gradients of rank 0 when two gloo processes each run `make_inputs(rank)` through DDP.

    Both callables must be importable top-level functions (the processes are spawned).
    """
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [
        ctx.Process(target=_worker, args=(r, port, queue, make_method, make_inputs))
        for r in range(2)
    ]
    for p in procs:
        p.start()
    grads = {n: torch.from_numpy(g) for n, g in queue.get(timeout=100).items()}
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return grads


def half_views(rank: int):
    v1, v2 = fixed_views()
    h = BATCH // 2
    sl = slice(rank * h, (rank + 1) * h)
    return [v1[sl], v2[sl]], {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(120)
def test_two_gloo_processes_match_one_process_gradients():
    grads = run_two_processes(make_method, half_views)
    expected = reference_gradients()
    assert grads.keys() == expected.keys()
    for name, g in expected.items():
        assert torch.allclose(grads[name], g, atol=1e-5, rtol=1e-4), name
