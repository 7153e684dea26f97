#!/usr/bin/env python
"""Thin entry point; the logic lives in mdistiller_ddkd/cli/export.py (also installed as ddkd-export)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mdistiller_ddkd.cli.export import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
