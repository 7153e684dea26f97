"""DOT (SOLVER.TRAINER dot): the update against numbers worked out by hand, plain SGD when one kind of
loss is absent, exact state_dict round trips, fp16 gradient scaling, and the refusals."""

import io

import pytest
import torch
from torch import nn

from mdistiller_ddkd.engine.cfg import load_config
from mdistiller_ddkd.engine.update import dot as dot_module
from mdistiller_ddkd.engine.update import get_update_rule
from mdistiller_ddkd.engine.update.dot import DistillationOrientedSGD, DOTUpdate, split_losses

CPU = torch.device("cpu")


def dot_cfg(lr=0.1, momentum=0.9, delta=0.05, weight_decay=0.01):
    return load_config(None, ["SOLVER.TRAINER", "dot", "SOLVER.LR", str(lr), "SOLVER.MOMENTUM", str(momentum),
                              "SOLVER.DOT.DELTA", str(delta), "SOLVER.WEIGHT_DECAY", str(weight_decay)])


def scalar(value, dtype=torch.float64):
    return nn.Parameter(torch.tensor(value, dtype=dtype))


def toy_losses(u, v, w):
    """u gets both gradients (task u, distillation 3), w only a task gradient (2), v only a distillation
    gradient (v); the distillation part is split into two terms, which DOT must add up."""
    return {"loss_ce": 0.5 * u**2 + 2 * w, "loss_kd": 3 * u, "loss_feat": 0.5 * v**2}


def test_rule_is_registered_under_mdistiller_names():
    assert get_update_rule("dot") is DOTUpdate and get_update_rule("crd_dot") is DOTUpdate


def test_two_steps_match_the_hand_computed_update():
    # lr 0.1, weight decay 0.01, momenta 0.9 - 0.05 = 0.85 (task), 0.9 + 0.05 = 0.95 (distillation), mean 0.9
    u, v, w = scalar(1.0), scalar(2.0), scalar(3.0)
    rule = DOTUpdate(dot_cfg(), [u, v, w], CPU, None)
    rule.step(toy_losses(u, v, w))
    # step 1, every buffer starts as its first gradient:
    #   u: b_t = 1 + 0.01*1 = 1.01, u = 1 - 0.101 = 0.899; b_d = 3, u = 0.899 - 0.3 = 0.599
    #   w: b_t = 2 + 0.01*3 = 2.03, w = 3 - 0.203 = 2.797
    #   v: b_d = 2 + 0.01*2 = 2.02 (weight decay in the distillation buffer: v has no task gradient), v = 1.798
    assert float(u.detach()) == pytest.approx(0.599, abs=1e-12)
    assert float(w.detach()) == pytest.approx(2.797, abs=1e-12)
    assert float(v.detach()) == pytest.approx(1.798, abs=1e-12)
    rule.step(toy_losses(u, v, w))
    # step 2:
    #   u: b_t = 0.85*1.01 + (0.599 + 0.00599) = 1.46349, u = 0.599 - 0.146349 = 0.452651
    #      b_d = 0.95*3 + 3 = 5.85, u = 0.452651 - 0.585 = -0.132349
    #   w: b_t = 0.9*2.03 + (2 + 0.02797) = 3.85497, w = 2.797 - 0.385497 = 2.411503
    #   v: b_d = 0.9*2.02 + (1.798 + 0.01798) = 3.63398, v = 1.798 - 0.363398 = 1.434602
    expected = {"u": (u, -0.132349, 1.46349, 5.85), "w": (w, 2.411503, 3.85497, None),
                "v": (v, 1.434602, None, 3.63398)}
    state = rule.optimizer.state
    for name, (p, value, task_buf, distill_buf) in expected.items():
        assert float(p.detach()) == pytest.approx(value, abs=1e-12), name
        for key, buf in (("momentum_buffer", task_buf), ("momentum_kd_buffer", distill_buf)):
            if buf is None:
                assert key not in state[p], f"{name} must have no {key}"
            else:
                assert float(state[p][key]) == pytest.approx(buf, abs=1e-12), f"{name} {key}"
    group = rule.optimizer.param_groups[0]
    assert group["momentum"] == pytest.approx(0.85) and group["momentum_kd"] == pytest.approx(0.95)


def _linear_problem(seed=0):
    torch.manual_seed(seed)
    model = nn.Linear(3, 2).double()
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    return model, x, y


@pytest.mark.parametrize("term", ["loss_ce", "loss_kd"])
def test_one_kind_of_loss_is_plain_sgd(term):
    """NONE's losses (task only), or a method with no task term: SGD with momentum MOMENTUM."""
    model, x, y = _linear_problem()
    reference, _, _ = _linear_problem()
    rule = DOTUpdate(dot_cfg(momentum=0.9, delta=0.075), list(model.parameters()), CPU, None)
    sgd = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    for _ in range(3):
        rule.step({term: ((model(x) - y) ** 2).mean()})
        sgd.zero_grad()
        ((reference(x) - y) ** 2).mean().backward()
        sgd.step()
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-12)


def _two_loss_step(model, x, y):
    out = model(x)
    return {"loss_ce": nn.functional.cross_entropy(out, y), "loss_kd": (out**2).mean()}


def test_state_dict_round_trip_continues_identically():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    rule = DOTUpdate(dot_cfg(), list(model.parameters()), CPU, None)
    for _ in range(2):
        rule.step(_two_loss_step(model, x, y))
    saved = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": rule.optimizer.state_dict()}, saved)
    saved.seek(0)
    checkpoint = torch.load(saved, weights_only=True)
    state = checkpoint["optimizer"]["state"]
    assert all({"momentum_buffer", "momentum_kd_buffer"} <= set(s) for s in state.values())

    copy = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    copy.load_state_dict(checkpoint["model"])
    resumed = DOTUpdate(dot_cfg(), list(copy.parameters()), CPU, None)
    resumed.optimizer.load_state_dict(checkpoint["optimizer"])
    for _ in range(2):
        rule.step(_two_loss_step(model, x, y))
        resumed.step(_two_loss_step(copy, x, y))
    for p, q in zip(model.parameters(), copy.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
        for key in ("momentum_buffer", "momentum_kd_buffer"):
            torch.testing.assert_close(rule.optimizer.state[p][key], resumed.optimizer.state[q][key], rtol=0, atol=0)


def _twin_models():
    torch.manual_seed(2)
    a = nn.Linear(4, 3)
    b = nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    return a, b, torch.randn(6, 4), torch.randint(0, 3, (6,))


def test_fp16_gradient_scaling_gives_the_unscaled_update():
    scaled_model, plain_model, x, y = _twin_models()
    scaled = DOTUpdate(dot_cfg(), list(scaled_model.parameters()), CPU, torch.float16)
    plain = DOTUpdate(dot_cfg(), list(plain_model.parameters()), CPU, None)
    assert scaled.scaler.is_enabled() and not plain.scaler.is_enabled()
    for _ in range(2):  # the scale is a power of two, so scaling and unscaling are exact
        scaled.step(_two_loss_step(scaled_model, x, y))
        plain.step(_two_loss_step(plain_model, x, y))
    for p, q in zip(scaled_model.parameters(), plain_model.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


@pytest.mark.parametrize("poisoned", ["loss_kd", "loss_ce"])
def test_fp16_overflow_skips_the_step_and_backs_off(poisoned):
    model, reference, x, y = _twin_models()
    rule = DOTUpdate(dot_cfg(), list(model.parameters()), CPU, torch.float16)
    before = [p.detach().clone() for p in model.parameters()]
    scale = rule.scaler.get_scale()
    losses = _two_loss_step(model, x, y)
    losses[poisoned] = losses[poisoned] * float("inf")
    rule.step(losses)
    assert rule.scaler.get_scale() == scale / 2
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
    assert not rule.optimizer.state, "a skipped step must create no momentum buffers"
    # a task-only step next must not pick up the distillation gradients of the skipped step
    task_only = {"loss_ce": _two_loss_step(model, x, y)["loss_ce"]}
    rule.step(task_only)
    fresh = DOTUpdate(dot_cfg(), list(reference.parameters()), CPU, None)
    fresh.step({"loss_ce": _two_loss_step(reference, x, y)["loss_ce"]})
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_split_losses_takes_loss_ce_as_task_and_sums_the_rest():
    a = torch.tensor(2.0, requires_grad=True)
    losses = {"loss_ce": a * 1, "loss_kd": a * 3, "loss_feat": a * 5, "loss_log": torch.tensor(7.0)}
    task, distill = split_losses(losses)
    assert float(task.detach()) == 2.0 and float(distill.detach()) == 16.0  # the constant term carries no gradient
    assert split_losses({"loss_kd": a * 3})[0] is None
    assert split_losses({"loss_ce": a * 1})[1] is None


def test_momenta_outside_zero_one_are_refused():
    with pytest.raises(ValueError, match="SOLVER.DOT.DELTA"):
        DOTUpdate(dot_cfg(momentum=0.05, delta=0.075), [scalar(1.0)], CPU, None)
    with pytest.raises(ValueError, match="SOLVER.DOT.DELTA"):
        DOTUpdate(dot_cfg(momentum=0.95, delta=0.075), [scalar(1.0)], CPU, None)
    with pytest.raises(ValueError, match="weight_decay"):
        DistillationOrientedSGD([scalar(1.0)], lr=0.1, weight_decay=-1.0)


def test_distributed_training_is_refused_with_a_clear_message(monkeypatch):
    monkeypatch.setattr(dot_module, "_world_size", lambda: 2)
    with pytest.raises(ValueError, match="DistributedDataParallel.*one process"):
        DOTUpdate(dot_cfg(), [scalar(1.0)], CPU, None)


# ----------------------------------------------------------------------------------------- configs
DOT_CONFIGS = ["configs/cifar100/dot/res32x4_res8x4.yaml", "configs/cifar100/dot/res32x4_shuv2.yaml",
               "configs/cifar100/dot/vgg13_vgg8.yaml", "configs/imagenet/r34_r18/dot.yaml",
               "configs/imagenet/r50_mv1/dot.yaml", "configs/tiny_imagenet/dot/r18_mv2.yaml",
               "configs/tiny_imagenet/dot/r18_shuv2.yaml"]
IDENTITY_KEYS = {"EXPERIMENT.NAME", "EXPERIMENT.TAG", "EXPERIMENT.PROJECT", "DISTILLER.TYPE", "DISTILLER.TEACHER",
                 "DISTILLER.STUDENT", "DATASET.TYPE"}


def _flat(node, prefix=""):
    for key, value in node.items():
        if isinstance(value, dict):
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


@pytest.mark.parametrize("path", DOT_CONFIGS)
def test_dot_configs_load_and_state_only_what_differs(path):
    import os

    import yaml

    from mdistiller_ddkd.engine.cfg import build_default_config
    from tests.helpers import REPO_ROOT

    with open(os.path.join(REPO_ROOT, path)) as f:
        stated = dict(_flat(yaml.safe_load(f)))
    cfg = load_config(os.path.join(REPO_ROOT, path))
    assert cfg.SOLVER.TRAINER == "dot" and cfg.DISTILLER.TYPE == "KD"  # mdistiller's DOT runs are all KD + DOT
    defaults = dict(_flat(build_default_config()))
    redundant = [k for k, v in stated.items() if k not in IDENTITY_KEYS and defaults[k] == (
        v if not isinstance(v, list) else type(defaults[k])(v))]
    assert not redundant, f"{path} restates defaults: {redundant}"
    if "DATASET.TYPE" in stated:
        assert stated["DATASET.TYPE"] != "cifar100"


# ----------------------------------------------------------------------------------------- trainer
def _tiny_trainer(root, tmp_path, method, amp="off", epochs=1):
    from mdistiller_ddkd.engine.trainer import Trainer
    from tests.helpers import write_teacher_checkpoint

    teacher = write_teacher_checkpoint(str(tmp_path / "t.pth"), "resnet14")
    cfg = load_config(None, [
        "DATASET.ROOT", root, "DATASET.CHECK_INTEGRITY", "False", "DATASET.DOWNLOAD", "False",
        "DATASET.NUM_WORKERS", "0", "SOLVER.EPOCHS", str(epochs), "SOLVER.BATCH_SIZE", "32", "SOLVER.DEVICE", "cpu",
        "SOLVER.TRAINER", "dot", "SOLVER.AMP", amp, "DISTILLER.TYPE", method, "DISTILLER.TEACHER", "resnet14",
        "DISTILLER.STUDENT", "resnet8", "DISTILLER.TEACHER_CKPT", teacher, "LOG.PREFIX", str(tmp_path)])
    return Trainer(cfg, show_progress=False)


def test_trainer_runs_dot_for_a_method_with_its_own_modules(tiny_cifar_root, tmp_path):
    """FitNet: its regressor gets only the distillation gradient, the student layers after the hint only
    the task gradient, the layers up to the hint both."""
    import math

    trainer = _tiny_trainer(tiny_cifar_root, tmp_path, "FITNET")
    assert isinstance(trainer.update_rule, DOTUpdate)
    record = trainer.fit()["history"][0]
    assert math.isfinite(record["train_loss"]) and math.isfinite(record["test_loss"])
    state = trainer.optimizer.state
    student = {id(p) for p in trainer.student.parameters()}
    kinds = {id(p): set(state[p]) for p in trainer.distiller.get_learnable_parameters()}
    own = [k for i, k in kinds.items() if i not in student]
    assert own and all(k == {"momentum_kd_buffer"} for k in own)
    students = [k for i, k in kinds.items() if i in student]
    assert all("momentum_buffer" in k for k in students)
    assert {"momentum_buffer", "momentum_kd_buffer"} in students and {"momentum_buffer"} in students


def test_trainer_step_under_fp16_autocast(tiny_cifar_root, tmp_path):
    trainer = _tiny_trainer(tiny_cifar_root, tmp_path, "KD", amp="fp16")
    assert trainer.scaler.is_enabled()
    image, target, index = next(iter(trainer.train_loader))
    image, target = image[:4], target[:4]
    before = [p.detach().clone() for p in trainer.student.parameters()]
    trainer.model.train()
    with trainer.autocast():
        _, losses = trainer.model(image=image, target=target, index=index[:4], epoch=1)
    trainer.update_rule.step(losses)
    after = list(trainer.student.parameters())
    assert all(torch.isfinite(p).all() for p in after)
    assert any(not torch.equal(p, b) for p, b in zip(after, before))
    assert all(set(s) == {"momentum_buffer", "momentum_kd_buffer"} for s in trainer.optimizer.state.values())


def test_gradient_clipping_is_refused_with_dot():
    cfg = load_config(None, ["SOLVER.TRAINER", "dot", "SOLVER.GRAD_CLIP", "1.0"])
    with pytest.raises(ValueError, match="GRAD_CLIP"):
        DOTUpdate(cfg, [torch.nn.Parameter(torch.zeros(2))], torch.device("cpu"), None)
