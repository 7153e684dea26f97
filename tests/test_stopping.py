"""The stop protocol (``engine/stopping.py``): a stop request mid-epoch writes a mid-epoch ``latest``, and
``--resume`` continues bit-identically, with the DataLoader and with on-device augmentation."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from mdistiller_ddkd.cli.train import main as train_main
from mdistiller_ddkd.engine.cfg import load_config
from mdistiller_ddkd.engine.hooks import TrainerHook
from mdistiller_ddkd.engine.trainer import Trainer
from mdistiller_ddkd.errors import Stopped
from mdistiller_ddkd.signals import request_stop
from tests.helpers import call_cli, tiny_run_overrides


def cli(capsys, *args, main=train_main):
    return call_cli(capsys, main, *args)


class StopAt(TrainerHook):
    """Requests a stop (as the SIGTERM handler does) after ``step`` (1-based) of ``epoch``."""

    def __init__(self, epoch, step):
        self.point = (epoch, step)

    def after_step(self, trainer, state):
        if (state.epoch, state.step + 1) == self.point:
            request_stop(signal.SIGTERM)


def _cfg(prefix, name, **extra):
    return load_config(None, tiny_run_overrides(prefix, **{"EXPERIMENT.NAME": name, "SOLVER.EPOCHS": "3", **extra}))


@pytest.mark.parametrize("extra", [{}, {"DATASET.GPU_AUGMENT": "True"}], ids=["dataloader", "gpu_augment"])
def test_stop_mid_epoch_then_resume_is_bit_identical(tmp_path, extra):
    full = Trainer(_cfg(tmp_path, "full", **extra), show_progress=False)
    reference = full.fit()
    weights = {k: v.clone() for k, v in full.distiller.state_dict().items()}

    cfg = _cfg(tmp_path, "stopped", **extra)
    first = Trainer(cfg, show_progress=False)
    first.hooks.append(StopAt(2, 1))
    try:
        with pytest.raises(Stopped, match="in epoch 2 after step 1 of 3") as stop:
            first.fit()
    finally:
        request_stop(None)
    assert stop.value.exit_code == 143
    partial = torch.load(os.path.join(first.output_dir, "latest"), weights_only=True)
    assert partial["epoch"] == 1 and partial["partial"] == {"epoch": 2, "step": 1}

    resumed = Trainer(cfg, resume=True, show_progress=False)
    assert (resumed.progress.start_epoch, resumed.progress.start_step) == (2, 1)
    results = resumed.fit()
    for key, value in weights.items():
        assert torch.equal(resumed.distiller.state_dict()[key], value), key
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in reference["history"]]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in results["history"]] == strip
