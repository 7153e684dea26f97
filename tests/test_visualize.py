"""``ddkd-visualize``'s numbers and refusals: the class-mean logit matrices, their difference and its
off-diagonal statistics against loops over NumPy arrays, the t-SNE sample, how the command line splits run
folders from overrides, and the one-line errors that write nothing. The figures of real runs:
``tests/e2e/test_visualize_cli.py``."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from mdistiller_ddkd.cli.visualize import main as visualize_main
from mdistiller_ddkd.cli.visualize import split_items
from mdistiller_ddkd.errors import ConfigError
from mdistiller_ddkd.visualize import class_mean_logits, correlation_difference, off_diagonal_stats
from mdistiller_ddkd.visualize.compute import subsample
from tests.helpers import assert_one_line_error, call_cli, require_extra


def _class_means_loops(logits: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    out = np.full((k, logits.shape[1]), np.nan)
    for c in range(k):
        rows = [logits[i] for i in range(len(labels)) if labels[i] == c]
        if rows:
            out[c] = np.sum(rows, axis=0) / len(rows)
    return out


def test_the_correlation_matrices_and_their_difference_match_loops():
    rng = np.random.default_rng(0)
    k = 6
    labels = np.array([0, 1, 2, 3, 4] * 7 + [0, 2])  # class 5 has no image: a row of NaN, ignored
    s, t = rng.normal(size=(len(labels), k)), rng.normal(size=(len(labels), k)) * 2
    S = class_mean_logits(torch.from_numpy(s), torch.from_numpy(labels), k)
    T = class_mean_logits(torch.from_numpy(t), torch.from_numpy(labels), k)
    want_s, want_t = _class_means_loops(s, labels, k), _class_means_loops(t, labels, k)
    np.testing.assert_allclose(S.numpy(), want_s, rtol=1e-12, equal_nan=True)
    diff = correlation_difference(S, T)
    want = np.abs(want_s - want_t)
    for i in range(k):
        want[i, i] = 0.0
    np.testing.assert_allclose(diff.numpy(), want, rtol=1e-12, equal_nan=True)
    off = [want[i, j] for i in range(k) for j in range(k) if i != j and np.isfinite(want[i, j])]
    mean, high = off_diagonal_stats(diff)
    assert len(off) == 5 * 5 and mean == pytest.approx(sum(off) / len(off), rel=1e-12)
    assert high == pytest.approx(max(off), rel=1e-12)


def test_the_tsne_sample_is_seeded_and_without_repeats():
    a, b = subsample(1000, 100, seed=3), subsample(1000, 100, seed=3)
    assert torch.equal(a, b) and len(set(a.tolist())) == 100 and a.tolist() == sorted(a.tolist())
    assert not torch.equal(a, subsample(1000, 100, seed=4))
    assert subsample(50, 100, seed=0).tolist() == list(range(50))


def test_run_folders_and_overrides_are_told_apart(tmp_path):
    assert split_items(["a", "b"]) == (["a", "b"], [])
    assert split_items(["a", "DATASET.ROOT", "/data"]) == (["a"], ["DATASET.ROOT", "/data"])
    with pytest.raises(ConfigError, match="at least one run folder"):
        split_items(["SOLVER.DEVICE", "cpu"])


def test_without_the_viz_extra_it_stops_in_one_line(finished_run, capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)  # as without scikit-learn
    out = tmp_path / "figs"
    code, _, err = call_cli(capsys, visualize_main, finished_run, "--out", str(out))
    assert_one_line_error(code, err, "pip install 'mdistiller-ddkd[viz]'")
    assert not out.exists()


def test_a_bad_run_folder_stops_in_one_line_before_any_figure(finished_run, capsys, tmp_path):
    require_extra("sklearn", "viz")
    require_extra("matplotlib", "viz")
    out = tmp_path / "figs"
    code, _, err = call_cli(capsys, visualize_main, f"{finished_run}/distill/run", str(tmp_path), "--out", str(out))
    assert_one_line_error(code, err, "not a run folder")
    code, _, err = call_cli(capsys, visualize_main, f"{finished_run}/distill/run", "--out", str(out),
                            "--max-samples", "1")
    assert_one_line_error(code, err, "--max-samples must be at least 2")
    assert not out.exists()
    code, _, err = call_cli(capsys, visualize_main, f"{finished_run}/distill/run", "--out", str(out))
    assert_one_line_error(code, err, "no teacher checkpoint for resnet8", "DISTILLER.TEACHER_CKPT")
    assert not out.exists()
