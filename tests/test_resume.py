"""--resume continues exactly; a non-finite loss leaves the last good checkpoint intact."""

import hashlib
import json
import os

import pytest
import torch

from mdistiller_ddkd.engine.cfg import load_config
from mdistiller_ddkd.engine.hooks import TrainerHook
from mdistiller_ddkd.engine.trainer import Trainer
from mdistiller_ddkd.errors import NonFiniteLossError
from tests.helpers import write_teacher_checkpoint


class StopAfterEpoch(Exception):
    pass


def make_cfg(root, prefix, teacher_ckpt, name, method="DKD", epochs=2):
    return load_config(None, [
        "DATASET.ROOT", root, "DATASET.CHECK_INTEGRITY", "False", "DATASET.DOWNLOAD", "False",
        "DATASET.NUM_WORKERS", "0", "DATASET.TEST.BATCH_SIZE", "48", "SOLVER.BATCH_SIZE", "32",
        "SOLVER.EPOCHS", str(epochs), "SOLVER.DEVICE", "cpu", "SOLVER.LR_DECAY_STAGES", "[1]",
        "LOG.PREFIX", prefix, "EXPERIMENT.NAME", name, "EXPERIMENT.SEED", "3",
        "DISTILLER.TYPE", method, "DISTILLER.TEACHER", "resnet14", "DISTILLER.STUDENT", "resnet8",
        "DISTILLER.TEACHER_CKPT", teacher_ckpt, "DKD.WARMUP", "2",
    ])


def student_weights(trainer):
    return {k: v.clone() for k, v in trainer.student.state_dict().items()}


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory):
    return write_teacher_checkpoint(str(tmp_path_factory.mktemp("t") / "t.pth"), "resnet14")


def test_resume_after_epoch_one_matches_uninterrupted_run(tiny_cifar_root, teacher_ckpt, tmp_path):
    full = Trainer(make_cfg(tiny_cifar_root, str(tmp_path), teacher_ckpt, "full"), show_progress=False)
    full_results = full.fit()
    reference = student_weights(full)

    cfg = make_cfg(tiny_cifar_root, str(tmp_path), teacher_ckpt, "interrupted")
    first = Trainer(cfg, show_progress=False)

    class StopHook(TrainerHook):
        def after_epoch(self, trainer, epoch, record):
            raise StopAfterEpoch

    first.hooks.append(StopHook())
    with pytest.raises(StopAfterEpoch):
        first.fit()
    with pytest.raises(FileExistsError, match="--resume"):
        Trainer(cfg, show_progress=False)
    resumed = Trainer(cfg, resume=True, show_progress=False)
    assert resumed.progress.start_epoch == 2
    results = resumed.fit()
    for key, value in reference.items():
        torch.testing.assert_close(resumed.student.state_dict()[key], value, rtol=0, atol=0, msg=key)
    assert [h["test_acc"] for h in results["history"]] == [h["test_acc"] for h in full_results["history"]]
    assert results["best_acc"] == full_results["best_acc"]


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_non_finite_loss_stops_and_keeps_last_checkpoint(tiny_cifar_root, teacher_ckpt, tmp_path):
    cfg = make_cfg(tiny_cifar_root, str(tmp_path), teacher_ckpt, "nan", method="KD", epochs=1)
    Trainer(cfg, show_progress=False).fit()
    out = os.path.join(str(tmp_path), "distill", "nan")
    before = {name: _digest(os.path.join(out, name)) for name in ("latest", "student_latest", "results.json")}

    cfg2 = make_cfg(tiny_cifar_root, str(tmp_path), teacher_ckpt, "nan", method="KD", epochs=2)
    trainer = Trainer(cfg2, resume=True, show_progress=False)
    original = trainer.distiller.forward_train

    def poisoned(**kwargs):
        logits, losses = original(**kwargs)
        losses["loss_kd"] = losses["loss_kd"] * float("nan")
        return logits, losses

    trainer.distiller.forward_train = poisoned
    with pytest.raises(NonFiniteLossError, match=r"epoch 2.*last good checkpoint \(epoch 1\)"):
        trainer.fit()
    after = {name: _digest(os.path.join(out, name)) for name in before}
    assert after["latest"] == before["latest"] and after["student_latest"] == before["student_latest"]
    assert torch.load(os.path.join(out, "latest"), weights_only=True)["epoch"] == 1
    # results.json follows the resumed run: epoch 1 of now 2, so no longer finished
    results = json.load(open(os.path.join(out, "results.json")))
    assert (results["epoch"], results["epochs"], results["finished"]) == (1, 2, False)
    assert "resume after epoch 1: changed SOLVER.EPOCHS 1 -> 2" in open(os.path.join(out, "worklog.txt")).read()
