"""Training: `python -m filejsonpytorch.train METAFILE MODELPREFIX [options]`.

Reads the LF export once, builds (or resumes) the network, and trains it with Adam on
shuffled batches, validating regularly; the best model so far is always on disk. The
stop file, SIGINT and SIGTERM end training after the current batch, keeping it.
"""

import argparse
import json
import logging
import math
import os
import signal
import sys
import time

import numpy as np
import torch

from . import architecture, lfdata, model_io, vocab as vocabs_mod
from .batches import Passes, TensorData, epoch_order, to_device
from .calibration import MIN_ITEMS, TemperatureSearch
from .config import parse_maxlens, parse_train_args
from .errors import EXIT_DATA, EnvironmentProblem, UsageError, UserError
from .logs import run_main, setup_logging
from .modules.ensemble import Ensemble
from .pretrained import init_pretrained, prepare_pretrained

log = logging.getLogger("filejsonpytorch")


def main(argv=None):
    return run_main(lambda: train(parse_train_args(argv)), argv)


def train(args):
    if args.nocreate:
        setup_logging(args.debug)
        log.info("--nocreate: nothing to do")
        return 0
    os.makedirs(os.path.dirname(os.path.abspath(args.modelprefix)), exist_ok=True)
    setup_logging(args.debug, logfile=f"{args.modelprefix}.train.log")
    if args.from_yaml:
        log.info("options from %s: %s", args.yaml_file, ", ".join(f"{k}={v}" for k, v in args.from_yaml.items()))
    torch.manual_seed(args.seed)
    device = choose_device(args.cuda)
    setup = resume_setup(args) if args.resume else new_setup(args)
    network = setup.network.to(device)
    log.info("architecture (copy, edit and pass back with --arch FILE):\n%s",
             architecture.describe(setup.arch, network))
    write_arch_file(args.modelprefix, setup.arch)
    if args.notrain:
        save(args.modelprefix, setup, network, None, args)
        log.info("--notrain: saved the untrained model as %s", model_io.json_path(args.modelprefix))
        return 0
    train_set, val_set = datasets(args, setup)
    if architecture.cross_validation_folds(setup.arch) > 1:
        if val_set is not None:
            log.warning("--valfile ignored: this model is trained by cross-validation, each network validated on a fold")
        CrossValidation(args, setup, device, train_set).run()
    else:
        Trainer(args, setup, network, device, train_set, val_set).run()
    return 0


def choose_device(cuda):
    available = torch.cuda.is_available()
    if cuda and not available:
        raise EnvironmentProblem("--cuda true: no usable CUDA GPU found (torch.cuda.is_available() is False)")
    device = torch.device("cuda" if (available if cuda is None else cuda) else "cpu")
    log.info("device: %s", device)
    return device


class Setup:
    """Everything that defines the model: schema, vocabularies, architecture, network."""

    def __init__(self, schema, vocabs, arch, network, history=None, optimizer_state=None, position=None,
                 train_set=None, val_set=None):
        self.schema, self.vocabs, self.arch, self.network = schema, vocabs, arch, network
        self.train_set, self.val_set = train_set, val_set
        self.history = history or []
        self.optimizer_state = optimizer_state
        self.position = position or {"epoch": 0, "instances": 0}


def new_setup(args):
    arch_file = architecture.load_arch_file(args.arch) if args.arch else None
    meta = lfdata.read_meta(args.metafile)
    attributes = meta["featureInfo"].get("attributes", [])
    schema = lfdata.schema_from_meta(meta, args.metafile)
    peeked = lfdata.peek_first_values(lfdata.data_file_for(args.metafile), schema.is_sequence)
    lfdata.detect_list_features(schema, peeked)
    schema.maxlens = parse_maxlens(args.maxlens, schema, attributes)
    settings = vocabs_mod.embedding_settings(schema, attributes, vocabs_mod.parse_embs(args.embs))
    for emb in settings.values():
        emb.add_file_words = args.emb_addwords
    vocabs = vocabs_mod.build_vocabs(schema, meta["featureStats"], settings)
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
    return Setup(schema, vocabs, arch, network, train_set=train_set, val_set=val_set)


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


#: below this many instances, non-sequence data is trained by cross-validation by default
CROSS_VALIDATION_BELOW = 1000
DEFAULT_FOLDS = 5


def folds_for(args, schema, n, arch_file):
    """How many networks to train by cross-validation (1: one network, one validation set).
    By default 5 for small non-sequence data: one split would validate on a few dozen
    instances, too few to choose the best epoch, and keep them out of training. On
    abalone (320 instances), cross-validated RMSE 2.47 against 2.52 for one network."""
    joint = args.ensemble or architecture.joint_ensemble_size(arch_file)
    if args.folds is None:
        small = not schema.is_sequence and n < CROSS_VALIDATION_BELOW
        return DEFAULT_FOLDS if small and joint == 1 and not args.explicit & {"valsize", "valfile"} else 1
    if args.folds > 1:
        if args.valfile:
            raise UsageError(f"--folds {args.folds} validates each network on a part of the training data: "
                             f"leave out --valfile, or pass --folds 1")
        if joint != 1:
            raise UsageError(f"--folds {args.folds} and an ensemble trained together (--ensemble or the --arch "
                             f"file's \"ensemble\") exclude each other: use one of them")
        if args.folds > n // 2:
            raise UsageError(f"--folds {args.folds}: too many for {n} training instances (at most {n // 2})")
        if "valsize" in args.explicit:
            log.warning("--valsize ignored: with --folds %d each network validates on its own 1/%d of the data",
                        args.folds, args.folds)
    return args.folds


def make_arch(args, schema, vocabs, arch_file=None, folds=1):
    # an --arch file's module gets its own defaults under the file's settings
    module = args.module or (arch_file or {}).get("module")
    if not module:
        module, why = architecture.default_module(schema)
        log.info("module %s: %s", module, why)
    arch = architecture.default_architecture(schema, vocabs, module, args.ngram_layer, args.previous_labels)
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
    log_ignored_columns(schema, arch)
    return with_training_options(arch, args)


def log_ignored_columns(schema, arch):
    ignored = set(arch["ignore_nominal"])
    previous = [schema.nominal[i].name for i in architecture.previous_label_columns(schema) if i in ignored]
    neighbours = [schema.nominal[i].name for i in sorted(ignored) if schema.nominal[i].name not in previous]
    if neighbours:
        log.info("module %s reads whole sequences, so it leaves out the %d window features of neighbouring "
                 "elements (%s); to use them, pass --arch with \"ignore_nominal\": []",
                 arch["module"], len(neighbours), ", ".join(neighbours))
    if previous:
        log.info("left out the %d previous-label features (%s): the GATE host never fills gate.LF.target when it "
                 "applies a model, so they would hold gold labels in training and nothing in use; "
                 "--previous_labels true keeps them (if you fill them yourself)", len(previous), ", ".join(previous))


def with_training_options(arch, args):
    """--learningrate and --batchsize override the architecture's training section."""
    if args.learningrate is not None:
        arch["training"]["learningrate"] = args.learningrate
    if args.batchsize is not None:
        arch["training"]["batchsize"] = args.batchsize
    return arch


def resume_setup(args):
    info, tensors = model_io.load_model(args.modelprefix)
    schema = lfdata.FeatureSchema.from_json(info["schema"])
    vocabs = {k: vocabs_mod.Vocab.from_json(k, v) for k, v in info["vocabs"].items()}
    arch = with_training_options(info["arch"], args)
    if args.hparams and architecture.set_hparams(arch, args.hparams) != arch["hparams"]:
        log.warning("--hparams ignored: a resumed network keeps the hyper-parameters it was built with")
    if args.ensemble is not None and args.ensemble != arch.get("ensemble", 1):
        log.warning("--ensemble ignored: a resumed network keeps the %d network(s) it was built with", arch.get("ensemble", 1))
    if args.folds is not None and args.folds != architecture.cross_validation_folds(arch):
        log.warning("--folds ignored: a resumed model keeps the %d fold(s) it was trained with",
                    architecture.cross_validation_folds(arch))
    network = architecture.build_network(arch)
    network.load_state_dict(tensors["model"])
    network.temperature = model_io.temperature_of(info, args.modelprefix)
    log.info("resuming %s after epoch %d", model_io.json_path(args.modelprefix), info.get("position", {}).get("epoch", 0))
    return Setup(schema, vocabs, arch, network, info.get("history"), tensors.get("optimizer"), info.get("position"))


def datasets(args, setup):
    """(training set, validation set or None): read now unless already read; for a
    cross-validation all the data is the training set."""
    if setup.train_set is not None:
        return setup.train_set, setup.val_set
    data, val_set = read_datasets(args, setup.schema, setup.vocabs)
    if val_set is not None or architecture.cross_validation_folds(setup.arch) > 1:
        return data, val_set
    return split(data, args.valsize, args.seed)


def read_datasets(args, schema, vocabs):
    """(the training file's data, the --valfile's or None)."""
    encoder = lfdata.Encoder(schema, vocabs)
    data_path = lfdata.data_file_for(args.metafile)
    started = time.time()
    data = lfdata.read_dataset(data_path, schema, encoder)
    log.info("read %d %s from %s in %.1fs", len(data), "sequences" if schema.is_sequence else "instances",
             data_path, time.time() - started)
    return data, lfdata.read_dataset(args.valfile, schema, encoder) if args.valfile else None


def split(data, valsize, seed):
    n = len(data)
    n_val = int(round(valsize * n)) if valsize < 1 else int(valsize)
    n_val = min(n_val, n - 1)
    if n_val <= 0:
        log.warning("no validation set (%d instances): saving the model after every epoch", n)
        return data, None
    order = np.random.default_rng(seed).permutation(n)
    return data.subset(np.sort(order[n_val:])), data.subset(np.sort(order[:n_val]))


def write_arch_file(prefix, arch):
    with open(f"{prefix}.arch.json", "w", encoding="utf-8") as f:
        json.dump(arch, f, indent=2, ensure_ascii=False)


def save(prefix, setup, network, optimizer, args):
    info = {
        "schema": setup.schema.to_json(),
        "vocabs": {k: v.to_json() for k, v in setup.vocabs.items()},
        "arch": setup.arch,
        "options": {k: v for k, v in vars(args).items() if k != "explicit"},
        "history": setup.history,
        "position": setup.position,
        "temperature": network.temperature,
    }
    tensors = {"model": {k: v.detach().cpu() for k, v in network.state_dict().items()}}
    if optimizer is not None:
        tensors["optimizer"] = optimizer_state_cpu(optimizer)
    model_io.save_model(prefix, info, tensors)


def optimizer_state_cpu(optimizer):
    state = optimizer.state_dict()
    state["state"] = {k: {n: (t.cpu() if torch.is_tensor(t) else t) for n, t in s.items()} for k, s in state["state"].items()}
    return state


class StopRequest:
    """Set by SIGINT/SIGTERM or the stop file; a second SIGINT aborts at once."""

    def __init__(self, stopfile):
        self.stopfile = stopfile
        self.reason = None
        if os.path.exists(stopfile):
            log.warning("removing an old stop file %s", stopfile)
            os.remove(stopfile)

    def __enter__(self):
        self.previous = {n: signal.signal(n, self._signal) for n in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for number, handler in self.previous.items():
            signal.signal(number, handler)

    def _signal(self, number, frame):
        if self.reason and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.reason = signal.Signals(number).name

    def check(self):
        if self.reason is None and os.path.exists(self.stopfile):
            self.reason = f"stop file {self.stopfile}"
            try:
                os.remove(self.stopfile)
            except OSError:
                pass
        return self.reason


class Trainer:
    def __init__(self, args, setup, network, device, train_set, val_set):
        self.args, self.setup, self.network, self.device = args, setup, network, device
        self.task = setup.arch["task"]
        self.metric = "loss" if self.task == "regression" else args.es_metric
        training = setup.arch["training"]
        self.batch_size = int(training["batchsize"])
        self.train_data = TensorData(train_set)
        self.val_data = TensorData(val_set) if val_set is not None else None
        self.optimizer = torch.optim.Adam([p for p in network.parameters() if p.requires_grad], lr=training["learningrate"])
        if setup.optimizer_state:
            self.optimizer.load_state_dict(setup.optimizer_state)
        if not setup.history:
            network.initialise_from(Passes(self.train_data, 1024, device))
        self.grad_clip = training.get("grad_clip") or 0
        self.unk = UnknownReplacer(setup, training.get("word_dropout") or 0)
        self.rng = np.random.default_rng(args.seed + setup.position["epoch"])
        self.stop = StopRequest(args.stopfile or os.path.join(args.datadir, "STOP"))
        self.best = best_of(setup.history, self.metric)
        self.calibration = None
        self.bad_validations = 0
        self.batches_per_epoch = math.ceil(self.train_data.size / self.batch_size)
        self.report_every = self._every(args.repeverybatches, args.repeveryinstances, max(50, self.batches_per_epoch // 10))
        self.validate_every = self._every(args.valeverybatches, args.valeveryinstances, None)

    def _every(self, batches, instances, default):
        if batches:
            return batches
        if instances:
            return max(1, math.ceil(instances / self.batch_size))
        return default

    def run(self):
        with self.stop:
            self._run()

    def _run(self):
        args = self.args
        log.info("training on %d, validating on %d %s; batch size %d, learning rate %g, early stopping on %s with patience %d",
                 self.train_data.size, self.val_data.size if self.val_data else 0,
                 "sequences" if self.train_data.is_sequence else "instances",
                 self.batch_size, self.setup.arch["training"]["learningrate"], self.metric, args.es_patience)
        first_epoch = self.setup.position["epoch"] + 1
        self.started = time.time()
        self.total_batches = args.maxepochs * self.batches_per_epoch
        self.done_batches = self.seen = 0
        for epoch in range(first_epoch, first_epoch + args.maxepochs):
            finished = self.run_epoch(epoch)
            if finished:
                break
        else:
            log.info("reached --maxepochs %d", args.maxepochs)
        self.finish()

    def run_epoch(self, epoch):
        self.network.train()
        totals = Totals()
        batches = epoch_order(self.train_data, self.batch_size, self.rng, shuffle=not self.args.noshuffle)
        for number, indices in enumerate(batches, 1):
            self.train_step(indices, totals)
            self.done_batches += 1
            if number % self.report_every == 0:
                self.report(epoch, number, totals)
                totals = Totals()
            if self.validate_every and number % self.validate_every == 0 and number < len(batches):
                if self.validate(epoch, number):
                    return True
            if self.stop.check():
                log.info("stopping: %s", self.stop.reason)
                return True
        self.setup.position["epoch"] = epoch
        if epoch % self.args.valeveryepochs == 0 or self.val_data is None:
            return self.validate(epoch, len(batches))
        return False

    def train_step(self, indices, totals):
        batch = to_device(self.unk(self.train_data.batch(indices)), self.device)
        scores = self.network(batch)
        loss = self.network.loss(scores, batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip:
            self.clip_gradients()
        self.optimizer.step()
        value = loss.item()
        if not math.isfinite(value):
            raise TrainingDiverged(f"the training loss became {value}: lower --learningrate, or check the data for "
                                   f"extreme numbers; the last good model is kept")
        totals.add(value, *count_correct(self.network, scores, batch))
        self.setup.position["instances"] += len(indices)
        self.seen += len(indices)

    def clip_gradients(self):
        # an ensemble's loss is the mean of its members', which scales each member's
        # gradient by 1/N: clipping each at 1/N of the threshold trains it as if alone
        members = getattr(self.network, "members", [self.network])
        for member in members:
            torch.nn.utils.clip_grad_norm_(member.parameters(), self.grad_clip / len(members))

    def report(self, epoch, number, totals):
        log.info("epoch %d batch %d/%d: loss %.4f%s, %s", epoch, number, self.batches_per_epoch,
                 totals.loss(), self.accuracy_text(totals), self.speed())

    def speed(self):
        """Instances per second in this run, and the time left if no early stop comes."""
        elapsed = time.time() - self.started
        rate = self.seen / elapsed if elapsed else 0.0
        left = (self.total_batches - self.done_batches) * elapsed / max(1, self.done_batches)
        unit = "sequences" if self.train_data.is_sequence else "instances"
        return f"{rate:.0f} {unit}/s, at most {format_seconds(left)} left"

    def accuracy_text(self, totals):
        return "" if self.task == "regression" else f", accuracy {totals.accuracy():.4f}"

    def validate(self, epoch, number):
        """Evaluates, saves the model if it is the best so far; True means stop training."""
        if self.val_data is None:
            self.save()
            return False
        loss, accuracy, search = evaluate(self.network, self.val_data, self.device)
        entry = {"epoch": epoch, "batch": number, "loss": loss, "instances": self.setup.position["instances"]}
        if self.task == "regression":
            entry["rmse"] = math.sqrt(loss) * self.setup.schema.target_std
        else:
            entry["accuracy"] = accuracy
        self.setup.history.append(entry)
        improved = is_better(entry, self.best, self.metric)
        log.info("validation after epoch %d batch %d: loss %.4f, %s; %s%s", epoch, number, loss,
                 f"rmse {entry['rmse']:.4f}" if "rmse" in entry else f"accuracy {accuracy:.4f}", self.speed(),
                 " (best so far, saved)" if improved else "")
        self.network.train()
        if improved:
            self.best = entry
            self.bad_validations = 0
            self.calibrate(search)
            self.save()
            return False
        self.bad_validations += 1
        if self.args.es_patience and self.bad_validations >= self.args.es_patience:
            log.info("early stopping: no improvement of validation %s in %d validations", self.metric, self.bad_validations)
            return True
        return False

    def calibrate(self, search):
        """Sets the temperature of the reported probabilities from this validation pass."""
        if search is not None:
            temperature, loss, uncalibrated_loss = search.best()
            self.network.temperature = temperature
            self.calibration = (temperature, loss, uncalibrated_loss, search.items)

    def save(self):
        save(self.args.modelprefix, self.setup, self.network, self.optimizer, self.args)

    def finish(self):
        if self.best is None and self.val_data is not None:
            self.save()
        best = self.best or {}
        summary = ", ".join(f"{k} {best[k]:.4f}" for k in ("loss", "accuracy", "rmse") if k in best)
        log.info("done in %s; best model (%s) in %s", format_seconds(time.time() - self.started),
                 summary or "last epoch", model_io.json_path(self.args.modelprefix))
        self.log_calibration()

    def log_calibration(self):
        if self.calibration is None:
            return
        temperature, loss, uncalibrated_loss, items = self.calibration
        if items < MIN_ITEMS:
            log.info("probabilities left as the network gives them: %d validation %s are too few to calibrate "
                     "them (%d needed)", items, self.item_name(), MIN_ITEMS)
        else:
            log.info("probabilities calibrated on %d validation %s: temperature %.2f, validation log-loss %.4f -> %.4f",
                     items, self.item_name(), temperature, uncalibrated_loss, loss)

    def item_name(self):
        return "elements" if self.train_data.is_sequence else "instances"


class MemberTrainer(Trainer):
    """Trains one network of a cross-validation; at each new best, `saved` writes the
    ensemble of the networks done and this one."""

    best_state = None
    saved = None

    def save(self):
        self.best_state = {k: v.detach().clone() for k, v in self.network.state_dict().items()}
        self.saved(self.network)

    def finish(self):
        if self.best_state is not None:
            self.network.load_state_dict(self.best_state)


class CrossValidation:
    """Trains the K networks of a cross-validation ensemble one after another: network k on
    all folds but the k-th, validated on the k-th (early stopping, best epoch). Every
    instance is trained on, and each network's epoch is chosen on data it does not see.
    At each network's new best, the ensemble of the networks done and this one is saved, so
    an interrupted run leaves a usable model. --resume goes on with the network the run
    did not finish and trains the missing ones; when all were finished, it trains each further."""

    def __init__(self, args, setup, device, data):
        self.args, self.setup, self.device, self.data = args, setup, device, data
        self.k = architecture.cross_validation_folds(setup.arch)
        self.member_arch = {**setup.arch, "ensemble": 1}
        saved = setup.network.members if hasattr(setup.network, "members") else [setup.network]
        self.members = list(saved) + [architecture.build_network(self.member_arch).to(device)
                                      for _ in range(self.k - len(saved))]
        order = np.random.default_rng(args.seed).permutation(len(data))
        self.folds = [np.sort(fold) for fold in np.array_split(order, self.k)]
        self.histories = [[e for e in setup.history if e.get("fold") == i + 1] for i in range(self.k)]
        self.search = None if setup.arch["task"] == "regression" else TemperatureSearch()
        self.out_of_fold = []
        finished = setup.position.get("networks_finished", 0)
        self.finished = finished if finished < self.k else 0

    def run(self):
        started = time.time()
        done = self.members[:self.finished]
        for member, fold in zip(done, self.folds):
            self.score(member, fold)
        for i in range(self.finished, self.k):
            member, fold = self.members[i], self.folds[i]
            log.info("network %d of %d: validating on fold %d (%d instances), training on the other %d",
                     i + 1, self.k, i + 1, len(fold), len(self.data) - len(fold))
            trainer = self.train_member(i, member, fold, done)
            if self.histories[i]:
                done.append(member)
                self.score(member, fold)
                self.finished = len(done) if not trainer.stop.reason else len(done) - 1
                self.save(done)
            if trainer.stop.reason:
                break
        self.report(done, time.time() - started)

    def train_member(self, i, member, fold, done):
        history = self.histories[i]
        last = history[-1] if history else {"epoch": 0, "instances": 0}
        setup = Setup(self.setup.schema, self.setup.vocabs, self.member_arch, member, history,
                      position={"epoch": last["epoch"], "instances": last["instances"]})
        args = argparse.Namespace(**{**vars(self.args), "seed": self.args.seed + i})
        rest = np.setdiff1d(np.arange(len(self.data)), fold)
        trainer = MemberTrainer(args, setup, member, self.device, self.data.subset(rest), self.data.subset(fold))
        self.histories[i] = setup.history

        def saved(network):
            for entry in setup.history:
                entry["fold"] = i + 1
            self.save(done + [network])

        trainer.saved = saved
        trainer.run()
        for entry in setup.history:
            entry["fold"] = i + 1
        return trainer

    def score(self, member, fold):
        """Adds the network's loss on its own fold to the cross-validation figures."""
        loss, accuracy, search = evaluate(member, TensorData(self.data.subset(fold)), self.device)
        self.out_of_fold.append((len(fold), loss, accuracy))
        if search is not None:
            self.search.loss_sums += search.loss_sums
            self.search.items += search.items

    def save(self, members):
        network = members[0] if len(members) == 1 else Ensemble({**self.setup.arch, "ensemble": len(members)}, members)
        if self.search is not None:
            network.temperature = self.search.best()[0]
        epochs = [h[-1]["epoch"] for h in self.histories if h]
        instances = sum(h[-1]["instances"] for h in self.histories if h)
        position = {"epoch": max(epochs), "instances": instances, "networks_finished": self.finished}
        setup = Setup(self.setup.schema, self.setup.vocabs, {**self.setup.arch, "ensemble": len(members)}, network,
                      [e for h in self.histories for e in h], position=position)
        save(self.args.modelprefix, setup, network, None, self.args)

    def report(self, members, seconds):
        n = sum(size for size, _, _ in self.out_of_fold)
        if not n:
            log.info("done in %s; no network finished a validation, nothing saved", format_seconds(seconds))
            return
        loss = sum(size * value for size, value, _ in self.out_of_fold) / n
        if self.setup.arch["task"] == "regression":
            figure = f"rmse {math.sqrt(loss) * self.setup.schema.target_std:.4f}"
        else:
            figure = f"accuracy {sum(size * a for size, _, a in self.out_of_fold) / n:.4f}"
        log.info("done in %s; %d of %d networks in %s. Each on the fold it validated on: loss %.4f, %s "
                 "(a little optimistic: that fold also chose its best epoch)", format_seconds(seconds),
                 len(members), self.k, model_io.json_path(self.args.modelprefix), loss, figure)
        if self.search is not None:
            temperature, calibrated, uncalibrated = self.search.best()
            log.info("probabilities calibrated on the %d instances of the folds: temperature %.2f, log-loss %.4f -> %.4f",
                     self.search.items, temperature, uncalibrated, calibrated)


class TrainingDiverged(UserError):
    exit_code = EXIT_DATA


class Totals:
    def __init__(self):
        self.loss_sum = self.batches = self.correct = self.count = 0

    def add(self, loss, correct, count):
        self.loss_sum += loss
        self.batches += 1
        self.correct += correct
        self.count += count

    def loss(self):
        return self.loss_sum / max(1, self.batches)

    def accuracy(self):
        return self.correct / max(1, self.count)


class UnknownReplacer:
    """Word dropout for training: replaces rare ids by the out-of-vocabulary id with
    probability alpha / (alpha + count), so the network learns what unseen values mean.
    The nominal columns' tables are concatenated so one gather serves all columns."""

    def __init__(self, setup, alpha):
        embeddings = setup.arch["embeddings"]
        tables = {}
        for emb_id, v in setup.vocabs.items():
            counts = torch.tensor(v.counts, dtype=torch.float).clamp(min=1)
            table = alpha / (alpha + counts)
            if alpha <= 0 or emb_id not in embeddings or embeddings[emb_id]["train"] == "onehot":
                table.zero_()
            table[:2] = 0.0
            tables[emb_id] = table
        nominal = setup.arch["nominal"]
        starts, offset = {}, 0
        for emb_id in dict.fromkeys(nominal):
            starts[emb_id] = offset
            offset += len(tables[emb_id])
        self.nominal_offsets = torch.tensor([starts[e] for e in nominal], dtype=torch.long)
        self.nominal_table = torch.cat([tables[e] for e in starts]) if starts else None
        self.lists = [(i, tables[s["emb"]]) for i, s in enumerate(setup.arch["lists"]) if tables[s["emb"]].any()]
        if self.nominal_table is not None and not self.nominal_table.any():
            self.nominal_table = None

    def __call__(self, batch):
        if self.nominal_table is not None:
            batch["nominal"] = self._replace(batch["nominal"], self.nominal_table[batch["nominal"] + self.nominal_offsets])
        if self.lists:
            lists = list(batch["lists"])
            for i, table in self.lists:
                lists[i] = self._replace(lists[i], table[lists[i]])
            batch["lists"] = lists
        return batch

    @staticmethod
    def _replace(ids, probabilities):
        return ids.masked_fill(torch.rand(ids.shape) < probabilities, lfdata.OOV)


def count_correct(network, scores, batch, predicted=None):
    """(correct, count); during training from the scores' argmax, which is cheap."""
    if network.task == "regression":
        return 0, 0
    with torch.no_grad():
        if predicted is None:
            predicted = network.quick_labels(scores)
        if network.task == "sequence":
            mask = batch["mask"]
            return int((predicted[mask] == batch["target"][mask]).sum()), int(mask.sum())
        return int((predicted == batch["target"]).sum()), len(predicted)


def evaluate(network, data, device, batch_size=256):
    """-> (mean loss per instance or element, accuracy, TemperatureSearch of the
    predicted probabilities or None for regression)."""
    network.eval()
    totals = Totals()
    search = None if network.task == "regression" else TemperatureSearch()
    loss_sum = weight = 0.0
    with torch.no_grad():
        for batch in Passes(data, batch_size, device):
            scores = network(batch)
            n = int(batch["mask"].sum()) if "mask" in batch else len(batch["target"])
            loss_sum += network.loss(scores, batch).item() * n
            weight += n
            predicted, probabilities = network.predict(scores, batch)
            totals.add(0.0, *count_correct(network, scores, batch, predicted=predicted))
            if search is not None and probabilities is not None:
                mask = batch.get("mask")
                search.add(*((probabilities[mask], batch["target"][mask]) if mask is not None
                             else (probabilities, batch["target"])))
    return loss_sum / max(1.0, weight), totals.accuracy(), search


def is_better(entry, best, metric):
    if best is None:
        return True
    if metric == "accuracy":
        return (entry["accuracy"], -entry["loss"]) > (best["accuracy"], -best["loss"])
    return entry["loss"] < best["loss"]


def best_of(history, metric):
    best = None
    for entry in history:
        if metric in entry and is_better(entry, best, metric):
            best = entry
    return best


def format_seconds(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


if __name__ == "__main__":
    sys.exit(main())
