"""The one ``Registry`` type: registering (and the one "registered twice" error), looking up (and the one
"unknown NAME" message listing what is registered, plugins included), listing; every registry of the package
is one; and through each command-line tool, an unknown name of every kind is one line naming the valid ones."""

from __future__ import annotations

import glob
import os
import re

import pytest

from mdistiller_ddkd.cli.runner import classify
from mdistiller_ddkd.errors import PluginError, UnknownNameError, UserError
from mdistiller_ddkd.registry import Registry
from tests.helpers import REPO_ROOT, assert_one_line_error, call_cli, registered, train_cli


class Thing:
    """Registered objects compared by identity."""


def test_register_get_and_list():
    things = Registry("thing")
    first, second = Thing(), Thing()
    assert things.register("b", first) is first
    decorate = things.register("a")
    assert decorate(second) is second  # the decorator form returns what it decorates
    assert things.get("a") is second and things["b"] is first
    assert things.names() == ["a", "b"]  # sorted
    assert list(things) == ["b", "a"] and list(things.values()) == [first, second]  # registration order
    assert "a" in things and "c" not in things and 3 not in things and len(things) == 2
    assert things.get("c", None) is None and dict(things) == {"b": first, "a": second}


def test_names_may_be_case_insensitive():
    methods = Registry("method (DISTILLER.TYPE)", normalize=str.upper)
    kd = methods.register("kd", Thing())
    assert methods.names() == ["KD"] and methods.get("Kd") is kd and "kD" in methods


def test_a_name_registered_twice_is_one_line_for_the_user():
    things = Registry("thing")
    kept = things.register("a", Thing())
    things.register("a", kept)  # a module imported twice: harmless
    things.register("t", (len, None))
    things.register("t", (len, None))  # an equal entry (a new tuple of the same builder): harmless
    with pytest.raises(PluginError, match=r"thing 'a' is registered twice \(.*Thing.* and .*Thing.*\)") as info:
        things.register("a", Thing())
    assert things.get("a") is kept
    code, line = classify(info.value)
    assert code == 2 and line.startswith("error: thing 'a' is registered twice") and "\n" not in line


def test_an_unknown_name_lists_every_registered_one():
    things = Registry("thing (X.TYPE)")
    for name in ("zeta", "alpha", "mid"):
        things.register(name, Thing())
    with pytest.raises(UnknownNameError) as info:
        things.get("nope")
    assert info.value.args[0] == "unknown thing (X.TYPE) 'nope'; valid: alpha, mid, zeta"
    assert isinstance(info.value, KeyError) and isinstance(info.value, UserError)
    with pytest.raises(UnknownNameError, match="valid: alpha, mid, zeta"):
        things["nope"]
    with pytest.raises(UnknownNameError, match=r"unknown thing \(X.TYPE\) 'x'; valid: \(none registered\)"):
        Registry("thing (X.TYPE)").get("x")


def test_unregister_removes_a_name():
    things = Registry("thing")
    things.register("a", Thing())
    things.unregister("a")
    things.unregister("a")  # absent: nothing to do
    assert "a" not in things and things.names() == []


def test_every_registry_of_the_package_is_one():
    from dev.docgen import BLOCKS
    from mdistiller_ddkd.dataset import DATASETS
    from mdistiller_ddkd.distillers import config_nodes, distiller_dict
    from mdistiller_ddkd.engine.hooks import HOOKS
    from mdistiller_ddkd.engine.update import UPDATE_RULES
    from mdistiller_ddkd.export import FORMATS
    from mdistiller_ddkd.models import MODEL_ZOOS

    for registry in (DATASETS, distiller_dict, config_nodes, BLOCKS, HOOKS, UPDATE_RULES, FORMATS, MODEL_ZOOS,
                     *MODEL_ZOOS.values()):
        assert isinstance(registry, Registry) and len(registry) > 0, registry


def test_an_unknown_named_suite_lists_the_named_suites():
    from mdistiller_ddkd.suite import NAMED_SUITES, named_suite

    with pytest.raises(UnknownNameError) as info:
        named_suite("nope")
    assert info.value.args[0] == f"unknown named suite 'nope'; valid: {', '.join(sorted(NAMED_SUITES))}"
    assert {"table1", "mdistiller", "demo"} <= set(NAMED_SUITES)


def test_registered_twice_is_said_in_one_place():
    sources = glob.glob(os.path.join(REPO_ROOT, "mdistiller_ddkd", "**", "*.py"), recursive=True)
    saying = []
    for path in sources:
        with open(path, encoding="utf-8") as f:
            if re.search(r"registered twice|declared twice", f.read()):
                saying.append(os.path.relpath(path, REPO_ROOT))
    assert saying == [os.path.join("mdistiller_ddkd", "registry.py")]


def test_a_plugin_that_takes_a_registered_name_is_one_line(tmp_path, capsys, monkeypatch):
    from mdistiller_ddkd.distillers import distiller_dict

    (tmp_path / "taken_name_plugin.py").write_text(
        "from mdistiller_ddkd.distillers import register_distiller\n"
        "from mdistiller_ddkd.distillers.kd import KD\n\n\n"
        "@register_distiller('dkd')\n"
        "class MyDKD(KD):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    kept = distiller_dict["DKD"]
    code, _, err = train_cli(capsys, "--plugins", "taken_name_plugin", "DISTILLER.TYPE", "DKD")
    assert_one_line_error(code, err, "method (DISTILLER.TYPE) 'DKD' is registered twice",
                          "mdistiller_ddkd.distillers.dkd.DKD", "taken_name_plugin.MyDKD")
    assert distiller_dict["DKD"] is kept


# ------------------------------------------------------------------ an unknown name of each kind, through its tool
def _plugin_entry(kind: str):
    """What a plugin would register in the registry of ``kind``: a real entry of that registry's type."""
    from mdistiller_ddkd.dataset import DatasetInfo
    from mdistiller_ddkd.distillers.kd import KD
    from mdistiller_ddkd.engine.update import UpdateRule
    from mdistiller_ddkd.export import FORMATS, ExportFormat
    from mdistiller_ddkd.models.cifar import resnet8

    pt2 = FORMATS["pt2"]
    return {
        "method": type("ZzPluginKD", (KD,), {}),
        "dataset": DatasetInfo("zz_plugin", lambda cfg: None),
        "student": (resnet8, None),
        "teacher": (resnet8, None),
        "update rule": type("ZzPluginRule", (UpdateRule,), {}),
        "export format": ExportFormat("zz_plugin", ".zz", (), "export", pt2.serialize, pt2.load, "none"),
        "doc block": lambda results_dir: "",
    }[kind]


def _registry(kind: str) -> Registry:
    from dev.docgen import BLOCKS
    from mdistiller_ddkd.dataset import DATASETS
    from mdistiller_ddkd.distillers import distiller_dict
    from mdistiller_ddkd.engine.update import UPDATE_RULES
    from mdistiller_ddkd.export import FORMATS
    from mdistiller_ddkd.models import MODEL_ZOOS

    return {"method": distiller_dict, "dataset": DATASETS, "student": MODEL_ZOOS["cifar"],
            "teacher": MODEL_ZOOS["cifar"], "update rule": UPDATE_RULES, "export format": FORMATS,
            "doc block": BLOCKS}[kind]


def _run_tool(kind: str, capsys, tmp_path):
    """``(exit code, stderr)`` of the tool that takes a name of ``kind``, given the name ``nope``."""
    from dev.make_docs import main as make_docs_main
    from mdistiller_ddkd.cli.export import main as export_main

    keys = {"method": "DISTILLER.TYPE", "dataset": "DATASET.TYPE", "student": "DISTILLER.STUDENT",
            "teacher": "DISTILLER.TEACHER", "update rule": "SOLVER.TRAINER"}
    if kind in keys:
        code, _, err = train_cli(capsys, keys[kind], "nope", "LOG.PREFIX", str(tmp_path / "out"))
    elif kind == "export format":
        code, _, err = call_cli(capsys, export_main, str(tmp_path), "--format", "nope", "--out",
                                str(tmp_path / "student.nope"))
    else:
        (tmp_path / "docs").mkdir()
        (tmp_path / "docs" / "page.md").write_text("<!-- generated: nope -->x<!-- end generated -->\n")
        code, _, err = call_cli(capsys, make_docs_main, "--root", str(tmp_path))
    return code, err


# trainer hooks are not named by the user (each factory decides from the config), so no tool takes their names
@pytest.mark.parametrize("kind", ["method", "dataset", "student", "teacher", "update rule", "export format",
                                  "doc block"])
def test_an_unknown_name_through_the_tool_is_one_line_naming_the_valid_ones(kind, capsys, tmp_path):
    registry = _registry(kind)
    with registered(registry, "zz_plugin", _plugin_entry(kind)):  # as a plugin would
        expected = sorted(registry)
        code, err = _run_tool(kind, capsys, tmp_path)
    assert_one_line_error(code, err, f"unknown {registry.kind} 'nope'; valid: ")
    listed = err.strip().split("; valid: ", 1)[1].split("; ", 1)[0].split(", ")  # models add where timm/ ones come
    assert listed == expected and registry.key("zz_plugin") in listed
    assert not (tmp_path / "out").exists()
