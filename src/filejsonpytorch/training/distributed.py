"""One network trained by several processes with DistributedDataParallel, under torchrun:
`torchrun --nproc_per_node N -m filejsonpytorch.train META PREFIX [options]` (gloo on
CPUs, NCCL on GPUs; torchrun's WORLD_SIZE, RANK and LOCAL_RANK say it is such a run).

Every rank reads the data and builds the same model. Each epoch's batches are the ones a
single process takes (the same shuffle from the seed); each rank trains on its share of
every batch, its loss weighted by the items (sequence elements) it holds, so that the
gradients DDP averages are the single process's: --batchsize is the global batch. Rank 0
alone validates, calibrates, logs and writes the model file; its early-stopping decision
and any rank's stop request (rank 0's stop file, SIGINT, SIGTERM) reach every rank at the
same batch, so none waits for another that has left. A rank that dies ends the others
through torchrun; the process group's timeout bounds every wait.
"""

import contextlib
import dataclasses
import datetime
import functools
import logging
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ..batches import to_device
from ..errors import UsageError
from .stop import StopRequest, stop_file
from .trainer import Hooks, Trainer, train_one_network
from .validation import count_correct

log = logging.getLogger("filejsonpytorch")
#: how long a rank waits for the others at a collective before it gives up (rank 0's
#: validation and saving included)
TIMEOUT = datetime.timedelta(minutes=30)


@dataclasses.dataclass
class Group:
    rank: int
    world: int
    local_rank: int

    @property
    def is_main(self):
        return self.rank == 0


def from_environment():
    """This process's place in a torchrun run, or None for an ordinary run (also torchrun
    with one process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    return Group(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def check_options(args):
    """Under torchrun one network trains: the folds of a cross-validation are not its work."""
    if args.folds is not None and args.folds > 1:
        raise UsageError(f"--folds {args.folds} under torchrun: torchrun trains one network on all its processes; "
                         f"train the folds of a cross-validation in parallel without torchrun (--workers N), "
                         f"or give --folds 1")
    if args.folds is None:
        args.folds = 1  # not the cross-validation small data gets by default


@contextlib.contextmanager
def session(group, device):
    """The process group of a torchrun run, open while training; -> this rank's device
    (its own GPU: LOCAL_RANK)."""
    if group is None:
        yield device
        return
    if device.type == "cuda":
        torch.cuda.set_device(group.local_rank)
        device = torch.device("cuda", group.local_rank)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
    log.info("distributed: rank %d of %d on %s (%s); each batch of --batchsize is shared among the %d processes",
             group.rank, group.world, device, dist.get_backend(), group.world)
    try:
        yield device
    finally:
        dist.destroy_process_group()


def train_network(group, args, model, device, train_set, val_set, reports):
    """Rank 0 is the ordinary run (it writes the model file at each improvement); the
    other ranks train beside it, with no hooks."""
    trainer = functools.partial(DistributedTrainer, group=group)
    if group.is_main:
        train_one_network(args, model, device, train_set, val_set, reports, trainer_class=trainer)
    else:
        trainer(args, model, device, train_set, val_set, Hooks()).run()


class DistributedTrainer(Trainer):
    """The Trainer, each rank on its share of every batch (see the module docstring)."""

    def __init__(self, args, model, device, train_set, val_set, hooks, group):
        # the stop file is rank 0's to watch (and remove); the signals every rank's
        stop = RanksStop(StopRequest(stop_file(args) if group.is_main else None), device)
        super().__init__(args, model, device, train_set, val_set, hooks, stop=stop)
        self.group = group
        if not group.is_main:
            torch.manual_seed(args.seed + group.rank)  # its own dropout masks
        # DDP starts every rank from rank 0's weights (the modules here use every parameter in
        # each forward pass; a user module that does not is told so by DDP at its second batch)
        self.ddp = DistributedDataParallel(self.network, device_ids=[device.index] if device.type == "cuda" else None)

    def train_step(self, indices, totals):
        part, share = self.shard(indices)
        batch = to_device(self.word_dropout(self.train_data.batch(part)), self.device, pin=True)
        loss, scores = self.learn(batch, self.ddp, share)
        correct, count = count_correct(self.network, scores, batch) if share else (0, 0)
        # the batch's loss and accuracy as a single process sees them, for the reports
        figures = torch.tensor([loss.item() * share / self.group.world, correct, count], dtype=torch.float64,
                               device=self.device)
        dist.all_reduce(figures)
        value, correct, count = figures.tolist()
        self.count_step(indices, value, (int(correct), int(count)), totals)

    def shard(self, indices):
        lengths = self.train_data.lengths if self.train_data.is_sequence else None
        return shard(indices, self.group.rank, self.group.world, lengths)

    def validate(self, epoch, number):
        stop = super().validate(epoch, number) if self.group.is_main else False
        return broadcast_flag(stop, self.device)


class RanksStop:
    """A stop request of any rank, seen by all ranks at the same check (one per batch)."""

    def __init__(self, local, device):
        self.local, self.device = local, device
        self.reason = None

    def __enter__(self):
        self.local.__enter__()
        return self

    def __exit__(self, *exc):
        return self.local.__exit__(*exc)

    def check(self):
        if self.reason is None:
            flag = torch.tensor([1 if self.local.check() else 0], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            if flag.item():
                self.reason = self.local.reason or "another process's stop request"
        return self.reason


def shard(indices, rank, world, lengths=None):
    """(rank's part of a global batch, the weight of its mean loss: `world` times its part of
    the batch's items, or of its elements when `lengths` gives each sequence's). A batch
    smaller than the ranks leaves some without items: they take one with weight 0, adding
    nothing to the gradient sum they still take part in."""
    part = indices[rank::world]
    if len(part) == 0:
        return indices[:1], 0.0
    if lengths is not None:
        return part, world * float(lengths[part].sum()) / float(lengths[indices].sum())
    return part, world * len(part) / len(indices)


def broadcast_flag(flag, device):
    """Rank 0's decision, on every rank."""
    value = torch.tensor([1 if flag else 0], device=device)
    dist.broadcast(value, 0)
    return bool(value.item())
