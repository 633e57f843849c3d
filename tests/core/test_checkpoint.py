"""Atomic checkpoint writes and run-directory protection."""

import pytest
import torch

from selfsup.checkpoint import atomic_save, load_checkpoint
from selfsup.errors import SelfsupError
from selfsup.rundir import prepare_run_dir


def test_atomic_save_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "ckpt.pt"
    atomic_save({"a": 1}, path)
    atomic_save({"a": 2}, path)
    assert load_checkpoint(path)["a"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_failed_save_keeps_previous_checkpoint(tmp_path):
    path = tmp_path / "ckpt.pt"
    atomic_save({"a": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_save({"a": Unpicklable()}, path)
    assert load_checkpoint(path)["a"] == 1
    assert len(list(tmp_path.iterdir())) == 1


def test_damaged_checkpoint_is_named(tmp_path):
    (tmp_path / "c.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SelfsupError, match="could not be read"):
        load_checkpoint(tmp_path / "c.pt")


def test_existing_run_dir_is_never_overwritten_silently(tmp_path):
    run = tmp_path / "run"
    prepare_run_dir(run, resume=False, overwrite=False)
    (run / "mine.txt").write_text("precious")
    with pytest.raises(SelfsupError, match="already exists"):
        prepare_run_dir(run, resume=False, overwrite=False)
    assert (run / "mine.txt").read_text() == "precious"
    with pytest.raises(SelfsupError, match="cannot resume"):
        prepare_run_dir(run, resume=True, overwrite=False)
    with pytest.raises(SelfsupError, match="not a selfsup run"):
        prepare_run_dir(run, resume=False, overwrite=True)  # a user's folder: nothing deleted
    assert (run / "mine.txt").read_text() == "precious"
    torch.save({}, run / "checkpoint.pt")
    assert prepare_run_dir(run, resume=True, overwrite=False).root == run
