"""The docs' generated numbers: every ``<!-- generated: NAME -->`` block of README.md and docs/*.md equals
what dev/docgen makes from the committed results in docs/results/; those results are complete
runs of the demo as configured now; the 1-thread and 2-thread runs tell the same story (no pair that both
tables order, by more than twice the larger SE, is ordered the other way round); and the block machinery."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

import pytest

from dev import docgen, make_docs
from dev.docgen.story import story_conflicts
from mdistiller_ddkd.errors import ExitCode, PluginError, UnknownNameError
from mdistiller_ddkd.registry import Registry
from mdistiller_ddkd.suite.plan import plan_suite
from mdistiller_ddkd.suite.result_tables import UNRANKED_COLUMNS, Cell, Row, Table, separated
from mdistiller_ddkd.suite.spec import load_suite
from tests.helpers import DEMO_STUDENT_LATE_CHANGE, DEMO_TEACHER_LATE_CHANGE, REPO_ROOT, registered

RESULTS = os.path.join(REPO_ROOT, docgen.RESULTS_DIR)


def test_the_committed_docs_are_what_the_generator_makes_of_the_committed_results():
    stale = docgen.update_docs(REPO_ROOT, check=True)
    assert not stale, f"stale generated blocks (run python tools/make_docs.py): {stale}"
    used = set()
    for page in docgen.doc_files(REPO_ROOT):
        with open(os.path.join(REPO_ROOT, page), encoding="utf-8") as f:
            used |= set(docgen.block_names(f.read()))
    assert {"demo-table-1thread", "demo-table-2threads", "demo-story", "demo-timing"} <= used


@pytest.fixture(scope="module")
def demo():
    return docgen.demo_results(RESULTS)


def test_the_demo_results_are_complete_runs_of_the_demo_as_configured_now(demo):
    """Each file holds every run of the demo suite, all run by that suite invocation (none skipped, so its
    wall time is the whole demo's), with the config the shipped configs/demo/*.yaml give now."""
    from mdistiller_ddkd.engine.cfg import load_config

    plan = plan_suite(load_suite("demo"))
    expected = {run.name: docgen.non_default_config(load_config(run.config, run.overrides)) for run in plan.runs}
    threads = {"1 thread": 1, "2 threads": 2}
    for label, data in demo.items():
        runs = {r["name"]: r for r in data["runs"]}
        assert set(runs) == set(expected), label
        for name, run in runs.items():
            assert run["config"] == expected[name], f"{label} {name}: run with another config than the shipped one"
            assert run["state"] == "done" and run["threads"] == threads[label], (label, name)
            assert len(run["test_acc"]) == run["config"]["SOLVER.EPOCHS"]
            assert run["best_acc"] == pytest.approx(max(run["test_acc"]), abs=0.01)
        assert data["manifest"]["seconds"] >= max(r["seconds"] for r in runs.values())


def test_one_and_two_threads_tell_the_same_story(demo):
    (one, data_one), (two, data_two) = demo.items()
    table_one, table_two = docgen.suite_table(data_one), docgen.suite_table(data_two)
    assert story_conflicts(table_one, table_two, (one, two)) == []
    row = table_one.rows[0]
    ranked = [c for c in table_one.columns if c not in UNRANKED_COLUMNS]
    assert all(row.cells[c].n == 3 and row.cells[c].rank is not None for c in ranked)  # 3 seeds per cell
    assert row.cells["Teacher"].n == 1 and row.cells["Teacher"].std is None  # one teacher for every seed
    # the rule is not vacuous here: the tables order some pair (the student alone vs distillation)
    assert any(separated(row.cells[a], row.cells[b]) for a in ranked for b in ranked if a != b)


def test_the_teacher_ends_on_its_plateau_and_no_student_jumps_late(demo):
    for label, data in demo.items():
        for run in data["runs"]:
            change = docgen.late_change(run["test_acc"])
            if docgen.run_role(run) == "Teacher":
                assert change <= DEMO_TEACHER_LATE_CHANGE, f"{label}: the teacher moves {change:.1f} points late"
            else:
                assert change < DEMO_STUDENT_LATE_CHANGE, f"{label} {run['name']}: jumps {change:.1f} points late"


# ------------------------------------------------------------------------------------- the machinery
def test_blocks_are_rewritten_inline_and_on_their_own_lines(tmp_path):
    calls = []

    def answer(results_dir: str) -> str:
        calls.append(results_dir)
        return "42"

    blocks = Registry("generated block")
    blocks.register("answer", answer)
    blocks.register("table", lambda d: "| a |\n|---|\n| 1 |")
    text = ("Runs: <!-- generated: answer -->5<!-- end generated --> in all.\n"
            "<!-- generated: table -->\nold\n<!-- end generated -->\n"
            "Again <!-- generated: answer -->42<!-- end generated -->.\n")
    new, changed = docgen.rewrite_text(text, "RESULTS", blocks)
    assert new == ("Runs: <!-- generated: answer -->42<!-- end generated --> in all.\n"
                   "<!-- generated: table -->\n| a |\n|---|\n| 1 |\n<!-- end generated -->\n"
                   "Again <!-- generated: answer -->42<!-- end generated -->.\n")
    assert changed == ["answer", "table"] and calls == ["RESULTS"]  # each block made once per page
    assert docgen.rewrite_text(new, "RESULTS", blocks) == (new, [])
    with pytest.raises(UnknownNameError, match="unknown generated block 'nope'"):
        docgen.rewrite_text("<!-- generated: nope -->x<!-- end generated -->", "RESULTS", blocks)


def test_check_lists_stale_blocks_and_the_rewrite_fixes_them(tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "page.md"
    page.write_text("n = <!-- generated: test-count -->0<!-- end generated -->\n")
    (tmp_path / "README.md").write_text("nothing generated\n")
    results = tmp_path / docgen.RESULTS_DIR
    results.mkdir(parents=True)
    (results / "count.json").write_text(json.dumps({"count": 7}))

    def count(results_dir: str) -> str:  # how a later issue adds a block: a function of the results folder
        with open(os.path.join(results_dir, "count.json")) as f:
            return str(json.load(f)["count"])

    with registered(docgen.BLOCKS, "test-count", count):
        assert make_docs.main(["--check", "--root", str(tmp_path)]) == ExitCode.DOCS_STALE
        assert "stale: docs/page.md: test-count" in capsys.readouterr().out
        assert page.read_text().startswith("n = <!-- generated: test-count -->0")  # --check changes nothing
        assert make_docs.main(["--root", str(tmp_path)]) == 0
        assert page.read_text() == "n = <!-- generated: test-count -->7<!-- end generated -->\n"
        assert make_docs.main(["--check", "--root", str(tmp_path)]) == 0
        with pytest.raises(PluginError, match="registered twice"):
            docgen.register_block("test-count")(lambda results_dir: "another block under the same name")


def test_collect_needs_a_suite_folder(tmp_path, capsys):
    assert make_docs.main(["collect", str(tmp_path), str(tmp_path / "out.json")]) == 2
    assert "suite.json" in capsys.readouterr().err and not (tmp_path / "out.json").exists()


def test_late_change_and_roles():
    assert docgen.late_change([10.0, 50.0, 90.0, 91.0, 90.5], epochs=3) == pytest.approx(1.0)
    assert docgen.late_change([10.0, 50.0, 90.0, 91.0, 90.5], epochs=2) == pytest.approx(0.5)
    assert docgen.late_change([10.0, 90.0]) == pytest.approx(80.0)
    assert docgen.run_role({"method": "NONE", "name": "teacher-resnet20-s0"}) == "Teacher"
    assert docgen.run_role({"method": "NONE", "name": "none-resnet8-s1"}) == "Student"
    assert docgen.run_role({"method": "DKD", "name": "dkd-res20_res8-s1"}) == "DKD"


def test_a_step_benchmark_under_other_conditions_is_its_own_row_named_by_its_allocator(tmp_path):
    from dev.docgen.bench import allocator_label, step_results

    folder = tmp_path / "bench"
    folder.mkdir()
    plain = [{"method": "DKD", "allocator_environment": {}}]
    tuned = [{"method": "DKD", "allocator_environment": {"MALLOC_TRIM_THRESHOLD_": "1"}}]
    (folder / "step-res32x4_res8x4-1t.json").write_text(json.dumps(plain))
    (folder / "step-res32x4_res8x4-1t-tuned-malloc.json").write_text(json.dumps(tuned))
    (folder / "step-notes.json").write_text("[]")  # not a step benchmark's name: ignored
    found = step_results(str(tmp_path))
    assert list(found) == [("res32x4_res8x4", 1, ""), ("res32x4_res8x4", 1, "tuned-malloc")]
    assert allocator_label(found[("res32x4_res8x4", 1, "")][0]) == "default"
    assert allocator_label(found[("res32x4_res8x4", 1, "tuned-malloc")][0]) == "`MALLOC_TRIM_THRESHOLD_=1`"
    assert allocator_label({"method": "DKD"}) == "default"  # results written before the field existed


def _cell(*values: float) -> Cell:
    return Cell(list(values))


def _table(cells: dict) -> Table:
    return Table("synthetic", "best", 1, ["Teacher", *cells], [Row("resnet20", "resnet8", cells)])


def test_story_conflicts_name_a_pair_the_two_tables_order_the_other_way_round():
    one = _table({"Student": _cell(80.0, 81.0, 82.0), "KD": _cell(95.0, 96.0, 97.0), "DKD": _cell(94.0, 97.0, 99.0)})
    same = _table({"Student": _cell(85.0, 70.0, 88.0), "KD": _cell(97.0, 96.5, 96.0), "DKD": _cell(94.0, 96.0, 98.0)})
    assert story_conflicts(one, same) == []  # KD vs DKD tie in `one`, so their order may change
    # ordered in `one`, a tie in `tied` whose means lie the other way round: the tie claims no order
    tied = _table({"Student": _cell(90.0, 99.0, 99.6), "KD": _cell(95.0, 96.0, 97.0), "DKD": _cell(94.0, 97.0, 99.0)})
    assert not separated(tied.rows[0].cells["Student"], tied.rows[0].cells["KD"])
    assert tied.rows[0].cells["Student"].mean > tied.rows[0].cells["KD"].mean
    assert story_conflicts(one, tied) == [] and story_conflicts(tied, one) == []
    reversed_ = _table({"Student": _cell(97.0, 98.0, 99.0), "KD": _cell(95.0, 96.0, 97.0),
                        "DKD": _cell(95.0, 96.0, 97.0)})
    conflicts = story_conflicts(one, reversed_, ("1 thread", "2 threads"))
    assert conflicts == [
        "resnet20_resnet8: 1 thread orders Student 81.00 vs KD 96.00, 2 threads Student 98.00 vs KD 96.00",
        "resnet20_resnet8: 1 thread orders Student 81.00 vs DKD 96.67, 2 threads Student 98.00 vs DKD 96.00"]


def _git(*args: str, binary: bool = False):
    done = subprocess.run(["git", "-C", REPO_ROOT, *args], capture_output=True, timeout=120)
    return done.returncode, done.stdout if binary else done.stdout.decode().strip()


def _sources_at(commit: str) -> str:
    """The package source hash of ``commit``, recomputed from git's objects: every ``.py`` under mdistiller_ddkd/
    by its path relative to the package (what ``determinism.source_hash`` hashes in a checkout)."""
    _, listing = _git("ls-tree", "-r", "--name-only", commit, "--", "mdistiller_ddkd")
    digest = hashlib.sha256()
    for path in sorted(p for p in listing.splitlines() if p.endswith(".py")):
        _, data = _git("show", f"{commit}:{path}", binary=True)
        digest.update(path[len("mdistiller_ddkd/"):].encode() + b"\0" + data + b"\0")
    return digest.hexdigest()


def test_the_demo_results_name_the_committed_code_they_were_measured_with(demo):
    """Each committed demo result records a commit of this repository and the package source hash its runs
    recorded; that commit's sources hash to that value, so the numbers belong to code that is in the history."""
    if shutil.which("git") is None or _git("rev-parse", "--git-dir")[0] != 0:
        pytest.skip("not a git checkout: the recorded commit cannot be looked up")
    for label, data in demo.items():
        code = data["code"]
        assert len(code["commit"]) == 40 and len(code["sources"]) == 64, label
        if _git("cat-file", "-e", f"{code['commit']}^{{commit}}")[0] != 0:
            pytest.skip(f"commit {code['commit'][:12]} is not in this clone (shallow?)")
        assert _git("merge-base", "--is-ancestor", code["commit"], "HEAD")[0] == 0, label
        assert _sources_at(code["commit"]) == code["sources"], label
        assert docgen.measured_with(data) in open(os.path.join(REPO_ROOT, "docs", "benchmarks.md")).read()
