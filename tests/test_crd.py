"""CRD: the contrastive data wrapper, the NCE pieces, the memory banks and a toy training run."""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from mdistiller_ddkd.dataset.crd import ContrastiveDataset
from mdistiller_ddkd.distillers import distiller_dict
from mdistiller_ddkd.engine.cfg import build_default_config
from mdistiller_ddkd.losses.contrastive import contrast_scores, estimate_normalisation, momentum_update_, nce_loss


class IndexedToyData(Dataset):
    """``(image, target, index)`` items of fixed random 3×32×32 images."""

    def __init__(self, n: int, num_classes: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randn(n, 3, 32, 32, generator=g)
        self.targets = [i % num_classes for i in range(n)]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i):
        return self.images[i], self.targets[i], i


class ToyNet(nn.Module):
    """A tiny model with the zoo's output convention: ``(logits, {"feats", "pooled_feat"})``."""

    def __init__(self, feat_dim: int, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.AvgPool2d(4), nn.Flatten(), nn.Linear(3 * 8 * 8, feat_dim), nn.ReLU())
        self.fc = nn.Linear(feat_dim, num_classes)

    def forward(self, x):
        f = self.body(x)
        return self.fc(f), {"feats": [f], "pooled_feat": f}


def _crd_cfg(k: int, mode: str = "exact"):
    cfg = build_default_config()
    cfg.DISTILLER.TYPE = "CRD"
    cfg.CRD.NCE.K = k
    cfg.CRD.MODE = mode
    cfg.CRD.FEAT.DIM = 8
    return cfg


# ---------------------------------------------------------------- data wrapper


def test_exact_negatives_never_from_anchor_class():
    data = IndexedToyData(60, 6)
    wrapped = ContrastiveDataset(data, data.targets, 6, 20, "exact", generator=torch.Generator().manual_seed(0))
    targets = torch.tensor(data.targets)
    for i in range(len(wrapped)):
        image, target, index, cidx = wrapped[i]
        assert index == i and target == data.targets[i]
        assert cidx.dtype == torch.long and cidx.shape == (21,)
        assert cidx[0].item() == i
        negatives = cidx[1:]
        assert not (targets[negatives] == target).any()
        assert len(set(negatives.tolist())) == 20  # distinct: the pool (50) is larger than K
        assert negatives.min() >= 0 and negatives.max() < 60


def test_relax_negatives_never_the_anchor_and_cover_its_class():
    data = IndexedToyData(12, 3)
    wrapped = ContrastiveDataset(data, data.targets, 3, 11, "relax", generator=torch.Generator().manual_seed(1))
    for i in range(len(wrapped)):
        cidx = wrapped[i][3]
        assert cidx[0].item() == i
        negatives = cidx[1:].tolist()
        assert i not in negatives
        # K = N - 1: the negatives are exactly all other samples, same-class ones included
        assert sorted(negatives) == [j for j in range(12) if j != i]


def test_negatives_with_replacement_when_pool_small_and_reproducible():
    data = IndexedToyData(8, 2)
    a = ContrastiveDataset(data, data.targets, 2, 10, "exact", generator=torch.Generator().manual_seed(3))
    b = ContrastiveDataset(data, data.targets, 2, 10, "exact", generator=torch.Generator().manual_seed(3))
    ca, cb = a[0][3], b[0][3]
    assert torch.equal(ca, cb)
    assert ca.shape == (11,)
    assert all(data.targets[j] != data.targets[0] for j in ca[1:].tolist())
    with pytest.raises(ValueError):
        ContrastiveDataset(data, data.targets, 2, 4, "nearest")
    with pytest.raises(ValueError):
        ContrastiveDataset(data, [0] * 8, 2, 4, "exact")  # one class only: no exact negatives


def test_loader_batches_have_crd_layout():
    data = IndexedToyData(16, 4)
    loader = DataLoader(ContrastiveDataset(data, data.targets, 4, 5, "exact"), batch_size=4)
    image, target, index, cidx = next(iter(loader))
    assert image.shape == (4, 3, 32, 32) and cidx.shape == (4, 6)
    assert torch.equal(cidx[:, 0], index)


# ---------------------------------------------------------------- NCE pieces


def test_scores_normalisation_and_nce_written_out():
    g = torch.Generator().manual_seed(4)
    memory = F.normalize(torch.randn(10, 3, generator=g, dtype=torch.float64), dim=1)
    anchor = F.normalize(torch.randn(2, 3, generator=g, dtype=torch.float64), dim=1)
    cidx = torch.tensor([[0, 3, 4], [1, 5, 9]])
    scores = contrast_scores(memory, cidx, anchor, 0.5)
    for b in range(2):
        for k in range(3):
            dot = sum(anchor[b, d].item() * memory[cidx[b, k], d].item() for d in range(3))
            assert scores[b, k].item() == pytest.approx(math.exp(dot / 0.5), rel=1e-6)
    z = estimate_normalisation(scores, 10)
    assert z.item() == pytest.approx(scores.mean().item() * 10, rel=1e-6)
    probs = scores / z
    kn = 2 / 10  # K noise samples with probability 1/N each
    expected = 0.0
    for b in range(2):
        pos = probs[b, 0].item()
        expected -= math.log(pos / (pos + kn + 1e-7))
        for k in (1, 2):
            expected -= math.log(kn / (probs[b, k].item() + kn + 1e-7))
    assert nce_loss(probs, 10).item() == pytest.approx(expected / 2, rel=1e-5)


@pytest.mark.parametrize("momentum", [0.3, 0.9])  # not 0.5: m and 1 - m must not be interchangeable
def test_momentum_update_rule_keeps_rows_normalised(momentum):
    g = torch.Generator().manual_seed(5)
    memory = F.normalize(torch.randn(6, 4, generator=g), dim=1)
    before = memory.clone()
    emb = F.normalize(torch.randn(2, 4, generator=g), dim=1)
    index = torch.tensor([4, 1])
    momentum_update_(memory, index, emb, momentum)
    for row, e in zip(index.tolist(), emb):
        # CRD's memory: the old row keeps weight m, the new embedding gets 1 - m
        mixed = [momentum * before[row, j].item() + (1 - momentum) * e[j].item() for j in range(4)]
        norm = math.sqrt(sum(v * v for v in mixed))
        assert torch.allclose(memory[row], torch.tensor([v / norm for v in mixed]), atol=1e-6)
    untouched = [0, 2, 3, 5]
    assert torch.equal(memory[untouched], before[untouched])
    assert torch.allclose(memory.norm(dim=1), torch.ones(6), atol=1e-6)


def test_distiller_bank_update_and_z_estimated_once():
    torch.manual_seed(0)
    cfg = _crd_cfg(k=5)
    cfg.CRD.NCE.MOMENTUM = 0.8
    distiller = distiller_dict["CRD"].build(ToyNet(12, 4), ToyNet(20, 4), cfg, 16)
    # the banks are state, not parameters: only the two embedding heads count
    assert distiller.get_extra_parameters() == (12 * 8 + 8) + (20 * 8 + 8)
    assert distiller.memory_student.shape == (16, 8) and distiller.memory_teacher.shape == (16, 8)
    names = {n for n, _ in distiller.named_parameters()}
    assert not any("memory" in n for n in names)
    assert {"memory_student", "memory_teacher"} <= set(distiller.state_dict())

    g = torch.Generator().manual_seed(1)
    v_s = F.normalize(torch.randn(3, 8, generator=g), dim=1)
    v_t = F.normalize(torch.randn(3, 8, generator=g), dim=1)
    index = torch.tensor([2, 7, 11])
    cidx = torch.cat([index[:, None], torch.randint(16, (3, 5), generator=g)], dim=1)
    mem_s, mem_t = distiller.memory_student.clone(), distiller.memory_teacher.clone()
    expected_z_t = contrast_scores(mem_t, cidx, v_s, 0.07).mean() * 16
    loss = distiller.crd_loss(v_s, v_t, index, cidx)
    assert torch.isfinite(loss)
    assert distiller.z_teacher.item() == pytest.approx(expected_z_t.item(), rel=1e-5)
    for bank, old, v in ((distiller.memory_student, mem_s, v_s), (distiller.memory_teacher, mem_t, v_t)):
        mixed = 0.8 * old[index] + 0.2 * v  # CRD.NCE.MOMENTUM 0.8
        assert torch.allclose(bank[index], F.normalize(mixed, dim=1), atol=1e-6)
        assert torch.allclose(bank.norm(dim=1), torch.ones(16), atol=1e-5)
    z_before = distiller.z_teacher.clone()
    distiller.crd_loss(v_s, v_t, index, cidx)
    assert torch.equal(distiller.z_teacher, z_before)  # fixed after the first estimate
    with pytest.raises(ValueError):
        distiller.crd_loss(v_s, v_t, index, cidx[:, :3])


def test_crd_loss_decreases_on_toy_problem():
    torch.manual_seed(0)
    num_classes, n = 4, 64
    data = IndexedToyData(n, num_classes, seed=2)
    cfg = _crd_cfg(k=16)
    cfg.CRD.FEAT.DIM = 16
    distiller = distiller_dict["CRD"].build(ToyNet(16, num_classes), ToyNet(32, num_classes), cfg, n)
    distiller.train()
    wrapped = ContrastiveDataset(data, data.targets, num_classes, 16, "exact",
                                 generator=torch.Generator().manual_seed(0))
    loader = DataLoader(wrapped, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(distiller.get_learnable_parameters(), lr=1e-2)
    epoch_losses = []
    for _ in range(15):
        total = 0.0
        for image, target, index, cidx in loader:
            _, losses = distiller(image=image, target=target, index=index, contrastive_index=cidx, epoch=1)
            optimizer.zero_grad()
            losses["loss_feat"].backward()
            optimizer.step()
            total += losses["loss_feat"].item()
        epoch_losses.append(total / len(loader))
    assert all(math.isfinite(v) for v in epoch_losses)
    assert epoch_losses[-1] < 0.8 * epoch_losses[1], epoch_losses
    # the teacher network itself is never updated
    assert all(not p.requires_grad for p in distiller.teacher.parameters())


def test_crd_requires_contrastive_batch():
    cfg = _crd_cfg(k=3)
    distiller = distiller_dict["CRD"].build(ToyNet(4, 2), ToyNet(4, 2), cfg, 8)
    distiller.train()
    with pytest.raises(ValueError, match="contrastive_index"):
        distiller(image=torch.randn(2, 3, 32, 32), target=torch.tensor([0, 1]))
    assert distiller_dict["CRD"].train_batch_layout == "crd"
    bad = _crd_cfg(k=3, mode="nearest")
    with pytest.raises(ValueError):
        distiller_dict["CRD"].build(ToyNet(4, 2), ToyNet(4, 2), bad, 8)


def _ddp_worker(rank: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        torch.set_num_threads(1)
        torch.manual_seed(0)  # identical initial banks and heads on both ranks
        distiller = distiller_dict["CRD"].build(ToyNet(6, 2), ToyNet(6, 2), _crd_cfg(k=4), 10).train()
        before = distiller.memory_student.clone()
        torch.manual_seed(rank + 1)  # different images per rank
        index = torch.tensor([2 * rank, 2 * rank + 1])
        cidx = torch.cat([index[:, None], torch.randint(10, (2, 4))], dim=1)
        _, losses = distiller(image=torch.randn(2, 3, 32, 32), target=torch.tensor([0, 1]), index=index,
                              contrastive_index=cidx)
        sum(losses.values()).backward()
        torch.save({"before": before, "memory_student": distiller.memory_student,
                    "memory_teacher": distiller.memory_teacher, "z": distiller.z_student},
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two processes (gloo): ~14 s
def test_banks_stay_identical_across_ranks(tmp_path):
    """Under torch.distributed every rank applies every rank's batch to its banks (all-gather)."""
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert torch.equal(r0["memory_student"], r1["memory_student"])
    assert torch.equal(r0["memory_teacher"], r1["memory_teacher"])
    assert torch.equal(r0["z"], r1["z"])
    changed = (r0["memory_student"] != r0["before"]).any(dim=1)
    assert changed.tolist() == [True] * 4 + [False] * 6  # rows 0,1 (rank 0) and 2,3 (rank 1)
