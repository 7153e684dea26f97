"""TensorBoard event files written synchronously in the training process.

tensorboardX's ``SummaryWriter`` writes from a background thread: a full disk there prints a thread's
traceback and can hang the final flush. This writer builds the same events (``tensorboardX.summary``) and
appends them itself, in the caller's thread, inside ``fileio.disk_errors`` — a full disk is one
``DiskError``, raised where the trainer handles it. Buffered writes are flushed at every ``flush()``
(once per epoch), so a crash loses at most the current epoch's step scalars.
"""

from __future__ import annotations

import os
import time
from typing import Optional

import numpy as np
from tensorboardX.event_file_writer import EventsWriter
from tensorboardX.proto import event_pb2
from tensorboardX.summary import histogram, scalar

from ..fileio import disk_errors


class EventLog:
    """``add_scalar`` / ``add_histogram`` / ``flush`` / ``close`` as tensorboardX's ``SummaryWriter``, for
    the folder ``logdir`` (TensorBoard reads it as it reads a ``SummaryWriter``'s)."""

    def __init__(self, logdir: str) -> None:
        self.logdir = logdir
        with disk_errors(f"creating the TensorBoard file in {logdir}"):
            os.makedirs(logdir, exist_ok=True)
            self._writer: Optional[EventsWriter] = EventsWriter(os.path.join(logdir, "events"))

    def _add(self, summary, step: int) -> None:
        if self._writer is None:
            raise ValueError(f"the TensorBoard log {self.logdir} is closed")
        event = event_pb2.Event(summary=summary, wall_time=time.time(), step=int(step))
        with disk_errors(f"writing the TensorBoard file in {self.logdir}"):
            self._writer.write_event(event)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self._add(scalar(tag, float(value)), step)

    def add_histogram(self, tag: str, values, step: int, bins: str = "tensorflow") -> None:
        self._add(histogram(tag, np.asarray(values, dtype=np.float64), bins), step)

    def flush(self) -> None:
        """Write what is buffered to disk (fsync'ed)."""
        if self._writer is not None:
            with disk_errors(f"writing the TensorBoard file in {self.logdir}"):
                self._writer.flush()

    def close(self) -> None:
        """Flush and close (safe to call twice)."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            with disk_errors(f"writing the TensorBoard file in {self.logdir}"):
                writer.close()
