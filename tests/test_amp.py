"""Mixed precision on CPU: bf16 autocast (and fp16 with a gradient scaler) keep losses finite."""

import math

import pytest

from mdistiller_ddkd.distillers import distiller_dict
from mdistiller_ddkd.engine.cfg import load_config
from mdistiller_ddkd.engine.trainer import Trainer
from tests.helpers import write_teacher_checkpoint


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory):
    return write_teacher_checkpoint(str(tmp_path_factory.mktemp("t") / "t.pth"), "resnet14")


@pytest.mark.slow  # mixed precision on CPU: ~20 s
@pytest.mark.parametrize("method,amp", [("DKD", "bf16"), ("DDKD", "bf16"), ("KD", "fp16")])
def test_amp_training_step_is_finite(method, amp, tiny_cifar_root, teacher_ckpt, tmp_path):
    if method not in distiller_dict:
        pytest.skip(f"{method} not registered")
    cfg = load_config(None, [
        "DATASET.ROOT", tiny_cifar_root, "DATASET.CHECK_INTEGRITY", "False", "DATASET.DOWNLOAD", "False",
        "DATASET.NUM_WORKERS", "0", "SOLVER.EPOCHS", "1", "SOLVER.BATCH_SIZE", "32", "SOLVER.DEVICE", "cpu",
        "SOLVER.AMP", amp, "DISTILLER.TYPE", method, "DISTILLER.TEACHER", "resnet14",
        "DISTILLER.STUDENT", "resnet8", "DISTILLER.TEACHER_CKPT", teacher_ckpt, "LOG.PREFIX", str(tmp_path)])
    trainer = Trainer(cfg, show_progress=False)
    batch = next(iter(trainer.train_loader))
    trainer.model.train()
    with trainer.autocast():
        _, losses = trainer.model(**trainer.batch_to_kwargs(batch, epoch=1))
    assert losses and all(math.isfinite(float(v.detach())) for v in losses.values())
    results = trainer.fit()
    record = results["history"][0]
    assert math.isfinite(record["train_loss"]) and math.isfinite(record["test_loss"])
