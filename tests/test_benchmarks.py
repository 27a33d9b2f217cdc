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


def test_bench_workers_gives_the_same_networks_with_one_worker_and_two():
    done = subprocess.run([sys.executable, str(BENCHMARKS / "bench_workers.py"), "--datasets", "class-ionosphere",
                           "--workers", "1", "2", "--folds", "2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.strip("|").split("|") for line in done.stdout.splitlines()[2:]]
    assert [row[1].strip() for row in rows] == ["1", "2"]
    assert rows[0][3] == rows[1][3] and "accuracy" in rows[0][3]


def test_bench_distillation_scores_both_models_on_the_outer_folds():
    done = subprocess.run([sys.executable, str(BENCHMARKS / "bench_distillation.py"), "--datasets", "class-ionosphere",
                           "--seeds", "1", "--outer-folds", "2"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in done.stdout.splitlines()[2:]]
    assert [row[1] for row in rows] == ["1", "all"]
    for row in rows:
        assert row[2] == "accuracy" and 0.7 < float(row[3]) <= 1 and 0.7 < float(row[4]) <= 1
    assert float(rows[0][5]) > 0 and float(rows[0][6]) > 0  # seconds of training and of distilling
