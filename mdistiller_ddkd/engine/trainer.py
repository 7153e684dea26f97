"""The one trainer: every method, CPU / one GPU / torchrun+DDP, AMP, resumable.

A method plugs in through the distiller API only (``forward_train`` returning a dict of summable losses,
``train_batch_layout`` / ``wrap_train_set`` for the extra batch items it needs); the update is the
``SOLVER.TRAINER`` rule and extra work is done by hooks. There are no per-method training loops.

Reliability: one process writes an output folder (its lock); each epoch commits ``latest`` first and
derives the other files from it (``run_folder.py``); ``--resume`` checks the config (``resume_check.py``),
repairs what a kill left behind and continues bit-identically on CPU — the data order and augmentation are
functions of (seed, epoch, position) (``dataset/sampling.py``) and every rank's RNG state is saved. On
SIGTERM / SIGINT (``signals.py``) the trainer finishes the step, saves a mid-epoch ``latest`` and stops.
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

from ..dataset import get_dataset, set_train_position
from ..distillers import get_distiller_class
from ..errors import CheckpointReadError, ConfigError, ResumeMismatchError, Stopped, UserError
from .build import build_distiller
from .cfg import output_dir_name
from .checkpoint import (CheckpointMismatchError, describe_state_dict_mismatch, remove_stale_temp_files, rng_state,
                         set_rng_state)
from .distributed import Runtime, all_reduce_sum, init_runtime, seed_everything, shutdown_runtime
from .hooks import StepState, TrainerHook, build_hooks
from .precision import AMP_CHOICES, autocast_context
from .resume_check import check_resume_config, describe
from .run_folder import CONFIG, LATEST, RunFolder, worklog_line  # noqa: F401 (worklog_line: public here too)
from .signals import signal_name, stop_exit_code, stop_requested
from .update import get_update_rule
from .. import diagnostics  # noqa: F401,E402 (registers the LOG.DIAGNOSTICS hook)

#: what a ``latest`` written by this trainer always holds
LATEST_KEYS = ("epoch", "model", "optimizer", "best_acc", "scaler", "rng")


class NonFiniteLossError(UserError, RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is left intact (exit code 3)."""

    exit_code = 3


def learning_rate(cfg, epoch: int) -> float:
    """mdistiller's step decay: ``LR * DECAY_RATE ** (number of stages with epoch > stage)`` (epoch 1-based)."""
    passed = sum(1 for stage in cfg.SOLVER.LR_DECAY_STAGES if epoch > stage)
    return cfg.SOLVER.LR * cfg.SOLVER.LR_DECAY_RATE**passed


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: Sequence[int] = (1, 5)) -> List[torch.Tensor]:
    """Number of samples whose target is among the top-k predictions, for each k."""
    maxk = min(max(ks), logits.shape[1])
    pred = logits.topk(maxk, dim=1).indices
    hits = pred.eq(target[:, None])
    return [hits[:, : min(k, maxk)].any(dim=1).sum() for k in ks]


def experiment_dir(cfg) -> str:
    """``LOG.PREFIX/EXPERIMENT.PROJECT/<NAME or TAG>`` as mdistiller."""
    return os.path.join(cfg.LOG.PREFIX, cfg.EXPERIMENT.PROJECT, output_dir_name(cfg))


def gather_objects(obj, runtime: Runtime) -> List:
    """``[obj of rank 0, obj of rank 1, ...]`` (``[obj]`` when not distributed)."""
    if not runtime.distributed:
        return [obj]
    out: List = [None] * runtime.world_size
    torch.distributed.all_gather_object(out, obj)
    return out


@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device, runtime: Optional[Runtime] = None,
             autocast=nullcontext, memory_format=torch.contiguous_format) -> Dict[str, float]:
    """Top-1/top-5 accuracy (%) and mean cross-entropy of ``model(image=...)`` (a distiller in eval mode
    returns the student's logits) over ``loader``; summed over ranks, so it equals a single-process
    evaluation of the same weights."""
    model.eval()
    totals = torch.zeros(4, dtype=torch.float64, device=device)  # loss sum, top1, top5, count
    for image, target in loader:
        image = image.to(device, non_blocking=True).contiguous(memory_format=memory_format)
        target = target.to(device, non_blocking=True)
        with autocast():
            logits = model(image=image)
        logits = logits.float()
        top1, top5 = topk_correct(logits, target, (1, 5))
        loss = nn.functional.cross_entropy(logits, target, reduction="sum")
        totals += torch.stack([loss.double(), top1.double(), top5.double(),
                               torch.tensor(float(target.shape[0]), dtype=torch.float64, device=device)])
    if runtime is not None:
        totals = all_reduce_sum(totals, runtime)
    count = max(float(totals[3]), 1.0)
    return {"test_acc": 100.0 * float(totals[1]) / count, "test_acc_top5": 100.0 * float(totals[2]) / count,
            "test_loss": float(totals[0]) / count}


@dataclass
class EpochSums:
    """This rank's running sums over an epoch: loss·batch, correct, count (float64) and each loss term·batch;
    saved in a mid-epoch checkpoint so a resumed epoch reports the same means."""

    totals: torch.Tensor
    terms: Dict[str, float]

    @classmethod
    def zeros(cls, device: torch.device) -> "EpochSums":
        return cls(torch.zeros(3, dtype=torch.float64, device=device), {})

    @classmethod
    def from_state(cls, state: Dict, device: torch.device) -> "EpochSums":
        return cls(state["totals"].to(device), dict(state["terms"]))

    def state(self) -> Dict:
        return {"totals": self.totals.detach().cpu(), "terms": dict(self.terms)}

    def add(self, loss: torch.Tensor, logits: torch.Tensor, target: torch.Tensor, losses: Dict) -> None:
        batch_size = target.shape[0]
        self.totals += torch.stack([
            loss.detach().double() * batch_size,
            topk_correct(logits.detach(), target, (1,))[0].double(),
            torch.tensor(float(batch_size), dtype=torch.float64, device=self.totals.device),
        ])
        for k, v in losses.items():
            self.terms[k] = self.terms.get(k, 0.0) + float(v.detach()) * batch_size

    def record(self, lr: float, runtime: Runtime) -> Dict[str, float]:
        totals = all_reduce_sum(self.totals, runtime)
        count = max(float(totals[2]), 1.0)
        return {"lr": lr, "train_loss": float(totals[0]) / count, "train_acc": 100.0 * float(totals[1]) / count,
                **{f"train_{k}": v / count for k, v in self.terms.items()}}


class Trainer:
    """Trains ``cfg.DISTILLER.TYPE`` and writes mdistiller's output folder.

    Setup runs in named phases (``setup_runtime``, ``setup_claim``, ``setup_data``, ``setup_distiller``,
    ``setup_update``, ``setup_parallel``, ``setup_output``); extra work plugs in as ``TrainerHook``s
    (``engine/hooks.py``) and the parameter update is the ``SOLVER.TRAINER`` rule (``engine/update.py``).
    ``allow_changes`` (``--resume-with-changes``) resumes despite a config that changes the run's maths.
    """

    def __init__(self, cfg, resume: bool = False, runtime: Optional[Runtime] = None, show_progress: bool = True,
                 allow_changes: bool = False):
        self.cfg = cfg
        self.distiller_class = get_distiller_class(cfg.DISTILLER.TYPE)
        self.folder = RunFolder(experiment_dir(cfg))
        self.output_dir = self.folder.path
        self.allow_changes = allow_changes
        self.writer = None
        self.runtime: Optional[Runtime] = None
        try:
            self.setup_runtime(runtime, show_progress)
            self.setup_claim(resume)
            self.setup_data()
            self.setup_distiller()
            self.setup_update()
            self.setup_parallel()
            self.setup_output(resume)
            self.hooks: List[TrainerHook] = build_hooks(cfg)
        except BaseException:
            self.release_output()
            raise

    # ------------------------------------------------------------------ setup phases
    def setup_runtime(self, runtime: Optional[Runtime], show_progress: bool) -> None:
        """The device and process group, and the seed of this rank."""
        self.runtime = runtime or init_runtime(self.cfg.SOLVER.DEVICE)
        self.device = self.runtime.device
        self.show_progress = show_progress and self.runtime.is_main
        self.amp_dtype = AMP_CHOICES[self.cfg.SOLVER.AMP]
        self.memory_format = torch.channels_last if self.cfg.SOLVER.CHANNELS_LAST else torch.contiguous_format
        seed_everything(self.cfg.EXPERIMENT.SEED + self.runtime.rank)

    def setup_claim(self, resume: bool) -> None:
        """Before any work: lock the output folder (rank 0), refuse to overwrite a run, and on ``--resume``
        compare the config with the run's ``config.yaml``."""
        self.resume_changes = []
        if not self.runtime.is_main:
            return
        latest = self.folder.file(LATEST)
        if resume and not self.folder.has_run():
            raise FileNotFoundError(f"--resume: no checkpoint {latest}; start without --resume")
        self.folder.claim()
        if not resume and self.folder.has_run():
            raise FileExistsError(f"{self.output_dir} already holds a run (latest); pass --resume to continue it, or "
                                  f"choose another EXPERIMENT.NAME / LOG.PREFIX")
        if resume:
            self.resume_changes = check_resume_config(self.folder.file(CONFIG), self.cfg, self.allow_changes)

    def setup_data(self) -> None:
        """Train and validation loaders (with the method's train-set wrapper, if it has one)."""
        self.train_loader, self.val_loader, self.num_data, self.num_classes = get_dataset(
            self.cfg, self.device, wrap_train_set=self.distiller_class.wrap_train_set)
        if hasattr(self.train_loader, "channels_last"):
            self.train_loader.channels_last = self.cfg.SOLVER.CHANNELS_LAST
        self.steps_per_epoch = len(self.train_loader)

    def setup_distiller(self) -> None:
        """Student, teacher and the method's modules on the device (SyncBN, channels-last, compile)."""
        distiller, self.student = build_distiller(self.cfg, self.num_data, self.num_classes)
        if self.cfg.SOLVER.SYNC_BN and self.runtime.distributed:
            if self.device.type == "cuda":
                distiller.student = nn.SyncBatchNorm.convert_sync_batchnorm(distiller.student)
                self.student = distiller.student
            elif self.runtime.is_main:
                print("[mdistiller_ddkd] SOLVER.SYNC_BN ignored: PyTorch's SyncBatchNorm needs CUDA devices", flush=True)
        self.distiller = distiller.to(self.device, memory_format=self.memory_format)
        if self.cfg.SOLVER.COMPILE:
            self.distiller.compile()

    def setup_update(self) -> None:
        """The ``SOLVER.TRAINER`` update rule, which owns the optimizer and the gradient scaler."""
        rule = get_update_rule(self.cfg.SOLVER.TRAINER)
        self.update_rule = rule(self.cfg, self.distiller.get_learnable_parameters(), self.device, self.amp_dtype)
        self.optimizer = self.update_rule.optimizer
        self.scaler = self.update_rule.scaler

    def setup_parallel(self) -> None:
        """``self.model``: the distiller, wrapped in DistributedDataParallel under torchrun."""
        self.model: nn.Module = self.distiller
        if self.runtime.distributed:
            ddp_kwargs = {"device_ids": [self.device.index]} if self.device.type == "cuda" else {}
            self.model = nn.parallel.DistributedDataParallel(self.distiller, **ddp_kwargs)

    def setup_output(self, resume: bool) -> None:
        """The state of ``latest`` (resume; the folder is repaired) or a fresh config.yaml; then the
        TensorBoard writer. Nothing in the folder changes before every check has passed."""
        self.start_epoch, self.start_step = 1, 0
        self.best_acc = self.best_acc_top5 = -1.0
        self.history: List[Dict] = []
        self.committed_epoch = 0
        self.latest_holds: Optional[str] = None  # what `latest` holds ("epoch 3", "epoch 4, step 2"), if any
        self._resume_sums: Optional[Dict] = None
        if resume:
            self._resume()
        elif self.runtime.is_main:
            remove_stale_temp_files(self.output_dir)
            self.folder.write_text_if_changed(CONFIG, self.cfg.dump())
        if self.runtime.is_main:
            from tensorboardX import SummaryWriter

            self.folder.keep()
            self.writer = SummaryWriter(os.path.join(self.output_dir, "train.events"))

    # ------------------------------------------------------------------ hooks
    def batch_to_kwargs(self, batch, epoch: int) -> Dict:
        """Name the batch items (the method's ``train_batch_fields``) and move them to the device; the
        distiller gets them as keyword arguments."""
        kwargs = {}
        for name, value in zip(self.distiller_class.train_batch_fields(), batch):
            if isinstance(value, torch.Tensor):
                value = value.to(self.device, non_blocking=True)
                if name == "image":
                    value = value.contiguous(memory_format=self.memory_format)
            kwargs[name] = value
        kwargs["epoch"] = epoch
        return kwargs

    def call_hooks(self, point: str, *args) -> None:
        for hook in self.hooks:
            getattr(hook, point)(self, *args)

    def after_epoch(self, epoch: int, record: Dict) -> None:
        """Called on every rank after validation and checkpointing."""
        self.call_hooks("after_epoch", epoch, record)

    # ------------------------------------------------------------------ loop
    def autocast(self):
        return autocast_context(self.device, self.amp_dtype)

    def _epoch_start(self, epoch: int):
        """``(first step, running sums)``: from a mid-epoch checkpoint when resuming inside ``epoch``."""
        if self._resume_sums is not None and epoch == self.start_epoch:
            sums = EpochSums.from_state(self._resume_sums, self.device)
            self._resume_sums = None
            return self.start_step, sums
        return 0, EpochSums.zeros(self.device)

    def _progress(self, epoch: int, first: int):
        if not self.show_progress:
            return self.train_loader
        from tqdm import tqdm

        return tqdm(self.train_loader, total=self.steps_per_epoch, initial=first, desc=f"epoch {epoch}",
                    leave=False, dynamic_ncols=True, disable=None)  # None: no bar when not on a terminal

    def train_epoch(self, epoch: int) -> Dict[str, float]:
        lr = learning_rate(self.cfg, epoch)
        self.update_rule.set_lr(lr)
        first, sums = self._epoch_start(epoch)
        set_train_position(self.train_loader, epoch, first)
        self.call_hooks("before_epoch", epoch)
        self.model.train()
        iterator = self._progress(epoch, first)
        for step, batch in enumerate(iterator, start=first):
            kwargs = self.batch_to_kwargs(batch, epoch)
            with self.autocast():
                logits, losses = self.model(**kwargs)
            loss = sum(losses.values())
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                raise self._non_finite(epoch, step, losses)
            self.update_rule.step(losses)
            sums.add(loss, logits, kwargs["target"], losses)
            global_step = (epoch - 1) * self.steps_per_epoch + step
            if self.hooks:
                self.call_hooks("after_step", StepState(epoch, step, global_step, kwargs, logits, losses))
            if self.writer is not None and global_step % max(1, self.cfg.LOG.TENSORBOARD_FREQ) == 0:
                for k, v in losses.items():
                    self.writer.add_scalar(f"train_step/{k}", float(v.detach()), global_step)
            if hasattr(iterator, "set_postfix"):
                iterator.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.3g}")
            self._stop_inside_epoch(epoch, step + 1, sums)
        return sums.record(lr, self.runtime)

    def validate(self) -> Dict[str, float]:
        """Top-1/top-5 accuracy (%) and mean cross-entropy of the student on the validation set.

        Under DDP every rank first takes rank 0's buffers (BatchNorm statistics drift apart per rank in the
        last steps), so all ranks evaluate exactly the weights rank 0 saves.
        """
        if self.runtime.distributed:
            for buffer in self.distiller.buffers():
                torch.distributed.broadcast(buffer, src=0)
        return evaluate(self.distiller, self.val_loader, self.device, self.runtime, self.autocast,
                        self.memory_format)

    def fit(self) -> Dict:
        """Train from where the run stands to ``SOLVER.EPOCHS``; returns the results dict (also in
        results.json). The output folder's lock is released at the end, whatever happens."""
        try:
            if self.runtime.is_main:
                extra = self.distiller.get_extra_parameters()
                print(f"[mdistiller_ddkd] {self.cfg.DISTILLER.TYPE}: {self.cfg.DISTILLER.TEACHER} -> "
                      f"{self.cfg.DISTILLER.STUDENT} on {self.device} (world size {self.runtime.world_size}); "
                      f"extra parameters: {extra}; output: {self.output_dir}", flush=True)
            self.call_hooks("before_train")
            try:
                self._stop_between_epochs(self.start_epoch)
                for epoch in range(self.start_epoch, self.cfg.SOLVER.EPOCHS + 1):
                    self._run_epoch(epoch)
                    if epoch < self.cfg.SOLVER.EPOCHS:
                        self._stop_between_epochs(epoch + 1)
            finally:
                self.call_hooks("after_train")
                if self.writer is not None:
                    self.writer.close()
        finally:
            self.release_output()
        return self.results(finished=True)

    def _run_epoch(self, epoch: int) -> None:
        start = time.time()
        record = {"epoch": epoch, **self.train_epoch(epoch)}
        record.update(self.validate())
        record["seconds"] = time.time() - start
        self.call_hooks("epoch_record", epoch, record)
        self._end_of_epoch(epoch, record)
        self.after_epoch(epoch, record)

    # ------------------------------------------------------------------ stopping
    def _latest_description(self) -> str:
        if self.latest_holds is None:
            return "no checkpoint has been written yet (the first epoch did not finish)"
        return f"the last good checkpoint ({self.latest_holds}) in {self.output_dir} is intact"

    def _how_to_continue(self) -> str:
        return "--resume continues from it" if self.latest_holds else "start the run again"

    def _non_finite(self, epoch: int, step: int, losses: Dict) -> NonFiniteLossError:
        terms = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in losses.items())
        return NonFiniteLossError(
            f"non-finite loss at epoch {epoch}, step {step + 1}: {terms}. Training stopped; "
            f"{self._latest_description()}. Lower SOLVER.LR, check the teacher checkpoint and data, or turn "
            f"SOLVER.AMP off, then restart or --resume.")

    def _stop_signal(self) -> Optional[int]:
        """The stop signal received by any rank (all ranks agree, so they stop at the same step)."""
        signum = stop_requested() or 0
        if self.runtime.distributed:
            flag = torch.tensor([signum], device=self.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            signum = int(flag.item())
        return signum or None

    def _stop_inside_epoch(self, epoch: int, next_step: int, sums: EpochSums) -> None:
        """After a step: on a stop request, save a mid-epoch ``latest`` and stop (the epoch's last step
        is followed by validation and the commit instead, and the stop comes right after)."""
        if next_step >= self.steps_per_epoch:
            return
        signum = self._stop_signal()
        if signum is None:
            return
        state = self._state(self.committed_epoch, partial={"epoch": epoch, "step": next_step}, sums=sums)
        if self.runtime.is_main:
            self.folder.save_partial(state)
        self.latest_holds = f"epoch {self.committed_epoch}, then epoch {epoch} up to step {next_step}"
        raise Stopped(f"stopped by {signal_name(signum)} in epoch {epoch} after step {next_step} of "
                      f"{self.steps_per_epoch}: {self.folder.file(LATEST)} holds this point; --resume continues "
                      f"exactly from it (exit code {stop_exit_code(signum)})", stop_exit_code(signum))

    def _stop_between_epochs(self, next_epoch: int) -> None:
        signum = self._stop_signal()
        if signum is not None:
            raise Stopped(f"stopped by {signal_name(signum)} before epoch {next_epoch}: "
                          f"{self._latest_description()}; {self._how_to_continue()} (exit code "
                          f"{stop_exit_code(signum)})", stop_exit_code(signum))

    # ------------------------------------------------------------------ bookkeeping
    def results(self, finished: bool) -> Dict:
        last = self.history[-1] if self.history else {}
        cfg = self.cfg
        return {
            "method": cfg.DISTILLER.TYPE, "teacher": cfg.DISTILLER.TEACHER, "student": cfg.DISTILLER.STUDENT,
            "dataset": cfg.DATASET.TYPE, "seed": cfg.EXPERIMENT.SEED,
            "epoch": last.get("epoch", 0), "epochs": cfg.SOLVER.EPOCHS, "finished": finished,
            "best_acc": self.best_acc, "best_acc_top5": self.best_acc_top5,
            "last_acc": last.get("test_acc"), "last_acc_top5": last.get("test_acc_top5"),
            "extra_parameters": self.distiller.get_extra_parameters(),
            "history": self.history,
        }

    def _state(self, epoch: int, partial: Optional[Dict] = None, sums: Optional[EpochSums] = None) -> Optional[Dict]:
        """The checkpoint of the run after ``epoch`` (or inside the next one: ``partial``), with every rank's
        RNG state (and running sums); called on every rank, None except on rank 0."""
        mine = {"rng": rng_state(), **({"sums": sums.state()} if sums is not None else {})}
        rank_states = gather_objects(mine, self.runtime)
        if not self.runtime.is_main:
            return None
        state = {
            "epoch": epoch,
            "model": self.distiller.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "best_acc": self.best_acc,
            "best_acc_top5": self.best_acc_top5,
            "scaler": self.scaler.state_dict(),
            "rng": rank_states[0]["rng"],
            "rank_states": rank_states,
            "history": json.dumps(self.history),
            "num_data": self.num_data,
        }
        if partial is not None:
            state["partial"] = partial
        return state

    def _keep_copy(self, epoch: int) -> bool:
        freq = self.cfg.LOG.SAVE_CHECKPOINT_FREQ
        return freq > 0 and epoch % freq == 0

    def _end_of_epoch(self, epoch: int, record: Dict) -> None:
        """Commit the epoch: ``latest`` (the commit point), the files derived from it, results and worklog."""
        is_best = record["test_acc"] > self.best_acc
        if is_best:
            self.best_acc, self.best_acc_top5 = record["test_acc"], record["test_acc_top5"]
        self.history.append(record)
        state = self._state(epoch)
        self.committed_epoch, self.start_step, self.latest_holds = epoch, 0, f"epoch {epoch}"
        if not self.runtime.is_main:
            return
        self.folder.commit_epoch(state, record["test_acc"], is_best, self._keep_copy(epoch))
        self.folder.write_records(self.results(finished=epoch == self.cfg.SOLVER.EPOCHS))
        for key, value in record.items():
            if key != "epoch" and isinstance(value, float):
                self.writer.add_scalar(key, value, epoch)
        self.writer.flush()
        print(f"[mdistiller_ddkd] epoch {epoch}/{self.cfg.SOLVER.EPOCHS} lr {record['lr']:.4g} "
              f"train_loss {record['train_loss']:.4f} train_acc {record['train_acc']:.2f} "
              f"test_acc {record['test_acc']:.2f} (top5 {record['test_acc_top5']:.2f}) best {self.best_acc:.2f} "
              f"[{record['seconds']:.1f}s]", flush=True)

    # ------------------------------------------------------------------ resume
    def _check_latest(self, state) -> None:
        """Refuse a ``latest`` that is not a trainer checkpoint, or that another run setup cannot continue."""
        path = self.folder.file(LATEST)
        missing = [k for k in LATEST_KEYS if not isinstance(state, dict) or k not in state]
        if not missing and not (isinstance(state["epoch"], int) and isinstance(state["model"], dict)
                                and all(torch.is_tensor(v) for v in state["model"].values())):
            missing = ["an integer epoch and a state dict of tensors"]
        if missing:
            raise CheckpointReadError(f"{path} lacks {', '.join(missing)}: it is not a checkpoint written by "
                                      f"ddkd-train; restore the run's own latest (or copy one of its epoch_N over it)")
        if state["epoch"] > self.cfg.SOLVER.EPOCHS:
            raise ConfigError(f"SOLVER.EPOCHS {self.cfg.SOLVER.EPOCHS} is below the {state['epoch']} epochs {path} "
                              f"already holds; pass SOLVER.EPOCHS {state['epoch']} or more")
        saved = state.get("num_data")
        if saved is not None and saved != self.num_data and not self.allow_changes:
            raise ResumeMismatchError(f"--resume: the run trained on {saved} images, the data now has "
                                      f"{self.num_data} (DATASET.ROOT or the dataset changed); restore the data, or "
                                      f"pass --resume-with-changes")
        problems = describe_state_dict_mismatch(self.distiller, state["model"])
        if problems:
            raise CheckpointMismatchError(
                f"{path} does not fit {self.cfg.DISTILLER.TYPE} ({self.cfg.DISTILLER.TEACHER} -> "
                f"{self.cfg.DISTILLER.STUDENT}): {'; '.join(problems)} — resume with the run's own config")

    def _load_state(self, state: Dict) -> None:
        self.distiller.load_state_dict(state["model"])
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scaler.load_state_dict(state["scaler"])
        except (ValueError, KeyError, RuntimeError) as err:
            raise CheckpointMismatchError(f"the optimizer state in {self.folder.file(LATEST)} does not fit this "
                                          f"config ({err}) — resume with the run's own config") from None
        self.best_acc = state["best_acc"]
        self.best_acc_top5 = state.get("best_acc_top5", -1.0)
        self.history = json.loads(state.get("history", "[]"))
        self.committed_epoch = state["epoch"]
        partial = state.get("partial")
        self.start_epoch = partial["epoch"] if partial else state["epoch"] + 1
        self.start_step = partial["step"] if partial else 0
        self.latest_holds = f"epoch {state['epoch']}" + (f", then epoch {partial['epoch']} up to step "
                                                          f"{partial['step']}" if partial else "")
        self._restore_rank_state(state)

    def _restore_rank_state(self, state: Dict) -> None:
        """This rank's RNG state (and mid-epoch sums); a different world size cannot continue exactly."""
        ranks = state.get("rank_states")
        if ranks and len(ranks) == self.runtime.world_size:
            mine = ranks[self.runtime.rank]
        elif self.runtime.world_size == 1 and not ranks:
            mine = {"rng": state["rng"]}  # a latest written before rank states were saved
        else:
            mine = {}
            seed_everything(self.cfg.EXPERIMENT.SEED + self.runtime.rank + 1000 * state["epoch"])
            self.resume_changes.append(f"world size {len(ranks or [0])} -> {self.runtime.world_size} (not exact)")
        if "rng" in mine:
            set_rng_state(mine["rng"])
        self._resume_sums = mine.get("sums") if state.get("partial") else None
        if state.get("partial") and self._resume_sums is None:
            self.start_epoch, self.start_step = state["epoch"] + 1, 0  # redo the interrupted epoch whole

    def _resume(self) -> None:
        state = self.folder.load_latest()
        self._check_latest(state)
        try:
            self._load_state(state)
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as err:
            if isinstance(err, UserError):
                raise
            raise CheckpointReadError(f"{self.folder.file(LATEST)} is damaged ({type(err).__name__}: {err}); restore "
                                      f"it, or copy one of the run's epoch_N over it") from None
        if not self.runtime.is_main:
            return
        done = self.folder.repair(state, self._keep_copy)
        finished = not state.get("partial") and state["epoch"] >= self.cfg.SOLVER.EPOCHS
        self.folder.write_records(self.results(finished=finished))
        where = (f"epoch {state['partial']['epoch']} after step {self.start_step}" if state.get("partial")
                 else f"after epoch {state['epoch']}")
        if self.resume_changes:
            self.folder.note(f"resume {where}: changed {describe(map(str, self.resume_changes))}")
        self.folder.write_text_if_changed(CONFIG, self.cfg.dump())  # what the next --resume compares with
        if done:
            self.folder.note(f"resume {where}: {', '.join(done)}")
        print(f"[mdistiller_ddkd] resumed from {self.folder.file(LATEST)} ({where}, best {self.best_acc:.2f})"
              + (f"; changed {describe(map(str, self.resume_changes))}" if self.resume_changes else ""), flush=True)

    # ------------------------------------------------------------------ end
    def release_output(self) -> None:
        """Release the output folder's lock (safe to call more than once)."""
        if self.runtime is not None and self.runtime.is_main:
            self.folder.release()

    def close(self) -> None:
        self.release_output()
        if self.runtime is not None:
            shutdown_runtime(self.runtime)


def train(cfg, resume: bool = False, allow_changes: bool = False) -> Dict:
    """Train ``cfg`` to the end (or continue with ``resume``); the results dict."""
    trainer = Trainer(cfg, resume=resume, allow_changes=allow_changes)
    try:
        return trainer.fit()
    finally:
        trainer.close()
