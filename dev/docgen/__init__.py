"""Numbers in the docs, generated from committed results (``tools/make_docs.py``).

``core`` holds the machinery (markers, the block registry, rewriting, collecting a suite's results); ``story``
compares two tables' rankings; each other module registers the blocks of one topic. Developer tooling: the
installed package never imports it.
"""

from . import bench, demo, study
from .core import (
                   BLOCKS,
                   DOC_PATTERNS,
                   RESULTS_DIR,
                   block_names,
                   collect_suite,
                   doc_files,
                   non_default_config,
                   read_results_file,
                   register_block,
                   rewrite_text,
                   suite_table,
                   update_docs,
                   write_results,
)
from .demo import DEMO_RESULTS, PLATEAU_EPOCHS, demo_results, late_change, measured_with, run_role
from .story import story_conflicts

#: the modules that register blocks (imported for that)
TOPICS = (bench, demo, study)

__all__ = ["BLOCKS", "DEMO_RESULTS", "DOC_PATTERNS", "PLATEAU_EPOCHS", "RESULTS_DIR", "TOPICS", "block_names",
           "collect_suite", "demo_results", "doc_files", "late_change", "measured_with", "non_default_config",
           "read_results_file", "register_block", "rewrite_text", "run_role", "story_conflicts", "suite_table",
           "update_docs", "write_results"]
