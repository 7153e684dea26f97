"""Checkpoint files (``engine/checkpoint.py``, ``fileio.py``): all-or-nothing writes, loading with
``weights_only`` that names what is wrong, and mismatches listed key by key."""

from __future__ import annotations

import errno
import os

import pytest
import torch
from torch import nn

from mdistiller_ddkd.engine.checkpoint import (
    describe_state_dict_mismatch,
    load_checkpoint,
    load_model_weights,
    save_checkpoint_atomic,
)
from mdistiller_ddkd.errors import CheckpointMismatchError, CheckpointReadError, DiskError, MissingInputError
from mdistiller_ddkd.fileio import atomic_write, remove_stale_temp_files


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = str(tmp_path / "latest")
    save_checkpoint_atomic({"epoch": 1}, path)

    def fails(f):
        f.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskError, match="while writing .*latest: No space left on device"):
        atomic_write(path, fails)
    assert torch.load(path, weights_only=True) == {"epoch": 1} and os.listdir(tmp_path) == ["latest"]
    with pytest.raises(RuntimeError, match="a bug"):  # not a file-system refusal: propagated as it is
        atomic_write(path, lambda f: (_ for _ in ()).throw(RuntimeError("a bug")))
    assert os.listdir(tmp_path) == ["latest"]


def test_stale_temporaries_of_a_killed_writer_are_removed(tmp_path):
    (tmp_path / ".latest.x1.tmp").write_bytes(b"x")
    (tmp_path / "latest").write_bytes(b"y")
    assert remove_stale_temp_files(str(tmp_path)) == [".latest.x1.tmp"]
    assert os.listdir(tmp_path) == ["latest"]


def test_loading_names_a_missing_or_unreadable_file(tmp_path):
    with pytest.raises(MissingInputError, match="checkpoint not found"):
        load_checkpoint(str(tmp_path / "nope"))
    (tmp_path / "garbage").write_bytes(os.urandom(256))
    with pytest.raises(CheckpointReadError, match="cannot read checkpoint .*garbage"):
        load_checkpoint(str(tmp_path / "garbage"))


def test_mismatches_are_listed_missing_unexpected_and_misshaped(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    state = dict(model.state_dict())
    state.pop("1.bias")
    state["0.weight"] = torch.zeros(5, 3)
    state["2.weight"] = torch.zeros(1)
    problems = "; ".join(describe_state_dict_mismatch(model, state))
    assert "1.bias" in problems and "2.weight" in problems and "0.weight" in problems and "(5, 3)" in problems
    path = str(tmp_path / "ckpt")
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointMismatchError, match="does not match"):
        load_model_weights(model, path, what="teacher")
    torch.save({"model": model.state_dict()}, path)
    load_model_weights(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)), path)
