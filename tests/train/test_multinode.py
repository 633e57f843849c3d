"""Many machines: two torchrun launches with `--nnodes 2` against one c10d rendezvous on
localhost (gloo, CPU) stand for two nodes. One SimCLR step on them gives the one-process
gradients of the global batch (the check of the 1-vs-2-process test); a short pretraining run
writes its run directory on node 0 alone. The sampler gives every rank disjoint samples that
together cover each epoch's used samples, batch by batch as one process draws them."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from method_harness import FAST, _free_port, assert_gradients_close
from methods.test_simclr import reference_gradients
from torch.utils.data import DistributedSampler

import selfsup
from selfsup.errors import SelfsupError
from selfsup.train import epoch_order, steps_per_epoch

NODE_STEP = Path(__file__).with_name("node_step.py")


def launch_nodes(args: list[str], cwds: list[Path], timeout: float) -> None:
    """Start one `torchrun --nnodes 2 --nproc-per-node 1` per node (its own subprocess and
    working directory) against one c10d rendezvous on 127.0.0.1; wait for both to succeed."""
    torchrun = shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun not on PATH")
    port = _free_port()
    launch = [
        torchrun,
        "--nnodes",
        "2",
        "--nproc-per-node",
        "1",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{port}",
        "--rdzv-id",
        f"test-{port}",
        "--local-addr",
        "127.0.0.1",
        "--max-restarts",
        "0",
    ]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    nodes = [
        subprocess.Popen(
            launch + args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for cwd in cwds
    ]
    try:
        outputs = [node.communicate(timeout=timeout)[0].decode(errors="replace") for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                node.kill()
                node.wait()
    for rank, (node, output) in enumerate(zip(nodes, outputs, strict=True)):
        assert node.returncode == 0, f"node {rank} failed:\n{output[-3000:]}"


@pytest.mark.timeout(300)
def test_two_nodes_give_the_one_process_gradients(tmp_path):
    launch_nodes([str(NODE_STEP), str(tmp_path)], [tmp_path, tmp_path], timeout=280)
    ranks = [torch.load(tmp_path / f"rank-{r}.pt") for r in range(2)]
    # Two nodes of one process each: the rendezvous gave them node (group) ranks 0 and 1.
    assert sorted(r["env"]["GROUP_RANK"] for r in ranks) == ["0", "1"]
    assert all(r["env"]["LOCAL_RANK"] == "0" and r["env"]["WORLD_SIZE"] == "2" for r in ranks)
    want = reference_gradients()
    for r in ranks:  # DDP averaged the gradients: every rank holds the global batch's
        assert r["grads"].keys() == want.keys()
        assert_gradients_close(r["grads"], want)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_nodes_pretrain_and_node_zero_alone_writes_the_run(tmp_path):
    """Each node in its own working directory with the same `--out run`: as two machines
    without shared storage. Rank 0 (node 0) writes the whole run; node 1 writes nothing."""
    nodes = [tmp_path / "node0", tmp_path / "node1"]
    for node in nodes:
        node.mkdir()
    pretrain = ["-m", "selfsup", "pretrain", "--epochs", "1", "--batch-size", "128"]
    pretrain += ["--no-progress", "--protocols", "knn", "--out", "run"]
    pretrain += ["--set", "train.report=false", "--set", "method.proj_hidden_dim=64"]
    launch_nodes(pretrain, nodes, timeout=580)
    written = [n for n in nodes if (n / "run" / "encoder.safetensors").is_file()]
    assert len(written) == 1
    other = nodes[1 - nodes.index(written[0])] / "run"
    assert not other.exists() or not any(other.iterdir())
    env = (written[0] / "run" / "environment.json").read_text()
    assert '"world_size": 2' in env


@pytest.mark.parametrize(("n", "world", "batch"), [(1437, 2, 128), (1000, 4, 96), (50, 3, 12)])
def test_ranks_draw_disjoint_samples_covering_each_global_batch(n, world, batch):
    """The loop's sampler (train.epoch_order over DistributedSampler, drop_last): in every
    epoch the ranks' samples are disjoint, together they are the epoch's used samples (whole
    global batches of one seeded permutation), and step b's global batch is the one process's
    batch b: the same samples, whatever the world size."""
    per_epoch = steps_per_epoch(n, batch)
    local = batch // world
    for epoch in (0, 1, 7):
        one = DistributedSampler(range(n), num_replicas=1, rank=0, seed=3, drop_last=True)
        one.set_epoch(epoch)
        alone = epoch_order(one)
        orders = []
        for rank in range(world):
            sampler = DistributedSampler(
                range(n), num_replicas=world, rank=rank, seed=3, drop_last=True
            )
            sampler.set_epoch(epoch)
            orders.append(epoch_order(sampler)[: per_epoch * local])
        drawn = torch.cat(orders)
        assert len(set(drawn.tolist())) == len(drawn) == per_epoch * batch  # disjoint
        used = alone[: per_epoch * batch]
        assert set(drawn.tolist()) == set(used.tolist())
        for b in range(per_epoch):
            step = torch.cat([o[b * local : (b + 1) * local] for o in orders])
            assert set(step.tolist()) == set(used[b * batch : (b + 1) * batch].tolist())


def test_a_resume_on_another_number_of_processes_is_refused(tmp_path):
    """A checkpoint holds each rank's random state: resuming a 2-process run (here: a
    checkpoint given a second rank's state) on 1 process is one clear error, not an
    IndexError or a silently inexact resume."""
    cfg = selfsup.make_config(**(FAST | {"train.epochs": 1, "train.batch_size": 512}))
    selfsup.pretrain(cfg, tmp_path / "run")
    path = tmp_path / "run" / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=False)
    ckpt["rng"] = ckpt["rng"] * 2
    torch.save(ckpt, path)
    with pytest.raises(SelfsupError, match=r"written by 2.*resume with that many processes"):
        selfsup.pretrain(cfg, tmp_path / "run", resume=True, train__epochs=2)
