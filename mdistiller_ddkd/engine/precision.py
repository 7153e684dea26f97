"""Mixed precision: ``SOLVER.AMP`` names an autocast dtype (fp16 also needs a gradient scaler)."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Dict, Optional

import torch

#: ``SOLVER.AMP`` -> the autocast dtype (None: full precision)
AMP_CHOICES: Dict[str, Optional[torch.dtype]] = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_context(device: torch.device, dtype: Optional[torch.dtype]):
    """``torch.autocast`` on ``device`` in ``dtype``, or a no-op context for full precision."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
