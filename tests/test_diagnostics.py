"""Diagnostics (LOG.DIAGNOSTICS): gap metrics against independent computations, the raw/denoised path of the
branch, per-term gradient norms against separate backward passes, isolation from training, the hook, plots."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mdistiller_ddkd.diagnostics import gap_metrics, isolated, linear_cka, term_gradient_norms
from mdistiller_ddkd.diagnostics.representation_metrics import (
    bucket_edges,
    histogram_counts,
    kl_teacher_student,
    mse,
    summary,
    top1_accuracy,
    top1_agreement,
)
from mdistiller_ddkd.diffusion import DiffusionBranch
from mdistiller_ddkd.engine.hooks.diagnostics import diagnostics_hook, probe_indices
from tests.helpers import write_teacher_checkpoint

from .test_ddkd import batch as ddkd_batch
from .test_ddkd import build as build_ddkd


# ------------------------------------------------------------------------------------------------ metrics
def _cka_feature_form(x: np.ndarray, y: np.ndarray) -> float:
    """Kornblith et al.'s feature-space formula ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F) on centred columns."""
    x = x - x.mean(0)
    y = y - y.mean(0)
    return float(np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def test_linear_cka_identity_invariances_and_closed_form():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 5, 2, 2, generator=g, dtype=torch.float64)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    flat = x.reshape(12, -1).double()
    q, _ = torch.linalg.qr(torch.randn(20, 20, generator=g, dtype=torch.float64))  # orthogonal 20×20
    y = torch.randn(12, 7, generator=g, dtype=torch.float64)
    reference = _cka_feature_form(flat.numpy(), y.double().numpy())
    assert linear_cka(x, y) == pytest.approx(reference, rel=1e-9)
    assert linear_cka(flat @ q, y) == pytest.approx(reference, rel=1e-9)  # orthogonal transform
    assert linear_cka(3.7 * x, 0.2 * y) == pytest.approx(reference, rel=1e-9)  # isotropic scaling
    assert linear_cka(x + 5.0, y) == pytest.approx(reference, rel=1e-9)  # centring
    assert 0.0 <= reference < 1.0
    assert linear_cka(torch.ones(4, 3), y[:4]) == 0.0  # a constant side has nothing to align
    with pytest.raises(ValueError, match="same samples"):
        linear_cka(x, y[:5])


def test_kl_agreement_accuracy_by_explicit_sums():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    target = torch.tensor([0, 1, 2, 3, 0, 1])
    for temperature in (1.0, 4.0):
        total = 0.0
        for i in range(6):
            zs = [math.exp(float(v) / temperature) for v in s[i]]
            zt = [math.exp(float(v) / temperature) for v in t[i]]
            ps = [v / sum(zs) for v in zs]
            pt = [v / sum(zt) for v in zt]
            total += sum(pt[k] * math.log(pt[k] / ps[k]) for k in range(4))
        assert kl_teacher_student(s, t, temperature) == pytest.approx(total / 6, rel=1e-10)
    assert kl_teacher_student(t, t, 2.0) == pytest.approx(0.0, abs=1e-12)
    agree = sum(int(max(range(4), key=lambda k: s[i, k]) == max(range(4), key=lambda k: t[i, k])) for i in range(6))
    assert top1_agreement(s, t) == pytest.approx(100.0 * agree / 6)
    correct = sum(int(max(range(4), key=lambda k: s[i, k]) == int(target[i])) for i in range(6))
    assert top1_accuracy(s, target) == pytest.approx(100.0 * correct / 6)
    assert mse(s, t) == pytest.approx(float(((s.double() - t.double()) ** 2).mean()))


def test_histogram_summary_and_buckets():
    values = torch.tensor([0.0, 0.05, 0.1, 0.55, 0.99, 1.0, 0.3])
    expected, _ = np.histogram(values.numpy(), bins=10, range=(0.0, 1.0))
    assert histogram_counts(values) == expected.tolist()
    stats = summary(values)
    assert stats["mean"] == pytest.approx(float(values.double().mean()))
    assert stats["std"] == pytest.approx(float(np.std(values.numpy().astype(np.float64), ddof=1)))
    assert (stats["min"], stats["max"]) == (0.0, 1.0)
    assert list(bucket_edges(1000, 4)) == [0, 250, 500, 750, 1000]
    assert probe_indices(10, 4) == [0, 3, 6, 9] and probe_indices(3, 8) == [0, 1, 2]


# ------------------------------------------------------------------------------------------------ branch paths
def test_branch_transform_raw_is_the_projections_and_denoised_is_forward():
    torch.manual_seed(0)
    branch = DiffusionBranch(6, 4, "3x3", inference_steps=3, train_timesteps=60).train()
    x = torch.randn(5, 6, 3, 3)
    raw, gamma = branch.transform(x, denoise=False)
    assert gamma is None
    torch.testing.assert_close(raw, branch.proj_out(branch.proj_in(x)), rtol=0, atol=0)
    torch.manual_seed(7)
    denoised, gamma = branch.transform(x)
    latent = torch.randn(5, 4, 3, 3)
    torch.manual_seed(7)
    forward_out, _ = branch(x, latent)
    torch.testing.assert_close(denoised, forward_out, rtol=0, atol=0)
    # γ is the adapter's for the same latent (its BN uses batch statistics, so recomputing it matches)
    torch.testing.assert_close(gamma, branch.adapter.gamma(branch.proj_in(x)), rtol=1e-6, atol=1e-7)
    # and "denoised" is proj_out of the sampler run from the adapter's start point with the same noise
    torch.manual_seed(7)
    z = branch.proj_in(x)
    start, _ = branch.adapter(z)
    torch.testing.assert_close(denoised, branch.proj_out(branch.sampler(branch.noise_net, start)), rtol=0, atol=0)


def test_gap_metrics_use_the_branch_projections():
    distiller = build_ddkd()
    image, target = ddkd_batch(n=6)
    with isolated(distiller, train=True):
        report = gap_metrics(distiller, image, target)
    s = report.scalars
    with isolated(distiller, train=True), torch.no_grad():
        logits_s, feats_s = distiller.student(image)
        logits_t, feats_t = distiller.teacher(image)
        feat_s, feat_t = F.adaptive_avg_pool2d(feats_s["feats"][-1], (2, 2)), F.adaptive_avg_pool2d(
            feats_t["feats"][-1], (2, 2))
        latent, recon = distiller.autoencoder(feat_t)
        branch = distiller.feat_branch
        raw = branch.proj_out(branch.proj_in(feat_s))
        lraw = distiller.logit_branch.proj_out(distiller.logit_branch.proj_in(logits_s[:, :, None, None])).flatten(1)
    assert s["feat_mse_raw"] == pytest.approx(float(((raw.double() - latent.double()) ** 2).mean()), rel=1e-6)
    assert s["feat_cka_raw"] == pytest.approx(linear_cka(raw, latent), rel=1e-6)
    assert s["ae_mse"] == pytest.approx(float(((recon.double() - feat_t.double()) ** 2).mean()), rel=1e-6)
    assert s["logit_kl_student"] == pytest.approx(kl_teacher_student(logits_s, logits_t, 4.0), rel=1e-6)
    assert s["logit_kl_raw"] == pytest.approx(kl_teacher_student(lraw, logits_t, 4.0), rel=1e-6)
    for name in ("feat_mse_denoised", "feat_cka_denoised", "logit_kl_denoised", "logit_agree_denoised",
                 "logit_acc_denoised", "gamma_feat_mean", "gamma_logit_std", "diff_feat_t0_250",
                 "diff_logit_t750_1000", "ae_cka"):
        assert math.isfinite(s[name]), name
    assert sum(report.histograms["gamma_logit_hist"]) == 6
    # the temperature is the method's: KL_T for DIFFKD
    diffkd = build_ddkd("DIFFKD", KL_T=2.0)
    with isolated(diffkd, train=True):
        r2 = gap_metrics(diffkd, image, target)
        logits_s2 = diffkd.student(image)[0]
    assert r2.scalars["logit_kl_student"] == pytest.approx(
        kl_teacher_student(logits_s2, diffkd.teacher(image)[0], 2.0), rel=1e-6)


@pytest.mark.parametrize("overrides, absent, present", [
    ({"DENOISE_LOGITS": False}, ("logit_kl_raw", "gamma_logit_mean", "diff_logit_t0_250"), ("logit_kl_student",)),
    ({"DENOISE_FEATS": False}, ("feat_mse_raw", "ae_mse", "gamma_feat_mean"), ("logit_kl_denoised",)),
    ({"ADAPTIVE_NOISE": False}, ("gamma_feat_mean", "gamma_logit_mean"), ("feat_cka_denoised",)),
    ({"USE_AE": False}, ("ae_mse",), ("feat_mse_denoised",)),
])
def test_gap_metrics_follow_the_ablation_switches(overrides, absent, present):
    distiller = build_ddkd(**overrides)
    with isolated(distiller, train=True):
        scalars = gap_metrics(distiller, *ddkd_batch(n=4)).scalars
    assert not set(absent) & set(scalars) and set(present) <= set(scalars)
    if overrides == {"ADAPTIVE_NOISE": False}:  # γ = 1: the denoised path starts from the projection itself
        assert "gamma_feat_hist" not in scalars


def test_gap_metrics_reject_other_methods():
    from mdistiller_ddkd.distillers import get_distiller_class
    from mdistiller_ddkd.engine.cfg import build_default_config

    from .test_ddkd import StandIn

    kd = get_distiller_class("KD")(StandIn(8, 2), StandIn(8, 2), build_default_config())
    with pytest.raises(ValueError, match="DDKD or DIFFKD"):
        gap_metrics(kd, *ddkd_batch())


# ------------------------------------------------------------------------------------------------ gradients
def test_term_gradient_norms_equal_separate_backward_passes():
    distiller = build_ddkd()
    image, target = ddkd_batch(n=6)
    params = list(distiller.student.parameters())
    sentinel = [torch.full_like(p, 0.5) for p in params]
    for p, g in zip(params, sentinel):
        p.grad = g.clone()
    torch.manual_seed(3)
    logits, losses = distiller(image=image, target=target, epoch=30)
    report = term_gradient_norms(losses, params, at=logits)
    norms, at_logits = report.on_params, report.at
    for p, g in zip(params, sentinel):  # .grad untouched
        torch.testing.assert_close(p.grad, g, rtol=0, atol=0)
    separate, vectors = {}, {}
    for name in losses:
        distiller.zero_grad(set_to_none=True)
        torch.manual_seed(3)
        _, fresh = distiller(image=image, target=target, epoch=30)
        if fresh[name].requires_grad:
            fresh[name].backward()
        vectors[name] = [p.grad.double().flatten() if p.grad is not None
                         else torch.zeros(p.numel(), dtype=torch.float64) for p in params]
        separate[name] = math.sqrt(sum(float(g.pow(2).sum()) for g in vectors[name]))
    for name, value in separate.items():
        assert norms[name] == pytest.approx(value, rel=1e-5, abs=1e-12), name
    dot = sum(float(a @ b) for a, b in zip(vectors["loss_kd_logit"], vectors["loss_ce"]))
    assert report.cosine_with_ce["loss_kd_logit"] == pytest.approx(
        dot / (separate["loss_kd_logit"] * separate["loss_ce"]), rel=1e-5)
    assert report.cosine_with_ce["loss_diff"] == 0.0 and "loss_ce" not in report.cosine_with_ce
    assert set(report.scalars()) >= {"grad_total", "grad_logits_total", "grad_cos_ce_loss_kd_feat"}
    assert norms["loss_diff"] == 0.0 and norms["loss_ae"] == 0.0  # detached from the student (eq. 5, 7)
    assert norms["loss_ce"] > 0 and norms["loss_kd_logit"] > 0 and norms["loss_kd_feat"] > 0
    distiller.zero_grad(set_to_none=True)
    torch.manual_seed(3)
    logits, fresh = distiller(image=image, target=target, epoch=30)
    logits.retain_grad()
    sum(fresh.values()).backward()
    total = math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in params))
    assert norms["total"] == pytest.approx(total, rel=1e-5)
    assert at_logits["total"] == pytest.approx(float(logits.grad.double().norm()), rel=1e-5)
    assert at_logits["loss_kd_feat"] == 0.0  # the feature term does not pass through the logits


# ------------------------------------------------------------------------------------------------ isolation
def test_isolated_restores_rng_buffers_and_mode():
    distiller = build_ddkd().eval()
    image, target = ddkd_batch(n=4)
    buffers = {k: v.clone() for k, v in distiller.state_dict().items() if "running" in k or "num_batches" in k}
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    with isolated(distiller, train=True):
        assert distiller.training and not distiller.teacher.training
        distiller(image=image, target=target, epoch=1)
        random.random(), np.random.rand()
    assert not distiller.training
    state = distiller.state_dict()
    for k, v in buffers.items():
        torch.testing.assert_close(state[k], v, rtol=0, atol=0)
    after = (random.random(), float(np.random.rand()), float(torch.rand(())))
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    assert after == (random.random(), float(np.random.rand()), float(torch.rand(())))


def test_hook_factory_follows_config():
    from mdistiller_ddkd.engine.cfg import load_config

    assert diagnostics_hook(load_config(None, [])) is None
    assert diagnostics_hook(load_config(None, ["LOG.DIAGNOSTICS", "True"])) is not None
    with pytest.raises(ValueError, match="DIAGNOSTICS_BATCH"):
        diagnostics_hook(load_config(None, ["LOG.DIAGNOSTICS", "True", "LOG.DIAGNOSTICS_BATCH", "1"]))


# ------------------------------------------------------------------------------------------------ training
def _tiny_cfg(tmp_path, method, diagnostics, tag, extra=()):
    from mdistiller_ddkd.engine.cfg import load_config

    teacher = os.path.join(str(tmp_path), "teacher.pth")
    if not os.path.isfile(teacher):
        write_teacher_checkpoint(teacher, "resnet8x4", num_classes=10)
    return load_config(None, [
        "DISTILLER.TYPE", method, "DISTILLER.TEACHER", "resnet8x4", "DISTILLER.STUDENT", "resnet8",
        "DISTILLER.TEACHER_CKPT", teacher, "DATASET.TYPE", "synthetic", "DATASET.NUM_WORKERS", "0",
        "DATASET.SYNTHETIC.TRAIN_PER_CLASS", "2", "DATASET.SYNTHETIC.TEST_PER_CLASS", "1",
        "SOLVER.BATCH_SIZE", "8", "SOLVER.EPOCHS", "2", "SOLVER.DEVICE", "cpu", "DDKD.DKD.WARMUP", "1",
        "LOG.PREFIX", os.path.join(str(tmp_path), tag), "LOG.DIAGNOSTICS", str(diagnostics),
        "LOG.DIAGNOSTICS_FREQ", "2", "LOG.DIAGNOSTICS_BATCH", "6", *extra])


def _train(cfg):
    from mdistiller_ddkd.engine.trainer import Trainer

    trainer = Trainer(cfg, show_progress=False)
    try:
        results = trainer.fit()
    finally:
        trainer.close()
    return results, {k: v.clone() for k, v in trainer.distiller.state_dict().items()}, trainer.output_dir


@pytest.fixture(scope="module")
def ddkd_runs(tmp_path_factory):
    """A tiny 2-epoch DDKD run with diagnostics off and the same run with them on."""
    tmp = tmp_path_factory.mktemp("diag_runs")
    off = _train(_tiny_cfg(tmp, "DDKD", False, "off"))
    on = _train(_tiny_cfg(tmp, "DDKD", True, "on"))
    return {"off": off, "on": on, "tmp": tmp}


def _assert_bit_identical(on, off):
    (res_on, weights_on, _), (res_off, weights_off, _) = on, off
    assert weights_on.keys() == weights_off.keys()
    for key in weights_off:
        torch.testing.assert_close(weights_on[key], weights_off[key], rtol=0, atol=0, msg=key)
    assert [r["test_acc"] for r in res_on["history"]] == [r["test_acc"] for r in res_off["history"]]
    assert [r["train_loss"] for r in res_on["history"]] == [r["train_loss"] for r in res_off["history"]]
    assert not any(k.startswith("diag_") for k in res_off["history"][-1])
    last = res_on["history"][-1]
    assert last["diag_grad_total"] > 0 and last["diag_grad_loss_ce"] > 0 and "diag_grad_logits_loss_ce" in last
    return last


def test_diagnostics_on_and_off_train_ddkd_bit_identically(ddkd_runs):
    last = _assert_bit_identical(ddkd_runs["on"], ddkd_runs["off"])
    for key in ("diag_feat_cka_raw", "diag_feat_cka_denoised", "diag_logit_kl_denoised", "diag_gamma_logit_mean",
                "diag_ae_mse", "diag_diff_logit_t0_250", "diag_grad_loss_kd_logit"):
        assert math.isfinite(last[key]), key
    assert sum(last["diag_gamma_feat_hist"]) == 6
    out = ddkd_runs["on"][2]
    saved = json.load(open(os.path.join(out, "results.json")))
    assert saved["history"][-1]["diag_grad_total"] == pytest.approx(last["diag_grad_total"])
    assert "diag_grad_total" in open(os.path.join(out, "worklog.txt")).read()
    events = [f for f in os.listdir(os.path.join(out, "train.events"))]
    assert events  # the per-step diag_step/* scalars and the γ histograms are in TensorBoard's files


def test_diagnostics_on_and_off_train_kd_bit_identically(tmp_path):
    last = _assert_bit_identical(_train(_tiny_cfg(tmp_path, "KD", True, "on")),
                                 _train(_tiny_cfg(tmp_path, "KD", False, "off")))
    assert "diag_feat_cka_raw" not in last and "diag_grad_loss_kd" in last


# ------------------------------------------------------------------------------------------------ CLI and plots
def test_diagnose_cli_in_process_reports_every_metric(ddkd_runs, capsys):
    from mdistiller_ddkd.cli.diagnose import main

    out = ddkd_runs["on"][2]
    assert main([out, "--batches", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["method"] == "DDKD" and report["epoch"] == 2 and report["images"] == 10
    for key in ("feat_mse_raw", "feat_mse_denoised", "feat_cka_raw", "feat_cka_denoised", "ae_mse", "ae_cka",
                "logit_kl_student", "logit_kl_raw", "logit_kl_denoised", "logit_agree_denoised", "logit_acc_raw",
                "diff_feat_t0_250", "diff_logit_t750_1000", "grad_loss_kd_logit", "grad_total"):
        assert math.isfinite(report["scalars"][key]), key
    assert sum(report["gamma"]["logit"]["hist"]) == 10 and set(report["gamma"]) == {"feat", "logit"}
    assert main([out, "--batches", "1", "--no-gradients"]) == 0
    text = capsys.readouterr().out
    for label in ("MSE to the teacher latent", "linear CKA", "KL(teacher ‖ ·) at T=4", "top-1 agreement",
                  "top-1 accuracy", "reconstruction of the teacher feature", "γ mean", "t 750–1000"):
        assert label in text, label
    assert "Gradient norm" not in text


def test_diagnose_cli_user_errors_are_one_line(ddkd_runs, tmp_path, capsys):
    from mdistiller_ddkd.cli.diagnose import main

    assert main([str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    out = ddkd_runs["on"][2]
    assert main([out, "--checkpoint", "epoch_99"]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint 'epoch_99'" in err and err.count("\n") == 1
    assert main([out, "--batches", "-1"]) == 2
    assert "--batches" in capsys.readouterr().err


def _is_png(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_run_plots_are_valid_pngs(ddkd_runs, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is the optional [plot] extra; PNG checks skipped")
    from mdistiller_ddkd.diagnostics.run_figures import plot_run

    paths = plot_run(ddkd_runs["on"][2], str(tmp_path / "plots"))
    assert sorted(os.path.basename(p) for p in paths) == ["accuracy.png", "gamma.png", "gap.png", "gradients.png"]
    assert all(_is_png(p) and os.path.getsize(p) > 1000 for p in paths)
    # a run without diagnostics has only its accuracy curve
    assert [os.path.basename(p) for p in plot_run(ddkd_runs["off"][2], str(tmp_path / "off"))] == ["accuracy.png"]


def _fake_run(root, method, seed, accs, teacher="resnet20", student="resnet8"):
    folder = os.path.join(root, f"{method.lower()}-s{seed}")
    os.makedirs(folder)
    history = [{"epoch": e + 1, "test_acc": a} for e, a in enumerate(accs)]
    with open(os.path.join(folder, "results.json"), "w") as f:
        json.dump({"method": method, "teacher": teacher, "student": teacher if method == "NONE" and seed > 5
                   else student, "dataset": "synthetic", "seed": seed % 5, "finished": True, "best_acc": max(accs),
                   "last_acc": accs[-1], "history": history}, f)


def test_suite_plots_are_valid_pngs(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is the optional [plot] extra; PNG checks skipped")
    from mdistiller_ddkd.suite.suite_figures import plot_suite

    root = str(tmp_path / "suite")
    for seed, shift in ((0, 0.0), (1, 2.0)):
        _fake_run(root, "KD", seed, [40 + shift, 60 + shift, 70 + shift])
        _fake_run(root, "DDKD", seed, [30 + shift, 55 + shift, 72 + shift])
        _fake_run(root, "NONE", seed, [20, 40, 50 + shift])
    _fake_run(root, "NONE", 6, [50, 80, 90])  # the teacher trained alone
    paths = plot_suite([root], str(tmp_path / "plots"))
    names = sorted(os.path.basename(p) for p in paths)
    assert names == ["accuracy_resnet20_resnet8.png", "paper_vs_ours_synthetic.png"]
    assert all(_is_png(p) for p in paths)


def test_plots_without_matplotlib_say_how_to_install(ddkd_runs, tmp_path, monkeypatch, capsys):
    import sys

    from mdistiller_ddkd.cli.diagnose import main
    from mdistiller_ddkd.diagnostics.run_figures import plot_run
    from mdistiller_ddkd.matplotlib_support import INSTALL_HINT, PlotUnavailableError
    from mdistiller_ddkd.suite.suite_figures import plot_suite

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(PlotUnavailableError, match=r"pip install 'mdistiller-ddkd\[plot\]'"):
        plot_run(ddkd_runs["on"][2], str(tmp_path / "p"))
    with pytest.raises(PlotUnavailableError):
        plot_suite([str(tmp_path)], str(tmp_path / "p"))
    assert main([ddkd_runs["on"][2], "--plot", str(tmp_path / "p")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {INSTALL_HINT}"
    assert not os.path.exists(tmp_path / "p")


# ------------------------------------------------------------------------------------------------ remedies
def test_raw_logit_epochs_distils_raw_logits_first_then_is_the_paper_method():
    from mdistiller_ddkd.losses.logit import dkd_loss

    paper = build_ddkd(**{"DKD.WARMUP": 2})
    remedy = build_ddkd(**{"DKD.WARMUP": 2, "RAW_LOGIT_EPOCHS": 3})
    remedy.load_state_dict(paper.state_dict())
    image, target = ddkd_batch(n=6)
    for epoch in (1, 3):  # remedy on: DKD on the student's own logits, with DKD's warm-up factor
        torch.manual_seed(4)
        logits, losses = remedy(image=image, target=target, epoch=epoch)
        expected = min(epoch / 2, 1.0) * dkd_loss(logits, remedy.teacher(image)[0], target, 1.0, 8.0, 4.0)
        torch.testing.assert_close(losses["loss_kd_logit"], expected, rtol=1e-6, atol=1e-7)
        # the logit denoiser still trains on the teacher's logits: its diffusion loss is in loss_diff
        g = torch.autograd.grad(losses["loss_diff"], list(remedy.logit_branch.noise_net.parameters()),
                                allow_unused=True)
        assert any(x is not None and x.abs().sum() > 0 for x in g)
        # and nothing of the logit branch but Φθ receives a gradient
        g = torch.autograd.grad(sum(losses.values()), list(remedy.logit_branch.proj_out.parameters()),
                                allow_unused=True)
        assert all(x is None for x in g)
    for epoch in (4, 30):  # afterwards: bit-identical to the paper's method
        torch.manual_seed(4)
        _, a = paper(image=image, target=target, epoch=epoch)
        torch.manual_seed(4)
        _, b = remedy(image=image, target=target, epoch=epoch)
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_grad_clip_rescales_the_step_to_the_total_norm():
    from mdistiller_ddkd.engine.cfg import load_config
    from mdistiller_ddkd.engine.update import get_update_rule

    def one_step(clip):
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 3)
        cfg = load_config(None, ["SOLVER.GRAD_CLIP", str(clip), "SOLVER.MOMENTUM", "0.0",
                                 "SOLVER.WEIGHT_DECAY", "0.0", "SOLVER.LR", "0.5"])
        rule = get_update_rule("base")(cfg, list(model.parameters()), torch.device("cpu"), None)
        x = torch.randn(5, 4)
        before = [p.detach().clone() for p in model.parameters()]
        rule.step({"a": (model(x) ** 2).sum(), "b": model(x).sum()})
        return before, [p.detach().clone() for p in model.parameters()], [p.grad.clone() for p in model.parameters()]

    before, free, grads = one_step(0.0)
    norm = math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads))
    clip = norm / 4  # the step must shrink four-fold
    _, clipped, _ = one_step(clip)
    for b, f, c in zip(before, free, clipped):
        torch.testing.assert_close(c - b, (f - b) * (clip / norm), rtol=1e-5, atol=1e-7)
    _, loose, _ = one_step(norm * 2)  # a bound above the norm changes nothing
    for f, l_ in zip(free, loose):
        torch.testing.assert_close(l_, f, rtol=0, atol=0)


def test_suite_report_and_table_write_plots_or_say_how_to_install(tmp_path, capsys, monkeypatch):
    import sys

    from mdistiller_ddkd.cli.suite import main as suite_main
    from mdistiller_ddkd.cli.table import main as table_main
    from mdistiller_ddkd.matplotlib_support import INSTALL_HINT

    root = str(tmp_path / "suite")
    _fake_run(root, "KD", 0, [40.0, 60.0])
    _fake_run(root, "NONE", 0, [20.0, 30.0])
    if importlib.util.find_spec("matplotlib") is not None:
        assert suite_main(["report", root, "--plot", str(tmp_path / "plots")]) == 0
        assert "accuracy_resnet20_resnet8.png" in os.listdir(tmp_path / "plots")
        assert all(_is_png(str(tmp_path / "plots" / name)) for name in os.listdir(tmp_path / "plots")
                   if name.endswith(".png"))
    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as without the [plot] extra
    assert table_main([root, "--plot", str(tmp_path / "p")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {INSTALL_HINT}"


def test_plotting_a_folder_without_results_names_it(tmp_path):
    from mdistiller_ddkd.diagnostics.run_figures import plot_run
    from mdistiller_ddkd.errors import MissingInputError

    with pytest.raises(MissingInputError, match=r"holds no readable results\.json"):
        plot_run(str(tmp_path), str(tmp_path / "plots"))
    assert not os.path.exists(tmp_path / "plots")
