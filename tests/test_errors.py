"""Every user mistake is one ``error:`` line with exit code 2 and the output folder unchanged, before any
work (config values, YAML, overrides, device, teacher checkpoints, a non-finite loss, a full disk); anything
else is a bug, shown with its traceback (``errors.run_main``)."""

from __future__ import annotations

import errno
import os

import pytest
import torch

from mdistiller_ddkd.cli.eval import main as eval_main
from tests.helpers import (
    assert_one_line_error,
    bad_checkpoint,
    call_cli,
    snapshot,
    tiny_run_overrides,
    train_cli,
    write_teacher_checkpoint,
)


@pytest.mark.parametrize("key,value,needle", [
    ("SOLVER.EPOCHS", "0", "SOLVER.EPOCHS"), ("SOLVER.EPOCHS", "-1", "positive integer"),
    ("SOLVER.BATCH_SIZE", "0", "SOLVER.BATCH_SIZE"), ("SOLVER.LR_DECAY_STAGES", "[3, 1]", "ascending"),
    ("SOLVER.LR", "0.0", "SOLVER.LR"), ("DATASET.NUM_WORKERS", "-2", "DATASET.NUM_WORKERS"),
    ("SOLVER.NOT_A_KEY", "1", "SOLVER.NOT_A_KEY"), ("SOLVER.EPOCHS", "many", "Type mismatch"),
])
def test_bad_values_are_one_line_before_any_work(capsys, tmp_path, key, value, needle):
    code, _, err = train_cli(capsys, *tiny_run_overrides(tmp_path, **{key: value}))
    assert_one_line_error(code, err, needle)
    assert snapshot(str(tmp_path / "distill")) is None


@pytest.mark.parametrize("text,needle", [("SOLVER:\n  LR: [1\n", "not valid YAML at line"),
                                         ("- SOLVER\n- LR\n", "holds a YAML list")])
def test_bad_yaml_is_one_line(capsys, tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, _, err = train_cli(capsys, "--cfg", str(path), *tiny_run_overrides(tmp_path))
    assert_one_line_error(code, err, needle, str(path))


def test_odd_overrides_and_cuda_without_cuda_are_one_line(capsys, tmp_path):
    code, _, err = train_cli(capsys, *tiny_run_overrides(tmp_path), "SOLVER.LR")
    assert_one_line_error(code, err, "KEY VALUE pairs")
    if not torch.cuda.is_available():
        code, _, err = train_cli(capsys, *tiny_run_overrides(tmp_path, **{"SOLVER.DEVICE": "cuda"}))
        assert_one_line_error(code, err, "no CUDA device", "SOLVER.DEVICE cpu")
    assert snapshot(str(tmp_path / "distill")) is None


@pytest.mark.parametrize("kind", ["truncated", "garbage", "malicious"])
def test_bad_teacher_checkpoint_is_one_line_and_never_runs_code(capsys, tmp_path, kind):
    marker = tmp_path / "PAYLOAD_RAN"
    ckpt = bad_checkpoint(tmp_path / "teacher.pth", kind, marker)
    code, _, err = train_cli(capsys, *tiny_run_overrides(tmp_path, **{"DISTILLER.TYPE": "KD",
                                                                       "DISTILLER.TEACHER_CKPT": ckpt}))
    assert_one_line_error(code, err, ckpt, "refused" if kind == "malicious" else "cannot read")
    assert not marker.exists() and snapshot(str(tmp_path / "distill" / "run")) is None
    code, _, err = call_cli(capsys, eval_main, "-m", "resnet8", "-c", ckpt, "-d", "synthetic",
                            "DATASET.SYNTHETIC.TRAIN_PER_CLASS", "2", "DATASET.SYNTHETIC.TEST_PER_CLASS", "1")
    assert_one_line_error(code, err, ckpt)
    assert not marker.exists()


def test_nan_in_the_first_epoch_says_there_is_no_checkpoint(capsys, tmp_path, monkeypatch):
    from mdistiller_ddkd.distillers import distiller_dict

    cls = distiller_dict["NONE"]
    original = cls.forward_train
    monkeypatch.setattr(cls, "forward_train", lambda self, **kw: (lambda out: (out[0], {
        k: v * float("nan") for k, v in out[1].items()}))(original(self, **kw)))
    code, _, err = train_cli(capsys, *tiny_run_overrides(tmp_path))
    assert code == 3 and err.strip().count("\n") == 0 and "non-finite loss at epoch 1" in err
    assert "no checkpoint has been written yet" in err and "epoch 0" not in err


def test_disk_full_is_one_line_and_keeps_the_last_checkpoint(capsys, tmp_path, monkeypatch):
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("epoch") == 2 and "optimizer" in obj:
            f.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    code, _, err = train_cli(capsys, *tiny_run_overrides(tmp_path))
    assert_one_line_error(code, err, "No space left on device", "--resume")
    folder = tmp_path / "distill" / "run"
    assert torch.load(folder / "latest", weights_only=True)["epoch"] == 1
    assert not [n for n in os.listdir(folder) if n.endswith(".tmp") or n == ".lock"]


def test_run_main_reports_one_line_and_debug_shows_the_traceback(capsys, monkeypatch):
    from mdistiller_ddkd.errors import DEBUG_ENV, ConfigError, disk_error, run_main

    def fails(exc):
        def body(argv):
            raise exc
        return body

    assert run_main(fails(ConfigError("first line\n  second line")), []) == 2
    assert capsys.readouterr().err == "error: first line second line\n"
    assert run_main(fails(KeyboardInterrupt()), []) == 130 and "interrupted" in capsys.readouterr().err
    full = disk_error(OSError(errno.ENOSPC, "No space left on device", "/x/latest"), "writing /x/latest")
    assert run_main(fails(full), []) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "while writing /x/latest: No space left on device" in err
    with pytest.raises(ConfigError):
        run_main(fails(ConfigError("x")), ["--debug"])
    monkeypatch.setenv(DEBUG_ENV, "1")
    with pytest.raises(ConfigError):
        run_main(fails(ConfigError("x")), [])
    monkeypatch.delenv(DEBUG_ENV)
    # anything that is not a UserError is a bug: its traceback, one "bug:" line, exit code 1
    for bug in (ZeroDivisionError(), ValueError("x"), KeyError("k"), OSError(errno.ENOSPC, "No space left")):
        assert run_main(fails(bug), []) == 1
        err = capsys.readouterr().err
        assert err.startswith("Traceback") and err.splitlines()[-1].startswith("bug: " + type(bug).__name__)
    code, _, err = train_cli(capsys, "--no-such-option")
    assert code == 2 and err.count("\n") == 1 and "unrecognized arguments" in err


PLANTED_PLUGIN = '''
import torch.nn.functional as F
from mdistiller_ddkd.distillers import Distiller, register_distiller


@register_distiller("PLANTED_BUG")
class PlantedBug(Distiller):
    needs_teacher = False

    def __init__(self, student, teacher, cfg):
        super().__init__(student, teacher)

    def forward_train(self, image, target, **kwargs):
        logits, _ = self.student(image)
        raise ValueError("a planted bug in forward_train")
'''


def test_a_bug_in_a_plugin_or_in_the_package_shows_its_traceback_and_who_to_tell(capsys, tmp_path, monkeypatch):
    from mdistiller_ddkd.distillers import distiller_dict

    (tmp_path / "planted_bug_plugin.py").write_text(PLANTED_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        code, _, err = train_cli(capsys, "--plugins", "planted_bug_plugin",
                           *tiny_run_overrides(tmp_path / "a", **{"DISTILLER.TYPE": "PLANTED_BUG"}))
    finally:
        distiller_dict.unregister("PLANTED_BUG")
    assert code == 1 and err.startswith("Traceback") and "ValueError: a planted bug in forward_train" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("bug: ValueError in plugin module 'planted_bug_plugin'"), last
    assert "error:" not in err

    # the same bug inside a built-in method is ours
    def planted(self, image, target, **kwargs):
        raise ValueError("a planted bug in KD")

    monkeypatch.setattr(distiller_dict["KD"], "forward_train", planted)
    teacher = write_teacher_checkpoint(str(tmp_path / "t.pth"), "resnet8", num_classes=10)
    code, _, err = train_cli(capsys, *tiny_run_overrides(tmp_path / "b", **{"DISTILLER.TYPE": "KD",
                                                                       "DISTILLER.TEACHER_CKPT": teacher}))
    assert code == 1 and "ValueError: a planted bug in KD" in err
    assert err.strip().splitlines()[-1].startswith("bug: ValueError inside mdistiller-ddkd")
