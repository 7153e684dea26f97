"""``pip install .`` (not editable) into a fresh virtual environment: console scripts and packaged configs.

The venv is created with --system-site-packages from the project's interpreter so torch & co. are not
downloaded again; the package itself is built (pip's isolated build: setuptools from the index or
PIP_FIND_LINKS) and installed
from the source tree, without dependencies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

from tests.helpers import REPO_ROOT


def _clean_copy(tmp_path) -> str:
    """A copy of the source tree to build from: setuptools writes build/ and *.egg-info into the tree it builds."""
    source = tmp_path / "source"
    top_level = {".venv", ".git", "build", "dist", "output", "data", "download_ckpts", ".pytest_cache"}

    def ignore(folder, names):
        skip = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
        return skip | (top_level & set(names) if os.path.samefile(folder, REPO_ROOT) else set())

    shutil.copytree(REPO_ROOT, source, ignore=ignore)
    return str(source)


@pytest.mark.slow
def test_the_wheel_holds_the_package_and_no_developer_tooling(tmp_path):
    """``pip wheel --no-deps .``: the package's modules and configs are in it, the docs generator (dev/) is not."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "--quiet", "-w",
                            str(tmp_path / "wheels"), _clean_copy(tmp_path)],
                           cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = (tmp_path / "wheels").glob("mdistiller_ddkd-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    modules = {n for n in names if n.endswith(".py")}
    assert {"mdistiller_ddkd/cli/table.py", "mdistiller_ddkd/suite/plan.py"} <= modules
    assert any(n.startswith("mdistiller_ddkd/configs/demo/") for n in names)
    assert not [n for n in names if "docgen" in n or "make_docs" in n or n.split("/")[0] == "dev"], names
    assert "ddkd-bench = mdistiller_ddkd.cli.bench_step:main" in entry_points and "make" not in entry_points


@pytest.mark.slow
def test_pip_install_gives_console_scripts_and_packaged_configs(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = str(bindir / "python")
    # a venv made from a venv sees the base interpreter's packages only: point it at ours (torch, ...)
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    with open(os.path.join(purelib, "project_packages.pth"), "w") as f:
        f.write("\n".join(sorted(ours)) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    source = _clean_copy(tmp_path)
    install = subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "--no-cache-dir", "--quiet", str(source)],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(args):
        return subprocess.run(args, cwd=str(elsewhere), env=env, capture_output=True, text=True, timeout=300)

    # the installed copy is used, not the source tree
    where = run([python, "-c", "import mdistiller_ddkd, os; print(os.path.dirname(mdistiller_ddkd.__file__))"])
    assert where.returncode == 0 and str(venv) in where.stdout and REPO_ROOT not in where.stdout, where.stdout
    for script in ("ddkd-train", "ddkd-suite", "ddkd-table", "ddkd-download-teachers", "ddkd-eval", "ddkd-visualize",
                   "ddkd-export"):
        result = run([str(bindir / script), "--help"])
        assert result.returncode == 0 and "usage" in result.stdout.lower(), (script, result.stdout, result.stderr)
    check = run([python, "-c", (
        "from mdistiller_ddkd.engine.cfg import resolve_config_path, load_config\n"
        "p = resolve_config_path('configs/cifar100/dkd/res56_res20.yaml'); print(p)\n"
        "cfg = load_config('configs/demo/teacher.yaml'); print(cfg.DATASET.TYPE)\n"
        "from mdistiller_ddkd.suite.paper import load_paper_tables\n"
        "print(len(load_paper_tables()['table2_cifar100_same_family']))\n"
    )])
    assert check.returncode == 0, check.stdout + check.stderr
    lines = check.stdout.split()
    assert lines[0].startswith(str(venv)) and lines[0].endswith("res56_res20.yaml")
    assert lines[1:] == ["synthetic", "5"]
    dry = run([str(bindir / "ddkd-suite"), "table2", "--dry-run", "--seeds", "1"])
    assert dry.returncode == 0 and len(dry.stdout.splitlines()) == 50, dry.stdout + dry.stderr
    sweep = run([str(bindir / "ddkd-suite"), "demo_dkd_beta", "--dry-run"])  # a suite file shipped as package data
    commands = [line for line in sweep.stdout.splitlines() if line and not line.startswith("#")]
    assert sweep.returncode == 0 and len(commands) == 16, sweep.stdout + sweep.stderr
    assert sum("DKD.BETA 8.0" in line for line in commands) == 3
