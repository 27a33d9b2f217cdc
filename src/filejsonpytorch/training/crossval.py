"""Cross-validation: K networks trained one after another by the unchanged Trainer, each
validated on its own fold of the data, saved and applied as one ensemble."""

import argparse
import logging
import math
import time

import numpy as np

from .. import architecture, model_io
from ..batches import TensorData
from ..evaluate import predict_all, report_of_predictions
from ..calibration import TemperatureSearch
from ..errors import UsageError
from ..model_io import Model
from ..ensemble import Ensemble
from ..network import build_network
from .phases import PHASES
from .trainer import Hooks, Trainer, format_seconds
from .validation import validation_pass

log = logging.getLogger("filejsonpytorch")


#: below this many instances, non-sequence data is trained by cross-validation by default
CROSS_VALIDATION_BELOW = 1000
DEFAULT_FOLDS = 5


def folds_for(args, schema, n, arch_file):
    """How many networks to train by cross-validation (1: one network, one validation set).
    By default 5 for small non-sequence data: one split would validate on a few dozen
    instances, too few to choose the best epoch, and keep them out of training (measured
    in the README)."""
    joint = args.ensemble or architecture.file_ensemble_size(arch_file)
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


class CrossValidation:
    """Trains the K networks of a cross-validation ensemble one after another: network k on
    all folds but the k-th, validated on the k-th (early stopping, best epoch). Every
    instance is trained on, and each network's epoch is chosen on data it does not see.
    At each network's new best, the ensemble of the networks done and this one is saved, so
    an interrupted run leaves a usable model. --resume goes on with the network the run
    did not finish and trains the missing ones; when all were finished, it trains each further."""

    def __init__(self, args, model, device, data, reports):
        self.args, self.model, self.device, self.data, self.reports = args, model, device, data, reports
        self.k = model.arch.training.folds
        self.member_arch = model.arch.replace(ensemble=1)
        saved = model.network.members if hasattr(model.network, "members") else [model.network]
        self.members = list(saved) + [build_network(self.member_arch).to(device)
                                      for _ in range(self.k - len(saved))]
        order = np.random.default_rng(args.seed).permutation(len(data))
        self.folds = [np.sort(fold) for fold in np.array_split(order, self.k)]
        self.histories = [[e for e in model.history if e.get("fold") == i + 1] for i in range(self.k)]
        self.search = None if model.arch.task == "regression" else TemperatureSearch()
        self.out_of_fold = []
        finished = model.position.get("networks_finished", 0)
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
                self.write_ensemble(done)
            if trainer.stop.reason:
                break
        self.report(done, time.time() - started)
        self.reports.finish(None, sum(h[-1]["epoch"] for h in self.histories if h), self.out_of_fold_report(done))

    def train_member(self, i, member, fold, done):
        """Trains network i on all folds but its own; at each new best, the ensemble of the
        networks done and this one is written, and the best state restored at the end."""
        history = self.histories[i]
        last = history[-1] if history else {"epoch": 0, "instances": 0}
        model = Model(self.model.schema, self.model.vocabs, self.member_arch, member, history,
                      position={"epoch": last["epoch"], "instances": last["instances"]})
        args = argparse.Namespace(**{**vars(self.args), "seed": self.args.seed + i})
        rest = np.setdiff1d(np.arange(len(self.data)), fold)
        best = {}

        def keep(trainer):
            best["state"] = {k: v.detach().clone() for k, v in member.state_dict().items()}
            self.mark_fold(model.history, i)
            self.write_ensemble(done + [member])

        def restore(trainer):
            if best:
                member.load_state_dict(best["state"])

        hooks = Hooks(on_improvement=keep, on_finish=restore).then(self.reports.hooks(network=i + 1))
        trainer = Trainer(args, model, self.device, self.data.subset(rest), self.data.subset(fold), hooks,
                          part=(i + 1, self.k))
        self.histories[i] = model.history
        trainer.run()
        self.mark_fold(model.history, i)
        return trainer

    @staticmethod
    def mark_fold(history, i):
        for entry in history:
            entry["fold"] = i + 1

    def score(self, member, fold):
        """Adds the network's loss on its own fold to the cross-validation figures."""
        with PHASES.timing("validation"):
            figures, search = validation_pass(member, TensorData(self.data.subset(fold)), self.device)
        self.out_of_fold.append((len(fold), figures["loss"], figures["accuracy"]))
        if search is not None:
            self.search.loss_sums += search.loss_sums
            self.search.items += search.items

    def out_of_fold_report(self, members):
        """The evaluation report of each network on its own fold, together."""
        if not members:
            return None
        folds = self.folds[:len(members)]
        temperature = self.search.best()[0] if self.search is not None else 1.0
        predictions = []
        for member, fold in zip(members, folds):
            # out of fold, each network's probabilities are what the ensemble's temperature calibrated
            member.eval().temperature = temperature
            predictions.append(predict_all(member, TensorData(self.data.subset(fold))))
            del member.temperature
        predicted = np.concatenate([p for p, _ in predictions])
        probabilities = None if predictions[0][1] is None else np.concatenate([q for _, q in predictions])
        data = self.data.subset(np.concatenate(folds))
        return report_of_predictions(self.model.schema, data, predicted, probabilities)

    def write_ensemble(self, members):
        """Writes the model file: the ensemble of `members`, with every network's history."""
        network = members[0] if len(members) == 1 else Ensemble(self.model.arch.replace(ensemble=len(members)), members)
        if self.search is not None:
            network.temperature = self.search.best()[0]
        epochs = [h[-1]["epoch"] for h in self.histories if h]
        instances = sum(h[-1]["instances"] for h in self.histories if h)
        position = {"epoch": max(epochs), "instances": instances, "networks_finished": self.finished}
        model = Model(self.model.schema, self.model.vocabs, self.model.arch.replace(ensemble=len(members)), network,
                      [e for h in self.histories for e in h], position, options=self.model.options)
        with PHASES.timing("saving"):
            model_io.write_model(self.args.modelprefix, model)

    def report(self, members, seconds):
        n = sum(size for size, _, _ in self.out_of_fold)
        if not n:
            log.info("done in %s; no network finished a validation, nothing saved", format_seconds(seconds))
            return
        loss = sum(size * value for size, value, _ in self.out_of_fold) / n
        if self.model.arch.task == "regression":
            figure = f"rmse {math.sqrt(loss) * self.model.schema.target_std:.4f}"
        else:
            figure = f"accuracy {sum(size * a for size, _, a in self.out_of_fold) / n:.4f}"
        log.info("done in %s; %d of %d networks in %s. Each on the fold it validated on: loss %.4f, %s "
                 "(a little optimistic: that fold also chose its best epoch)", format_seconds(seconds),
                 len(members), self.k, model_io.json_path(self.args.modelprefix), loss, figure)
        if self.search is not None:
            temperature, calibrated, uncalibrated = self.search.best()
            log.info("probabilities calibrated on the %d instances of the folds: temperature %.2f, log-loss %.4f -> %.4f",
                     self.search.items, temperature, uncalibrated, calibrated)
