"""Setting up the model to train: a new one from the LF metadata, or a saved one resumed."""

import logging
import os

import numpy as np
import torch

from .. import lfdata, model_io, vocab
from ..architecture import load_arch_file, set_hparams
from ..default_architecture import add_char_features, architecture_for
from ..config import parse_maxlens, train_defaults
from ..errors import ModelError
from ..model_io import Model
from ..network import build_network, find_module
from ..pretrained import init_pretrained, prepare_pretrained
from .crossval import ensemble_prefix, finished_networks, folds_for
from .data import read_datasets, split
from .phases import PHASES

log = logging.getLogger("filejsonpytorch")


def new_model(args):
    """-> (the model built from the metadata, training set, validation set or None). The
    data is read with --notrain too: the number of instances decides the folds, and the
    vocabularies keep what occurs in the training part, so the model saved is the one that
    training builds."""
    arch_file = load_arch_file(args.arch) if args.arch else None
    meta = lfdata.read_meta(args.metafile)
    attributes = meta["featureInfo"].get("attributes", [])
    schema = lfdata.schema_from_meta(meta)
    peeked = lfdata.peek_first_values(lfdata.data_file_for(args.metafile), schema.is_sequence)
    lfdata.detect_list_features(schema, peeked)
    schema.maxlens = parse_maxlens(args.maxlens, schema, attributes)
    settings = vocab.embedding_settings(schema, attributes, vocab.parse_embs(args.embs))
    for emb in settings.values():
        emb.add_file_words = args.emb_addwords
    with PHASES.timing("vocabularies"):
        vocabs = vocab.build_vocabs(schema, meta["featureStats"], settings)
    if args.chars:
        sources = add_char_features(schema, vocabs, meta["featureStats"])
        if sources:
            log.info("character features for %s: a CNN over each word's characters, so unseen words are not blind",
                     ", ".join(sources))
    pretrained = prepare_pretrained(vocabs, args.datadir, np.random.default_rng(args.seed))
    data, val_set = read_datasets(args, schema, vocabs)
    folds = folds_for(args, schema, len(data), arch_file)
    train_set, val_set = (data, val_set) if folds > 1 or val_set is not None else split(data, args.valsize, args.seed)
    with PHASES.timing("vocabularies"):
        fit_vocabs_to_training(schema, vocabs, train_set, val_set, pretrained)
    arch = architecture_for(args, schema, vocabs, arch_file, folds)
    network = build_network(arch)
    init_pretrained(network, pretrained, arch)
    return Model(schema, vocabs, arch, network, options=run_options(args)), train_set, val_set


def fit_vocabs_to_training(schema, vocabs, train_set, val_set, pretrained):
    """Keeps the values that occur in the training part (or have a pre-trained vector):
    the meta's counts may cover more data than we train on, and a value never trained
    is better read as out-of-vocabulary than through a random vector."""
    counts = train_set.id_counts(schema, {k: len(v) for k, v in vocabs.items()})
    tables = {}
    for emb_id, v in vocabs.items():
        keep = counts[emb_id] > 0
        if emb_id in pretrained:
            keep |= pretrained[emb_id].found
        before = len(v)
        vocabs[emb_id], tables[emb_id], kept = v.pruned(keep, counts[emb_id])
        if emb_id in pretrained:
            pretrained[emb_id].matrix = pretrained[emb_id].matrix[kept]
        if len(vocabs[emb_id]) < before:
            log.info("embedding id %r: %d of %d values occur in the training data", emb_id, len(vocabs[emb_id]) - 2, before - 2)
    for data in (train_set, val_set):
        if data is not None:
            data.remap(schema, tables)


def resumed_model(args):
    """The saved model, to train further: its network, history, position and optimizer
    state (a cross-validation model has none: its networks' optimizers start afresh), with
    the saved run's options where this run gives none. A distilled model goes on from the
    cross-validation's networks it was distilled from."""
    model = model_io.read_model(args.modelprefix)
    if model.position.get("distilled"):
        model = networks_distilled_from(args.modelprefix)
    arch = model.arch.with_training_options(args.learningrate, args.batchsize)
    declared = find_module(arch.module).hparams
    if args.hparams and set_hparams(arch.hparams, declared, arch.module, args.hparams) != arch.hparams:
        log.warning("--hparams ignored: a resumed network keeps the hyper-parameters it was built with")
    if args.ensemble is not None and args.ensemble != arch.ensemble:
        log.warning("--ensemble ignored: a resumed network keeps the %d network(s) it was built with", arch.ensemble)
    if args.folds is not None and args.folds != arch.training.folds:
        log.warning("--folds ignored: a resumed model keeps the %d fold(s) it was trained with", arch.training.folds)
    changed = restore_run_options(args, model.options or {})
    torch.manual_seed(args.seed)  # the saved run's seed, if this run gives none
    if set(changed) & VALIDATION_OPTIONS:
        log.warning("the validation set differs from the saved run's (%s): its figures are not comparable, so the "
                    "first validation of this run is the new reference", ", ".join(sorted(set(changed) & VALIDATION_OPTIONS)))
        for entry in model.history:
            entry["earlier_validation"] = True
    log.info("resuming %s %s", model_io.json_path(args.modelprefix), where_it_stopped(model))
    model.options = run_options(args)
    return model


def networks_distilled_from(prefix):
    """The cross-validation a distilled model (PREFIX) was distilled from, kept beside it."""
    folds = ensemble_prefix(prefix)
    if not os.path.exists(model_io.json_path(folds)):
        raise ModelError(f"{model_io.json_path(prefix)} is one network distilled from a cross-validation, whose "
                         f"networks --resume trains further; they should be in {model_io.json_path(folds)}, which "
                         f"is missing (copy it, and the tensor file it names, beside the model)")
    return model_io.read_model(folds)


#: the run options a resumed run takes from the saved run unless given again (--maxepochs,
#: the epochs to train now, is the new run's own)
RESUMED_OPTIONS = ("valsize", "valfile", "valeverybatches", "valeveryepochs", "valeveryinstances", "repeverybatches",
                   "repeveryinstances", "es_patience", "es_metric", "stopfile", "noshuffle", "seed", "folds", "distill")
VALIDATION_OPTIONS = {"valsize", "valfile", "seed"}  # they choose the validation set


def restore_run_options(args, saved):
    """Sets the saved run's options that this run does not give; -> {option: saved value}
    of those this run gives differently."""
    defaults = train_defaults()
    restored, changed = {}, {}
    for name in (n for n in RESUMED_OPTIONS if n in saved):
        if name not in args.explicit:
            setattr(args, name, saved[name])
            if saved[name] != defaults[name]:
                restored[name] = saved[name]
        elif getattr(args, name) != saved[name]:
            changed[name] = saved[name]
    if restored:
        log.info("resuming with the saved run's options: %s (give an option again to change it)",
                 ", ".join(f"{k}={v}" for k, v in restored.items()))
    if changed:
        log.info("options changed from the saved run: %s",
                 ", ".join(f"{k}={getattr(args, k)} (the saved run had {v})" for k, v in changed.items()))
    return changed


def where_it_stopped(model):
    folds = model.arch.training.folds
    if folds == 1:
        return f"after epoch {model.position.get('epoch', 0)}"
    finished = finished_networks(model.position)
    last = {}
    for entry in model.history:
        last[entry.get("fold", 1)] = entry["epoch"]
    if len(finished) >= folds:
        epochs = sorted(set(last.values()))
        return (f"with the {folds} networks of a {folds}-fold cross-validation, each after its epoch "
                f"{'/'.join(map(str, epochs))}")
    first = min(set(range(folds)) - finished) + 1
    return f"at network {first} of a {folds}-fold cross-validation, after its epoch {last.get(first, 0)}"


def run_options(args):
    """The options of this run, as the model file records them."""
    return {k: v for k, v in vars(args).items() if k not in ("explicit", "from_yaml", "yaml_file")}
