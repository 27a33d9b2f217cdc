"""The distilled network against the cross-validation ensemble it was distilled from, on data
neither trained on (nested cross-validation).

    python benchmarks/bench_distillation.py                   # class-ionosphere and abalone-train, seeds 1 2, about 8 minutes
    python benchmarks/bench_distillation.py --datasets abalone-train --seeds 1 2 3 [--outer-folds K]

Each export's lines are split into 5 outer folds (or K) (a random split, seeded per seed). For
each outer fold the default training command runs on the other four (`python -m
filejsonpytorch.train ... --seed S`, so: a 5-fold cross-validation ensemble, then the
network distilled from it) and both models are scored on the held-out fold with
`evaluate`: the distilled network (PREFIX) and the ensemble (PREFIX.folds). The table gives
the pooled held-out figure of each, over all outer folds and seeds, and the seconds the
log gives training the networks and distilling.
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench_workers import export_paths

PHASES = re.compile(r"time spent: .*training ([0-9.]+) s.*distillation ([0-9.]+) s")


def outer_folds(lines, seed, count):
    order = np.random.default_rng(100 + seed).permutation(len(lines))
    return [set(fold.tolist()) for fold in np.array_split(order, count)]


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def run_fold(name, lines, held_out, seed, datadir):
    """-> ({"distilled": report, "ensemble": report} on the held-out lines, (training s, distillation s))."""
    meta, _ = export_paths(name)
    datadir.mkdir()
    shutil.copy(meta, datadir / "crvd.meta.json")
    write_lines(datadir / "crvd.data.json", [line for i, line in enumerate(lines) if i not in held_out])
    write_lines(datadir / "held-out.data.json", [lines[i] for i in sorted(held_out)])
    prefix = datadir / "M"
    result = subprocess.run([sys.executable, "-m", "filejsonpytorch.train", str(datadir / "crvd.meta.json"),
                             str(prefix), "--seed", str(seed)], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{name}, seed {seed}: training failed\n{result.stderr[-3000:]}")
    seconds = PHASES.search(result.stderr)
    if seconds is None:
        sys.exit(f"{name}: the log names no distillation; was the ensemble distilled?\n{result.stderr[-2000:]}")
    reports = {}
    for model, model_prefix in (("distilled", prefix), ("ensemble", f"{prefix}.folds")):
        evaluated = subprocess.run([sys.executable, "-m", "filejsonpytorch.evaluate", str(model_prefix),
                                    str(datadir / "held-out.data.json"), "--json"], capture_output=True, text=True)
        if evaluated.returncode != 0:
            sys.exit(f"{name}: evaluating {model_prefix} failed\n{evaluated.stderr[-2000:]}")
        reports[model] = json.loads(evaluated.stdout)
    return reports, (float(seconds.group(1)), float(seconds.group(2)))


def pooled(reports):
    """The held-out figure over several folds' reports: accuracy, or RMSE for regression."""
    if "regression" in reports[0]:
        squares = sum(r["regression"]["rmse"] ** 2 * r["regression"]["n"] for r in reports)
        return "rmse", (squares / sum(r["regression"]["n"] for r in reports)) ** 0.5
    correct = sum(r["classification"]["accuracy"] * r["classification"]["n"] for r in reports)
    return "accuracy", correct / sum(r["classification"]["n"] for r in reports)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["class-ionosphere", "abalone-train"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--outer-folds", type=int, default=5)
    options = parser.parse_args()
    print("| dataset | seed | held-out | ensemble (5 networks) | distilled (1 network) | training s | distillation s |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as root:
        for name in options.datasets:
            lines = export_paths(name)[1].read_text(encoding="utf-8").splitlines()
            every = {"distilled": [], "ensemble": []}
            for seed in options.seeds:
                folds, times = {"distilled": [], "ensemble": []}, []
                for k, held_out in enumerate(outer_folds(lines, seed, options.outer_folds)):
                    reports, seconds = run_fold(name, lines, held_out, seed, Path(root) / f"{name}-s{seed}-f{k}")
                    for model in folds:
                        folds[model].append(reports[model])
                    times.append(seconds)
                figure, ensemble = pooled(folds["ensemble"])
                distilled = pooled(folds["distilled"])[1]
                training, distillation = np.sum(times, axis=0)
                print(f"| {name} | {seed} | {figure} | {ensemble:.4f} | {distilled:.4f} | {training:.1f} | "
                      f"{distillation:.1f} |", flush=True)
                for model in every:
                    every[model] += folds[model]
            figure, ensemble = pooled(every["ensemble"])
            print(f"| {name} | all | {figure} | {ensemble:.4f} | {pooled(every['distilled'])[1]:.4f} | | |", flush=True)


if __name__ == "__main__":
    main()
