"""The 2-D shapes generator (tkipf/c-swm's block pushing) and `transitions:FILE.npz`, with one
clear SelfsupError for each bad input."""

import numpy as np
import pytest
import torch

import selfsup
from selfsup.data import load_data
from selfsup.data.transitions import COLOURS, shapes_episodes, shapes_transitions
from selfsup.errors import SelfsupError


def test_generated_episodes_follow_the_block_pushing_rules():
    made = shapes_episodes(50, 30, seed=3)
    pos, actions = made["positions"], made["actions"]
    assert pos.shape == (50, 31, 5, 2) and actions.shape == (50, 30)
    assert ((pos >= 0) & (pos < 5)).all()
    cells = pos[..., 0] * 5 + pos[..., 1]
    assert all(len(set(c)) == 5 for c in cells.reshape(-1, 5).tolist())  # one object a cell
    moved = blocked = 0
    dirs = np.array([(-1, 0), (0, 1), (1, 0), (0, -1)])
    for e in range(50):
        for t in range(30):
            obj, d = divmod(int(actions[e, t]), 4)
            before, after = pos[e, t], pos[e, t + 1]
            others = [k for k in range(5) if k != obj]
            assert (after[others] == before[others]).all()  # only the acted object moves
            want = before[obj] + dirs[d]
            free = ((want >= 0) & (want < 5)).all() and not (before[others] == want).all(1).any()
            assert (after[obj] == (want if free else before[obj])).all()
            moved, blocked = moved + free, blocked + (not free)
    assert moved and blocked  # both cases were exercised


def test_rendered_frames_show_each_object_in_its_colour_and_chain_within_episodes():
    data = shapes_transitions(4, 20, seed=0, name="t")
    assert data.obs.shape == (80, 3, 50, 50) and data.obs.dtype == torch.uint8
    assert data.num_actions == 20
    same_episode = data.episode[1:] == data.episode[:-1]
    assert torch.equal(data.next_obs[:-1][same_episode], data.obs[1:][same_episode])
    pixels = data.obs[0].permute(1, 2, 0).reshape(-1, 3)
    colours = {tuple(p) for p in pixels.tolist()} - {(0, 0, 0)}
    assert colours == set(COLOURS)
    start, actions, target = data.paths(10)
    assert start.tolist() == [0, 20, 40, 60] and target.tolist() == [9, 29, 49, 69]
    assert torch.equal(actions[1], data.action[20:30])


def test_shapes_2d_source_holds_out_other_episodes():
    splits = load_data("shapes-2d:3,5")
    assert len(splits.train) == 300 and len(splits.test) == 50
    assert "transitions" in splits.test.serves
    assert not torch.equal(splits.train.obs[0], splits.test.obs[0])  # other seed
    with pytest.raises(SelfsupError, match="positive integer"):
        load_data("shapes-2d:0")


def write(path, **arrays):
    np.savez(path, **arrays)
    return f"transitions:{path}"


def episodes_npz(episodes=5, steps=4):
    data = shapes_transitions(episodes, steps, seed=1, name="x")
    return {
        "obs": data.obs.numpy(),
        "action": data.action.numpy(),
        "next_obs": data.next_obs.numpy(),
    }


def test_npz_loads_infers_episodes_and_holds_whole_episodes_out(tmp_path):
    arrays = episodes_npz()
    splits = load_data(write(tmp_path / "t.npz", **arrays))
    assert len(splits.train) + len(splits.test) == 20
    assert len(splits.test) == 4  # one of five episodes, whole
    assert splits.test.step.tolist() == [0, 1, 2, 3]
    floats = {k: (v / 255).astype(np.float32) if k != "action" else v for k, v in arrays.items()}
    floats["episode"] = np.repeat(np.arange(5), 4)
    again = load_data(write(tmp_path / "f.npz", **floats))
    assert torch.equal(again.test.obs, splits.test.obs)


BAD = {
    "mismatched next_obs": (lambda a: a | {"next_obs": a["next_obs"][:, :, :40]}, "same shape"),
    "action count": (lambda a: a | {"action": a["action"][:-1]}, "one integer action"),
    "missing keys": (lambda a: {"obs": a["obs"]}, "lacks action, next_obs"),
    "negative action": (lambda a: a | {"action": a["action"] - 30}, "outside"),
    "action above num_actions": (lambda a: a | {"num_actions": np.array(5)}, "outside"),
    "float actions": (lambda a: a | {"action": a["action"].astype(float)}, "integers"),
    "channels last": (lambda a: a | {"obs": a["obs"].transpose(0, 2, 3, 1)}, "channels first"),
    "floats out of range": (lambda a: a | {"obs": a["obs"].astype(np.float32)}, r"\[0, 1\]"),
    "part of the test arrays": (lambda a: a | {"test_obs": a["obs"]}, "all three or none"),
    "one episode": (lambda a: a | {"episode": np.zeros(20, dtype=int)}, "one episode"),
    "scattered episode": (
        lambda a: a | {"episode": np.tile(np.arange(5), 4)},
        "not contiguous",
    ),
    "no transitions": (
        lambda a: {k: v[:0] for k, v in a.items()},
        "no transitions",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_transition_files_are_one_clear_error(tmp_path, case):
    change, message = BAD[case]
    spec = write(tmp_path / "bad.npz", **change(episodes_npz()))
    with pytest.raises(SelfsupError, match=message):
        load_data(spec)


def test_a_missing_or_unreadable_file_is_one_clear_error(tmp_path):
    with pytest.raises(SelfsupError, match="no such file"):
        load_data(f"transitions:{tmp_path / 'none.npz'}")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(SelfsupError, match="not a readable"):
        load_data(f"transitions:{tmp_path / 'junk.npz'}")


def test_actions_that_do_not_split_over_the_slots_are_refused_before_training(tmp_path):
    spec = write(tmp_path / "t.npz", **episodes_npz())
    with pytest.raises(SelfsupError, match="num_objects"):
        selfsup.pretrain(
            selfsup.make_config(
                **{"data.source": spec, "method.name": "cswm", "method.num_objects": 3},
                train__batch_size=8,
            ),
            tmp_path / "run",
        )


def test_cswm_is_refused_on_images_and_images_methods_on_transitions(tmp_path):
    with pytest.raises(SelfsupError, match="transitions"):
        selfsup.pretrain(selfsup.make_config(method__name="cswm"), tmp_path / "a")
    with pytest.raises(SelfsupError, match="cswm"):
        cfg = selfsup.make_config(data__source="shapes-2d:2,2", method__name="simclr")
        selfsup.pretrain(cfg, tmp_path / "b")
