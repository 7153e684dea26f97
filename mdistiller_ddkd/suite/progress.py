"""Progress lines of a suite: one when a run is skipped, started, finished or fails, plus one per epoch."""

from __future__ import annotations

import sys
import time
from typing import Dict, List, Optional, TextIO


def format_seconds(seconds: float) -> str:
    """``42s``, ``3m 05s``, ``2h 01m``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {(seconds % 3600) // 60:02d}m"


def _acc(results: Optional[dict]) -> str:
    if not results:
        return ""
    best, last = results.get("best_acc"), results.get("last_acc")
    parts = []
    if isinstance(best, (int, float)) and best >= 0:
        parts.append(f"best {best:.2f}%")
    if isinstance(last, (int, float)):
        parts.append(f"last {last:.2f}%")
    return ", ".join(parts)


class Progress:
    """Prints ``[i/n] state  label  details`` lines (flushed, so they interleave well with logs)."""

    def __init__(self, total: int, stream: TextIO = sys.stdout) -> None:
        self.total = total
        self.stream = stream
        self.width = len(str(total))

    def _line(self, i: int, state: str, label: str, details: str = "") -> None:
        stamp = time.strftime("%H:%M:%S")
        text = f"{stamp} [{i:>{self.width}}/{self.total}] {state:<8} {label}"
        if details:
            text += f"  {details}"
        print(text, file=self.stream, flush=True)

    def skipped(self, i: int, run, results: Optional[dict]) -> None:
        self._line(i, "skipped", run.label(), f"(finished: {_acc(results)})")

    def started(self, i: int, run, gpu: Optional[str], resumed: Optional[dict]) -> None:
        where = f"gpu {gpu}" if gpu is not None else "cpu"
        extra = f", resuming after epoch {resumed.get('epoch', 0)}" if resumed else ""
        self._line(i, "started", run.label(), f"[{where}{extra}] -> {run.output_dir}")

    def epoch(self, i: int, run, results: dict) -> None:
        history = results.get("history") or [{}]
        last = history[-1]
        test = last.get("test_acc")
        seconds = last.get("seconds")
        details = f"epoch {results.get('epoch')}/{results.get('epochs')}"
        if isinstance(test, (int, float)):
            details += f" test {test:.2f}% (best {results.get('best_acc', 0):.2f}%)"
        if isinstance(seconds, (int, float)):
            details += f" {seconds:.1f}s/epoch"
        self._line(i, "epoch", run.label(), details)

    def finished(self, i: int, run, results: dict, seconds: float) -> None:
        self._line(i, "finished", run.label(), f"{_acc(results)} in {format_seconds(seconds)}")

    def failed(self, i: int, run, code: Optional[int], log_path: str, tail: str, seconds: float) -> None:
        self._line(i, "FAILED", run.label(), f"exit code {code} after {format_seconds(seconds)}; log: {log_path}")
        if tail.strip():
            print("    " + tail.rstrip().replace("\n", "\n    "), file=self.stream, flush=True)

    def blocked(self, i: int, run, prerequisites: List[str]) -> None:
        self._line(i, "blocked", run.label(), f"(needs {', '.join(prerequisites)}, which failed)")

    def interrupted(self, runs: List) -> None:
        names = ", ".join(r.name for r in runs) or "none"
        print(f"interrupted; stopped: {names}. Run the suite again to resume them.", file=self.stream, flush=True)

    def summary(self, states: Dict[str, str], seconds: float) -> None:
        counts = {s: sum(1 for v in states.values() if v == s) for s in ("done", "skipped", "failed", "blocked")}
        text = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        print(f"suite: {len(states)} runs — {text or 'nothing to do'} — in {format_seconds(seconds)}",
              file=self.stream, flush=True)
