"""What the run's checkpoints record (``engine/state.py``): the best accuracy and the ``best`` checkpoint
follow mdistiller's rule — ``best_acc`` rises only on a strictly higher test accuracy, and an epoch whose
accuracy is ``>=`` the best so far (a tie included) replaces ``best`` / ``student_best``; results.json."""

from __future__ import annotations

from typing import List, Optional

from mdistiller_ddkd.engine.cfg import load_config
from mdistiller_ddkd.engine.run_folder import best_epoch
from mdistiller_ddkd.engine.state import RunProgress, results_record


def mdistiller_best(accuracies: List[float]):
    """mdistiller's trainer, written out: ``(best_acc, the epoch 'best' holds)`` after each epoch."""
    best_acc, saved, out = -1.0, None, []
    for epoch, acc in enumerate(accuracies, start=1):
        if acc > best_acc:  # log(): best_acc
            best_acc = acc
        if acc >= best_acc:  # train_epoch(): "update the best"
            saved = epoch
        out.append((best_acc, saved))
    return out


def _run(accuracies: List[float]):
    progress, saved, out = RunProgress(), None, []
    for epoch, acc in enumerate(accuracies, start=1):
        if progress.add_epoch({"epoch": epoch, "test_acc": acc, "test_acc_top5": acc + 1}):
            saved = epoch
        out.append((progress.best_acc, saved))
    return progress, out


def test_best_follows_mdistillers_rule_on_rises_ties_and_falls():
    for accuracies in ([10.0, 20.0, 20.0, 15.0, 20.0, 30.0, 30.0], [50.0], [5.0, 5.0, 5.0], [40.0, 30.0, 20.0],
                       [0.0, 0.0, 1.0]):
        progress, ours = _run(accuracies)
        assert ours == mdistiller_best(accuracies), accuracies
        assert best_epoch(progress.history) == ours[-1][1]  # what resume's repair rebuilds


def test_best_top5_is_that_of_the_epoch_best_holds():
    progress, _ = _run([10.0, 20.0, 20.0])
    assert progress.best_acc_top5 == 21.0
    progress = RunProgress()
    for epoch, (top1, top5) in enumerate([(20.0, 40.0), (20.0, 45.0), (15.0, 90.0)], start=1):
        progress.add_epoch({"epoch": epoch, "test_acc": top1, "test_acc_top5": top5})
    assert (progress.best_acc, progress.best_acc_top5) == (20.0, 45.0)


def test_commit_marks_and_descriptions():
    progress = RunProgress()
    assert progress.latest_holds is None and "no checkpoint" in progress.describe_latest("out")
    assert progress.how_to_continue() == "start the run again"
    progress.add_epoch({"epoch": 1, "test_acc": 1.0, "test_acc_top5": 2.0})
    assert progress.latest_holds is None  # recorded, but latest not written yet
    progress.mark_committed(1)
    assert "epoch 1" in progress.describe_latest("out") and "--resume" in progress.how_to_continue()


def test_results_record_holds_the_identity_and_the_last_and_best_accuracies():
    cfg = load_config(None, ["DISTILLER.TYPE", "KD", "EXPERIMENT.SEED", "4", "SOLVER.EPOCHS", "3"])
    progress, _ = _run([10.0, 30.0, 20.0])
    record = results_record(cfg, progress, extra_parameters=7, finished=False)
    expected: dict = {"method": "KD", "seed": 4, "epoch": 3, "epochs": 3, "finished": False, "best_acc": 30.0,
                      "best_acc_top5": 31.0, "last_acc": 20.0, "last_acc_top5": 21.0, "extra_parameters": 7}
    assert {k: record[k] for k in expected} == expected and len(record["history"]) == 3
    empty: Optional[float] = results_record(cfg, RunProgress(), 0, False)["last_acc"]
    assert empty is None
