"""The process a Slurm job runs (its batch shell ``exec``s it): train one run of a suite, and make the job
requeueable.

On start it records an attempt and refuses to go on when the run has been started ``max_requeues`` times
in a row without a new epoch (a run stuck in a failing loop is failed, not requeued forever). It starts the
training (``--resume`` when the run folder holds a checkpoint) and passes SIGTERM / SIGINT on to it — from
``--signal=B:TERM@lead`` before the time limit, a preemption, ``scontrol requeue`` or
``scancel --signal=TERM --full``. When the training stops on such a signal (exit 143 / 130) after writing
its mid-epoch checkpoint, the job requeues itself (``scontrol requeue``: Slurm requeues by itself only on
preemption or node failure) and the next start continues exactly there — unless Slurm has cancelled the job (a
plain ``scancel``): then the attempt is recorded as cancelled and the job ends. Any other exit is final.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import List, Optional

from ..errors import ExitCode, MissingInputError
from ..results_file import read_results, results_epoch
from ..signals import on_stop_signals, stopped_by_signal
from .records import SuiteRecords


def current_epoch(output_dir: str) -> int:
    """The last epoch the run folder's results.json records (0 before the first)."""
    return results_epoch(read_results(output_dir))


class _Forwarder:
    """Passes stop signals on to the training process (once each; the training checkpoints on the first)."""

    def __init__(self) -> None:
        self.child: Optional[subprocess.Popen] = None
        self.received: Optional[int] = None

    def __call__(self, signum, frame) -> None:
        self.received = signum
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)


def cancelled_in(show_job: str, restarts: int) -> bool:
    """Whether ``scontrol show job -o`` output says the job was cancelled (a plain ``scancel``): it is ending
    (COMPLETING, CANCELLED) with no more than ``restarts`` restarts — ``scontrol requeue`` and preemption also
    end it but count a restart; the ``--signal`` lead time and ``scancel --signal=TERM --full`` leave it RUNNING."""
    fields = dict(item.split("=", 1) for item in show_job.split() if "=" in item)
    return fields.get("JobState") in ("COMPLETING", "CANCELLED") and int(fields.get("Restarts") or 0) <= restarts


def job_cancelled(job_id: str) -> bool:
    """Whether Slurm has cancelled this job (``job_id``, started ``$SLURM_RESTART_COUNT`` times before)."""
    show = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True).stdout
    return cancelled_in(show, int(os.environ.get("SLURM_RESTART_COUNT") or 0))


def _training_command(job: dict) -> List[str]:
    command = list(job["command"])
    if os.path.isfile(os.path.join(job["output_dir"], "latest")):
        at = command.index("--cfg") if "--cfg" in command else len(command)
        command.insert(at, "--resume")
    return command


def run_job(suite_root: str, run_name: str) -> int:
    """Train ``run_name`` of the suite in ``suite_root`` as one job attempt; the exit code of the job."""
    records = SuiteRecords(suite_root)
    job = records.read_job(run_name)
    if job is None:
        raise MissingInputError(f"no job description for run {run_name!r} in {records.dir}: submit the suite again")
    job_id = os.environ.get("SLURM_JOB_ID")
    epoch = current_epoch(job["output_dir"])
    stalled = records.record(run_name).starts_without_progress(epoch)
    records.note(run_name, event="start", job_id=job_id, epoch=epoch, restart=os.environ.get("SLURM_RESTART_COUNT"))
    if stalled >= int(job.get("max_requeues", 3)):
        reason = f"started {stalled + 1} times without a new epoch (still epoch {epoch}); stopped as failed"
        records.note(run_name, event="end", job_id=job_id, code=ExitCode.RUNS_FAILED, epoch=epoch, requeue=False,
                     reason=reason)
        print(f"[mdistiller_ddkd] {run_name}: {reason} — see its log; fix the cause, then submit the suite again",
              flush=True)
        return ExitCode.RUNS_FAILED
    forward = _Forwarder()
    with on_stop_signals(forward):
        forward.child = subprocess.Popen(_training_command(job))
        code = forward.child.wait()
    stopped = stopped_by_signal(code) and job_id is not None
    cancelled = stopped and job_cancelled(job_id)
    requeue = stopped and not cancelled
    records.note(run_name, event="end", job_id=job_id, code=code, epoch=current_epoch(job["output_dir"]),
                 requeue=requeue, **({"cancelled": True, "reason": "cancelled (scancel)"} if cancelled else {}))
    if requeue:
        # already requeued by Slurm (preemption, scontrol requeue): this one fails harmlessly
        subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True)
    return code


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m mdistiller_ddkd.cli.suite_job SUITE_FOLDER RUN_NAME", file=sys.stderr)
        return ExitCode.USER_ERROR
    return run_job(args[0], args[1])
