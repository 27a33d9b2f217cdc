"""The benchmark scripts that drive the trainer's own parts still run against today's code
(their figures are the benchmarks README's business, not a test's)."""

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_bench_train_times_ours_against_the_bare_loop_on_two_batches():
    done = subprocess.run([sys.executable, str(BENCHMARKS / "bench_train.py"), "--datasets", "seq-pos2",
                           "class-ionosphere", "--epochs", "1", "--min-batches", "1", "--max-batches", "2"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[2:]}
    assert set(rows) == {"seq-pos2", "class-ionosphere"}
    for row in rows.values():
        assert row[3] == "2" and float(row[7]) > 0  # two batches timed, a ratio measured


def test_bench_adam_steps_both_optimizers_to_the_same_weights():
    done = subprocess.run([sys.executable, str(BENCHMARKS / "bench_adam.py"), "--reference", "HEAD",
                           "--datasets", "class-ionosphere", "seq-pos2", "--steps", "12"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[2:]}
    assert set(rows) == {"class-ionosphere", "seq-pos2"}
    assert all(row[3] == "True" and float(row[1]) > 0 and float(row[2]) > 0 for row in rows.values())
