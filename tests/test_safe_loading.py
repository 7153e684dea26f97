"""Data files are an attack surface like checkpoints: CIFAR pickles are read with a restricted unpickler
(with or without the md5 check), and a crafted file never runs code; truncated, garbage or incomplete
files are one-line errors naming the file."""

from __future__ import annotations

import io
import os
import pickle
import shutil

import numpy as np
import pytest
import torch

from mdistiller_ddkd.cli.train import main as train_main
from mdistiller_ddkd.dataset.cifar100 import CIFAR100Folder
from mdistiller_ddkd.dataset.safe_pickle import DataUnpickler, load_data_pickle
from mdistiller_ddkd.errors import DataFileError
from tests.helpers import Payload


def test_the_payload_is_real_when_plain_pickle_reads_it(tmp_path):
    """The attack these tests block does run code through ``pickle.load`` (so they can fail)."""
    marker = tmp_path / "RAN"
    pickle.loads(pickle.dumps({"data": Payload(marker)}))
    assert marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_data_pickles_load_as_with_plain_pickle(protocol):
    obj = {"data": np.arange(24, dtype=np.uint8).reshape(2, 12), "fine_labels": [3, 1], "batch_label": "x",
           "raw": b"\x00\xff", "nested": [(1, 2.5), {"k": None}], "objects": np.array([1, "a"], dtype=object),
           "scalar": np.float32(0.25), "flag": True}
    blob = pickle.dumps(obj, protocol=protocol)
    ours, plain = DataUnpickler(io.BytesIO(blob), encoding="latin1").load(), pickle.loads(blob)
    assert ours.keys() == plain.keys()
    for key in plain:
        assert type(ours[key]) is type(plain[key]) and repr(ours[key]) == repr(plain[key]), key


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_a_foreign_callable_is_refused_unread(tmp_path, protocol):
    marker = tmp_path / "RAN"
    path = tmp_path / "train"
    path.write_bytes(pickle.dumps({"data": np.zeros(3), "fine_labels": [Payload(marker)]}, protocol=protocol))
    with pytest.raises(DataFileError, match=r"refers to io\.open.*refused unread") as err:
        load_data_pickle(str(path), "CIFAR-100 file")
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_damaged_pickles_are_named(tmp_path, damage):
    blob = pickle.dumps({"data": np.zeros((4, 3072), np.uint8), "fine_labels": [0] * 4})
    data = {"truncated": blob[: len(blob) // 2], "garbage": os.urandom(200), "empty": b""}[damage]
    path = tmp_path / "train"
    path.write_bytes(data)
    with pytest.raises(DataFileError, match="cannot read CIFAR-100 file .*truncated or corrupt"):
        load_data_pickle(str(path), "CIFAR-100 file")


def test_cifar_folder_equals_torchvisions_reading_of_the_same_files(tiny_cifar_root):
    """An independent reader of the format (torchvision's CIFAR100, plain pickle) on benign files."""
    from torchvision.datasets import CIFAR100

    class Unchecked(CIFAR100):
        train_list, test_list = [["train", None]], [["test", None]]
        meta = {"filename": "meta", "key": "fine_label_names", "md5": None}

    for train in (True, False):
        ours = CIFAR100Folder(tiny_cifar_root, train=train, check_integrity=False)
        theirs = Unchecked(tiny_cifar_root, train=train)
        assert np.array_equal(ours.data, theirs.data) and ours.targets == theirs.targets
        assert ours.classes == theirs.classes and len(ours) == len(theirs)
        image, target = ours[5]
        ref_image, ref_target = theirs[5]
        assert target == ref_target and np.array_equal(np.asarray(image), np.asarray(ref_image))


def _tiny_overrides(root, prefix, check_integrity):
    return ["DATASET.ROOT", root, "DATASET.CHECK_INTEGRITY", str(check_integrity), "DATASET.DOWNLOAD", "False",
            "DATASET.NUM_WORKERS", "0", "SOLVER.BATCH_SIZE", "32", "SOLVER.EPOCHS", "1", "SOLVER.DEVICE", "cpu",
            "DISTILLER.TYPE", "NONE", "DISTILLER.STUDENT", "resnet8", "LOG.PREFIX", str(prefix)]


def _damage(folder, name, kind, marker):
    path = os.path.join(folder, "cifar-100-python", name)
    entry = pickle.load(open(path, "rb"))
    if kind == "malicious":
        entry["fine_labels" if name != "meta" else "fine_label_names"] = Payload(marker)
        blob = pickle.dumps(entry)
    elif kind == "missing_key":
        entry.pop("data" if name != "meta" else "fine_label_names")
        blob = pickle.dumps(entry)
    else:
        blob = open(path, "rb").read()
        blob = blob[: len(blob) // 3] if kind == "truncated" else os.urandom(len(blob))
    with open(path, "wb") as f:
        f.write(blob)
    return path


@pytest.mark.parametrize("name,kind,needle", [
    ("train", "malicious", "refers to io.open"), ("meta", "malicious", "refers to io.open"),
    ("train", "truncated", "cannot read CIFAR-100 file"), ("test", "garbage", "cannot read CIFAR-100 file"),
    ("train", "missing_key", "lacks the key(s) 'data'"), ("meta", "missing_key", "'fine_label_names'"),
])
@pytest.mark.parametrize("check_integrity", [False, True])
def test_bad_cifar_files_are_one_line_and_never_run_code(capsys, tiny_cifar_root, tmp_path, name, kind, needle,
                                                         check_integrity):
    root = str(tmp_path / "data")
    shutil.copytree(tiny_cifar_root, root)
    marker = tmp_path / "PAYLOAD_RAN"
    path = _damage(root, name, kind, marker)
    capsys.readouterr()
    code = train_main(_tiny_overrides(root, tmp_path / "out", check_integrity))
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    if check_integrity:  # the md5 check refuses first: the official sums differ
        assert "md5 sum" in err and "CHECK_INTEGRITY False" in err
    else:
        assert needle in err and path in err
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_checkpoint_loading_refuses_payloads(tmp_path):
    from mdistiller_ddkd.engine.checkpoint import load_checkpoint
    from mdistiller_ddkd.errors import CheckpointReadError

    marker = tmp_path / "RAN"
    zipped, raw = tmp_path / "zipped.pth", tmp_path / "raw.pth"
    torch.save({"model": Payload(marker)}, zipped)
    raw.write_bytes(pickle.dumps({"model": Payload(marker)}, protocol=2))
    for path in (zipped, raw):
        with pytest.raises(CheckpointReadError, match=str(path)) as err:
            load_checkpoint(str(path))
        assert "\n" not in str(err.value)
    assert "io.open" in str(pytest.raises(CheckpointReadError, load_checkpoint, str(zipped)).value)
    assert not marker.exists()
