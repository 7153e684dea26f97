"""timm pairs through the real tools: ddkd-train (KD, DKD, DDKD from a ``.safetensors`` teacher in timm's layout)
on tiny synthetic data, the student loading strictly into ``timm.create_model``, ddkd-eval and ddkd-export of
it; refusals (OFD on a timm teacher, a pretrained tag offline) are one line with exit code 2."""

from __future__ import annotations

import json

import pytest
import torch

from tests.helpers import REPO_ROOT, TINY_RUN, TRAIN, flat, require_extra, run_cli

TEACHER, STUDENT = "test_resnet", "mobilenetv3_small_050"
CLASSES = 10  #: the synthetic dataset's default


@pytest.fixture
def timm():
    return require_extra("timm", "timm")


def _teacher_file(timm, tmp_path) -> str:
    from safetensors.torch import save_file

    torch.manual_seed(0)
    path = str(tmp_path / "teacher.safetensors")
    save_file(timm.create_model(TEACHER, num_classes=CLASSES).state_dict(), path)
    return path


def _train(tmp_path, method: str, teacher_ckpt: str, env=None, **extra):
    opts = {**TINY_RUN, "DISTILLER.TYPE": method, "DISTILLER.TEACHER": f"timm/{TEACHER}",
            "DISTILLER.STUDENT": f"timm/{STUDENT}", "DISTILLER.TEACHER_CKPT": teacher_ckpt,
            "SOLVER.EPOCHS": "1", "LOG.PREFIX": str(tmp_path / "out"), "EXPERIMENT.NAME": method, **extra}
    return run_cli([TRAIN, *flat(opts)], cwd=str(tmp_path), env_extra=env)


@pytest.mark.parametrize("method", ["KD", "DKD", "DDKD"])
def test_a_timm_pair_trains_and_its_student_is_a_timm_model_again(timm, tmp_path, method):
    proc = _train(tmp_path, method, _teacher_file(timm, tmp_path))
    assert proc.returncode == 0, proc.stderr[-4000:]
    folder = tmp_path / "out" / "distill" / method
    state = torch.load(folder / "student_best", weights_only=True)["model"]
    student = timm.create_model(STUDENT, num_classes=CLASSES)
    student.load_state_dict(state, strict=True)
    if method != "DDKD":
        return
    tools = f"{REPO_ROOT}/tools"
    evaluated = run_cli([f"{tools}/eval.py", "-m", f"timm/{STUDENT}", "-c", str(folder / "student_best"), "-d",
                         "synthetic", *flat({k: v for k, v in TINY_RUN.items() if k.startswith("DATASET.SYNTHETIC")})],
                        cwd=str(tmp_path))
    assert evaluated.returncode == 0, evaluated.stderr[-4000:]
    assert json.loads(evaluated.stdout.strip().splitlines()[-1])["model"] == f"timm/{STUDENT}"
    out = tmp_path / "student.pt2"
    exported = run_cli([f"{tools}/export.py", str(folder), "--format", "pt2", "--out", str(out), "--images", "8"],
                       cwd=str(tmp_path))
    assert exported.returncode == 0, exported.stderr[-4000:]
    assert out.is_file()


def test_ofd_on_a_timm_teacher_is_refused_in_one_line(timm, tmp_path):
    proc = _train(tmp_path, "OFD", _teacher_file(timm, tmp_path))
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "OFD cannot use timm/test_resnet as the teacher" in proc.stderr


def test_a_pretrained_tag_offline_without_its_file_is_refused_in_one_line(timm, tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "TORCH_HOME": str(tmp_path / "torch")}
    proc = _train(tmp_path, "KD", "", env=env, **{"DISTILLER.TEACHER": "timm/test_resnet.r160_in1k",
                                                   "DATASET.SYNTHETIC.NUM_CLASSES": "1000"})
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "timm/test_resnet.r160_in1k" in proc.stderr and "not in the local cache" in proc.stderr
