"""The architecture: what the network is, typed, in one place.

An `Architecture` is what a model is built from and saved with: the module, the inputs it
reads, its hyper-parameters, the ensemble size and the training section. Its JSON form
(`to_json`, `from_json`) is printed by training, written to `PREFIX.arch.json` and stored
in `PREFIX.json`; a user edits a copy and passes it back with `--arch FILE`
(`merge_arch_file`). How it is chosen from the metadata: default_architecture.py.

The line between the two: the architecture holds what defines the trained network and
how it learns (saved, editable with `--arch`); run options (epochs, patience, validation
schedule, seed, device, reporting) stay on the command line and change no architecture.
"""

import copy
import dataclasses
import json
from dataclasses import dataclass, field

from .errors import UsageError


@dataclass
class Embedding:
    """How the values of one embedding id become vectors."""

    vocab_size: int  # vocabulary size, padding (0) and out-of-vocabulary (1) included
    dims: int  # vector size; for one-hot the vocabulary size
    train: str  # "yes": learned; "no": fixed; "mapping": fixed plus a learned linear map; "onehot"


@dataclass
class Training:
    """How the network learns; None: the setting is off (models saved before it existed)."""

    learningrate: float  # Adam's learning rate (--learningrate)
    batchsize: int  # instances or sequences per batch (--batchsize)
    word_dropout: float = None  # alpha of word dropout, see training/word_dropout.py
    grad_clip: float = None  # the gradient norm is clipped at this
    folds: int = 1  # networks trained by cross-validation (--folds); 1: one network

    def to_json(self):
        # a setting that is off is left out, as in the models saved before it existed
        d = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        if self.folds == 1:
            del d["folds"]
        return d


@dataclass
class Architecture:
    """Every field is a key of the JSON form, in this order."""

    module: str  # the network module: modules/NAME.py
    task: str  # "classification", "regression" or "sequence"
    n_outputs: int  # number of labels (1 for regression)
    labels: list  # the label strings, in the order of the network's outputs
    embeddings: dict  # embedding id -> Embedding
    nominal: list  # the embedding id of each nominal feature column
    ignore_nominal: list = field(default_factory=list)  # nominal columns the network leaves out
    numeric: int = 0  # number of numeric feature columns
    # one dict per list (n-gram) feature: {"emb": id, "layer": "cnn", "widths": [..], "channels": N}
    # or {"emb": id, "layer": "lstm", "hidden": N} or {"emb": id, "layer": "mean"} (the
    # average of the list's vectors); a module may choose its own (list_layers)
    lists: list = field(default_factory=list)
    ensemble: int = 1  # networks trained together and averaged (a cross-validation's: its folds)
    hparams: dict = field(default_factory=dict)  # the module's hyper-parameters (--hparams)
    training: Training = None

    def to_json(self):
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["embeddings"] = {k: dataclasses.asdict(e) for k, e in self.embeddings.items()}
        d["training"] = self.training.to_json()
        return d

    @classmethod
    def from_json(cls, d):
        """From the JSON form; ValueError for a key it does not have or a value of no use."""
        if not isinstance(d, dict):
            raise ValueError("the architecture must be a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r}; the keys are {', '.join(names)}")
        if not valid_ensemble(d.get("ensemble", 1)):
            raise ValueError(f"'ensemble' must be a whole number of networks, 1 or more, got {json.dumps(d['ensemble'])}")
        try:
            embeddings = {k: Embedding(**e) for k, e in d["embeddings"].items()}
            training = Training(**d["training"])
        except TypeError as e:
            raise ValueError(f"'embeddings' or 'training': {e}") from None
        return cls(**{**d, "embeddings": embeddings, "training": training})

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def with_training_options(self, learningrate=None, batchsize=None):
        """--learningrate and --batchsize override the training section."""
        if learningrate is not None:
            self.training.learningrate = learningrate
        if batchsize is not None:
            self.training.batchsize = batchsize
        return self


def valid_ensemble(size):
    return type(size) is int and size >= 1


def load_arch_file(path):
    """The JSON object of an --arch file, as the user wrote it (see merge_arch_file)."""
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


def file_folds(arch_file):
    """The folds an --arch file's training section names (1 for none, or not a number)."""
    training = arch_file.get("training") if isinstance(arch_file, dict) else None
    folds = training.get("folds", 1) if isinstance(training, dict) else 1
    return folds if type(folds) is int else 1


def file_ensemble_size(arch_file):
    """The ensemble trained together that an --arch file asks for (1: none)."""
    if not isinstance(arch_file, dict) or file_folds(arch_file) > 1:
        return 1
    return arch_file.get("ensemble", 1)


def merge_arch_file(path, arch, default):
    """A user-edited architecture (a JSON object, possibly partial) over the default one for
    this data: it must fit the data (same inputs and outputs)."""
    default = default.to_json()
    for key in ("task", "n_outputs", "labels", "nominal", "numeric"):
        if arch.get(key, default[key]) != default[key]:
            raise UsageError(f"--arch {path}: {key!r} is {arch[key]!r} but this data needs {default[key]!r}")
    unknown = sorted(set(arch.get("embeddings", {})) - set(default["embeddings"]))
    if unknown:
        raise UsageError(f"--arch {path}: unknown embedding id {unknown[0]!r}; this data has {', '.join(default['embeddings'])}")
    merged = {**default, **arch}
    merged["hparams"] = {**default["hparams"], **arch.get("hparams", {})}
    merged["training"] = {**default["training"], **arch.get("training", {})}
    if file_folds(arch) > 1:
        # the file of a cross-validation ensemble: its size comes from --folds again
        merged["ensemble"] = 1
    merged["training"].pop("folds", None)
    # vocabulary sizes come from the data, whatever the file says
    merged["embeddings"] = {k: {**spec, **arch.get("embeddings", {}).get(k, {}), "vocab_size": spec["vocab_size"]}
                            for k, spec in default["embeddings"].items()}
    _check_inputs(path, merged, default)
    merged["lists"] = [_list_layer(path, i, spec) for i, spec in enumerate(merged["lists"])]
    _check_values(path, merged)
    try:
        return Architecture.from_json(merged)
    except ValueError as e:
        raise UsageError(f"--arch {path}: {e}") from None


def _check_inputs(path, merged, default):
    if [spec.get("emb") for spec in merged["lists"]] != [spec["emb"] for spec in default["lists"]]:
        raise UsageError(f"--arch {path}: 'lists' must have one entry per list input, for embeddings "
                         f"{[spec['emb'] for spec in default['lists']]}")
    ignored = merged["ignore_nominal"]
    if not (isinstance(ignored, list) and all(type(i) is int and 0 <= i < len(merged["nominal"]) for i in ignored)):
        raise UsageError(f"--arch {path}: 'ignore_nominal' must be a list of nominal column numbers "
                         f"(0 to {len(merged['nominal']) - 1}), got {json.dumps(ignored)}")


#: (what a value must be, the test) per training setting of an --arch file
TRAINING_RULES = {
    "learningrate": ("a positive number", lambda v: _number(v) and 0 < v < float("inf")),
    "batchsize": ("a positive whole number", lambda v: type(v) is int and v > 0),
    "word_dropout": ("a number 0 or more, or null", lambda v: v is None or (_number(v) and v >= 0)),
    "grad_clip": ("a number 0 or more, or null", lambda v: v is None or (_number(v) and v >= 0)),
    "folds": ("a positive whole number", lambda v: type(v) is int and v > 0),
}
EMBEDDING_TRAIN = ("yes", "no", "mapping", "onehot")
#: the layers a list feature can go through, with the sizes a layer gets when a file leaves them out
LIST_LAYERS = {"mean": {}, "cnn": {"widths": [3, 4, 5], "channels": 100}, "lstm": {"hidden": 100}}
#: what each size must be, the test
LIST_SIZES = {"widths": ("a non-empty list of positive whole numbers",
                         lambda v: isinstance(v, list) and v and all(type(w) is int and w > 0 for w in v)),
              "channels": ("a positive whole number", lambda v: type(v) is int and v > 0),
              "hidden": ("a positive whole number", lambda v: type(v) is int and v > 0)}


def _number(value):
    return type(value) in (int, float)


def _list_layer(path, index, spec):
    """An --arch file's entry for list input `index`, checked: a known layer with usable
    sizes, the layer's defaults where the file leaves them out."""
    where = f"--arch {path}: lists[{index}] (embedding {spec['emb']!r})"
    layer = spec.get("layer")
    if layer not in LIST_LAYERS:
        raise UsageError(f"{where}: layer must be one of {', '.join(LIST_LAYERS)}, got {json.dumps(layer)}")
    spec = {**spec, **{name: spec.get(name, copy.deepcopy(size)) for name, size in LIST_LAYERS[layer].items()}}
    for name in LIST_LAYERS[layer]:
        expected, valid = LIST_SIZES[name]
        if not valid(spec[name]):
            raise UsageError(f"{where}: {name} must be {expected}, got {json.dumps(spec[name])}")
    return spec


def _check_values(path, merged):
    """The --arch file's training settings and embeddings: known keys, usable values."""
    for key, value in merged["training"].items():
        if key not in TRAINING_RULES:
            raise UsageError(f"--arch {path}: training has no setting {key!r}; it has {', '.join(TRAINING_RULES)}")
        expected, valid = TRAINING_RULES[key]
        if not valid(value):
            raise UsageError(f"--arch {path}: training.{key} must be {expected}, got {json.dumps(value)}")
    for emb_id, spec in merged["embeddings"].items():
        if not (type(spec.get("dims")) is int and spec["dims"] > 0 and spec.get("train") in EMBEDDING_TRAIN):
            raise UsageError(f"--arch {path}: embeddings.{emb_id} needs dims (a positive whole number) and train "
                             f"({', '.join(EMBEDDING_TRAIN)}), got {json.dumps(spec)}")


def set_hparams(hparams, declared, module, settings, source="--hparams"):
    """`hparams` with the settings of `source` (--hparams, or an --arch file's hparams)
    applied; each must be one the module declares (`declared`: its defaults), with a value
    of the declared type."""
    if not isinstance(settings, dict):
        raise UsageError(f"{source}: expected name: value settings, got {json.dumps(settings)}")
    hparams = dict(hparams)
    for name, value in settings.items():
        if name not in declared:
            raise UsageError(f"{source}: module {module!r} has no hyper-parameter {name!r}; "
                             f"it has {', '.join(f'{k}={json.dumps(v)}' for k, v in declared.items()) or 'none'}")
        hparams[name] = _hparam_value(name, value, declared[name], source)
    return hparams


def _hparam_value(name, value, default, source):
    kind = type(default)
    if kind is float and type(value) is int:
        return float(value)
    if default is None or type(value) is kind:
        return value
    raise UsageError(f"{source}: {name} must be {kind.__name__} like its default {json.dumps(default)}, "
                     f"got {json.dumps(value)}")


def describe(arch, network=None):
    """The architecture as readable JSON, with the parameter count when a network is given."""
    text = json.dumps(arch.to_json(), indent=2, ensure_ascii=False)
    if network is not None:
        trainable = sum(p.numel() for p in network.parameters() if p.requires_grad)
        total = sum(p.numel() for p in network.parameters())
        text += f"\n{network}\nparameters: {total:,} ({trainable:,} trainable)"
    return text
