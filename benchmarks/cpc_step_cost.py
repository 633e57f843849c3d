"""CPC's training step on long UCR series with every candidate as a negative (num_negatives=0)
and with drawn negatives (the default 128): seconds per step (forward + backward) and the peak
resident memory growth of the process. Run by hand, pinned to one thread:

    OMP_NUM_THREADS=1 python benchmarks/cpc_step_cost.py --sets OSULeaf ACSF1 --steps 2

ACSF1 (1460 steps) with every candidate is left out unless --exhaustive-long: its logits alone
are (32 x 361)^2 floats per step k.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from selfsup.data import load_data
from selfsup.methods.cpc import CPC, CPCConfig
from selfsup.models.series import series_spec


def step_seconds(name: str, num_negatives: int, batch: int, steps: int) -> tuple[float, float]:
    data = load_data(f"ucr:{name}").train
    torch.manual_seed(0)
    spec = series_spec(data.num_channels, data.length)
    method = CPC(spec, CPCConfig(num_negatives=num_negatives), augment=None)
    mask = data.mask if data.mask is not None else torch.ones(len(data), data.length).bool()
    fields = {"series": data.series[:batch], "mask": mask[:batch]}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.process_time()
    for _ in range(steps):
        loss, _ = method.loss(method.views(fields), fields)
        loss.backward()
    seconds = (time.process_time() - start) / steps
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return seconds, grown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sets", nargs="+", default=["OSULeaf", "ACSF1"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--exhaustive-long", action="store_true")
    args = parser.parse_args()
    print("| set | negatives | CPU s / step | peak RSS growth (MiB) |")
    print("|---|---|---|---|")
    for name in args.sets:
        for num in (128, 0):  # drawn first: the peak memory growth is then its own
            if num == 0 and name == "ACSF1" and not args.exhaustive_long:
                continue
            seconds, grown = step_seconds(name, num, args.batch_size, args.steps)
            label = "every candidate" if num == 0 else f"{num} drawn"
            print(f"| {name} | {label} | {seconds:.2f} | {grown:.0f} |", flush=True)


if __name__ == "__main__":
    main()
