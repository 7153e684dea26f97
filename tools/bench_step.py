#!/usr/bin/env python
"""Thin entry point; the logic lives in mdistiller_ddkd/cli/bench_step.py (the benchmark itself in
mdistiller_ddkd/bench/step.py).

Example: python tools/bench_step.py --teacher resnet32x4 --student resnet8x4 --pair res32x4_res8x4 \
    --methods NONE KD DKD DIFFKD DDKD --device cpu
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mdistiller_ddkd.cli.bench_step import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
