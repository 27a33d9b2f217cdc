"""Building the network from the feature metadata.

`default_architecture` applies our heuristics to the schema and vocabularies and returns
the architecture as a plain JSON-able dict; `build_network` turns such a dict into a
module. The dict is printed, written to the training log and stored in the model, and a
user can edit a copy and pass it back with `--arch FILE`.
"""

import importlib
import importlib.util
import inspect
import json
import os
import sys
from pathlib import Path

from .errors import ModelError, UsageError
from .lfdata import Feature
from .vocab import CHARS_EMB_ID, build_char_vocab
from .modules.base import LFModule
from .modules.ensemble import Ensemble
from .modules.crf import looks_like_chunk_labels

DEFAULT_MODULE = {"classification": "mlp", "regression": "mlp", "sequence": "bilstm_tagger"}
CHUNK_MODULE = "bilstm_crf"
# word dropout 4 against 1, with the default validation split: POS 0.945/0.944 vs 0.944/0.943
# (seeds 1, 2), NER F1 0.529 vs 0.513 (3 seeds), sentence polarity 0.776 vs 0.773 (5-fold CV)
TRAINING_DEFAULTS = {"learningrate": 0.001, "batchsize": 32, "word_dropout": 4.0, "grad_clip": 5.0}
SEQUENCE_LEARNING_RATE = 0.002  # taggers: better and faster on our NER and POS validation splits
# fixed-length feature vectors (numbers and nominal values, no n-gram lists) want a deeper,
# wider MLP than its defaults. 5-fold CV, 3 layers of 500 against 1 of 200: ionosphere
# accuracy 0.946 vs 0.910, window POS (class-window-pos1) 0.739 vs 0.724, abalone RMSE
# 2.48 vs 2.47 (3.06 vs 3.16 on 3,857 other UCI abalone rows)
VECTOR_MLP_HPARAMS = {"hidden": 500, "layers": 3}
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
    return {"vocab_size": len(vocab), "dims": dims, "train": train}


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


def list_spec(feature, ngram_layer):
    if feature.role == "chars":
        return {"emb": feature.emb_id, "layer": "cnn", "widths": [3], "channels": 50}
    if ngram_layer == "lstm":
        return {"emb": feature.emb_id, "layer": "lstm", "hidden": 100}
    return {"emb": feature.emb_id, "layer": "cnn", "widths": [3, 4, 5], "channels": 100}


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
    if task == "sequence" and looks_like_chunk_labels(schema.labels):
        return CHUNK_MODULE, "chunk labels (Type|B, Type|I, O): a CRF scores whole label sequences and keeps chunks valid"
    return DEFAULT_MODULE[task], f"the default for {task}"


def data_hparams(module, schema):
    """-> (the hyper-parameters the data changes from the module's defaults, why)."""
    if module == "mlp" and not schema.lists:
        return VECTOR_MLP_HPARAMS, "fixed-length feature vectors (no n-gram lists) want a deeper, wider network"
    return {}, None


def default_architecture(schema, vocabs, module=None, ngram_layer="cnn", previous_labels=False):
    task = task_of(schema)
    module = module or default_module(schema)[0]
    module_class = find_module(module)
    check_task(module_class, module, task)
    used = {f.emb_id for f in schema.nominal + schema.lists}
    return {
        "module": module,
        "task": task,
        "n_outputs": len(schema.labels) if schema.labels else 1,
        "labels": schema.labels,
        "embeddings": {k: embedding_spec(v) for k, v in vocabs.items() if k in used},
        "nominal": [f.emb_id for f in schema.nominal],
        "ignore_nominal": ignored_columns(schema, module_class, previous_labels),
        "numeric": len(schema.numeric),
        "lists": [list_spec(f, ngram_layer) for f in schema.lists],
        "ensemble": 1,
        "hparams": {**module_class.hparams, **data_hparams(module, schema)[0]},
        "training": {**TRAINING_DEFAULTS, **({"learningrate": SEQUENCE_LEARNING_RATE} if task == "sequence" else {})},
    }


def check_task(module_class, name, task):
    tasks = getattr(module_class, "tasks", None)
    if tasks and task not in tasks:
        raise UsageError(f"module {name!r} is for {', '.join(sorted(tasks))}, but this data is {task}")


def read_arch_file(path, default):
    """A user-edited architecture: it must fit the data (same inputs and outputs)."""
    return merge_arch_file(path, load_arch_file(path), default)


def load_arch_file(path):
    try:
        with open(path, encoding="utf-8") as f:
            arch = json.load(f)
    except OSError as e:
        raise UsageError(f"--arch {path}: cannot read it ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise UsageError(f"--arch {path}: not valid JSON ({e})") from None
    if not isinstance(arch, dict):
        raise UsageError(f"--arch {path}: expected a JSON object like the one training prints")
    return arch


def joint_ensemble_size(arch):
    """The size of the ensemble trained together that an architecture asks for: 1 for a
    single network, and for the ensemble of a cross-validation (its "folds" set it)."""
    if not isinstance(arch, dict) or cross_validation_folds(arch) > 1:
        return 1
    return arch.get("ensemble", 1)


def cross_validation_folds(arch):
    folds = arch["training"].get("folds", 1) if isinstance(arch.get("training"), dict) else 1
    return folds if type(folds) is int else 1


def merge_arch_file(path, arch, default):
    for key in ("task", "n_outputs", "labels", "nominal", "numeric"):
        if arch.get(key, default[key]) != default[key]:
            raise UsageError(f"--arch {path}: {key!r} is {arch[key]!r} but this data needs {default[key]!r}")
    unknown = sorted(set(arch.get("embeddings", {})) - set(default["embeddings"]))
    if unknown:
        raise UsageError(f"--arch {path}: unknown embedding id {unknown[0]!r}; this data has {', '.join(default['embeddings'])}")
    merged = {**default, **arch}
    merged["hparams"] = {**default["hparams"], **arch.get("hparams", {})}
    merged["training"] = {**default["training"], **arch.get("training", {})}
    if cross_validation_folds(arch) > 1:
        # the file of a cross-validation ensemble: its size comes from --folds again
        merged["ensemble"] = 1
    merged["training"].pop("folds", None)
    # vocabulary sizes come from the data, whatever the file says
    merged["embeddings"] = {k: {**spec, **arch.get("embeddings", {}).get(k, {}), "vocab_size": spec["vocab_size"]}
                            for k, spec in default["embeddings"].items()}
    if [spec.get("emb") for spec in merged["lists"]] != [spec["emb"] for spec in default["lists"]]:
        raise UsageError(f"--arch {path}: 'lists' must have one entry per list input, for embeddings "
                         f"{[spec['emb'] for spec in default['lists']]}")
    ignored = merged["ignore_nominal"]
    if not (isinstance(ignored, list) and all(type(i) is int and 0 <= i < len(merged["nominal"]) for i in ignored)):
        raise UsageError(f"--arch {path}: 'ignore_nominal' must be a list of nominal column numbers "
                         f"(0 to {len(merged['nominal']) - 1}), got {json.dumps(ignored)}")
    if not valid_ensemble(merged["ensemble"]):
        raise UsageError(f"--arch {path}: 'ensemble' must be a whole number of networks, 1 or more, "
                         f"got {json.dumps(merged['ensemble'])}")
    check_task(find_module(merged["module"]), merged["module"], merged["task"])
    return merged


def valid_ensemble(size):
    return type(size) is int and size >= 1


def set_hparams(arch, settings):
    """The architecture's hyper-parameters with `--hparams` settings applied; each must be
    one the module declares, with a value of the declared type."""
    declared = find_module(arch["module"]).hparams
    hparams = dict(arch["hparams"])
    for name, value in settings.items():
        if name not in declared:
            raise UsageError(f"--hparams: module {arch['module']!r} has no hyper-parameter {name!r}; "
                             f"it has {', '.join(f'{k}={json.dumps(v)}' for k, v in declared.items()) or 'none'}")
        hparams[name] = _hparam_value(name, value, declared[name])
    return hparams


def _hparam_value(name, value, default):
    kind = type(default)
    if kind is float and type(value) is int:
        return float(value)
    if default is None or type(value) is kind:
        return value
    raise UsageError(f"--hparams: {name} must be {kind.__name__} like its default {json.dumps(default)}, "
                     f"got {json.dumps(value)}")


def module_search_path():
    """User modules first: `$WRAPPER_HOME/modules/`, the `modules/` folder beside this
    package (the wrapper directory's, when run from there), then the package's own."""
    package = Path(__file__).resolve().parent
    paths = [package.parent / "modules", package / "modules"]
    if os.environ.get("WRAPPER_HOME"):
        paths.insert(0, Path(os.environ["WRAPPER_HOME"]) / "modules")
    return list(dict.fromkeys(paths))


def find_module(name):
    """The LFModule subclass defined in modules/NAME.py."""
    if not name.isidentifier():
        raise UsageError(f"--module {name!r}: a module name is a Python file name without .py")
    for directory in module_search_path():
        path = directory / f"{name}.py"
        if path.is_file():
            return _module_class(_import_file(name, path), name, path)
    available = sorted({p.stem for d in module_search_path() if d.is_dir() for p in d.glob("*.py")
                        if not p.stem.startswith("_") and p.stem not in ("base", "encoder", "crf", "ensemble", "template")})
    raise ModelError(f"module {name!r} not found in {', '.join(map(str, module_search_path()))}; "
                     f"available: {', '.join(available)}")


def _import_file(name, path):
    package = "filejsonpytorch.modules"
    if path.parent == Path(__file__).resolve().parent / "modules":
        return importlib.import_module(f"{package}.{name}")
    spec = importlib.util.spec_from_file_location(f"{package}.user_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise ModelError(f"{path}: the module could not be loaded: {type(e).__name__}: {e}") from e
    return module


def _module_class(module, name, path):
    classes = [c for _, c in inspect.getmembers(module, inspect.isclass)
               if issubclass(c, LFModule) and c is not LFModule and c.__module__ == module.__name__]
    if len(classes) != 1:
        raise ModelError(f"{path}: expected one LFModule subclass, found {len(classes)}")
    return classes[0]


def build_network(arch):
    """The module, or an Ensemble of `arch["ensemble"]` of them (1 when not given)."""
    module_class = find_module(arch["module"])
    size = arch.get("ensemble", 1)
    if not valid_ensemble(size):
        raise ValueError(f"'ensemble' must be a whole number of networks, got {size!r}")
    if size == 1:
        return module_class(arch)
    return Ensemble(arch, [module_class(arch) for _ in range(size)])


def describe(arch, network=None):
    """The architecture as readable JSON, with the parameter count when a network is given."""
    text = json.dumps(arch, indent=2, ensure_ascii=False)
    if network is not None:
        trainable = sum(p.numel() for p in network.parameters() if p.requires_grad)
        total = sum(p.numel() for p in network.parameters())
        text += f"\n{network}\nparameters: {total:,} ({trainable:,} trainable)"
    return text
