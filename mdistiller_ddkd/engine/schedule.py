"""mdistiller's learning-rate schedule (step decay)."""

from __future__ import annotations


def learning_rate(cfg, epoch: int) -> float:
    """mdistiller's step decay: ``LR * DECAY_RATE ** (number of stages with epoch > stage)`` (epoch 1-based),
    so epoch ``stage`` itself still trains at the rate before the decay."""
    passed = sum(1 for stage in cfg.SOLVER.LR_DECAY_STAGES if epoch > stage)
    return cfg.SOLVER.LR * cfg.SOLVER.LR_DECAY_RATE**passed
