"""Training: `python -m filejsonpytorch.train METAFILE MODELPREFIX [options]`.

Reads the LF export once, builds (or resumes) the network, and trains it with Adam on
shuffled batches, validating regularly; the best model so far is always on disk. The
stop file, SIGINT and SIGTERM end training after the current batch, keeping it.

The parts, in the order a run meets them (all in `training/`):
  setup.py         a new model from the metadata, or a saved one resumed
  data.py          the training data, the validation data and the split between them
  trainer.py       one network: the epoch loop, validation, early stopping, its hooks
  adam.py          its optimizer: torch's Adam, without torch.optim's start-up
  cpu.py           freed memory kept for reuse, subnormal numbers flushed to zero
  crossval.py      K networks by cross-validation, each trained by the same trainer
  workers.py       ... in up to --workers processes at once
  distributed.py   one network on several processes (torchrun, DistributedDataParallel)
  precision.py     --amp: mixed precision on a GPU
  word_dropout.py  rare values replaced by out-of-vocabulary during training
  validation.py    the validation pass and which result is the better
  reports.py       the history, learning curves, validation report and model card
  stop.py          the stop file and signals
The model file is written and read by `model_io.py` alone.
"""

import gc
import logging
import os
import sys

# before torch starts OpenMP: idle threads give their core back instead of spinning for it,
# which slows training several-fold when anything else runs (benchmarks/README.md)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from . import architecture, model_io
from .config import parse_train_args
from .errors import EnvironmentProblem, UsageError
from .logs import run_main, setup_logging
from .training import distributed
from .training.cpu import cpu_settings
from .training.crossval import CrossValidation
from .training.data import training_data
from .training.phases import PHASES
from .training.precision import check_amp
from .training.reports import TrainingReports
from .training.setup import new_model, resumed_model
from .training.trainer import train_one_network

log = logging.getLogger("filejsonpytorch")


def main(argv=None):
    return run_main(lambda: train(parse_train_args(argv)), argv)


def train(args):
    if args.nocreate:
        setup_logging(args.debug)
        log.info("--nocreate: nothing to do")
        return 0
    group = distributed.from_environment()
    main = group is None or group.is_main  # the process that writes files and logs
    if group is not None:
        distributed.check_options(args)
    if main:
        model_io.prepare_directory(args.modelprefix)
    PHASES.reset()
    setup_logging(args.debug, logfile=f"{args.modelprefix}.train.log" if main else None)
    if not main:
        log.setLevel(logging.ERROR)  # rank 0 tells what all ranks do
    if args.from_yaml:
        log.info("options from %s: %s", args.yaml_file, ", ".join(f"{k}={v}" for k, v in args.from_yaml.items()))
    torch.manual_seed(args.seed)
    device = choose_device(args.cuda)
    check_amp(args.amp, device)
    with cpu_settings(), distributed.session(group, device) as device:
        return train_on(args, device, group, main)


def train_on(args, device, group, main):
    model, train_set, val_set = (resumed_model(args), None, None) if args.resume else new_model(args)
    model.network.to(device)
    choose_threads(args.threads)
    log.info("architecture (copy, edit and pass back with --arch FILE):\n%s",
             architecture.describe(model.arch, model.network))
    if main:
        model_io.write_arch_file(args.modelprefix, model.arch)
    if args.notrain:
        if main:
            model_io.write_model(args.modelprefix, model)
            log.info("--notrain: saved the untrained model as %s", model_io.json_path(args.modelprefix))
        return 0
    if train_set is None:
        train_set, val_set = training_data(args, model)
    reports = TrainingReports(args, (train_set, val_set)) if main else None
    if model.arch.training.folds > 1:
        if group is not None:
            raise UsageError(f"{model_io.json_path(args.modelprefix)} is a {model.arch.training.folds}-fold "
                             f"cross-validation model: torchrun trains one network; resume it without torchrun")
        if val_set is not None:
            log.warning("--valfile ignored: this model is trained by cross-validation, each network validated on a fold")
        CrossValidation(args, model, device, train_set, reports).run()
    elif group is not None:
        distributed.train_network(group, args, model, device, train_set, val_set, reports)
    else:
        train_one_network(args, model, device, train_set, val_set, reports)
    return 0


def choose_threads(asked):
    """--threads; by default torch's own (one per core, or OMP_NUM_THREADS): one thread
    scored a little lower on held-out data in every run measured, and since the taggers'
    LSTM runs in fused kernels it trains them no faster on 2 cores (benchmarks/README.md)."""
    if asked:
        torch.set_num_threads(asked)
        log.info("torch threads: %d", asked)


def choose_device(cuda):
    available = torch.cuda.is_available()
    if cuda and not available:
        raise EnvironmentProblem("--cuda true: no usable CUDA GPU found (torch.cuda.is_available() is False)")
    device = torch.device("cuda" if (available if cuda is None else cuda) else "cpu")
    log.info("device: %s", device)
    return device


if __name__ == "__main__":
    code = main()
    gc.freeze()  # the exit's collection of torch's objects would take longer than all that is left to do
    sys.exit(code)
