"""The architecture chosen for the data: `architecture_for` builds it from the metadata,
merges an --arch file over it and applies the options, in this one place. Each module
owns its data-dependent hyper-parameters (`data_hparams`) and its list layers.
"""

import copy
import logging

from .chunks import is_chunk_labelling
from .architecture import LIST_LAYERS, Architecture, Embedding, Training, merge_arch_file, set_hparams
from .errors import UsageError
from .lfdata import Feature
from .network import find_module
from .vocab import CHARS_EMB_ID, build_char_vocab

log = logging.getLogger("filejsonpytorch")

DEFAULT_MODULE = {"classification": "mlp", "regression": "mlp", "sequence": "bilstm_tagger"}
CHUNK_MODULE = "bilstm_crf"
# word dropout 4 and the clipping: measured in the README ("Training")
TRAINING_DEFAULTS = {"learningrate": 0.001, "batchsize": 32, "word_dropout": 4.0, "grad_clip": 5.0}
SEQUENCE_LEARNING_RATE = 0.002  # taggers: better and faster on our NER and POS validation splits
ONEHOT_MAX_VALUES = 20
MAX_AUTO_DIMS = 100
CHAR_MIN_VOCAB = 500
#: the LF's feature of the previous instances' labels; the host never fills it when applying
PREVIOUS_LABEL = "gate.LF.target"


def task_of(schema):
    if schema.is_sequence:
        return "sequence"
    return "regression" if schema.target_kind == "numeric" else "classification"


def auto_dims(vocab_size):
    """Embedding size grows sub-linearly with the vocabulary (about 1.6 * V^0.56)."""
    return int(min(MAX_AUTO_DIMS, max(4, round(1.6 * vocab_size ** 0.56))))


def embedding_spec(vocab):
    settings = vocab.settings
    train = settings.train or ("onehot" if len(vocab) <= ONEHOT_MAX_VALUES and not settings.dims else "yes")
    dims = len(vocab) if train == "onehot" else settings.dims or auto_dims(len(vocab))
    return Embedding(len(vocab), dims, train)


def char_sources(schema, vocabs):
    """The word feature whose characters are worth reading: of the nominal features that
    hold the instance's own value (kind A, or window position 0) with at least
    CHAR_MIN_VOCAB values, the one with the largest vocabulary; never previous labels."""
    candidates = [f for f in schema.nominal
                  if (f.kind == "A" or f.name.endswith("╬L0")) and PREVIOUS_LABEL not in f.name
                  and len(vocabs[f.emb_id]) >= CHAR_MIN_VOCAB]
    if not candidates:
        return []
    return [max(candidates, key=lambda f: len(vocabs[f.emb_id]))]


def add_char_features(schema, vocabs, feature_stats):
    """Adds a character list per word-like feature (see char_sources); -> their names."""
    sources = char_sources(schema, vocabs)
    if sources:
        vocabs[CHARS_EMB_ID] = build_char_vocab(sources, feature_stats)
        for f in sources:
            schema.features.append(Feature(f.index, f.name, f.kind, f.datatype, f.attrid, "chars", CHARS_EMB_ID))
    return [f.name for f in sources]


def list_spec(feature, ngram_layer, task):
    if feature.role == "chars":
        return {"emb": feature.emb_id, "layer": "cnn", "widths": [3], "channels": 50}
    layer = ngram_layer or default_ngram_layer(task)
    return {"emb": feature.emb_id, "layer": layer, **copy.deepcopy(LIST_LAYERS[layer])}


def default_ngram_layer(task):
    """For classification the mean of the list's vectors, beside naive Bayes over its words
    and word pairs: the CNN took three times as long and gave no more held-out accuracy on
    sentence polarity (README); for regression, with no naive Bayes, the CNN."""
    return "mean" if task == "classification" else "cnn"


def neighbour_columns(schema):
    """The nominal columns of window positions other than the element's own (L features
    other than ╬L0): a network that reads the whole sequence sees those values at the
    neighbouring elements themselves."""
    return [i for i, f in enumerate(schema.nominal) if f.kind == "L" and not f.name.endswith("╬L0")]


def previous_label_columns(schema):
    """The nominal columns of previous-label features (`Token┆gate.LF.target╬L-1`): gold
    labels in the training export, but always the missing value when the host applies a
    model, so a network trained on them learns from what it will never be given."""
    return [i for i, f in enumerate(schema.nominal) if PREVIOUS_LABEL in f.name]


def ignored_columns(schema, module_class, previous_labels=False):
    """The nominal columns the network leaves out by default: other window positions for a
    module that reads whole sequences, and previous labels unless `previous_labels`."""
    ignored = set(neighbour_columns(schema)) if schema.is_sequence and module_class.reads_neighbours else set()
    if not previous_labels:
        ignored.update(previous_label_columns(schema))
    return sorted(ignored)


def default_module(schema):
    """-> (module name, why)."""
    task = task_of(schema)
    if task == "sequence" and is_chunk_labelling(schema.labels):
        return CHUNK_MODULE, "chunk labels (Type|B, Type|I, O): a CRF scores whole label sequences and keeps chunks valid"
    return DEFAULT_MODULE[task], f"the default for {task}"


def default_architecture(schema, vocabs, module=None, ngram_layer=None, previous_labels=False):
    task = task_of(schema)
    module = module or default_module(schema)[0]
    module_class = find_module(module)
    check_task(module_class, module, task)
    used = {f.emb_id for f in schema.nominal + schema.lists}
    training = {**TRAINING_DEFAULTS, **({"learningrate": SEQUENCE_LEARNING_RATE} if task == "sequence" else {})}
    return Architecture(
        module=module,
        task=task,
        n_outputs=len(schema.labels) if schema.labels else 1,
        labels=schema.labels,
        embeddings={k: embedding_spec(v) for k, v in vocabs.items() if k in used},
        nominal=[f.emb_id for f in schema.nominal],
        ignore_nominal=ignored_columns(schema, module_class, previous_labels),
        numeric=len(schema.numeric),
        lists=[list_spec(f, ngram_layer, task) for f in schema.lists],
        ensemble=1,
        hparams={**module_class.hparams, **module_class.data_hparams(schema)[0]},
        training=Training(**training),
    )


def check_task(module_class, name, task):
    tasks = getattr(module_class, "tasks", None)
    if tasks and task not in tasks:
        raise UsageError(f"module {name!r} is for {', '.join(sorted(tasks))}, but this data is {task}")


def read_arch_file(path, arch_file, default):
    """A user-edited architecture over the default one; its module must fit the task."""
    arch = merge_arch_file(path, arch_file, default)
    module_class = find_module(arch.module)
    check_task(module_class, arch.module, arch.task)
    arch.hparams = set_hparams(arch.hparams, module_class.hparams, arch.module, arch_file.get("hparams", {}),
                               f"--arch {path}: hparams")
    return arch


def architecture_for(args, schema, vocabs, arch_file=None, folds=1):
    """The architecture to train: the module's defaults for this data, under the --arch
    file's settings (an --arch file's module gets its own defaults), then the options."""
    module = args.module or (arch_file or {}).get("module")
    if not module:
        module, why = default_module(schema)
        log.info("module %s: %s", module, why)
    arch = default_architecture(schema, vocabs, module, args.ngram_layer, args.previous_labels)
    if arch_file is not None:
        arch = read_arch_file(args.arch, arch_file, arch)
    arch.hparams = set_hparams(arch.hparams, find_module(arch.module).hparams, arch.module, args.hparams)
    changed, why = find_module(module).data_hparams(schema)
    kept = {k: v for k, v in changed.items() if arch.hparams[k] == v}
    if kept:
        log.info("module %s with %s: %s", module, ", ".join(f"{k}={v}" for k, v in kept.items()), why)
    if args.ensemble is not None:
        arch.ensemble = args.ensemble
    if folds > 1:
        arch.ensemble = arch.training.folds = folds
    log_choices(arch, schema)
    return arch.with_training_options(args.learningrate, args.batchsize)


def log_choices(arch, schema):
    if arch.training.folds > 1:
        folds = arch.training.folds
        log.info("%d-fold cross-validation: %d networks, each trained on %d%% of the data and validated on the rest; "
                 "application averages their predictions", folds, folds, round(100 * (folds - 1) / folds))
    elif arch.ensemble > 1:
        log.info("an ensemble of %d networks, trained together; application averages their probabilities", arch.ensemble)
    averaged = [spec["emb"] for spec in arch.lists if spec["layer"] == "mean"]
    if averaged:
        log.info("n-gram lists (%s) averaged: the CNN took three times as long for no more held-out accuracy "
                 "(README); --ngram_layer cnn to convolve them", ", ".join(averaged))
    weight = arch.hparams.get("naive_bayes") if arch.module == "mlp" and arch.task == "classification" else None
    if arch.lists and weight:
        log.info("naive Bayes over the lists' words and word pairs adds its scores with weight %g (weight 1 scored "
                 "higher on held-out data than 2, README); --hparams naive_bayes=0 leaves it out", weight)
    log_ignored_columns(arch, schema)


def log_ignored_columns(arch, schema):
    ignored = set(arch.ignore_nominal)
    previous = [schema.nominal[i].name for i in previous_label_columns(schema) if i in ignored]
    neighbours = [schema.nominal[i].name for i in sorted(ignored) if schema.nominal[i].name not in previous]
    if neighbours:
        log.info("module %s reads whole sequences, so it leaves out the %d window features of neighbouring "
                 "elements (%s); to use them, pass --arch with \"ignore_nominal\": []",
                 arch.module, len(neighbours), ", ".join(neighbours))
    if previous:
        log.info("left out the %d previous-label features (%s): the GATE host never fills gate.LF.target when it "
                 "applies a model, so they would hold gold labels in training and nothing in use; "
                 "--previous_labels true keeps them (if you fill them yourself)", len(previous), ", ".join(previous))

