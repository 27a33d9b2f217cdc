"""Command-line options of the trainer and the application program, and the optional
`FileJsonPyTorch.yaml` (or `.yaml.txt`) in the data directory that may set the same
options (the command line wins). Upper-case keys and the host's own `shellcmd` and
`shellparms` belong to the GATE host and are ignored here.
"""

import argparse
import json
import math
import os
import re
import sys

import yaml

from .errors import UsageError

YAML_NAMES = ("FileJsonPyTorch.yaml", "FileJsonPyTorch.yaml.txt")
HOST_KEYS = {"shellcmd", "shellparms"}


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad option as one UsageError line. Options are taken by
    their exact names only, as in FileJsonPyTorch.yaml (no abbreviations)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see --help)")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: ...)" to an option's help unless the help already tells it."""

    def _get_help_string(self, action):
        if "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def boolean(text):
    value = str(text).strip().lower()
    if value in ("true", "yes", "1", "on"):
        return True
    if value in ("false", "no", "0", "off"):
        return False
    if value == "auto":
        return None
    raise argparse.ArgumentTypeError(f"expected true, false or auto, got {text!r}")


def positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return value


def positive_float(text):
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def hparam_settings(text):
    """`name=value,...` -> {name: value}; values are read as JSON (numbers, true/false,
    [lists]) where they can be, else kept as text. A YAML mapping is taken as it is."""
    if isinstance(text, dict):
        return {str(k): v for k, v in text.items()}
    settings = {}
    for part in (p.strip() for p in re.split(r",(?![^\[]*\])", text) if p.strip()):
        name, sep, value = part.partition("=")
        if not sep or not name.strip().isidentifier():
            raise argparse.ArgumentTypeError(f"expected name=value,... but got {part!r}")
        try:
            settings[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            settings[name.strip()] = value.strip()
    return settings


def train_parser():
    p = Parser(prog="filejsonpytorch-train", description="Train a network on a GATE LearningFramework export.",
               formatter_class=HelpFormatter)
    p.add_argument("metafile", help="the LF meta file, e.g. DATADIR/crvd.meta.json (the data file is found next to it)")
    p.add_argument("modelprefix", help="prefix of the model files to write, e.g. DATADIR/FileJsonPyTorch.model")
    _data_options(p.add_argument_group("the data and its validation part").add_argument)
    _training_options(p.add_argument_group("training and its reports").add_argument)
    _network_options(p.add_argument_group("the network").add_argument)
    _device_options(p.add_argument_group("devices and processes").add_argument)
    _run_options(p.add_argument_group("the run").add_argument)
    return p


def _data_options(a):
    a("--embs", default="", help="per embedding id: embid:embdims:embtrain:embminfreq:embfile,... (empty elements keep the feature spec)")
    a("--maxlens", default="", help="per n-gram attribute: attrnr:maxlen:shorten,... (shorten: left, right, both, middle; empty attrnr = all)")
    a("--valsize", type=positive_float, default=0.1, help="validation set: a fraction if < 1, else a number of instances")
    a("--valfile", default=None, help="an LF data file to validate on instead of splitting")
    a("--valeverybatches", type=positive_int, default=None, help="validate every N batches")
    a("--valeveryepochs", type=positive_int, default=1, help="validate every N epochs")
    a("--valeveryinstances", type=positive_int, default=None, help="validate every N training instances")


def _training_options(a):
    a("--repeverybatches", type=positive_int, default=None, help="report training loss/accuracy every N batches (default: about 10 reports an epoch)")
    a("--repeveryinstances", type=positive_int, default=None, help="report every N training instances")
    a("--batchsize", type=positive_int, default=None, help="batch size (default: from the architecture, 32)")
    a("--maxepochs", type=positive_int, default=100, help="maximum number of epochs")
    a("--learningrate", type=positive_float, default=None, help="Adam learning rate (default: from the architecture: 0.001, sequence tagging 0.002)")
    a("--es_patience", type=int, default=None,
      help="stop after N validations without improvement, 0: never stop early (default: 10; 5 for a validation "
           "set of 500 instances or more)")
    a("--es_metric", choices=["loss", "accuracy", "entity_f1"], default=None,
      help="what early stopping and the best model watch, for regression always loss "
           "(default: entity_f1 for chunk labels, else accuracy)")
    a("--stopfile", default=None, help="stop training gracefully when this file appears (default: DATADIR/STOP)")


def _network_options(a):
    a("--module", default=None, help="network module: a file name in modules/ (default: chosen from the data)")
    a("--hparams", type=hparam_settings, default={}, metavar="NAME=VALUE,...",
      help="the module's hyper-parameters, e.g. hidden=100,dropout=0.3,widths=[2,3,4] (--notrain lists them)")
    a("--ensemble", type=positive_int, default=None,
      help="train N networks together and average their predictions (default: from the architecture, 1)")
    a("--folds", type=positive_int, default=None,
      help="train K networks, each validated on its own 1/K of the data, and average them (default: 5 for "
           "non-sequence data under 1000 instances unless --valsize, --valfile or an ensemble is given; else 1)")
    a("--distill", type=boolean, default=None,
      help="true/false: after --folds, train one network to answer as the K do, and apply it in their place "
           "(default: true where every input is a number or a one-hot value)")
    a("--arch", default=None, help="a JSON architecture file (as printed by training) to use instead of the generated one")
    a("--emb_addwords", type=boolean, default=None,
      help="keep the words of an embeddings file that the training data lacks, so application covers them (default: only for emb_train mapping)")
    a("--chars", type=boolean, default=True, help="add a character CNN for word-like features (large vocabularies)")
    a("--previous_labels", type=boolean, default=False,
      help="use the previous-label (gate.LF.target) features: the GATE host never fills them when applying a model, "
           "so they are left out unless you fill them yourself")
    a("--ngram_layer", choices=["mean", "cnn", "lstm"], default=None,
      help="layer for n-gram (list) features in the generated network (default: mean for classification, cnn otherwise)")


def _device_options(a):
    a("--cuda", type=boolean, default=None, help="true/false: force GPU use on/off; default: use a GPU if one is usable")
    a("--amp", choices=["off", "bf16", "fp16"], default="off",
      help="mixed precision on a GPU: bf16, or fp16 with a gradient scaler; refused on a CPU")
    a("--threads", type=positive_int, default=None,
      help="torch threads for training (default: torch's own, one per core)")
    a("--workers", type=positive_int, default=None,
      help="train the networks of --folds in up to N processes at once, with the same results as one "
           "after another (1); default: one per two CPU cores, at most one per network")


def _run_options(a):
    a("--seed", type=int, default=1, help="random seed: the same seed on the same data gives the same model")
    a("--noshuffle", action="store_true", help="do not shuffle the training data")
    a("--resume", action="store_true", help="continue training the saved model")
    a("--notrain", action="store_true", help="build, show and save the untrained network, then exit")
    a("--nocreate", action="store_true", help="do not even build the network; exit")
    a("--debug", action="store_true", help="more logging, and tracebacks on errors")


def train_defaults():
    """{option: its default} of the trainer."""
    return {a.dest: a.default for a in train_parser()._actions if a.option_strings}


def apply_parser():
    p = Parser(prog="filejsonpytorch-apply", description="Answer GATE LearningFramework requests line by line on stdin/stdout.",
               formatter_class=HelpFormatter)
    p.add_argument("modelprefix", help="prefix of the model files written by training")
    p.add_argument("--metafile", default=None, help="the LF meta file (accepted for the host; the model holds all it needs)")
    p.add_argument("--cuda", type=boolean, default=False, help="true/false: apply on a GPU")
    p.add_argument("--debug", action="store_true", help="more logging, and tracebacks on errors")
    return p


def parse_train_args(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = train_parser()
    args = parser.parse_args(argv)
    args.explicit = explicit_options(parser, argv)
    datadir = os.path.dirname(os.path.abspath(args.metafile))
    apply_yaml(args, parser, datadir)
    args.datadir = datadir
    return args


def explicit_options(parser, argv):
    """The destinations of the options given on the command line: parsed again into a
    namespace that marks every value unset."""
    unset = object()
    namespace = argparse.Namespace(**{a.dest: unset for a in parser._actions if a.option_strings})
    parser.parse_args(argv, namespace)
    return {a.dest for a in parser._actions if a.option_strings and getattr(namespace, a.dest) is not unset}


def find_yaml(datadir):
    for name in YAML_NAMES:
        path = os.path.join(datadir, name)
        if os.path.isfile(path):
            return path
    return None


def apply_yaml(args, parser, datadir):
    """Options from FileJsonPyTorch.yaml where the command line gave none; those it set
    are recorded in `args.from_yaml` (and the file in `args.yaml_file`) for the log."""
    path = args.yaml_file = find_yaml(datadir)
    args.from_yaml = {}
    if path is None:
        return
    try:
        with open(path, encoding="utf-8") as f:
            settings = yaml.safe_load(f) or {}
    except OSError as e:
        raise UsageError(f"{path}: cannot read it ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise UsageError(f"{path}: not valid YAML ({_yaml_problem(e)})") from None
    if not isinstance(settings, dict):
        raise UsageError(f"{path}: expected key: value lines")
    actions = {a.dest: a for a in parser._actions if a.option_strings}
    for key, value in settings.items():
        key = str(key)
        if key.isupper() or key in HOST_KEYS:
            continue
        name = key.lstrip("-")
        if name not in actions or name == "help":
            raise UsageError(f"{path}: unknown option {key!r} (see --help for the options)")
        if value is None:  # `key:` without a value keeps the default
            continue
        if name not in args.explicit:
            args.from_yaml[name] = _yaml_value(actions[name], value, path, key)
            setattr(args, name, args.from_yaml[name])
            args.explicit.add(name)


def _yaml_problem(error):
    """PyYAML's multi-line message as one line: 'line L, column C: problem'."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return " ".join(f"{where}{problem}".split())


def _yaml_value(action, value, path, key):
    if action.nargs == 0:
        if not isinstance(value, bool):
            raise UsageError(f"{path}: {key} must be true or false")
        return value
    if isinstance(value, dict) and action.type is hparam_settings:
        return hparam_settings(value)
    try:
        value = action.type(str(value)) if action.type else str(value)
    except (argparse.ArgumentTypeError, ValueError) as e:
        raise UsageError(f"{path}: {key}: {e}") from None
    if action.choices and value not in action.choices:
        raise UsageError(f"{path}: {key} must be one of {', '.join(action.choices)}")
    return value


def parse_maxlens(spec, schema, attributes):
    """`--maxlens attrnr:maxlen:shorten,...` -> {feature index: (maxlen, shorten)} for list
    features; the meta's own `maxlen`/`shorten` apply where the option says nothing."""
    limits = {}
    for f in schema.lists:
        attr = attributes[f.attrid] if f.attrid < len(attributes) else {}
        if attr.get("maxlen"):
            limits[f.index] = (int(attr["maxlen"]), attr.get("shorten") or "right")
    for part in (p for p in (spec or "").split(",") if p.strip()):
        fields = part.split(":")
        if len(fields) not in (2, 3) or not fields[1].isdigit() or int(fields[1]) == 0:
            raise UsageError(f"--maxlens: {part!r} is not attrnr:maxlen:shorten with maxlen > 0")
        attrnr, maxlen = fields[0], int(fields[1])
        where = fields[2] if len(fields) == 3 and fields[2] else "right"
        if where not in ("left", "right", "both", "middle"):
            raise UsageError(f"--maxlens: shorten must be left, right, both or middle in {part!r}")
        targets = [f for f in schema.lists if attrnr == "" or str(f.attrid) == attrnr]
        if not targets:
            raise UsageError(f"--maxlens: attribute {attrnr!r} is not an n-gram/list attribute; "
                             f"those are: {', '.join(str(f.attrid) for f in schema.lists) or 'none'}")
        for f in targets:
            limits[f.index] = (maxlen, where)
    return limits
