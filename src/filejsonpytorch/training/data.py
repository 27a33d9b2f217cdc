"""The data to train and validate on: the LF data file, the --valfile, the split between them."""

import logging
import time

import numpy as np

from .. import lfdata
from ..errors import UsageError
from .phases import PHASES

log = logging.getLogger("filejsonpytorch")


def training_data(args, model):
    """(training set, validation set or None) for a resumed model; for a cross-validation
    all the data is the training set."""
    data, val_set = read_datasets(args, model.schema, model.vocabs)
    if val_set is not None or model.arch.training.folds > 1:
        return data, val_set
    return split(data, args.valsize, args.seed)


def read_datasets(args, schema, vocabs):
    """(the training file's data, the --valfile's or None)."""
    encoder = lfdata.Encoder(schema, vocabs)
    data_path = lfdata.data_file_for(args.metafile)
    started = time.time()
    with PHASES.timing("reading"):
        data = lfdata.read_dataset(data_path, schema, encoder)
        log.info("read %d %s from %s in %.1fs", len(data), "sequences" if schema.is_sequence else "instances",
                 data_path, time.time() - started)
        return data, lfdata.read_dataset(args.valfile, schema, encoder) if args.valfile else None


#: fewer validation instances than this cannot choose an epoch: said, not refused
FEW_VALIDATION_ITEMS = 10


def split(data, valsize, seed):
    """(training part, validation part) by --valsize; the validation part may be at most
    half of the data, so that training keeps the larger part."""
    n = len(data)
    n_val = int(round(valsize * n)) if valsize < 1 else int(valsize)
    unit = "sequences" if data.seq_offsets is not None else "instances"
    if n_val > n // 2:
        raise UsageError(f"--valsize {valsize:g}: a validation part of {n_val} leaves too little to train on; it may be "
                         f"at most half of the {n} {unit} ({n // 2}): a fraction up to 0.5 or a number up to {n // 2}")
    if n_val <= 0:
        log.warning("no validation set (%d %s): saving the model after every epoch", n, unit)
        return data, None
    if n_val < FEW_VALIDATION_ITEMS:
        log.warning("validating on %d %s: too few to choose the best epoch or calibrate the probabilities; "
                    "a larger --valsize (or --folds) serves better", n_val, unit[:-1] if n_val == 1 else unit)
    order = np.random.default_rng(seed).permutation(n)
    return data.subset(np.sort(order[n_val:])), data.subset(np.sort(order[:n_val]))
