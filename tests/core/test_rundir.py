"""The run directory: --overwrite deletes only a run's own files, never data or a user's files;
unusable --out locations are named before any work."""

import json
import os
from pathlib import Path

import pytest

from selfsup.errors import SelfsupError
from selfsup.rundir import check_run_dir, is_run_dir, prepare_run_dir, source_paths


def _fake_run(root: Path) -> list[str]:
    """A folder as a finished run leaves it; returns the names in it."""
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"config": {"train": {"epochs": 1}}}))
    for name in ("environment.json", "metrics.jsonl", "checkpoint.pt", "encoder.safetensors"):
        (root / name).write_text("x")
    (root / "checkpoint.ptab12cd.tmp").write_text("half written")
    (root / "tensorboard").mkdir()
    (root / "tensorboard" / "events.out").write_text("x")
    return sorted(p.name for p in root.iterdir())


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(SelfsupError, match="not a selfsup run directory"):
        prepare_run_dir(precious, resume=False, overwrite=True)
    assert (precious / "thesis.tex").read_text() == "years of work"
    (precious / "config.json").write_text('{"lr": 1}')  # someone else's config.json
    with pytest.raises(SelfsupError, match="not a selfsup run directory"):
        prepare_run_dir(precious, resume=False, overwrite=True)
    assert sorted(p.name for p in precious.iterdir()) == ["config.json", "thesis.tex"]


def test_overwrite_deletes_only_a_runs_files_and_says_which(tmp_path):
    run = tmp_path / "run"
    names = _fake_run(run)
    assert is_run_dir(run)
    prepared = prepare_run_dir(run, resume=False, overwrite=True)
    assert sorted(p.name for p in prepared.removed) == names
    assert all(p.parent == run for p in prepared.removed)
    assert run.is_dir() and not any(run.iterdir())


def test_overwrite_refuses_a_run_that_holds_other_files(tmp_path):
    run = tmp_path / "run"
    names = _fake_run(run)
    (run / "embeddings.npy").write_text("mine")
    (run / "notes").mkdir()
    with pytest.raises(SelfsupError, match=r"also holds embeddings\.npy, notes") as err:
        prepare_run_dir(run, resume=False, overwrite=True)
    assert "--out" in str(err.value)
    assert sorted(p.name for p in run.iterdir()) == sorted([*names, "embeddings.npy", "notes"])


def test_a_run_never_meets_its_data(tmp_path):
    data = tmp_path / "dsx"
    (data / "cats").mkdir(parents=True)
    (data / "cats" / "1.png").write_bytes(b"png")
    (data / "config.json").write_text(json.dumps({"config": {}}))  # even if it looks like a run
    cases = [(data, "is the training data"), (data / "runs" / "a", "lies inside")]
    cases += [(tmp_path, "contains")]
    for out, message in cases:
        for overwrite in (False, True):
            with pytest.raises(SelfsupError, match=message):
                prepare_run_dir(out, resume=False, overwrite=overwrite, data_paths=[data])
    npy = tmp_path / "arrays" / "x.npz"
    npy.parent.mkdir()
    npy.write_bytes(b"npz")
    with pytest.raises(SelfsupError, match="contains the training data"):
        check_run_dir(
            npy.parent, resume=False, overwrite=True, data_paths=source_paths(f"npy:{npy}")
        )
    assert (data / "cats" / "1.png").exists() and npy.exists()
    assert not (data / "runs").exists()
    check_run_dir(tmp_path / "elsewhere", resume=False, overwrite=False, data_paths=[data, npy])


def test_source_paths():
    assert source_paths("digits") == []
    assert source_paths("folder:/data/x") == [Path("/data/x")]
    assert source_paths("npy:~/a.npz") == [Path("~/a.npz").expanduser()]


def test_out_that_is_a_file_is_named(tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("x")
    for resume, overwrite in [(False, False), (False, True), (True, False)]:
        with pytest.raises(SelfsupError, match="is a file, not a folder"):
            check_run_dir(file, resume=resume, overwrite=overwrite)
    with pytest.raises(SelfsupError, match="is a file, not a folder"):
        prepare_run_dir(file / "run", resume=False, overwrite=False)
    assert file.read_text() == "x"


def _writable_anyway(folder: Path) -> bool:
    """Whether this user writes into a 0o500 folder regardless (root does)."""
    try:
        (folder / "probe").write_text("x")
    except OSError:
        return False
    (folder / "probe").unlink()
    return True


def test_unwritable_out_is_named_before_work(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "checkpoint.pt").write_text("x")
    locked.chmod(0o500)
    try:
        if _writable_anyway(locked) or os.access(locked, os.W_OK):
            pytest.skip("this user writes into read-only folders (root)")
        for out, resume in [(locked, True), (locked / "new-run", False)]:
            with pytest.raises(SelfsupError, match="cannot write to"):
                check_run_dir(out, resume=resume, overwrite=False)
        with pytest.raises(SelfsupError, match="cannot write to"):
            prepare_run_dir(locked, resume=False, overwrite=True)
        assert (locked / "checkpoint.pt").exists()
    finally:
        locked.chmod(0o700)


def test_resume_needs_the_files_it_rewrites_writable(tmp_path):
    run = tmp_path / "run"
    _fake_run(run)
    (run / "metrics.jsonl").chmod(0o400)
    try:
        if os.access(run / "metrics.jsonl", os.W_OK):
            pytest.skip("this user writes read-only files (root)")
        with pytest.raises(SelfsupError, match=r"metrics\.jsonl cannot be written"):
            check_run_dir(run, resume=True, overwrite=False)
    finally:
        (run / "metrics.jsonl").chmod(0o600)


def test_unwritable_out_is_named_even_as_root(tmp_path, monkeypatch):
    """The same check where root writes anyway: the probe file's creation fails."""

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("selfsup.rundir.tempfile.mkstemp", refuse)
    run = tmp_path / "run"
    _fake_run(run)
    for out, resume in [(run, True), (tmp_path / "new", False), (tmp_path, False)]:
        with pytest.raises(SelfsupError, match=r"cannot write to .*Permission denied"):
            check_run_dir(out, resume=resume, overwrite=False)
    with pytest.raises(SelfsupError, match="cannot write to"):
        prepare_run_dir(run, resume=False, overwrite=True)
    assert (run / "checkpoint.pt").exists()
