"""Config: mdistiller's defaults, merge order, unknown keys, unknown names, added keys."""


import pytest

from mdistiller_ddkd.engine.cfg import build_default_config, iter_flat, load_config
from tests.helpers import load_reference


def test_every_mdistiller_default_is_present_with_its_value():
    reference = load_reference("mdistiller_cfg_defaults.yaml")

    def walk(node, prefix=""):
        for k, v in node.items():
            if isinstance(v, dict):
                yield from walk(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v

    ours = dict(iter_flat(build_default_config()))
    for key, value in walk(reference):
        assert key in ours, key
        if key == "LOG.WANDB":
            assert ours[key] is False
        elif isinstance(value, list):
            assert list(ours[key]) == value, key
        else:
            assert ours[key] == value, key


def test_added_keys_and_defaults():
    defaults = build_default_config()
    assert defaults.DATASET.ROOT == "./data"
    assert defaults.SOLVER.DEVICE == "auto"
    assert defaults.DISTILLER.TEACHER_CKPT == ""
    assert isinstance(defaults.EXPERIMENT.SEED, int)
    assert isinstance(defaults.DATASET.DOWNLOAD, bool)


def test_merge_order_defaults_then_file_then_command_line(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("SOLVER:\n  LR: 0.01\n  EPOCHS: 7\nDISTILLER:\n  TYPE: KD\n")
    cfg = load_config(str(f), ["SOLVER.LR", "0.2"])
    assert cfg.SOLVER.LR == 0.2  # command line wins over the file
    assert cfg.SOLVER.EPOCHS == 7  # file wins over defaults
    assert cfg.SOLVER.BATCH_SIZE == 64  # default
    assert cfg.is_frozen()


def test_unknown_key_is_an_error_naming_it(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("SOLVER:\n  LEARNING_RATE: 0.01\n")
    with pytest.raises(KeyError, match="LEARNING_RATE"):
        load_config(str(f))
    with pytest.raises(KeyError, match="NOPE"):
        load_config(None, ["DKD.NOPE", "1"])


def test_unknown_method_lists_valid_ones():
    with pytest.raises(KeyError, match="valid: .*DKD.*KD.*NONE"):
        load_config(None, ["DISTILLER.TYPE", "MAGIC"])


def test_unknown_model_lists_valid_ones():
    from mdistiller_ddkd.models import get_model as build_model

    with pytest.raises(KeyError, match="valid: .*resnet8x4"):
        build_model("resnet9000", "cifar100", 100)


def test_bad_choice_values_are_rejected():
    with pytest.raises(ValueError, match="SOLVER.DEVICE"):
        load_config(None, ["SOLVER.DEVICE", "tpu"])


def test_method_nodes_are_declared_beside_their_code():
    from mdistiller_ddkd.distillers import config_nodes

    assert {"KD", "DKD"} <= set(config_nodes)
    defaults = build_default_config()
    assert defaults.DKD.BETA == 8.0 and defaults.KD.TEMPERATURE == 4


def test_missing_config_file_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="not found"):
        load_config("configs/nowhere/nothing.yaml")
