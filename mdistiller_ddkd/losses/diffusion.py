"""Diffusion losses: the noise-prediction objective of eq. 5 (defined in ``diffusion/objective.py``, so
that ``diffusion/`` depends on torch alone; listed here with the other losses)."""

from ..diffusion.objective import noise_prediction_loss

__all__ = ["noise_prediction_loss"]
