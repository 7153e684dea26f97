"""Suites: complete dry-run command lists for the named suites, a 2-run custom suite that runs (and records
how in suite.json), is skipped when re-run, and resumes a run that was interrupted; runs at a time and
threads per run."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from mdistiller_ddkd.cli.suite import main as suite_main
from mdistiller_ddkd.errors import ExitCode
from mdistiller_ddkd.suite.paper import table_methods, table_rows
from mdistiller_ddkd.suite.plan import plan_suite
from mdistiller_ddkd.suite.spec import load_suite, restrict, suite_from_dict
from tests.helpers import FAULT_PLUGIN, REPO_ROOT, run_cli, write_teacher_checkpoint


def dry_run(capsys, *args):
    code = suite_main([*args, "--dry-run"])
    captured = capsys.readouterr()
    return code, [line for line in captured.out.splitlines() if line and not line.startswith("#")], captured.err


def _value(command: str, key: str) -> str:
    parts = command.split()
    return parts[parts.index(key) + 1]


@pytest.mark.parametrize("table,seeds", [("table2", 3), ("table3", 3), ("table1", 1)])
def test_paper_suites_dry_run_lists_every_run(capsys, table, seeds):
    code, lines, err = dry_run(capsys, table)
    assert code == 0
    rows = table_rows(table)
    methods = [m for m in table_methods(table) if m != "NONE"]
    students = {r["student"] for r in rows}
    # methods x pairs x seeds, plus one student-alone run per distinct student and seed
    assert len(lines) == len(rows) * len(methods) * seeds + len(students) * seeds
    names = [_value(line, "EXPERIMENT.NAME") for line in lines]
    assert len(set(names)) == len(names)
    for row in rows:
        for method in methods:
            for seed in range(seeds):
                match = [line for line in lines if _value(line, "DISTILLER.TYPE") == method
                         and _value(line, "DISTILLER.TEACHER") == row["teacher"]
                         and _value(line, "DISTILLER.STUDENT") == row["student"]
                         and _value(line, "EXPERIMENT.SEED") == str(seed)]
                assert len(match) == 1, (method, row, seed)
                assert "--cfg configs/" in match[0] and f"EXPERIMENT.PROJECT {table}" in match[0]
    for student in students:
        assert sum(_value(line, "DISTILLER.TYPE") == "NONE" and _value(line, "DISTILLER.STUDENT") == student
                   for line in lines) == seeds


def test_table2_counts_and_seed_option(capsys):
    _, lines, _ = dry_run(capsys, "table2")
    assert len(lines) == 5 * 10 * 3  # 5 pairs x 10 methods (NONE ... DDKD) x 3 seeds
    _, lines, _ = dry_run(capsys, "table2", "--seeds", "1", "--methods", "DKD,DDKD")
    assert len(lines) == 5 * 2
    _, lines, _ = dry_run(capsys, "table2", "--seeds", "0,7", "--pairs", "res56_res20", "--methods", "KD")
    assert sorted(_value(line, "EXPERIMENT.SEED") for line in lines) == ["0", "7"]


def test_demo_dry_run_trains_one_teacher_first_for_every_seed(capsys):
    code, lines, _ = dry_run(capsys, "demo", "--launcher", "torchrun --nproc_per_node 2")
    spec = load_suite("demo")
    assert code == 0 and spec.seeds == [0, 1, 2] and spec.jobs == 2
    assert len(lines) == 1 + 4 * 3  # one teacher, then NONE, KD, DKD, DDKD x 3 seeds
    assert lines[0].startswith("torchrun --nproc_per_node 2 -m mdistiller_ddkd.cli.train")
    teacher = lines[0]
    assert _value(teacher, "DISTILLER.TYPE") == "NONE" and _value(teacher, "DISTILLER.STUDENT") == "resnet20"
    assert _value(teacher, "EXPERIMENT.SEED") == "0"
    teacher_dir = os.path.join(_value(teacher, "LOG.PREFIX"), "demo", _value(teacher, "EXPERIMENT.NAME"))
    distilled = [line for line in lines if _value(line, "DISTILLER.TYPE") in ("KD", "DKD", "DDKD")]
    assert len(distilled) == 9
    assert sorted(_value(line, "EXPERIMENT.SEED") for line in distilled) == ["0"] * 3 + ["1"] * 3 + ["2"] * 3
    for line in distilled:  # every seed distils from the one teacher
        assert _value(line, "DISTILLER.TEACHER_CKPT") == os.path.join(teacher_dir, "student_best")
    alone = [line for line in lines[1:] if _value(line, "DISTILLER.TYPE") == "NONE"]
    assert [_value(line, "EXPERIMENT.SEED") for line in alone] == ["0", "1", "2"]
    assert all("DISTILLER.TEACHER_CKPT" not in line for line in alone)  # they run beside the teacher


def test_runs_at_a_time_and_threads_per_run(monkeypatch):
    from mdistiller_ddkd.suite import local_scheduler, machine

    demo, table2 = load_suite("demo").jobs, load_suite("table2").jobs
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(machine, "available_cores", lambda: 2)
    assert machine.jobs_and_threads(demo, None, None, gpus=[]) == (2, 1)  # the demo: 2 runs x 1 thread on 2 cores
    assert machine.jobs_and_threads(table2, None, None, gpus=[]) == (1, 2)
    assert machine.jobs_and_threads(demo, None, 2, gpus=[]) == (1, 2)  # 2 threads each: one run at a time
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert machine.jobs_and_threads(demo, None, None, gpus=[]) == (1, 2)  # the same from the environment
    assert machine.jobs_and_threads(demo, 3, None, gpus=[]) == (3, 2)  # --jobs is taken as given
    monkeypatch.setattr(machine, "available_cores", lambda: 16)
    assert machine.jobs_and_threads(demo, None, 4, gpus=[]) == (2, 4)
    assert machine.jobs_and_threads(demo, None, None, gpus=["0", "1"]) == (2, None)  # GPUs: no thread setting
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert machine.jobs_and_threads(demo, None, None, gpus=[]) == (2, 8)
    assert local_scheduler.child_env(None, 3)["OMP_NUM_THREADS"] == "3"
    gpu_env = local_scheduler.child_env("1", None)
    assert gpu_env["CUDA_VISIBLE_DEVICES"] == "1" and "OMP_NUM_THREADS" not in gpu_env
    assert suite_main(["demo", "--threads", "0"]) == 2


def test_missing_configs_are_named_at_plan_time(tmp_path, capsys):
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump({"name": "s", "methods": ["KD"], "pairs": ["res56_res20"],
                                     "config": "configs/nowhere/{method}/{pair}.yaml"}))
    assert suite_main([str(suite)]) == 2
    err = capsys.readouterr().err
    assert "configs/nowhere/kd/res56_res20.yaml" in err and "missing" in err
    code, lines, err = dry_run(capsys, str(suite))
    assert code == 0 and len(lines) == 1 and "configs/nowhere/kd/res56_res20.yaml" in err


def test_unregistered_method_is_a_plan_error(tmp_path, capsys):
    plan = plan_suite(restrict(load_suite("table2"), methods=["NOSUCH"], seeds=[0]))
    assert any("NOSUCH" in p for p in plan.problems())


# --------------------------------------------------------------------------------------- real runs
@pytest.fixture
def tiny_suite(tmp_path, tiny_cifar_root):
    teacher = write_teacher_checkpoint(str(tmp_path / "teacher.pth"), "resnet14")
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({
        "DATASET": {"TYPE": "cifar100", "ROOT": tiny_cifar_root, "CHECK_INTEGRITY": False, "DOWNLOAD": False,
                    "NUM_WORKERS": 0, "TEST": {"BATCH_SIZE": 48}},
        "SOLVER": {"EPOCHS": 1, "BATCH_SIZE": 32, "DEVICE": "cpu", "LR_DECAY_STAGES": [100]},
        "LOG": {"SAVE_CHECKPOINT_FREQ": 0},
    }))

    def write(name, methods, epochs=1):
        spec = tmp_path / f"{name}.yaml"
        spec.write_text(yaml.safe_dump({
            "name": name, "dataset": "cifar100", "methods": methods,
            "pairs": [{"name": "r14_r8", "teacher": "resnet14", "student": "resnet8"}], "seeds": [0],
            "config": str(base), "vanilla_config": str(base), "output": str(tmp_path / "out"),
            "overrides": {"DISTILLER.TEACHER_CKPT": teacher, "SOLVER.EPOCHS": epochs},
        }))
        return str(spec)

    return write, tmp_path


def _results(tmp_path, suite, run):
    with open(tmp_path / "out" / suite / run / "results.json") as f:
        return json.load(f)


@pytest.mark.slow  # real suite subprocesses: ~40 s
def test_two_run_suite_runs_then_is_skipped(tiny_suite):
    write, tmp_path = tiny_suite
    spec = write("two", ["NONE", "KD"])
    first = run_cli([os.path.join(REPO_ROOT, "tools", "suite.py"), spec, "--jobs", "2"], cwd=str(tmp_path), timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.count("] finished") == 2 and "] started" in first.stdout
    for run in ("none-resnet8-s0", "kd-r14_r8-s0"):
        results = _results(tmp_path, "two", run)
        assert results["finished"] and results["epoch"] == 1
    assert _results(tmp_path, "two", "kd-r14_r8-s0")["method"] == "KD"
    assert "| resnet14 → resnet8 |" in first.stdout  # the table at the end
    assert "2 run(s) at a time, 1 CPU thread(s) each" in first.stdout  # run_cli sets OMP_NUM_THREADS=1
    with open(tmp_path / "out" / "two" / "suite.json") as f:
        manifest = json.load(f)
    assert manifest["suite"] == "two" and manifest["jobs"] == 2 and manifest["seconds"] > 0
    assert set(manifest["runs"]) == {"none-resnet8-s0", "kd-r14_r8-s0"}
    for run in manifest["runs"].values():
        assert run["state"] == "done" and run["threads"] == 1 and 0 < run["seconds"] <= manifest["seconds"]
    assert manifest["machine"]["cores"] >= 1 and "torch" in manifest["machine"]
    from dev.docgen import collect_suite, suite_table

    collected = collect_suite(str(tmp_path / "out" / "two"))
    kd = next(r for r in collected["runs"] if r["method"] == "KD")
    assert kd["threads"] == 1 and len(kd["test_acc"]) == 1 and kd["config"]["SOLVER.EPOCHS"] == 1
    assert "LOG.PREFIX" not in kd["config"] and kd["config"]["DISTILLER.TYPE"] == "KD"
    assert suite_table(collected).rows[0].cells["KD"].values == [kd["best_acc"]]
    again = run_cli([os.path.join(REPO_ROOT, "tools", "suite.py"), spec], cwd=str(tmp_path), timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("] skipped") == 2 and "] started" not in again.stdout
    with open(tmp_path / "out" / "two" / "suite.json") as f:
        assert {r["state"] for r in json.load(f)["runs"].values()} == {"skipped"}  # no time to report


@pytest.mark.slow  # real suite subprocesses: ~40 s
def test_interrupted_run_is_resumed(tiny_suite):
    write, tmp_path = tiny_suite
    spec = write("resume", ["NONE"], epochs=6)
    run_dir = tmp_path / "out" / "resume" / "none-resnet8-s0"
    # the run waits after the first step of epoch 2 until it is signalled: the SIGINT comes mid-run on any machine
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS="2", DDKD_FAULT="pause:2:1")
    process = subprocess.Popen([sys.executable, "tools/suite.py", spec, "--no-report", *FAULT_PLUGIN], cwd=REPO_ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    # the trainer writes `latest`, then results.json: wait for both, or a SIGINT in between leaves no results
    def saved() -> bool:
        return (run_dir / "latest").exists() and (run_dir / "results.json").exists()

    while not saved() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert saved() and process.poll() is None, "no checkpoint appeared while the run was going"
    process.send_signal(signal.SIGINT)  # the suite stops its training process
    out, _ = process.communicate(timeout=120)
    assert process.returncode != 0 and "interrupted" in out, out
    interrupted = _results(tmp_path, "resume", "none-resnet8-s0")
    assert not interrupted["finished"] and 1 <= interrupted["epoch"] < 6
    # the same suite definition (its plugins too), without the pause
    resumed = run_cli(["tools/suite.py", spec, *FAULT_PLUGIN], cwd=REPO_ROOT, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resuming after epoch {interrupted['epoch']}" in resumed.stdout
    final = _results(tmp_path, "resume", "none-resnet8-s0")
    assert final["finished"] and [h["epoch"] for h in final["history"]] == list(range(1, 7))


@pytest.mark.slow  # a real suite subprocess: ~30 s
def test_a_failed_run_is_the_suites_own_exit_code_not_a_bug(tiny_suite, capsys):
    """A run that fails (here: a teacher checkpoint that is not there) is not a bug of ddkd-suite: ``run`` and
    ``status`` both exit with ``RUNS_FAILED``."""
    write, tmp_path = tiny_suite
    spec = write("fails", ["KD"])
    with open(spec) as f:
        suite = yaml.safe_load(f)
    suite["overrides"]["DISTILLER.TEACHER_CKPT"] = str(tmp_path / "no_such_teacher.pth")
    with open(spec, "w") as f:
        yaml.safe_dump(suite, f)
    assert suite_main([spec, "--no-report", "--quiet"]) == ExitCode.RUNS_FAILED
    assert suite_main(["status", spec]) == ExitCode.RUNS_FAILED
    assert "failed" in capsys.readouterr().out


def test_plan_status_and_resume_command(tmp_path):
    spec = restrict(load_suite("demo"), methods=["KD"])
    spec.output = str(tmp_path)
    plan = plan_suite(spec)
    kd = next(r for r in plan.runs if r.method == "KD")
    assert kd.status() == "new" and "--resume" not in kd.command()
    os.makedirs(kd.output_dir)
    open(os.path.join(kd.output_dir, "latest"), "wb").close()
    with open(os.path.join(kd.output_dir, "results.json"), "w") as f:
        json.dump({"finished": False, "epoch": 3}, f)
    assert kd.status() == "resume" and "--resume" in kd.command()
    with open(os.path.join(kd.output_dir, "results.json"), "w") as f:
        json.dump({"finished": True, "epoch": 12}, f)
    assert kd.status() == "finished"


def test_the_local_scheduler_reads_each_running_runs_results_once_per_poll(tmp_path, monkeypatch):
    """Each poll reads the results of each run it watches once (the ended run's too: read after the poll), and
    a run's start reads them once; here the 'training' is a process that sleeps and exits 1 without results."""
    from mdistiller_ddkd.suite import local_scheduler as scheduler

    spec = restrict(load_suite("demo"), methods=["KD"])
    spec.output = str(tmp_path)
    plan = plan_suite(spec)
    reads, per_poll, real_read, real_watch = [], [], scheduler.read_results, scheduler._Execution.watch
    monkeypatch.setattr(scheduler, "read_results", lambda run_dir: reads.append(run_dir) or real_read(run_dir))

    def watch(execution):
        watched, before = [item.run.output_dir for item in execution.active], len(reads)
        real_watch(execution)
        per_poll.append((reads[before:], watched))

    monkeypatch.setattr(scheduler._Execution, "watch", watch)
    outcome = scheduler.execute_plan(plan, jobs=1, gpus=[], launcher=[sys.executable, "-c", "import time; "
                                     "time.sleep(0.3); raise SystemExit(1)"], stream=io.StringIO(),
                                     poll_seconds=0.02, threads=1)
    teacher = next(run for run in plan.runs if not run.after)
    assert outcome.states[teacher.name] == "failed" and outcome.count("blocked") == len(plan.runs) - 1
    assert len(per_poll) > 3 and all(read == watched for read, watched in per_poll)
    assert len(reads) == 1 + sum(len(read) for read, _ in per_poll)  # + the start's


# ------------------------------------------------------------- pairs, subcommands, plugins, mdistiller
def test_the_paper_pairs_are_the_rows_of_the_paper_tables():
    from mdistiller_ddkd.pairs import pairs_of
    from mdistiller_ddkd.suite.paper import PAIR_NAMES
    from tests.helpers import CIFAR_PAIRS

    rows = lambda *tables: {(r["teacher"], r["student"]) for t in tables for r in table_rows(t)}  # noqa: E731
    # the ten pairs of Tables 2 and 3, plus mdistiller's resnet110 -> resnet32 (configs shipped, not in the paper)
    assert set(CIFAR_PAIRS.values()) == rows("table2", "table3") | {("resnet110", "resnet32")}
    assert len(CIFAR_PAIRS) == 11
    assert set(pairs_of("imagenet").values()) == rows("table1")
    assert all(PAIR_NAMES[pair] == name for name, pair in CIFAR_PAIRS.items())


def test_run_is_the_default_subcommand(capsys):
    implicit = dry_run(capsys, "table2", "--seeds", "1", "--methods", "KD")
    explicit = dry_run(capsys, "run", "table2", "--seeds", "1", "--methods", "KD")
    assert implicit == explicit and implicit[0] == 0 and len(implicit[1]) == 5  # table2: 5 pairs


def test_report_subcommand_prints_the_table(tmp_path, capsys):
    folder = tmp_path / "kd-x-s0"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps({
        "method": "KD", "teacher": "resnet56", "student": "resnet20", "dataset": "cifar100", "seed": 0,
        "finished": True, "best_acc": 70.5, "last_acc": 70.0}))
    assert suite_main(["report", str(tmp_path), "--format", "csv"]) == 0
    assert "70.5000" in capsys.readouterr().out
    assert suite_main(["report", str(tmp_path), "--bogus"]) == 2
    assert "--bogus" in capsys.readouterr().err


def test_plugins_are_loaded_for_planning_and_passed_to_every_run(tmp_path, capsys, monkeypatch):
    from mdistiller_ddkd.distillers import distiller_dict

    (tmp_path / "suite_test_plugin.py").write_text(
        "from mdistiller_ddkd.distillers import register_distiller\n"
        "from mdistiller_ddkd.distillers.kd import KD\n\n\n"
        "@register_distiller('SUITEPLUGINKD')\n"
        "class SuitePluginKD(KD):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump({"name": "p", "methods": ["SUITEPLUGINKD"], "pairs": ["res56_res20"],
                                     "config": "configs/cifar100/kd/{pair}.yaml"}))
    try:
        code, lines, err = dry_run(capsys, str(suite))
        assert code == 0 and "SUITEPLUGINKD not registered" in err  # without the plugin: unknown when planning
        code, lines, err = dry_run(capsys, str(suite), "--plugins", "suite_test_plugin")
        assert code == 0 and "not registered" not in err and len(lines) == 1
        assert " --plugins suite_test_plugin " in lines[0] and _value(lines[0], "DISTILLER.TYPE") == "SUITEPLUGINKD"
        assert suite_main([str(suite), "--plugins", "no_such_plugin_module", "--dry-run"]) == 2
        assert "no_such_plugin_module" in capsys.readouterr().err
    finally:
        distiller_dict.unregister("SUITEPLUGINKD")
        sys.modules.pop("suite_test_plugin", None)


def _expected_mdistiller_grid():
    """(runnable (method, pair) names, not runnable ones) from the registry and the files on disk."""
    from mdistiller_ddkd.distillers import distiller_dict
    from tests.helpers import CIFAR_PAIRS

    runnable, missing = set(), set()
    for method in set(distiller_dict) - {"NONE"}:
        for pair in CIFAR_PAIRS:
            exists = os.path.isfile(os.path.join(REPO_ROOT, "configs", "cifar100", method.lower(), f"{pair}.yaml"))
            (runnable if exists else missing).add((method, pair))
    return runnable, missing


def test_mdistiller_suite_is_every_registered_method_on_the_eleven_pairs(capsys):
    from tests.helpers import CIFAR_PAIRS

    assert suite_main(["mdistiller", "--seeds", "1", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    lines = [line for line in out if line and not line.startswith("#")]
    runnable, missing = _expected_mdistiller_grid()
    distilled = {(_value(line, "DISTILLER.TYPE"), _value(line, "EXPERIMENT.NAME").split("-")[1]) for line in lines
                 if _value(line, "DISTILLER.TYPE") != "NONE"}
    assert distilled == runnable
    assert len(lines) == len(runnable) + len({s for _, s in CIFAR_PAIRS.values()})  # + each student alone
    plan = plan_suite(restrict(load_suite("mdistiller"), seeds=[0]))
    assert {(i.method, i.pair.name) for i in plan.not_runnable} == missing and not plan.problems()
    assert any(line.startswith("# not runnable") for line in out) == bool(missing)


def test_mdistiller_suite_lists_what_it_cannot_run_with_the_reason(capsys):
    from mdistiller_ddkd.distillers import distiller_dict, register_distiller
    from mdistiller_ddkd.distillers.kd import KD

    register_distiller("ZZSUITEONLY")(type("ZzSuiteOnly", (KD,), {}))  # a method with no configs at all
    try:
        spec = load_suite("mdistiller")
        assert "ZZSUITEONLY" in spec.methods and spec.methods[0] == "NONE"  # taken from the registry now
        code = suite_main(["mdistiller", "--seeds", "1", "--methods", "ZZSUITEONLY,KD", "--dry-run"])
        out = capsys.readouterr().out.splitlines()
    finally:
        distiller_dict.unregister("ZZSUITEONLY")
    assert code == 0
    commands = [line for line in out if not line.startswith("#")]
    assert len(commands) == 11 and all(_value(line, "DISTILLER.TYPE") == "KD" for line in commands)
    notes = [line for line in out if line.startswith("#")]
    assert notes[0].startswith("# not runnable: 11 (method, pair)")
    assert notes[1] == ("#   ZZSUITEONLY on every pair (11): configs/cifar100/zzsuiteonly/ does not exist: "
                        "the method ships no configs for this dataset yet")


def test_skip_missing_names_each_missing_pair_config(tmp_path, capsys):
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump({"name": "s", "methods": ["KD"], "pairs": ["res56_res20", "vgg13_vgg8"],
                                     "config": "configs/cifar100/kd/{pair}.yaml", "skip_missing": True}))
    os.makedirs(tmp_path / "configs" / "cifar100" / "kd")
    (tmp_path / "configs" / "cifar100" / "kd" / "res56_res20.yaml").write_text("DISTILLER:\n  TYPE: KD\n")
    spec = load_suite(str(suite))
    spec.config = str(tmp_path / "configs" / "cifar100" / "kd" / "{pair}.yaml")
    plan = plan_suite(spec)
    assert [r.name for r in plan.runs] == ["kd-res56_res20-s0"] and not plan.problems()
    (item,) = plan.not_runnable
    assert item.pair.name == "vgg13_vgg8" and item.config.endswith("kd/vgg13_vgg8.yaml")
    assert "does not exist: the method has configs for other pairs" in item.reason


def test_a_timm_pair_is_one_run_folder_per_run(tmp_path):
    """``timm/<name>`` models in a suite's pair: the run's folder is one folder under the suite (the ``/`` of the
    model names does not nest it), and the training gets the names as they are."""
    spec = suite_from_dict({"name": "timmpair", "dataset": "cifar100", "methods": ["KD", "DKD"], "seeds": [0],
                            "pairs": [{"teacher": "timm/resnet18", "student": "timm/mobilenetv3_small_050"}],
                            "config": "configs/cifar100/{method}/timm_res18_mnv3.yaml"})
    spec.output = str(tmp_path)
    plan = plan_suite(spec)
    assert [r.name for r in plan.runs] == ["kd-timm-resnet18_timm-mobilenetv3_small_050-s0",
                                           "dkd-timm-resnet18_timm-mobilenetv3_small_050-s0"]
    for run in plan.runs:
        assert os.path.dirname(run.output_dir) == os.path.join(str(tmp_path), "timmpair")
        assert "DISTILLER.TEACHER timm/resnet18 DISTILLER.STUDENT timm/mobilenetv3_small_050" in " ".join(run.command())
