#!/usr/bin/env python
"""Thin entry point; the logic lives in mdistiller_ddkd/cli/visualize.py (also installed as ddkd-visualize)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mdistiller_ddkd.cli.visualize import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
