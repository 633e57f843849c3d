"""The queue of MoCo, NNCLR and SwAV (models/queue.py): the ring buffer, SwAV's newest-first
reading against the shift register it replaced, checkpoints written before it still loading,
and DDP leaving its buffers alone."""

import pytest
import torch

from selfsup.errors import SelfsupError
from selfsup.methods.moco import MoCo, MoCoConfig
from selfsup.methods.nnclr import NNCLR, NNCLRConfig
from selfsup.methods.swav import SwAV, SwAVConfig
from selfsup.models import ImageEncoderSpec
from selfsup.models.queue import Queue

SPEC = ImageEncoderSpec("convnet", 3, 16, True, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def test_queue_wraps_whole_batch_and_moves_pointer():
    queue = Queue(10, 2)
    queue.pointer.fill_(7)
    keys = torch.arange(1.0, 11.0).view(5, 2)
    queue.push(keys)
    assert int(queue.pointer) == 2 and int(queue.filled) == 5
    assert torch.equal(queue.rows[[7, 8, 9, 0, 1]], keys)
    assert torch.equal(queue.rows[2:7], torch.zeros(5, 2))
    queue.push(keys[:3])
    assert int(queue.pointer) == 5 and torch.equal(queue.rows[2:5], keys[:3])
    queue.push(keys)
    assert int(queue.filled) == 10  # counts up to the size
    with pytest.raises(SelfsupError, match="queue"):
        queue.push(torch.zeros(11, 2))


def test_reversed_pushes_read_newest_first_as_the_shift_register_swav_kept():
    """SwAV's queue was a shift register: each batch rolled in at the front, the oldest rows
    falling off the end. The ring reads back the same rows in the same order, also when the
    length is no multiple of the batch."""
    g = torch.Generator().manual_seed(0)
    queue, register = Queue(10, 3), torch.zeros(10, 3)
    for n in (4, 4, 3, 4, 10, 2, 4):
        batch = torch.randn(n, 3, generator=g)
        register = torch.cat([batch, register])[:10]
        queue.push(batch.flip(0))
        assert torch.equal(queue.newest_first(), register)


@pytest.mark.parametrize("name", ["moco", "nnclr"])
def test_checkpoints_of_the_two_buffer_ring_still_load(name):
    if name == "moco":
        cls, cfg = MoCo, MoCoConfig(proj_hidden_dim=16, proj_dim=8, queue_size=12)
        rows, pointer = "queue", "queue_ptr"
    else:
        cls = NNCLR
        cfg = NNCLRConfig(proj_hidden_dim=16, proj_dim=8, pred_hidden_dim=16, queue_size=12)
        rows, pointer = "support", "support_ptr"

    def make():
        return cls(SPEC, cfg, None)

    saved = make()
    old = {k: v for k, v in saved.state_dict().items() if not k.startswith(rows + ".")}
    old[rows], old[pointer] = torch.randn(12, 8), torch.tensor(5)  # the keys before the Queue
    method = make()
    method.load_state_dict(old)
    queue = getattr(method, rows)
    assert torch.equal(queue.rows, old[rows]) and int(queue.pointer) == 5
    assert int(queue.filled) == 12


def test_checkpoints_of_swavs_shift_register_still_load():
    cfg = SwAVConfig(prototypes=10, proj_hidden_dim=16, proj_dim=8, queue_length=6)

    def make():
        return SwAV(SPEC, cfg, None)

    saved = make()
    old = {k: v for k, v in saved.state_dict().items() if not k.startswith("queue.")}
    old["queue"], old["queue_filled"] = torch.randn(2, 6, 8), torch.tensor(4)
    method = make()
    method.load_state_dict(old)
    for v in range(2):
        assert torch.equal(method.queue[v].newest_first(), old["queue"][v])
        assert int(method.queue[v].filled) == 4
    # the next push lands in front of the old rows, as the shift register put it
    method.queue[0].push(torch.ones(2, 8))
    assert torch.equal(method.queue[0].newest_first()[2:], old["queue"][0][:4])


def test_ddp_leaves_every_buffer_of_a_queue_alone():
    method = MoCo(SPEC, MoCoConfig(proj_hidden_dim=16, proj_dim=8, queue_size=12), None)
    ignored = method._ddp_params_and_buffers_to_ignore
    assert sorted(ignored) == ["queue.filled", "queue.pointer", "queue.rows"]
