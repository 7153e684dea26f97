"""Benchmarks: ``step`` (median wall time and peak memory of one training step per method, on random data)
and ``epoch`` (images/s of whole training epochs through the real trainer). Their command lines are
``ddkd-bench`` / ``tools/bench_step.py`` and ``ddkd-bench-epoch`` / ``tools/bench_epoch.py``
(``mdistiller_ddkd.cli.bench_step`` and ``mdistiller_ddkd.cli.bench_epoch``)."""
