"""Adam's step on the shared exports' networks: this tree's `training/adam.py` against the
one of a git revision, stepping copies of the same weights with the same gradients.

For each dataset the network is built as the trainer builds it (`training.setup.new_model`,
one network), and its gradients of shuffled training batches are handed to both optimizers
in turn (who goes first alternates). Printed: the mean step time of each after
WARM_UP_STEPS, and whether both kept the same weights bit for bit (they must, unless the
revision computes something else).

    python benchmarks/bench_adam.py [--reference REV] [--datasets NAME ...] [--steps N]
"""

import argparse
import importlib.util
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from filejsonpytorch import config
from filejsonpytorch.batches import TensorData, epoch_order
from filejsonpytorch.training.adam import Adam
from filejsonpytorch.training.setup import new_model

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT.parent / "shared" / "data"
DATASETS = ("class-ionosphere", "abalone-train", "sentpol-train", "ner-wikigold-train", "pos-ud-seq-train")
WARM_UP_STEPS = 10


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", default="HEAD", help="the git revision whose adam.py to compare with")
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--steps", type=int, default=60)
    opts = parser.parse_args()
    logging.getLogger("filejsonpytorch").setLevel(logging.WARNING)
    reference = reference_adam(opts.reference)
    print(f"Adam step, mean over {opts.steps - WARM_UP_STEPS} steps: {opts.reference} against this tree")
    print(f"{'dataset':20} {'reference ms':>12} {'ours ms':>8}  same weights")
    with tempfile.TemporaryDirectory(prefix="bench-adam-") as workdir:
        for name in opts.datasets:
            before, after, same = bench_dataset(name, workdir, reference, opts.steps)
            print(f"{name:20} {before:12.2f} {after:8.2f}  {same}", flush=True)


def reference_adam(revision):
    """The Adam class of `revision`'s training/adam.py."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:src/filejsonpytorch/training/adam.py"],
                            capture_output=True, text=True, check=True).stdout
    spec = importlib.util.spec_from_loader("filejsonpytorch.training.reference_adam", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "filejsonpytorch.training"  # its relative import of ..errors
    exec(compile(source, f"{revision}:adam.py", "exec"), module.__dict__)
    return module.Adam


def bench_dataset(name, workdir, reference_class, steps):
    meta = DATA_DIR / name / "crvd.meta.json" if (DATA_DIR / name).is_dir() else DATA_DIR / f"{name}.meta.json"
    args = config.parse_train_args([str(meta), f"{workdir}/{name}", "--seed", "1", "--folds", "1"])
    torch.manual_seed(1)
    model, train_set, _ = new_model(args)
    network, data = model.network, TensorData(train_set)
    params = [p for p in network.parameters() if p.requires_grad]
    copies = {side: [p.detach().clone().requires_grad_() for p in params] for side in ("reference", "ours")}
    optimizers = {"reference": reference_class(copies["reference"]), "ours": Adam(copies["ours"])}
    seconds = {"reference": 0.0, "ours": 0.0}
    rng = np.random.default_rng(1)
    batches = []
    while len(batches) < steps:
        batches += epoch_order(data, 32, rng)
    for number, indices in enumerate(batches[:steps]):
        batch = data.batch(indices)
        network.zero_grad()
        network.loss(network(batch), batch).backward()
        for side in ("reference", "ours") if number % 2 else ("ours", "reference"):
            for copy, param in zip(copies[side], params):
                copy.grad = param.grad
            started = time.perf_counter()
            optimizers[side].step()
            if number >= WARM_UP_STEPS:
                seconds[side] += time.perf_counter() - started
    same = all(torch.equal(a, b) for a, b in zip(copies["reference"], copies["ours"]))
    timed = (steps - WARM_UP_STEPS) / 1000
    return seconds["reference"] / timed, seconds["ours"] / timed, same


if __name__ == "__main__":
    sys.exit(main())
