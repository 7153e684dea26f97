"""The one trainer: every method, CPU / one GPU / torchrun+DDP, AMP, resumable.

A method plugs in through the distiller API only (``forward_train`` returning a dict of summable losses,
``train_batch_fields`` / ``wrap_train_set`` for the extra batch items it needs); the update is the
``SOLVER.TRAINER`` rule (``update/``) and extra work is done by hooks (``hooks/``). There are no per-method
training loops. This module holds the setup phases (adopting what ``--resume`` read among them) and the loop
with its learning-rate steps and autocast; the rest lives beside it: what the checkpoints and records hold
(``state.py``), ``--resume`` (``resume.py``), the stop protocol (``stopping.py``), accuracy bookkeeping
(``metrics.py``), the output folder (``run_folder.py``).
"""

from __future__ import annotations

import math
import os
import sys
import time
from contextlib import nullcontext
from typing import Dict, List, Optional

import torch
from torch import nn

from ..dataset import get_dataset, set_train_position
from ..distillers import get_distiller_class
from ..errors import DiskError, MissingInputError, NonFiniteLossError, OutputInUseError
from ..rng import seed_everything
from .build import build_distiller
from .cfg import AMP_CHOICES, output_dir_name
from .determinism import apply_determinism, refusing_nondeterministic_operations, run_provenance
from .distributed import Runtime, init_runtime, shutdown_runtime
from .evaluation import EpochSums, evaluate
from .events import EventLog
from .hooks import StepState, TrainerHook, build_hooks
from .resume import Restored, check_resume_config, read_latest, record_resume
from .run_folder import CONFIG, LATEST, RunFolder
from .state import RunProgress, results_record, training_state
from .stopping import stop_between_epochs, stop_inside_epoch
from .update import get_update_rule


def learning_rate(cfg, epoch: int) -> float:
    """mdistiller's step decay: ``LR * DECAY_RATE ** (number of stages with epoch > stage)`` (epoch 1-based),
    so epoch ``stage`` itself still trains at the rate before the decay."""
    passed = sum(1 for stage in cfg.SOLVER.LR_DECAY_STAGES if epoch > stage)
    return cfg.SOLVER.LR * cfg.SOLVER.LR_DECAY_RATE**passed


def experiment_dir(cfg) -> str:
    """``LOG.PREFIX/EXPERIMENT.PROJECT/<NAME or TAG>`` as mdistiller."""
    return os.path.join(cfg.LOG.PREFIX, cfg.EXPERIMENT.PROJECT, output_dir_name(cfg))


class Trainer:
    """Trains ``cfg.DISTILLER.TYPE`` and writes mdistiller's output folder.

    Setup runs in named phases (``setup_runtime``, ``setup_hooks``, ``setup_claim``, ``setup_data``,
    ``setup_distiller``, ``setup_update``, ``setup_parallel``, ``setup_output``); extra work plugs in as
    ``TrainerHook``s and the parameter update is the ``SOLVER.TRAINER`` rule.
    ``allow_changes`` (``--resume-with-changes``) resumes despite a config that changes the run's maths.
    """

    def __init__(self, cfg, resume: bool = False, runtime: Optional[Runtime] = None, show_progress: bool = True,
                 allow_changes: bool = False):
        self.cfg = cfg
        self.distiller_class = get_distiller_class(cfg.DISTILLER.TYPE)
        self.folder = RunFolder(experiment_dir(cfg))
        self.output_dir = self.folder.path
        self.allow_changes = allow_changes
        self.writer: Optional[EventLog] = None
        self.runtime: Optional[Runtime] = None
        self.progress = RunProgress()
        try:
            self.setup_runtime(runtime, show_progress)
            self.setup_hooks()
            self.setup_claim(resume)
            self.setup_data()
            self.setup_distiller()
            self.setup_update()
            self.setup_parallel()
            self.setup_output(resume)
        except BaseException:
            self.release_output()
            raise

    # ------------------------------------------------------------------ setup phases
    def setup_runtime(self, runtime: Optional[Runtime], show_progress: bool) -> None:
        """Deterministic arithmetic or not (before CUDA starts), the device and process group, the seed of
        this rank, and what the results record of them."""
        apply_determinism(self.cfg.SOLVER.DETERMINISTIC)
        self.runtime = runtime or init_runtime(self.cfg.SOLVER.DEVICE)
        self.device = self.runtime.device
        self.show_progress = show_progress and self.runtime.is_main
        self.amp_dtype = AMP_CHOICES[self.cfg.SOLVER.AMP]
        self.memory_format = torch.channels_last if self.cfg.SOLVER.CHANNELS_LAST else torch.contiguous_format
        seed_everything(self.cfg.EXPERIMENT.SEED + self.runtime.rank)
        self.provenance = run_provenance(self.cfg.SOLVER.DETERMINISTIC, self.device)

    def setup_claim(self, resume: bool) -> None:
        """Before any work: lock the output folder (rank 0), refuse to overwrite a run, and on ``--resume``
        compare the config with the run's ``config.yaml``."""
        self.resume_changes: List = []
        if not self.runtime.is_main:
            return
        if resume and not self.folder.has_run():
            raise MissingInputError(f"--resume: no checkpoint {self.folder.file(LATEST)}; start without --resume")
        self.folder.claim()
        if not resume and self.folder.has_run():
            raise OutputInUseError(f"{self.output_dir} already holds a run (latest); pass --resume to continue it, "
                                    f"or choose another EXPERIMENT.NAME / LOG.PREFIX")
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
                print("[mdistiller_ddkd] SOLVER.SYNC_BN ignored: PyTorch's SyncBatchNorm needs CUDA devices",
                      flush=True)
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
        TensorBoard log. Nothing in the folder changes before every check has passed."""
        if resume:
            restored = read_latest(self.folder, self.cfg, self.num_data, self.distiller, self.allow_changes,
                                   self.runtime)
            self.adopt(restored)
            if self.runtime.is_main:
                try:
                    record_resume(self.folder, self.cfg, restored, [*self.resume_changes, *restored.changes],
                                  self.keep_copy, self.results)
                except DiskError as err:  # repairing the folder's derived files
                    raise self.disk_error_with_state(err) from None
        elif self.runtime.is_main:
            self.folder.start(self.cfg.dump())
        if self.runtime.is_main:
            self.folder.keep()
            self.writer = EventLog(os.path.join(self.output_dir, "train.events"))

    def adopt(self, restored: Restored) -> None:
        """Continue the run ``--resume`` read: its weights, optimizer and scaler states, this rank's RNG state
        and the run's progress."""
        restored.load_into(self.distiller, self.optimizer, self.scaler)
        self.progress = restored.progress

    def setup_hooks(self) -> None:
        """The built-in and plugins' hooks this config wants; built first, before the output folder is
        touched, so a hook that cannot run (an optional extra missing) stops with nothing written."""
        self.hooks: List[TrainerHook] = build_hooks(self.cfg)

    # ------------------------------------------------------------------ helpers of the loop
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

    def autocast(self):
        """``torch.autocast`` in ``SOLVER.AMP``'s dtype, or a no-op context for full precision."""
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def keep_copy(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` keeps an ``epoch_N`` copy (``LOG.SAVE_CHECKPOINT_FREQ``)."""
        freq = self.cfg.LOG.SAVE_CHECKPOINT_FREQ
        return freq > 0 and epoch % freq == 0

    def state(self, epoch: int, partial: Optional[Dict] = None, sums: Optional[EpochSums] = None) -> Optional[Dict]:
        """The checkpoint after ``epoch`` (or inside the next one), on every rank; None except on rank 0."""
        return training_state(self.distiller, self.optimizer, self.scaler, self.progress, self.num_data,
                              self.runtime, epoch, partial, sums)

    def results(self, finished: bool) -> Dict:
        return results_record(self.cfg, self.progress, self.distiller.get_extra_parameters(), finished,
                              self.provenance)

    def _progress_bar(self, epoch: int, first: int):
        if not self.show_progress:
            return self.train_loader
        from tqdm import tqdm

        return tqdm(self.train_loader, total=self.steps_per_epoch, initial=first, desc=f"epoch {epoch}",
                    leave=False, dynamic_ncols=True, disable=None)  # None: no bar when not on a terminal

    def _non_finite(self, epoch: int, step: int, losses: Dict) -> NonFiniteLossError:
        terms = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in losses.items())
        return NonFiniteLossError(
            f"non-finite loss at epoch {epoch}, step {step + 1}: {terms}. Training stopped; "
            f"{self.progress.describe_latest(self.output_dir)}. Lower SOLVER.LR, check the teacher checkpoint and "
            f"data, or turn SOLVER.AMP off, then restart or --resume.")

    def _stop_inside_epoch(self, epoch: int, next_step: int, sums: EpochSums) -> None:
        def save_partial() -> None:
            state = self.state(self.progress.committed_epoch, partial={"epoch": epoch, "step": next_step}, sums=sums)
            if self.runtime.is_main:
                self.folder.save_partial(state)

        stop_inside_epoch(self.runtime, self.device, self.progress, epoch, next_step, self.steps_per_epoch,
                          save_partial, self.folder.file(LATEST))

    # ------------------------------------------------------------------ the loop
    def train_epoch(self, epoch: int) -> Dict[str, float]:
        lr = learning_rate(self.cfg, epoch)
        self.update_rule.set_lr(lr)
        first, sums = self.progress.epoch_start(epoch, self.device)
        set_train_position(self.train_loader, epoch, first)
        self.call_hooks("before_epoch", epoch)
        self.model.train()
        iterator = self._progress_bar(epoch, first)
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
                print(f"[mdistiller_ddkd] {self.cfg.DISTILLER.TYPE}: {self.cfg.DISTILLER.TEACHER} -> "
                      f"{self.cfg.DISTILLER.STUDENT} on {self.device} (world size {self.runtime.world_size}); "
                      f"extra parameters: {self.distiller.get_extra_parameters()}; output: {self.output_dir}",
                      flush=True)
            self.call_hooks("before_train")
            try:
                stop_between_epochs(self.runtime, self.device, self.progress, self.progress.start_epoch,
                                    self.output_dir)
                for epoch in range(self.progress.start_epoch, self.cfg.SOLVER.EPOCHS + 1):
                    self.run_epoch(epoch)
                    if epoch < self.cfg.SOLVER.EPOCHS:
                        stop_between_epochs(self.runtime, self.device, self.progress, epoch + 1, self.output_dir)
            finally:
                self.call_hooks("after_train")
                self.close_event_log(failing=sys.exc_info()[0] is not None)
        except DiskError as err:
            raise self.disk_error_with_state(err) from None
        finally:
            self.release_output()
        return self.results(finished=True)

    def run_epoch(self, epoch: int) -> None:
        """Train, validate, let hooks add columns, commit the epoch's files, tell the hooks."""
        start = time.time()
        with refusing_nondeterministic_operations():
            record = {"epoch": epoch, **self.train_epoch(epoch)}
            record.update(self.validate())
        record["seconds"] = time.time() - start
        self.call_hooks("epoch_record", epoch, record)
        self.commit_epoch(epoch, record)
        self.call_hooks("after_epoch", epoch, record)

    def commit_epoch(self, epoch: int, record: Dict) -> None:
        """``latest`` (the commit point), the files derived from it, results, worklog and TensorBoard."""
        is_best = self.progress.add_epoch(record)
        state = self.state(epoch)
        if self.runtime.is_main:
            self.folder.commit_latest(state)
        self.progress.mark_committed(epoch)
        if not self.runtime.is_main:
            return
        self.folder.write_derived(state, record["test_acc"], is_best, self.keep_copy(epoch))
        self.folder.write_records(self.results(finished=epoch == self.cfg.SOLVER.EPOCHS))
        for key, value in record.items():
            if key != "epoch" and isinstance(value, float):
                self.writer.add_scalar(key, value, epoch)
        self.writer.flush()
        print(f"[mdistiller_ddkd] epoch {epoch}/{self.cfg.SOLVER.EPOCHS} lr {record['lr']:.4g} "
              f"train_loss {record['train_loss']:.4f} train_acc {record['train_acc']:.2f} "
              f"test_acc {record['test_acc']:.2f} (top5 {record['test_acc_top5']:.2f}) "
              f"best {self.progress.best_acc:.2f} [{record['seconds']:.1f}s]", flush=True)

    # ------------------------------------------------------------------ end
    def disk_error_with_state(self, err: DiskError) -> DiskError:
        """``err`` also saying what the run folder still holds and how to continue."""
        return DiskError(err.errno, f"{err.strerror}; {self.progress.describe_latest(self.output_dir)}, and "
                         f"{self.progress.how_to_continue()}", err.filename)

    def close_event_log(self, failing: bool) -> None:
        """Close the TensorBoard log; while an error is on its way out, a failing close (the disk that caused
        it is still full) must not replace that error."""
        if self.writer is None:
            return
        try:
            self.writer.close()
        except DiskError:
            if not failing:
                raise

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
