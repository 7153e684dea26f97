#!/usr/bin/env python
"""Thin entry point; the logic lives in dev/make_docs.py and dev/docgen/ (developer tooling, not installed).

    python tools/make_docs.py                 # rewrite the generated blocks of README.md and docs/*.md
    python tools/make_docs.py --check         # exit 5 (DOCS_STALE) listing the blocks that differ from docs/results/
    python tools/make_docs.py collect output/suites/demo docs/results/demo-1thread.json
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dev.make_docs import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
