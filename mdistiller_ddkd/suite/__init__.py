"""Suites of runs (methods x pairs x seeds), their execution and the paper-style result tables."""

from .local_scheduler import Outcome, execute_plan
from .plan import NotRunnable, Plan, Run, plan_suite, shell_command
from .result_tables import build_tables, load_results
from .spec import NAMED_SUITES, Pair, SuiteSpec, load_suite, named_suite, registered_methods, restrict
from .table_formats import render, suite_report

__all__ = [
    "NAMED_SUITES", "NotRunnable", "Outcome", "Pair", "Plan", "Run", "SuiteSpec", "build_tables", "execute_plan",
    "load_results", "load_suite", "named_suite", "plan_suite", "registered_methods", "render", "restrict",
    "shell_command", "suite_report",
]
