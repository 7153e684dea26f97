"""The one trainer: every method, CPU / one GPU / torchrun+DDP, AMP, resumable.

A method plugs in through the distiller API only (``forward_train`` returning a dict of summable losses,
``train_batch_layout`` / ``wrap_train_set`` for the extra batch items it needs); the update is the
``SOLVER.TRAINER`` rule and extra work is done by hooks. There are no per-method training loops.
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import nullcontext
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

from ..dataset import get_dataset
from ..distillers import Distiller, get_distiller_class
from .build import build_distiller
from .cfg import output_dir_name
from .checkpoint import load_checkpoint, rng_state, save_checkpoint_atomic, set_rng_state
from .distributed import Runtime, all_reduce_sum, init_runtime, seed_everything, shutdown_runtime
from .hooks import StepState, TrainerHook, build_hooks
from .precision import AMP_CHOICES, autocast_context
from .update import get_update_rule


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is left intact."""


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


def worklog_line(record: Dict) -> str:
    """One epoch of worklog.txt: ``key: value`` pairs separated by tabs (as mdistiller)."""
    return "\t".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in record.items())


def _overridden_wrapper(distiller_class):
    """The method's ``wrap_train_set`` when it wraps the train set, else None."""
    probe = getattr(distiller_class.wrap_train_set, "__func__", None)
    return None if probe is Distiller.wrap_train_set.__func__ else distiller_class.wrap_train_set


def experiment_dir(cfg) -> str:
    """``LOG.PREFIX/EXPERIMENT.PROJECT/<NAME or TAG>`` as mdistiller."""
    return os.path.join(cfg.LOG.PREFIX, cfg.EXPERIMENT.PROJECT, output_dir_name(cfg))


def _write_json_atomic(obj, path: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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


class Trainer:
    """Trains ``cfg.DISTILLER.TYPE`` and writes mdistiller's output folder.

    Setup runs in named phases (``setup_runtime``, ``setup_data``, ``setup_distiller``, ``setup_update``,
    ``setup_parallel``, ``setup_output``); extra work plugs in as ``TrainerHook``s (``engine/hooks.py``)
    and the parameter update is the ``SOLVER.TRAINER`` rule (``engine/update.py``).
    """

    def __init__(self, cfg, resume: bool = False, runtime: Optional[Runtime] = None, show_progress: bool = True):
        self.cfg = cfg
        self.distiller_class = get_distiller_class(cfg.DISTILLER.TYPE)
        self.setup_runtime(runtime, show_progress)
        self.setup_data()
        self.setup_distiller()
        self.setup_update()
        self.setup_parallel()
        self.setup_output(resume)
        self.hooks: List[TrainerHook] = build_hooks(cfg)

    # ------------------------------------------------------------------ setup phases
    def setup_runtime(self, runtime: Optional[Runtime], show_progress: bool) -> None:
        """The device and process group, and the seed of this rank."""
        self.runtime = runtime or init_runtime(self.cfg.SOLVER.DEVICE)
        self.device = self.runtime.device
        self.show_progress = show_progress and self.runtime.is_main
        self.amp_dtype = AMP_CHOICES[self.cfg.SOLVER.AMP]
        self.memory_format = torch.channels_last if self.cfg.SOLVER.CHANNELS_LAST else torch.contiguous_format
        seed_everything(self.cfg.EXPERIMENT.SEED + self.runtime.rank)

    def setup_data(self) -> None:
        """Train and validation loaders (with the method's train-set wrapper, if it has one)."""
        self.train_loader, self.val_loader, self.num_data, self.num_classes = get_dataset(
            self.cfg, self.device, wrap_train_set=_overridden_wrapper(self.distiller_class))
        if hasattr(self.train_loader, "channels_last"):
            self.train_loader.channels_last = self.cfg.SOLVER.CHANNELS_LAST

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
        """The output folder, its TensorBoard writer and config.yaml; or the state of ``latest`` (resume)."""
        self.output_dir = experiment_dir(self.cfg)
        self.start_epoch = 1
        self.best_acc = -1.0
        self.best_acc_top5 = -1.0
        self.history: List[Dict] = []
        self.writer = None
        if self.runtime.is_main:
            os.makedirs(self.output_dir, exist_ok=True)
            if not resume and os.path.exists(os.path.join(self.output_dir, "latest")):
                raise FileExistsError(
                    f"{self.output_dir} already holds a run (latest); pass --resume to continue it, or choose "
                    f"another EXPERIMENT.NAME / LOG.PREFIX"
                )
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(os.path.join(self.output_dir, "train.events"))
        if resume:
            self._resume()
        elif self.runtime.is_main:
            with open(os.path.join(self.output_dir, "config.yaml"), "w") as f:
                f.write(self.cfg.dump())

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

    def _set_loader_epoch(self, epoch: int) -> None:
        loader = self.train_loader
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        elif getattr(loader, "sampler", None) is not None and hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        if getattr(loader, "generator", None) is not None:
            loader.generator.manual_seed(self.cfg.EXPERIMENT.SEED * 100003 + epoch)

    def train_epoch(self, epoch: int) -> Dict[str, float]:
        lr = learning_rate(self.cfg, epoch)
        self.update_rule.set_lr(lr)
        self._set_loader_epoch(epoch)
        self.call_hooks("before_epoch", epoch)
        self.model.train()
        totals = torch.zeros(3, dtype=torch.float64, device=self.device)  # loss sum, correct, count
        term_sums: Dict[str, float] = {}
        iterator = self.train_loader
        if self.show_progress:
            from tqdm import tqdm

            iterator = tqdm(iterator, total=len(self.train_loader), desc=f"epoch {epoch}", leave=False,
                            dynamic_ncols=True, disable=None)  # None: no bar when not on a terminal
        steps_per_epoch = len(self.train_loader)
        for step, batch in enumerate(iterator):
            kwargs = self.batch_to_kwargs(batch, epoch)
            with self.autocast():
                logits, losses = self.model(**kwargs)
            loss = sum(losses.values())
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                terms = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in losses.items())
                last = self.start_epoch - 1 if not self.history else self.history[-1]["epoch"]
                raise NonFiniteLossError(
                    f"non-finite loss at epoch {epoch}, step {step + 1}: {terms}. Training stopped; the last good "
                    f"checkpoint (epoch {last}) in {self.output_dir} is intact. Lower SOLVER.LR, check the "
                    f"teacher checkpoint and data, or turn SOLVER.AMP off, then restart or --resume."
                )
            self.update_rule.step(losses)

            target = kwargs["target"]
            batch_size = target.shape[0]
            totals += torch.stack([
                loss.detach().double() * batch_size,
                topk_correct(logits.detach(), target, (1,))[0].double(),
                torch.tensor(float(batch_size), dtype=torch.float64, device=self.device),
            ])
            for k, v in losses.items():
                term_sums[k] = term_sums.get(k, 0.0) + float(v.detach()) * batch_size
            global_step = (epoch - 1) * steps_per_epoch + step
            if self.hooks:
                self.call_hooks("after_step", StepState(epoch, step, global_step, kwargs, logits, losses))
            if self.writer is not None and global_step % max(1, self.cfg.LOG.TENSORBOARD_FREQ) == 0:
                for k, v in losses.items():
                    self.writer.add_scalar(f"train_step/{k}", float(v.detach()), global_step)
            if self.show_progress:
                iterator.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.3g}")
        totals = all_reduce_sum(totals, self.runtime)
        count = max(float(totals[2]), 1.0)
        return {"lr": lr, "train_loss": float(totals[0]) / count, "train_acc": 100.0 * float(totals[1]) / count,
                **{f"train_{k}": v / count for k, v in term_sums.items()}}

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
        """Train from ``start_epoch`` to ``SOLVER.EPOCHS``; returns the results dict (also in results.json)."""
        if self.runtime.is_main:
            extra = self.distiller.get_extra_parameters()
            print(f"[mdistiller_ddkd] {self.cfg.DISTILLER.TYPE}: {self.cfg.DISTILLER.TEACHER} -> "
                  f"{self.cfg.DISTILLER.STUDENT} on {self.device} (world size {self.runtime.world_size}); "
                  f"extra parameters: {extra}; output: {self.output_dir}", flush=True)
        self.call_hooks("before_train")
        try:
            for epoch in range(self.start_epoch, self.cfg.SOLVER.EPOCHS + 1):
                start = time.time()
                record = {"epoch": epoch, **self.train_epoch(epoch)}
                record.update(self.validate())
                record["seconds"] = time.time() - start
                self.call_hooks("epoch_record", epoch, record)
                self._end_of_epoch(epoch, record)
                self.after_epoch(epoch, record)
        finally:
            self.call_hooks("after_train")
            if self.writer is not None:
                self.writer.close()
        return self.results(finished=True)

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

    def _state(self, epoch: int) -> Dict:
        return {
            "epoch": epoch,
            "model": self.distiller.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "best_acc": self.best_acc,
            "best_acc_top5": self.best_acc_top5,
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
            "history": json.dumps(self.history),
        }

    def _end_of_epoch(self, epoch: int, record: Dict) -> None:
        is_best = record["test_acc"] > self.best_acc
        if is_best:
            self.best_acc, self.best_acc_top5 = record["test_acc"], record["test_acc_top5"]
        self.history.append(record)
        if not self.runtime.is_main:
            return
        out = self.output_dir
        state = self._state(epoch)
        student_state = {"model": self.student.state_dict(), "epoch": epoch, "test_acc": record["test_acc"]}
        # order matters for crash safety: the student files and results never point past `latest`
        save_checkpoint_atomic(student_state, os.path.join(out, "student_latest"))
        if is_best:
            save_checkpoint_atomic(state, os.path.join(out, "best"))
            save_checkpoint_atomic(student_state, os.path.join(out, "student_best"))
        if self.cfg.LOG.SAVE_CHECKPOINT_FREQ > 0 and epoch % self.cfg.LOG.SAVE_CHECKPOINT_FREQ == 0:
            save_checkpoint_atomic(state, os.path.join(out, f"epoch_{epoch}"))
        save_checkpoint_atomic(state, os.path.join(out, "latest"))
        finished = epoch == self.cfg.SOLVER.EPOCHS
        _write_json_atomic(self.results(finished=finished), os.path.join(out, "results.json"))
        with open(os.path.join(out, "worklog.txt"), "a") as f:
            f.write(worklog_line(record) + "\n" + "-" * 25 + "\n")
            if finished:
                f.write(f"best_acc\t{self.best_acc:.4f}\n")
        for key, value in record.items():
            if key != "epoch" and isinstance(value, float):
                self.writer.add_scalar(key, value, epoch)
        self.writer.flush()
        print(f"[mdistiller_ddkd] epoch {epoch}/{self.cfg.SOLVER.EPOCHS} lr {record['lr']:.4g} "
              f"train_loss {record['train_loss']:.4f} train_acc {record['train_acc']:.2f} "
              f"test_acc {record['test_acc']:.2f} (top5 {record['test_acc_top5']:.2f}) best {self.best_acc:.2f} "
              f"[{record['seconds']:.1f}s]", flush=True)

    def _resume(self) -> None:
        path = os.path.join(self.output_dir, "latest")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"--resume: no checkpoint {path}; start without --resume")
        state = load_checkpoint(path, map_location="cpu")
        self.distiller.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.best_acc = state["best_acc"]
        self.best_acc_top5 = state.get("best_acc_top5", -1.0)
        self.history = json.loads(state.get("history", "[]"))
        self.start_epoch = state["epoch"] + 1
        if self.runtime.world_size == 1:
            set_rng_state(state["rng"])
        else:  # each rank continues from its own seed stream, offset by the epoch
            seed_everything(self.cfg.EXPERIMENT.SEED + self.runtime.rank + 1000 * state["epoch"])
        if self.runtime.is_main:
            print(f"[mdistiller_ddkd] resumed from {path} (epoch {state['epoch']}, best {self.best_acc:.2f})",
                  flush=True)

    def close(self) -> None:
        shutdown_runtime(self.runtime)


def train(cfg, resume: bool = False) -> Dict:
    """Train ``cfg`` to the end (or continue with ``resume``); the results dict."""
    trainer = Trainer(cfg, resume=resume)
    try:
        return trainer.fit()
    finally:
        trainer.close()
