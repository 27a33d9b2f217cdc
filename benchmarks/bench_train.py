"""Training throughput of our Trainer against a bare PyTorch loop, per epoch.

For every shared dataset the setup is built exactly as the trainer builds it
(`training.setup.new_model`). Then, epoch by epoch and interleaved:

- ours: `training.trainer.Trainer.run_epoch`, the real code path (batch gathering from TensorData,
  word dropout, loss/accuracy bookkeeping, reports, stop-file checks), without validation;
- bare: the same network class from the same initial weights, the same batches (same
  indices, built into tensors before the clock starts), and only forward, loss, backward,
  gradient clipping and the Adam step.

Ours and bare alternate epoch by epoch (who goes first alternates too), and the ratio is
the median over epochs of our epoch time over the bare epoch time next to it (1.0 = no
overhead): neighbouring epochs see about the same load on a shared CPU. Throughputs are
from each side's fastest epoch. Small datasets run more epochs (--min-batches), so that
the figures are not noise.

    python benchmarks/bench_train.py [--datasets NAME ...] [--epochs N] [--min-batches N]
                                     [--max-batches N] [--threads N]
"""

import argparse
import copy
import logging
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from filejsonpytorch import config
from filejsonpytorch.batches import epoch_order
from filejsonpytorch.network import build_network
from filejsonpytorch.training.setup import new_model
from filejsonpytorch.training.trainer import Hooks, Trainer

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
DATASETS = ("class-ionosphere", "class-ngram-sp1", "class-window-pos1", "seq-pos1", "seq-pos2", "abalone-train",
            "ner-wikigold-train", "ner-wikigold-multi-train", "sentpol-train", "pos-ud-seq-train")
WARM_UP_BATCHES = 5


def main():
    opts = parse_args()
    torch.set_num_threads(opts.threads)
    silence_training_log()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s). Throughput: each side's fastest epoch. "
          f"ratio: median over epochs of our time / bare time, wall clock (cpu: process CPU time), and its range")
    print(HEADER)
    with tempfile.TemporaryDirectory(prefix="bench-train-") as workdir:
        for name in opts.datasets:
            print(format_row(bench_dataset(name, workdir, opts)), flush=True)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS, metavar="NAME",
                        help=f"datasets in {DATA_DIR} (default: all)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs to time, each for ours and bare")
    parser.add_argument("--min-batches", type=int, default=300,
                        help="time more epochs than --epochs where needed to reach N batches per side")
    parser.add_argument("--max-batches", type=int, default=None,
                        help="train on the first N batches' worth of instances only (quick runs)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for both sides (1: steadiest on a shared CPU)")
    return parser.parse_args()


def silence_training_log():
    """The trainer's reports are formatted and written, as in training, but to /dev/null."""
    log = logging.getLogger("filejsonpytorch")
    log.handlers = [logging.StreamHandler(open(os.devnull, "w"))]
    log.setLevel(logging.INFO)
    log.propagate = False


def meta_path(name):
    flat = DATA_DIR / f"{name}.meta.json"
    return flat if flat.exists() else DATA_DIR / name / "crvd.meta.json"


def bench_dataset(name, workdir, opts):
    # the stop file goes to our directory: the Trainer deletes an old one, and data/ is shared
    args = config.parse_train_args([str(meta_path(name)), os.path.join(workdir, name), "--seed", "1",
                                    "--stopfile", os.path.join(workdir, "STOP")])
    torch.manual_seed(args.seed)
    model, train_set, val_set = new_model(args)
    batch_size = int(model.arch.training.batchsize)
    train_set = first_batches(train_set, opts.max_batches, batch_size)
    initial_weights = copy.deepcopy(model.network.state_dict())
    n_epochs = max(opts.epochs, math.ceil(opts.min_batches / math.ceil(len(train_set) / batch_size)))
    ours = make_trainer(args, model, train_set, val_set, n_epochs)
    bare = BareLoop(model.arch, initial_weights, ours.train_data, copy.deepcopy(ours.rng))
    bare.warm_up(initial_weights)
    epochs = [time_epoch(ours, bare, epoch) for epoch in range(1, n_epochs + 1)]
    sequence = ours.train_data.is_sequence
    units = int(train_set.lengths().sum()) if sequence else len(train_set)
    return {"dataset": name, "unit": "tokens" if sequence else "inst", "units": units,
            "batches": ours.batches_per_epoch, "epochs": epochs}


def first_batches(data, max_batches, batch_size):
    if not max_batches or max_batches * batch_size >= len(data):
        return data
    return data.subset(np.arange(max_batches * batch_size))


def make_trainer(args, model, train_set, val_set, epochs):
    """A Trainer in the state `Trainer.run` leaves it in before the first epoch."""
    trainer = Trainer(args, model, torch.device("cpu"), train_set, val_set, Hooks())
    trainer.started = time.time()
    trainer.epochs_left = epochs
    trainer.total_batches = epochs * trainer.batches_per_epoch
    trainer.done_batches = trainer.seen = 0
    trainer.validate = lambda epoch, number: False  # validation is not part of an epoch's cost
    return trainer


class BareLoop:
    """The same optimisation as the Trainer, on batches built beforehand."""

    def __init__(self, arch, weights, data, rng):
        self.arch, self.data, self.rng = arch, data, rng
        self.network = build(arch, weights)
        self.optimizer = make_optimizer(self.network, arch)
        self.batch_size = int(arch.training.batchsize)
        self.grad_clip = arch.training.grad_clip or 0

    def prepare_epoch(self):
        """The epoch's batches in the Trainer's order (its random generator's twin)."""
        return [self.data.batch(indices) for indices in epoch_order(self.data, self.batch_size, self.rng)]

    def warm_up(self, weights):
        """A few steps on a throwaway copy, so neither side pays first-call costs."""
        network = build(self.arch, weights)
        optimizer = make_optimizer(network, self.arch)
        order = epoch_order(self.data, self.batch_size, np.random.default_rng(0))
        step_all(network, optimizer, [self.data.batch(i) for i in order[:WARM_UP_BATCHES]], self.grad_clip)

    def run(self, batches):
        step_all(self.network, self.optimizer, batches, self.grad_clip)


def build(arch, weights):
    network = build_network(arch)
    network.load_state_dict(weights)
    return network.train()


def make_optimizer(network, arch):
    return torch.optim.Adam([p for p in network.parameters() if p.requires_grad], lr=arch.training.learningrate)


def step_all(network, optimizer, batches, grad_clip):
    for batch in batches:
        loss = network.loss(network(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(network.parameters(), grad_clip)
        optimizer.step()


def time_epoch(ours, bare, epoch):
    """-> {side: (wall s, cpu s)}; who goes first alternates between epochs."""
    batches = bare.prepare_epoch()
    runs = {"ours": lambda: ours.run_epoch(epoch), "bare": lambda: bare.run(batches)}
    order = ("ours", "bare") if epoch % 2 else ("bare", "ours")
    return {side: timed(runs[side]) for side in order}


def timed(work):
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


HEADER = (f"{'dataset':26} {'units/epoch':>14} {'batches':>7} {'epochs':>6} {'ours/s':>9} {'bare/s':>9} "
          f"{'ratio':>6} {'cpu':>5}  {'range':>9}")


def format_row(result):
    epochs = result["epochs"]
    ours, bare = (min(e[side][0] for e in epochs) for side in ("ours", "bare"))
    wall = [e["ours"][0] / e["bare"][0] for e in epochs]
    cpu = [e["ours"][1] / e["bare"][1] for e in epochs]
    return (f"{result['dataset']:26} {result['units']:>7} {result['unit']:6} {result['batches']:>7} {len(epochs):>6} "
            f"{result['units'] / ours:>9.0f} {result['units'] / bare:>9.0f} {statistics.median(wall):>6.2f} "
            f"{statistics.median(cpu):>5.2f}  {min(wall):.2f}-{max(wall):.2f}")


if __name__ == "__main__":
    main()
