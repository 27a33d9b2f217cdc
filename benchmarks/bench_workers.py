"""Cross-validation networks trained one after another against several at once (--workers).

    python benchmarks/bench_workers.py                       # class-ionosphere and abalone-train, 1 vs 2 workers
    python benchmarks/bench_workers.py --workers 1 4 --datasets abalone-train

Each run is the real command (`python -m filejsonpytorch.train ... --folds 5 --seed 1`,
defaults otherwise) in a fresh data directory; the table gives its wall time and the
held-out figures (each network on the fold it validated on, as the log gives them), which
must not depend on the number of workers.
"""

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FIGURES = re.compile(r"Each on the fold it validated on: (loss [0-9.]+, \w+ [0-9.]+)")


def export_paths(name):
    directory = SHARED_DATA / name
    if directory.is_dir():
        return directory / "crvd.meta.json", directory / "crvd.data.json"
    return SHARED_DATA / f"{name}.meta.json", SHARED_DATA / f"{name}.data.json"


def train(name, workers, folds, root):
    datadir = Path(root) / f"{name}-w{workers}"
    datadir.mkdir()
    meta, data = export_paths(name)
    shutil.copy(meta, datadir / "crvd.meta.json")
    shutil.copy(data, datadir / "crvd.data.json")
    command = [sys.executable, "-m", "filejsonpytorch.train", str(datadir / "crvd.meta.json"),
               str(datadir / "FileJsonPyTorch.model"), "--folds", str(folds), "--seed", "1", "--workers", str(workers)]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{name}, {workers} workers failed:\n{result.stderr[-3000:]}")
    return seconds, FIGURES.search(result.stderr).group(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["class-ionosphere", "abalone-train"])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--folds", type=int, default=5)
    options = parser.parse_args()
    print(f"| dataset | workers | wall time | held-out figures ({options.folds} folds, each network on its own) |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as root:
        for name in options.datasets:
            for workers in options.workers:
                seconds, figures = train(name, workers, options.folds, root)
                print(f"| {name} | {workers} | {seconds:.1f} s | {figures} |", flush=True)


if __name__ == "__main__":
    main()
