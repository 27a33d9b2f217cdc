"""Setting up the model to train: a new one from the LF metadata, or a saved one resumed."""

import logging

import numpy as np

from .. import architecture, lfdata, model_io, vocab
from ..config import parse_maxlens
from ..model_io import Model
from ..pretrained import init_pretrained, prepare_pretrained
from .crossval import folds_for
from .data import read_datasets, split

log = logging.getLogger("filejsonpytorch")


def new_model(args):
    """-> (the model built from the metadata, training set, validation set or None); the
    sets are None with --notrain, which reads no data."""
    arch_file = architecture.load_arch_file(args.arch) if args.arch else None
    meta = lfdata.read_meta(args.metafile)
    attributes = meta["featureInfo"].get("attributes", [])
    schema = lfdata.schema_from_meta(meta, args.metafile)
    peeked = lfdata.peek_first_values(lfdata.data_file_for(args.metafile), schema.is_sequence)
    lfdata.detect_list_features(schema, peeked)
    schema.maxlens = parse_maxlens(args.maxlens, schema, attributes)
    settings = vocab.embedding_settings(schema, attributes, vocab.parse_embs(args.embs))
    for emb in settings.values():
        emb.add_file_words = args.emb_addwords
    vocabs = vocab.build_vocabs(schema, meta["featureStats"], settings)
    if args.chars:
        sources = architecture.add_char_features(schema, vocabs, meta["featureStats"])
        if sources:
            log.info("character features for %s: a CNN over each word's characters, so unseen words are not blind",
                     ", ".join(sources))
    pretrained = prepare_pretrained(vocabs, args.datadir, np.random.default_rng(args.seed))
    train_set = val_set = None
    folds = args.folds or 1
    if not args.notrain:
        data, val_set = read_datasets(args, schema, vocabs)
        folds = folds_for(args, schema, len(data), arch_file)
        train_set, val_set = (data, val_set) if folds > 1 or val_set is not None else split(data, args.valsize, args.seed)
        fit_vocabs_to_training(schema, vocabs, train_set, val_set, pretrained)
    arch = make_arch(args, schema, vocabs, arch_file, folds)
    network = architecture.build_network(arch)
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


def make_arch(args, schema, vocabs, arch_file=None, folds=1):
    # an --arch file's module gets its own defaults under the file's settings
    module = args.module or (arch_file or {}).get("module")
    if not module:
        module, why = architecture.default_module(schema)
        log.info("module %s: %s", module, why)
    arch = architecture.default_architecture(schema, vocabs, module, args.ngram_layer)
    if arch_file is not None:
        arch = architecture.merge_arch_file(args.arch, arch_file, arch)
    arch["hparams"] = architecture.set_hparams(arch, args.hparams)
    changed, why = architecture.data_hparams(module, schema)
    kept = {k: v for k, v in changed.items() if arch["hparams"][k] == v}
    if kept:
        log.info("module %s with %s: %s", module, ", ".join(f"{k}={v}" for k, v in kept.items()), why)
    if args.ensemble is not None:
        arch["ensemble"] = args.ensemble
    if folds > 1:
        arch["ensemble"] = arch["training"]["folds"] = folds
        log.info("%d-fold cross-validation: %d networks, each trained on %d%% of the data and validated on the rest; "
                 "application averages their predictions", folds, folds, round(100 * (folds - 1) / folds))
    elif arch["ensemble"] > 1:
        log.info("an ensemble of %d networks, trained together; application averages their probabilities", arch["ensemble"])
    if arch["ignore_nominal"]:
        names = [schema.nominal[i].name for i in arch["ignore_nominal"]]
        log.info("module %s reads whole sequences, so it leaves out the %d window features of neighbouring "
                 "elements (%s); to use them, pass --arch with \"ignore_nominal\": []",
                 arch["module"], len(names), ", ".join(names))
    return with_training_options(arch, args)


def with_training_options(arch, args):
    """--learningrate and --batchsize override the architecture's training section."""
    if args.learningrate is not None:
        arch["training"]["learningrate"] = args.learningrate
    if args.batchsize is not None:
        arch["training"]["batchsize"] = args.batchsize
    return arch


def resumed_model(args):
    """The saved model, to train further: its network, history, position and optimizer
    state (a cross-validation model has none: its networks' optimizers start afresh)."""
    model = model_io.read_model(args.modelprefix)
    arch = with_training_options(model.arch, args)
    if args.hparams and architecture.set_hparams(arch, args.hparams) != arch["hparams"]:
        log.warning("--hparams ignored: a resumed network keeps the hyper-parameters it was built with")
    if args.ensemble is not None and args.ensemble != arch.get("ensemble", 1):
        log.warning("--ensemble ignored: a resumed network keeps the %d network(s) it was built with", arch.get("ensemble", 1))
    if args.folds is not None and args.folds != architecture.cross_validation_folds(arch):
        log.warning("--folds ignored: a resumed model keeps the %d fold(s) it was trained with",
                    architecture.cross_validation_folds(arch))
    log.info("resuming %s after epoch %d", model_io.json_path(args.modelprefix), model.position.get("epoch", 0))
    model.options = run_options(args)
    return model


def run_options(args):
    """The options of this run, as the model file records them."""
    return {k: v for k, v in vars(args).items() if k != "explicit"}
