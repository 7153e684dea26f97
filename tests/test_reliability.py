"""Reliability, in process (fast): every bad input is one line and exit code 2 with the output folder
unchanged; resume refuses config changes; the lock; signals; exact mid-epoch resume (DataLoader and
on-device augmentation); deterministic per-sample randomness with and without DataLoader workers.
The kill-at-any-moment runs are in tests/e2e/test_kill_resume.py."""

from __future__ import annotations

import errno
import os
import shutil
import signal

import pytest
import torch

from mdistiller_ddkd.cli.eval import main as eval_main
from mdistiller_ddkd.cli.train import main as train_main
from mdistiller_ddkd.engine.cfg import load_config
from mdistiller_ddkd.engine.hooks import TrainerHook
from mdistiller_ddkd.engine.lock import OutputLock
from mdistiller_ddkd.engine.signals import request_stop
from mdistiller_ddkd.engine.trainer import Trainer
from mdistiller_ddkd.errors import Stopped
from tests.conftest import write_teacher_checkpoint

TINY = {
    "DATASET.TYPE": "synthetic", "DATASET.SYNTHETIC.TRAIN_PER_CLASS": "2", "DATASET.SYNTHETIC.TEST_PER_CLASS": "1",
    "DATASET.NUM_WORKERS": "0", "DATASET.TEST.BATCH_SIZE": "10", "SOLVER.BATCH_SIZE": "8", "SOLVER.EPOCHS": "2",
    "SOLVER.DEVICE": "cpu", "DISTILLER.TYPE": "NONE", "DISTILLER.TEACHER": "resnet8", "DISTILLER.STUDENT": "resnet8",
    "LOG.SAVE_CHECKPOINT_FREQ": "0", "EXPERIMENT.NAME": "run",
}


def overrides(prefix, **extra):
    values = dict(TINY, **{"LOG.PREFIX": str(prefix)})
    values.update(extra)
    return [x for kv in values.items() for x in kv]


def cli(capsys, *args, main=train_main):
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder):
    """``{relative path: bytes}`` of a folder, or None when it does not exist."""
    if not os.path.isdir(folder):
        return None
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                out[os.path.relpath(os.path.join(root, name), folder)] = f.read()
    return out


def assert_one_line_error(code, err, *needles):
    assert code == 2, err
    assert err.startswith("error: ") and err.strip().count("\n") == 0, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """LOG.PREFIX of a finished 2-epoch run (copy it before changing anything)."""
    prefix = tmp_path_factory.mktemp("finished")
    assert train_main(overrides(prefix)) == 0
    return str(prefix)


@pytest.fixture
def run_copy(finished_run, tmp_path):
    prefix = tmp_path / "copy"
    shutil.copytree(finished_run, prefix)
    return str(prefix), os.path.join(str(prefix), "distill", "run")


class Evil:
    """Unpickling calls ``open(marker, "w")``: the marker file appears if the payload ever runs."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def bad_checkpoint(path, kind, marker):
    if kind == "malicious":
        torch.save({"model": Evil(marker)}, path)
    else:
        torch.save({"model": {"w": torch.zeros(3)}}, path)
        data = open(path, "rb").read()
        open(path, "wb").write(data[: len(data) // 2] if kind == "truncated" else os.urandom(len(data)))
    return str(path)


# ----------------------------------------------------------------------------------- bad inputs: fresh run
@pytest.mark.parametrize("key,value,needle", [
    ("SOLVER.EPOCHS", "0", "SOLVER.EPOCHS"), ("SOLVER.EPOCHS", "-1", "positive integer"),
    ("SOLVER.BATCH_SIZE", "0", "SOLVER.BATCH_SIZE"), ("SOLVER.LR_DECAY_STAGES", "[3, 1]", "ascending"),
    ("SOLVER.LR", "0.0", "SOLVER.LR"), ("DATASET.NUM_WORKERS", "-2", "DATASET.NUM_WORKERS"),
    ("SOLVER.NOT_A_KEY", "1", "SOLVER.NOT_A_KEY"), ("SOLVER.EPOCHS", "many", "Type mismatch"),
])
def test_bad_values_are_one_line_before_any_work(capsys, tmp_path, key, value, needle):
    code, _, err = cli(capsys, *overrides(tmp_path, **{key: value}))
    assert_one_line_error(code, err, needle)
    assert snapshot(str(tmp_path / "distill")) is None


@pytest.mark.parametrize("text,needle", [("SOLVER:\n  LR: [1\n", "not valid YAML at line"),
                                         ("- SOLVER\n- LR\n", "holds a YAML list")])
def test_bad_yaml_is_one_line(capsys, tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, _, err = cli(capsys, "--cfg", str(path), *overrides(tmp_path))
    assert_one_line_error(code, err, needle, str(path))


def test_odd_overrides_and_cuda_without_cuda_are_one_line(capsys, tmp_path):
    code, _, err = cli(capsys, *overrides(tmp_path), "SOLVER.LR")
    assert_one_line_error(code, err, "KEY VALUE pairs")
    if not torch.cuda.is_available():
        code, _, err = cli(capsys, *overrides(tmp_path, **{"SOLVER.DEVICE": "cuda"}))
        assert_one_line_error(code, err, "no CUDA device", "SOLVER.DEVICE cpu")
    assert snapshot(str(tmp_path / "distill")) is None


@pytest.mark.parametrize("kind", ["truncated", "garbage", "malicious"])
def test_bad_teacher_checkpoint_is_one_line_and_never_runs_code(capsys, tmp_path, kind):
    marker = tmp_path / "PAYLOAD_RAN"
    ckpt = bad_checkpoint(tmp_path / "teacher.pth", kind, marker)
    code, _, err = cli(capsys, *overrides(tmp_path, **{"DISTILLER.TYPE": "KD", "DISTILLER.TEACHER_CKPT": ckpt}))
    assert_one_line_error(code, err, ckpt, "refused" if kind == "malicious" else "cannot read")
    assert not marker.exists() and snapshot(str(tmp_path / "distill" / "run")) is None
    code, _, err = cli(capsys, "-m", "resnet8", "-c", ckpt, "-d", "synthetic", "DATASET.SYNTHETIC.TRAIN_PER_CLASS",
                       "2", "DATASET.SYNTHETIC.TEST_PER_CLASS", "1", main=eval_main)
    assert_one_line_error(code, err, ckpt)
    assert not marker.exists()


def test_nan_in_the_first_epoch_says_there_is_no_checkpoint(capsys, tmp_path, monkeypatch):
    from mdistiller_ddkd.distillers import distiller_dict

    cls = distiller_dict["NONE"]
    original = cls.forward_train
    monkeypatch.setattr(cls, "forward_train", lambda self, **kw: (lambda out: (out[0], {
        k: v * float("nan") for k, v in out[1].items()}))(original(self, **kw)))
    code, _, err = cli(capsys, *overrides(tmp_path))
    assert code == 3 and err.strip().count("\n") == 0 and "non-finite loss at epoch 1" in err
    assert "no checkpoint has been written yet" in err and "epoch 0" not in err


def test_disk_full_is_one_line_and_keeps_the_last_checkpoint(capsys, tmp_path, monkeypatch):
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("epoch") == 2 and "optimizer" in obj:
            f.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    code, _, err = cli(capsys, *overrides(tmp_path))
    assert_one_line_error(code, err, "No space left on device", "--resume")
    folder = tmp_path / "distill" / "run"
    assert torch.load(folder / "latest", weights_only=True)["epoch"] == 1
    assert not [n for n in os.listdir(folder) if n.endswith(".tmp") or n == ".lock"]


# ----------------------------------------------------------------------------------- bad inputs: resume
@pytest.mark.parametrize("kind", ["truncated", "garbage", "malicious", "foreign", "damaged"])
def test_bad_latest_is_one_line_and_leaves_the_folder_unchanged(capsys, run_copy, kind, tmp_path):
    prefix, folder = run_copy
    marker = tmp_path / "PAYLOAD_RAN"
    path = os.path.join(folder, "latest")
    if kind == "foreign":  # a readable checkpoint, but not one of the trainer's
        torch.save({"model": {"w": torch.zeros(2)}, "epoch": "two"}, path)
    elif kind == "damaged":  # the trainer's layout with a broken RNG state
        state = torch.load(path, weights_only=True)
        state.pop("rank_states")
        state["rng"] = {"python": [3]}
        torch.save(state, path)
    else:
        bad_checkpoint(path, kind, marker)
    before = snapshot(folder)
    code, _, err = cli(capsys, "--resume", *overrides(prefix, **{"SOLVER.EPOCHS": "3"}))
    assert_one_line_error(code, err, os.path.join(folder, "latest"))
    assert snapshot(folder) == before and not marker.exists()


@pytest.mark.parametrize("flag,changes,needles", [
    ("--resume", {"SOLVER.LR": "0.1"}, ["SOLVER.LR 0.05 -> 0.1", "--resume-with-changes"]),
    ("--resume", {"DISTILLER.STUDENT": "resnet14"}, ["DISTILLER.STUDENT 'resnet8' -> 'resnet14'"]),
    ("--resume", {"DISTILLER.TYPE": "KD"}, ["DISTILLER.TYPE 'NONE' -> 'KD'"]),
    ("--resume", {"DATASET.SYNTHETIC.TRAIN_PER_CLASS": "3"}, ["DATASET.SYNTHETIC.TRAIN_PER_CLASS 2 -> 3"]),
    ("--resume-with-changes", {"DISTILLER.STUDENT": "resnet14"}, ["does not fit", "layer1.1"]),
    ("--resume", {"SOLVER.EPOCHS": "1"}, ["below the 2 epochs"]),
    ("", {}, ["already holds a run", "--resume"]),
])
def test_resume_refusals_are_one_line_and_leave_the_folder_unchanged(capsys, run_copy, tmp_path, flag, changes,
                                                                     needles):
    prefix, folder = run_copy
    if changes.get("DISTILLER.TYPE") == "KD":
        changes["DISTILLER.TEACHER_CKPT"] = write_teacher_checkpoint(str(tmp_path / "t.pth"), "resnet8", 10)
    before = snapshot(folder)
    code, _, err = cli(capsys, *([flag] if flag else []), *overrides(prefix, **changes))
    assert_one_line_error(code, err, *needles)
    assert snapshot(folder) == before


def test_resume_onto_data_of_another_size_is_refused(capsys, run_copy):
    """DATASET.ROOT may move (a harmless key), but data of another size is another run."""
    prefix, folder = run_copy
    latest = torch.load(os.path.join(folder, "latest"), weights_only=True)
    latest["num_data"] = 50000
    torch.save(latest, os.path.join(folder, "latest"))
    before = snapshot(folder)
    code, _, err = cli(capsys, "--resume", *overrides(prefix, **{"SOLVER.EPOCHS": "3"}))
    assert_one_line_error(code, err, "trained on 50000 images, the data now has 20")
    assert snapshot(folder) == before


def test_resume_without_a_run_and_a_locked_folder_are_one_line(capsys, run_copy, tmp_path):
    code, _, err = cli(capsys, "--resume", *overrides(tmp_path / "empty"))
    assert_one_line_error(code, err, "no checkpoint")
    assert snapshot(str(tmp_path / "empty" / "distill" / "run")) is None
    prefix, folder = run_copy
    before = snapshot(folder)
    with OutputLock(folder):  # another writer (here: this process, through its own lock)
        code, _, err = cli(capsys, "--resume", *overrides(prefix, **{"SOLVER.EPOCHS": "3"}))
    assert_one_line_error(code, err, f"pid {os.getpid()}", "another run")
    assert snapshot(folder) == before
    code, _, _ = cli(capsys, "--resume", *overrides(prefix, **{"SOLVER.EPOCHS": "3"}))
    assert code == 0


def test_harmless_changes_resume_and_are_noted(capsys, run_copy):
    prefix, folder = run_copy
    code, out, _ = cli(capsys, "--resume", *overrides(prefix, **{"SOLVER.EPOCHS": "3", "LOG.TENSORBOARD_FREQ": "7"}))
    assert code == 0 and "LOG.TENSORBOARD_FREQ 500 -> 7" in out  # LOG.PREFIX changed too: the folder moved
    note = [line for line in open(os.path.join(folder, "worklog.txt")) if line.startswith("resume after epoch 2")]
    assert len(note) == 1 and "LOG.TENSORBOARD_FREQ 500 -> 7" in note[0] and "SOLVER.EPOCHS 2 -> 3" in note[0]
    assert "EPOCHS: 3" in open(os.path.join(folder, "config.yaml")).read()  # the next resume compares with it


# ----------------------------------------------------------------------------------- exact mid-epoch resume
class StopAt(TrainerHook):
    """Requests a stop (as the SIGTERM handler does) after ``step`` (1-based) of ``epoch``."""

    def __init__(self, epoch, step):
        self.point = (epoch, step)

    def after_step(self, trainer, state):
        if (state.epoch, state.step + 1) == self.point:
            request_stop(signal.SIGTERM)


def _cfg(prefix, name, **extra):
    return load_config(None, overrides(prefix, **{"EXPERIMENT.NAME": name, "SOLVER.EPOCHS": "3", **extra}))


@pytest.mark.parametrize("extra", [{}, {"DATASET.GPU_AUGMENT": "True"}], ids=["dataloader", "gpu_augment"])
def test_stop_mid_epoch_then_resume_is_bit_identical(tmp_path, extra):
    full = Trainer(_cfg(tmp_path, "full", **extra), show_progress=False)
    reference = full.fit()
    weights = {k: v.clone() for k, v in full.distiller.state_dict().items()}

    cfg = _cfg(tmp_path, "stopped", **extra)
    first = Trainer(cfg, show_progress=False)
    first.hooks.append(StopAt(2, 1))
    try:
        with pytest.raises(Stopped, match="in epoch 2 after step 1 of 3") as stop:
            first.fit()
    finally:
        request_stop(None)
    assert stop.value.exit_code == 143
    partial = torch.load(os.path.join(first.output_dir, "latest"), weights_only=True)
    assert partial["epoch"] == 1 and partial["partial"] == {"epoch": 2, "step": 1}

    resumed = Trainer(cfg, resume=True, show_progress=False)
    assert (resumed.start_epoch, resumed.start_step) == (2, 1)
    results = resumed.fit()
    for key, value in weights.items():
        assert torch.equal(resumed.distiller.state_dict()[key], value), key
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in reference["history"]]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in results["history"]] == strip


# ----------------------------------------------------------------------------------- data: seeded, resumable
class _RandomItems(torch.utils.data.Dataset):
    """Each item draws from torch, python and numpy's global RNGs (as a transform may)."""

    def __len__(self):
        return 12

    def __getitem__(self, i):
        import random

        import numpy as np

        return torch.tensor([float(i), float(torch.rand(())), random.random(), float(np.random.rand())])


def test_a_sample_depends_on_seed_epoch_and_index_only_and_leaves_the_global_rngs_alone():
    import random

    import numpy as np

    from mdistiller_ddkd.dataset.sampling import SampleKey, SeededSamples

    data = SeededSamples(_RandomItems(), seed=7)
    first = [data[SampleKey(2, i)] for i in range(12)]
    torch.manual_seed(123), random.seed(4), np.random.seed(5)  # whatever state the caller's RNGs are in
    again = [data[SampleKey(2, i)] for i in reversed(range(12))][::-1]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(data[SampleKey(3, 0)], first[0]) and not torch.equal(first[1][1:], first[2][1:])
    assert not torch.equal(SeededSamples(_RandomItems(), seed=8)[SampleKey(2, 0)], first[0])
    torch.manual_seed(123), random.seed(4), np.random.seed(5)
    states = (torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())
    data[SampleKey(1, 1)]
    assert torch.equal(torch.get_rng_state(), states[0]) and random.getstate() == states[1]
    assert (np.random.get_state()[1] == states[2]).all()


def _epoch_batches(loader, epoch, step=0):
    from mdistiller_ddkd.dataset import set_train_position

    set_train_position(loader, epoch, step)
    return [(image.clone(), index.clone()) for image, _, index in loader]


def test_batches_are_the_same_with_persistent_workers_after_a_restart_and_from_mid_epoch():
    from mdistiller_ddkd.dataset import get_dataset

    def loader(workers):
        cfg = load_config(None, overrides("unused", **{"DATASET.NUM_WORKERS": str(workers),
                                                       "DATASET.SYNTHETIC.TRAIN_PER_CLASS": "3"}))
        return get_dataset(cfg)[0]

    plain, workers, restarted = loader(0), loader(2), loader(2)
    reference = [_epoch_batches(plain, e) for e in (1, 2)]
    assert len(reference[0]) == 4 and not torch.equal(reference[0][0][1], reference[1][0][1])
    for ours in ([_epoch_batches(workers, e) for e in (1, 2)], [[], _epoch_batches(restarted, 2)]):
        for epoch_ref, epoch_ours in zip(reference, ours):
            if epoch_ours:
                assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(epoch_ref, epoch_ours))
    tail = _epoch_batches(plain, 2, step=2)
    assert len(tail) == 2 and all(torch.equal(a[0], b[0]) for a, b in zip(reference[1][2:], tail))


@pytest.mark.parametrize("length,world", [(10, 3), (12, 4), (7, 2)])
def test_epoch_sampler_shards_as_distributed_sampler(length, world):
    """Against torch's DistributedSampler (no shuffle) applied to the epoch's permutation: the same padding
    (the permutation's head repeated) and the same every-world-th interleave."""
    from torch.utils.data.distributed import DistributedSampler

    from mdistiller_ddkd.dataset.sampling import EpochSampler, epoch_order

    perm = epoch_order(length, seed=3, epoch=5).tolist()
    for rank in range(world):
        sampler = EpochSampler(length, seed=3, rank=rank, world_size=world)
        sampler.set_epoch(5)
        expected = [perm[i] for i in DistributedSampler(range(length), world, rank, shuffle=False)]
        assert [key.index for key in sampler] == expected and len(sampler) == len(expected)
        sampler.set_epoch(5, start=2)
        assert [key.index for key in sampler] == expected[2:] and len(sampler) == len(expected) - 2


def test_device_augment_resumes_mid_epoch_with_the_same_batches():
    from mdistiller_ddkd.dataset.common import CIFAR100_MEAN, CIFAR100_STD
    from mdistiller_ddkd.dataset.device_augment import DeviceAugmentLoader

    images = torch.randint(0, 256, (21, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    make = lambda: DeviceAugmentLoader(images, [0] * 21, 4, CIFAR100_MEAN, CIFAR100_STD, torch.device("cpu"),  # noqa: E731
                                       seed=2, rank=1, world_size=2)
    full = _epoch_batches(make(), 3)
    tail = _epoch_batches(make(), 3, step=1)
    assert len(full) == 3 and len(tail) == 2
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(full[1:], tail))


def test_crd_negatives_follow_the_sample_seed():
    from mdistiller_ddkd.dataset.common import WithIndex
    from mdistiller_ddkd.dataset.crd import ContrastiveDataset
    from mdistiller_ddkd.dataset.sampling import SampleKey, SeededSamples

    base = WithIndex(torch.utils.data.TensorDataset(torch.zeros(30, 1), torch.arange(30) % 3))
    data = SeededSamples(ContrastiveDataset(base, [i % 3 for i in range(30)], 3, 5, "exact"), seed=1)
    first = data[SampleKey(4, 7)][3]
    torch.manual_seed(99)
    assert torch.equal(data[SampleKey(4, 7)][3], first) and not torch.equal(data[SampleKey(5, 7)][3], first)


# ----------------------------------------------------------------------------------- lock, signals, errors
def test_a_live_holder_is_named_and_a_dead_one_is_taken_over(tmp_path):
    import subprocess
    import sys

    from mdistiller_ddkd.errors import OutputLockedError
    from tests.conftest import REPO_ROOT

    code = ("import sys, time; from mdistiller_ddkd.engine.lock import OutputLock; "
            "lock = OutputLock(sys.argv[1]).acquire(); "
            "print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=REPO_ROOT))
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputLockedError, match=f"pid {holder.pid} "):
            OutputLock(str(tmp_path)).acquire()
    finally:
        holder.kill()
        holder.wait()
    assert os.path.exists(tmp_path / ".lock")  # left behind by the killed holder: stale
    with OutputLock(str(tmp_path)) as lock:
        assert f"pid {os.getpid()} " in open(lock.path).read()
    assert not os.path.exists(tmp_path / ".lock")


def test_a_stop_signal_is_recorded_and_a_second_one_stops_at_once():
    from mdistiller_ddkd.engine.signals import ImmediateStop, handle_stop_signals, stop_requested

    with handle_stop_signals():
        assert stop_requested() is None
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop_requested() == signal.SIGTERM
        with pytest.raises(ImmediateStop) as err:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(100):  # the handler runs between bytecodes
                pass
        assert err.value.exit_code == 130
    assert stop_requested() is None and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_run_main_reports_one_line_and_debug_shows_the_traceback(capsys, monkeypatch):
    from mdistiller_ddkd.errors import DEBUG_ENV, run_main

    def fails(exc):
        def body(argv):
            raise exc
        return body

    assert run_main(fails(ValueError("first line\n  second line")), []) == 2
    assert capsys.readouterr().err == "error: first line second line\n"
    assert run_main(fails(KeyboardInterrupt()), []) == 130 and "interrupted" in capsys.readouterr().err
    assert run_main(fails(OSError(errno.ENOSPC, "No space left on device", "/x/latest")), []) == 2
    assert "(/x/latest): No space left on device" in capsys.readouterr().err
    with pytest.raises(ValueError):
        run_main(fails(ValueError("x")), ["--debug"])
    monkeypatch.setenv(DEBUG_ENV, "1")
    with pytest.raises(ValueError):
        run_main(fails(ValueError("x")), [])
    monkeypatch.delenv(DEBUG_ENV)
    with pytest.raises(ZeroDivisionError):  # a bug is never disguised as a user error
        run_main(fails(ZeroDivisionError()), [])
    code, _, err = cli(capsys, "--no-such-option")
    assert code == 2 and err.count("\n") == 1 and "unrecognized arguments" in err


def test_resume_check_sorts_keys_into_harmless_and_maths():
    from mdistiller_ddkd.engine.cfg import build_default_config
    from mdistiller_ddkd.engine.resume_check import config_changes, is_harmless, split_changes

    assert is_harmless("LOG.DIAGNOSTICS") and is_harmless("DATASET.NUM_WORKERS") and is_harmless("SOLVER.EPOCHS")
    assert not is_harmless("SOLVER.LR") and not is_harmless("EXPERIMENT.SEED") and not is_harmless("KD.TEMPERATURE")
    import yaml

    saved = load_config(None, ["SOLVER.LR", "0.1", "DATASET.NUM_WORKERS", "4"])
    saved_dict = yaml.safe_load(saved.dump())  # what config.yaml holds
    del saved_dict["LOG"]["WANDB"]  # a key the run's version did not have yet: its default is no change
    maths, harmless = split_changes(config_changes(saved_dict, build_default_config()))
    assert [str(c) for c in maths] == ["SOLVER.LR 0.1 -> 0.05"]
    assert [str(c) for c in harmless] == ["DATASET.NUM_WORKERS 4 -> 2"]
