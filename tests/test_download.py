"""Teacher checkpoints: a file:// round trip of a tar the test builds, corrupt/unsafe archives and offline."""

from __future__ import annotations

import io
import os
import tarfile

import pytest
import torch

from mdistiller_ddkd.cli.download_teachers import main as download_main
from mdistiller_ddkd.download import URL_ENV, TeacherArchiveError, ensure_cifar_teachers
from mdistiller_ddkd.errors import ExitCode


def _file_url(path) -> str:
    return "file://" + os.path.abspath(str(path))


def make_archive(path, names=("resnet56", "vgg13")) -> str:
    """A tar laid out like mdistiller's cifar_teachers.tar, holding small real checkpoints."""
    staging = os.path.join(os.path.dirname(str(path)), "staging")
    with tarfile.open(str(path), "w") as tar:
        for i, name in enumerate(names):
            folder = os.path.join(staging, "cifar_teachers", f"{name}_vanilla")
            os.makedirs(folder, exist_ok=True)
            torch.save({"model": {"w": torch.full((2,), float(i))}, "epoch": 240},
                       os.path.join(folder, "ckpt_epoch_240.pth"))
        tar.add(os.path.join(staging, "cifar_teachers"), arcname="cifar_teachers")
    return str(path)


def _leftovers(dest) -> list:
    return [n for n in os.listdir(dest) if n.startswith(".")] if os.path.isdir(dest) else []


def test_file_url_round_trip(tmp_path):
    archive = make_archive(tmp_path / "cifar_teachers.tar")
    dest = tmp_path / "download_ckpts"
    folder = ensure_cifar_teachers(str(dest), url=_file_url(archive), progress=False)
    assert folder == os.path.join(str(dest), "cifar_teachers")
    state = torch.load(os.path.join(folder, "vgg13_vanilla", "ckpt_epoch_240.pth"), weights_only=True)
    assert torch.equal(state["model"]["w"], torch.full((2,), 1.0))
    assert _leftovers(dest) == []
    # present: no second download (the URL is not even read)
    assert ensure_cifar_teachers(str(dest), url=_file_url(tmp_path / "absent.tar")) == folder


def test_env_var_and_cli(tmp_path, monkeypatch, capsys):
    archive = make_archive(tmp_path / "t.tar", names=("wrn_40_2",))
    monkeypatch.setenv(URL_ENV, _file_url(archive))
    assert download_main(["--dest", str(tmp_path / "d")]) == 0
    assert "wrn_40_2_vanilla" in capsys.readouterr().out
    assert os.path.isfile(tmp_path / "d" / "cifar_teachers" / "wrn_40_2_vanilla" / "ckpt_epoch_240.pth")


@pytest.mark.parametrize("kind", ["truncated", "garbage", "wrong_layout", "unsafe_path", "symlink"])
def test_bad_archive_is_refused_and_leaves_nothing(tmp_path, kind):
    bad = tmp_path / "bad.tar"
    if kind == "truncated":
        data = open(make_archive(tmp_path / "good.tar"), "rb").read()
        bad.write_bytes(data[: len(data) // 3])
    elif kind == "garbage":
        bad.write_bytes(b"this is not a tar archive" * 100)
    else:
        with tarfile.open(str(bad), "w") as tar:
            if kind == "wrong_layout":
                info = tarfile.TarInfo("something/else.txt")
                payload = b"hello"
            elif kind == "unsafe_path":
                info = tarfile.TarInfo("cifar_teachers/../../evil_vanilla/ckpt_epoch_240.pth")
                payload = b"x"
            else:
                info = tarfile.TarInfo("cifar_teachers/link_vanilla/ckpt_epoch_240.pth")
                info.type, info.linkname, payload = tarfile.SYMTYPE, "/etc/passwd", b""
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    dest = tmp_path / "download_ckpts"
    with pytest.raises(TeacherArchiveError) as err:
        ensure_cifar_teachers(str(dest), url=_file_url(bad), progress=False)
    assert "cifar_teachers" in str(err.value) or "tar" in str(err.value)
    assert not os.path.exists(dest / "cifar_teachers")
    assert _leftovers(dest) == []  # no partial download, no staging folder
    assert not os.path.exists(tmp_path / "evil_vanilla")


def test_unreachable_gives_clear_message(tmp_path, capsys):
    dest = tmp_path / "download_ckpts"
    with pytest.raises(RuntimeError) as err:
        ensure_cifar_teachers(str(dest), url=_file_url(tmp_path / "missing.tar"), progress=False)
    message = str(err.value)
    assert "github.com/megvii-research/mdistiller/releases" in message and "tar xf" in message
    assert os.path.abspath(str(dest)) in message
    assert _leftovers(dest) == []
    # an unroutable http address fails fast with the same kind of message
    with pytest.raises(RuntimeError, match="could not download"):
        ensure_cifar_teachers(str(dest), url="http://127.0.0.1:9/cifar_teachers.tar", progress=False, timeout=5)
    code = download_main(["--dest", str(dest), "--url", _file_url(tmp_path / "missing.tar")])
    assert code == ExitCode.DOWNLOAD_FAILED
    assert "could not download" in capsys.readouterr().err
