"""One SimCLR step under torchrun, for tests/train/test_multinode.py: each rank joins the process
group the way `selfsup pretrain` does (`selfsup.distributed.init_distributed`), runs its half of
the SimCLR test's global batch (tests/methods/test_simclr.py) through DDP and backward, and
writes its gradients and where torchrun placed it to OUT/rank-<RANK>.pt.

    torchrun --nnodes 2 --nproc-per-node 1 --rdzv-backend c10d ... node_step.py OUT
"""

import os
import sys
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the SimCLR test's helpers

from methods.test_simclr import half_views, make_method

from selfsup import distributed


def main(out: Path) -> None:
    torch.set_num_threads(1)
    info = distributed.init_distributed("cpu")
    method = make_method()
    model = DistributedDataParallel(method)
    views, batch = half_views(info.rank)
    loss, _ = model(views, batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in method.named_parameters() if p.grad is not None}
    placed = {
        key: os.environ.get(key)
        for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "GROUP_RANK", "LOCAL_WORLD_SIZE")
    }
    torch.save({"grads": grads, "env": placed}, out / f"rank-{info.rank}.pt")
    distributed.barrier()
    distributed.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
