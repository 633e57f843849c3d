"""Shared checks every method gets: 1-vs-2 gloo gradients, exact resume, convergence on digits.

A method's test file calls these with its own small settings:

    from method_harness import assert_resume_exact, digits_knn, run_two_processes

The 1-vs-2 test compares `run_two_processes` (or `run_two_processes_each_rank`, which also
returns method state of every rank) with one process on the whole batch. A method that keeps
state across steps (a queue, a memory bank) also gets `assert_steps_match_one_process`: several
steps with the state in use, each rank's state and gradients against one process's.
"""

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from queue import Empty

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file
from torch.nn.parallel import DistributedDataParallel

import selfsup
import selfsup.train
from selfsup.errors import SelfsupError

# Small and quick: two epochs of digits (1437 training images) at batch 128.
FAST = {
    "train.epochs": 2,
    "train.batch_size": 128,
    "train.progress": False,
    "train.eval_every": 0,
    "eval.protocols": "",
    "train.report": False,
}
DIGITS_TRAIN = 1437
# Seconds the two gloo processes get to start (import torch and selfsup) and send their
# results; a heavily loaded machine may need more (then also run pytest with -p no:timeout).
GLOO_TIMEOUT = float(os.environ.get("SELFSUP_TEST_GLOO_TIMEOUT", "100"))


def worker_context():
    """Where the gloo worker processes come from: a fork server that imported torch and selfsup
    once, so that each worker starts in a fraction of a second instead of importing them again
    (spawn); forked from a clean server, not from this process, whose OpenMP threads a fork
    would copy in an unusable state."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "torch.distributed", "selfsup", "method_harness"])
    return ctx


def _worker(rank: int, port: int, queue, make_method, make_inputs, probe, update) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    method = make_method()
    # as the run wraps it: without this, an update that leaves a network unused (a GAN's
    # discriminator step, its generator) never all-reduces any gradient
    model = DistributedDataParallel(method, find_unused_parameters=method.find_unused_parameters)
    views, batch = make_inputs(rank)
    loss, _ = model(views, batch, update)
    loss.backward()
    # numpy arrays travel by value; torch tensors would travel as shared memory that is
    # freed when this process exits, racing the parent's read.
    grads = {
        n: p.grad.numpy().copy()
        for n, p in method.named_parameters()
        if p.grad is not None  # frozen teachers have none
    }
    state = {} if probe is None else probe(method)
    state = {k: torch.as_tensor(v).detach().numpy().copy() for k, v in state.items()}
    queue.put((rank, grads, state))
    dist.barrier()
    dist.destroy_process_group()


def run_two_processes_each_rank(
    make_method, make_inputs, probe=None, update: str = "main"
) -> list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]]:
    """Per rank, in rank order: (its gradients, `probe(method)`) after two gloo processes each
    ran `make_inputs(rank)` through DDP and backward of the loss of `update` (a method with
    several optimisers: each update's loss is checked on its own).

    `probe` returns the method state a test checks on every rank (a queue, a memory bank, a
    centre: what the loss updates from the gathered batch); None checks gradients only. All
    three callables must be importable top-level functions (the processes are spawned).
    """
    ctx = worker_context()
    queue = ctx.Queue()
    port = _free_port()
    procs = [
        ctx.Process(target=_worker, args=(r, port, queue, make_method, make_inputs, probe, update))
        for r in range(2)
    ]
    for p in procs:
        p.start()
    try:
        results = sorted(_collect(queue, procs, timeout=GLOO_TIMEOUT), key=lambda t: t[0])
        for p in procs:  # the results are in: only the exit (slow on a loaded machine) is left
            p.join(timeout=GLOO_TIMEOUT)
            assert p.exitcode == 0
    finally:
        for p in procs:  # a rank left waiting in a collective when the other one failed
            if p.is_alive():
                p.kill()
    return [
        (
            {n: torch.from_numpy(g) for n, g in grads.items()},
            {k: torch.from_numpy(v) for k, v in state.items()},
        )
        for _, grads, state in results
    ]


def _collect(queue, procs, timeout: float) -> list:
    """One result per process; fails at once when a process died without sending one (an
    exception in the method), rather than after the whole timeout."""
    results, deadline = [], time.monotonic() + timeout
    while len(results) < len(procs):
        try:
            results.append(queue.get(timeout=1))
        except Empty:
            failed = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            assert not failed, f"a worker process failed (exit codes {failed}): see its stderr"
            assert time.monotonic() < deadline, (
                f"{len(results)} of {len(procs)} worker processes sent results in {timeout:.0f} s"
                " (SELFSUP_TEST_GLOO_TIMEOUT gives them longer)"
            )
    return results


def run_two_processes(make_method, make_inputs, update: str = "main") -> dict[str, torch.Tensor]:
    """Gradients of rank 0 when two gloo processes each run `make_inputs(rank)` through DDP
    (DDP averages them: every rank holds the same), backward of the loss of `update`.

    Both callables must be importable top-level functions (the processes are spawned).
    """
    return run_two_processes_each_rank(make_method, make_inputs, update=update)[0][0]


def _steps(method, model, make_batch, probe, steps: int, part):
    """`steps` forward/backward passes of `model` on `part` of `make_batch(step)`, each followed
    by the method's `after_step`; the last step's gradients and `probe(method)` as numpy."""
    for step in range(steps):
        views, batch = make_batch(step)
        views = [part(v) for v in views]
        batch = {k: part(v) for k, v in batch.items()}
        method.zero_grad(set_to_none=True)
        loss, _ = model(views, batch)
        loss.backward()
        method.after_step((step + 1) / steps)
    grads = {n: p.grad.numpy().copy() for n, p in method.named_parameters() if p.grad is not None}
    state = {k: torch.as_tensor(v).detach().numpy().copy() for k, v in probe(method).items()}
    return grads, state


def _steps_worker(rank: int, port: int, queue, make_method, make_batch, probe, steps) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    method = make_method().eval()
    model = DistributedDataParallel(method)

    def half(t):
        h = len(t) // 2
        return t[rank * h : (rank + 1) * h]

    grads, state = _steps(method, model, make_batch, probe, steps, half)
    queue.put((rank, grads, state))
    dist.barrier()
    dist.destroy_process_group()


def assert_steps_match_one_process(make_method, make_batch, probe, steps: int = 3) -> None:
    """Two gloo processes, each on its half of `make_batch(step)` for `steps` steps, against
    one process on the whole batch: the last step's gradients and every rank's `probe(method)`
    (the queue or bank) must equal the one process's.

    BatchNorm runs in eval mode in both, so that the split of the batch changes nothing but
    what the method itself does across processes (gathering, queues, banks, DDP's broadcast of
    buffers from rank 0); draw nothing at random in the method (InstDisc: the exact softmax).
    `make_batch(step)` returns (views, batch) of the whole batch; the callables must be
    importable top-level functions (the processes are spawned).
    """
    ctx = worker_context()
    queue = ctx.Queue()
    port = _free_port()
    args = (port, queue, make_method, make_batch, probe, steps)
    procs = [ctx.Process(target=_steps_worker, args=(r, *args)) for r in range(2)]
    for p in procs:
        p.start()
    try:
        results = sorted(_collect(queue, procs, timeout=GLOO_TIMEOUT), key=lambda t: t[0])
        for p in procs:
            p.join(timeout=GLOO_TIMEOUT)
            assert p.exitcode == 0
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
    method = make_method().eval()
    want_grads, want_state = _steps(method, method, make_batch, probe, steps, lambda t: t)
    assert want_grads and want_state, "nothing to compare"
    for rank, grads, state in results:
        assert grads.keys() == want_grads.keys()
        for name, g in want_grads.items():
            assert torch.allclose(
                torch.from_numpy(grads[name]), torch.from_numpy(g), atol=1e-5, rtol=1e-4
            ), (rank, name)
        for key, value in want_state.items():
            assert torch.allclose(
                torch.from_numpy(state[key]), torch.from_numpy(value), atol=1e-5
            ), (rank, key)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def interrupt_at(monkeypatch, call: int) -> None:
    """Make Ctrl-C arrive during the `call`-th training step (after the optimizer step, before
    the step is counted: the place where a raised KeyboardInterrupt used to lose a batch)."""
    original = selfsup.train.training_step
    calls = {"n": 0}

    def step_then_sigint(*args, **kwargs):
        out = original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == call:
            signal.raise_signal(signal.SIGINT)
        return out

    monkeypatch.setattr(selfsup.train, "training_step", step_then_sigint)


def assert_resume_exact(tmp_path, monkeypatch, overrides: dict) -> dict:
    """Train straight, and again with a Ctrl-C in the second epoch then `--resume`: the encoder
    and every tensor of the method's state (queues, teachers, centres, banks) must be equal.

    Returns the straight run's saved method state, so a test can check what it holds.
    """
    cfg = selfsup.make_config(**(FAST | overrides))
    steps_per_epoch = DIGITS_TRAIN // cfg.train.batch_size
    return assert_config_resumes_exactly(tmp_path, monkeypatch, cfg, steps_per_epoch + 3)


def assert_config_resumes_exactly(tmp_path, monkeypatch, cfg, interrupt_call: int) -> dict:
    """`assert_resume_exact` for any run's config (text, series, other data): Ctrl-C arrives
    during training step `interrupt_call` (make it one of the second epoch)."""
    selfsup.pretrain(cfg, tmp_path / "straight")
    interrupt_at(monkeypatch, interrupt_call)
    try:
        selfsup.pretrain(cfg, tmp_path / "resumed")
    except SelfsupError as err:
        assert "--resume" in str(err)
    else:
        raise AssertionError("the interrupted run did not stop")
    monkeypatch.undo()
    selfsup.pretrain(cfg, tmp_path / "resumed", resume=True)
    a = load_file(str(tmp_path / "straight" / "encoder.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "encoder.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    state_a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)["method"]
    state_b = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)["method"]
    assert state_a.keys() == state_b.keys()
    for key, value in state_a.items():
        assert torch.equal(value, state_b[key]), key
    records = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    steps = [r["step"] for r in map(json.loads, records) if r["kind"] == "train"]
    assert steps == sorted(steps) and len(steps) == len(set(steps))
    return state_a


def assert_gradients_close(
    got: dict[str, torch.Tensor], want: dict[str, torch.Tensor], atol=1e-5, rtol=1e-4
) -> None:
    """`got` holds exactly the gradients of the one-process reference `want` (not empty), each
    close."""
    assert want, "the reference has no gradients"
    assert got.keys() == want.keys(), sorted(set(got) ^ set(want))
    for name, g in want.items():
        assert name in got, name
        assert torch.allclose(got[name], g, atol=atol, rtol=rtol), name


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with `n` intra-op threads: a convergence margin measured with one thread can
    move by a few of the 360 digits queries with two (the sums run in another order)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def digits_knn(tmp_path, overrides: dict, epochs: int = 20) -> tuple[float, float]:
    """kNN top-1 of the learned encoder and of the random encoder after `epochs` on digits
    (held-out test split). A convergence test asserts the first clearly beats the second."""
    cfg = selfsup.make_config(
        **(FAST | {"train.epochs": epochs, "eval.protocols": "knn"} | overrides)
    )
    result = selfsup.pretrain(cfg, tmp_path / "run")
    return result.evaluation["selfsup"]["knn_top1"], result.evaluation["random"]["knn_top1"]
