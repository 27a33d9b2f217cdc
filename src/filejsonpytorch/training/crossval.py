"""Cross-validation: K networks trained by the unchanged Trainer, one after another or in
worker processes (workers.py), each validated on its own fold of the data, saved and
applied as one ensemble, or replaced by one network distilled from them (distillation.py)."""

import argparse
import dataclasses
import logging
import math
import os
import time

import numpy as np
import torch

from .. import architecture, model_io
from ..batches import TensorData
from ..evaluate import predict_all, report_of_predictions
from ..calibration import TemperatureSearch
from ..errors import UsageError
from ..model_io import Model
from ..ensemble import Ensemble
from ..network import build_network
from .distillation import describe, distil, distils_by_default
from .phases import PHASES
from .stop import StopRequest, stop_file
from .trainer import Hooks, Trainer, format_seconds
from .validation import validation_pass

log = logging.getLogger("filejsonpytorch")


#: below this many instances, non-sequence data is trained by cross-validation by default
CROSS_VALIDATION_BELOW = 1000
DEFAULT_FOLDS = 5
#: a network's new best rewrites the model file at most this often (seconds): on small data
#: the networks improve several times a second, and rewriting them all each time was a
#: share of the run worth saving (benchmarks/README.md, time to accuracy)
SAVE_EVERY = 5.0


def folds_for(args, schema, n, arch_file):
    """How many networks to train by cross-validation (1: one network, one validation set).
    By default 5 for small non-sequence data: one split would validate on a few dozen
    instances, too few to choose the best epoch, and keep them out of training (measured
    in the README)."""
    if args.distill and schema.is_sequence:
        raise UsageError("--distill true: distillation trains one network on the instances' answers; these are "
                         "sequences, so pass --distill false or leave it out")
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


@dataclasses.dataclass
class FoldJob:
    """What training network `index` of a cross-validation needs, also in a worker process
    (workers.py): everything but the network, which the caller gives."""

    index: int
    folds: int
    args: argparse.Namespace
    schema: object
    vocabs: dict
    arch: object
    data: object  # all the data (dataset.Dataset); the network trains on all of it but `fold`
    fold: np.ndarray
    history: list

    @property
    def seed(self):
        return self.args.seed + self.index


def train_fold(job, member, device, listener, stop=None):
    """Trains network job.index on all folds but its own, validated on its own, telling
    `listener` (see CrossValidation.member_*) what happens; the best state is restored at
    the end. Its own seeds make it the same network wherever and whenever it trains. -> the trainer."""
    torch.manual_seed(job.seed)
    last = job.history[-1] if job.history else {"epoch": 0, "instances": 0}
    model = Model(job.schema, job.vocabs, job.arch, member, job.history,
                  position={"epoch": last["epoch"], "instances": last["instances"]})
    args = argparse.Namespace(**{**vars(job.args), "seed": job.seed})
    i, best = job.index, {}

    def keep(trainer):
        best["state"] = {k: v.detach().clone() for k, v in member.state_dict().items()}
        mark_fold(model.history, i)
        listener.member_improved(i, best["state"], member.temperature, model.history)

    def finish(trainer):
        if best:
            member.load_state_dict(best["state"])
        mark_fold(model.history, i)
        listener.member_finished(i, best.get("state"), member.temperature, model.history, bool(trainer.stop.reason))

    def on_report(trainer, epoch, batch, totals):
        accuracy = None if trainer.task == "regression" else totals.accuracy()
        listener.member_report(i, epoch, batch, model.position["instances"], trainer.learning_rate(),
                               totals.loss(), accuracy)

    def on_validation(trainer, entry, improved):
        listener.member_validation(i, entry, trainer.learning_rate(), improved)

    hooks = Hooks(on_improvement=keep, on_finish=finish, on_report=on_report, on_validation=on_validation)
    rest = np.setdiff1d(np.arange(len(job.data)), job.fold)
    trainer = Trainer(args, model, device, job.data.subset(rest), job.data.subset(job.fold), hooks,
                      part=(i + 1, job.folds), stop=stop)
    trainer.run()
    return trainer


def mark_fold(history, i):
    for entry in history:
        entry["fold"] = i + 1


class CrossValidation:
    """Trains the K networks of a cross-validation ensemble: network k on all folds but the
    k-th, validated on the k-th (early stopping, best epoch). Every instance is trained on,
    and each network's epoch is chosen on data it does not see. One after another, or in up
    to --workers processes at once (workers.py) with the same results. After a network's new
    best (at most every SAVE_EVERY seconds) and whenever a network finishes or the run stops,
    the ensemble of the networks that have a best is saved (the position names their folds),
    so an interrupted run leaves a usable model; one killed outright loses at most SAVE_EVERY
    seconds and a validation's worth of training. --resume trains the networks the run did
    not finish (going on with those it had begun); when all were finished, each further."""

    def __init__(self, args, model, device, data, reports):
        self.args, self.model, self.device, self.data, self.reports = args, model, device, data, reports
        self.k = model.arch.training.folds
        self.member_arch = model.arch.replace(ensemble=1)
        saved = model.network.members if hasattr(model.network, "members") else [model.network]
        saved = dict(zip(saved_folds(model.position, len(saved)), saved))
        self.members = [saved[i] if i in saved else build_network(self.member_arch).to(device) for i in range(self.k)]
        order = np.random.default_rng(args.seed).permutation(len(data))
        self.folds = [np.sort(fold) for fold in np.array_split(order, self.k)]
        self.histories = [[e for e in model.history if e.get("fold") == i + 1] for i in range(self.k)]
        self.scores = {}  # network -> (instances, loss, accuracy, TemperatureSearch or None) on its fold
        finished = finished_networks(model.position)
        self.finished = finished if len(finished) < self.k else set()
        self.saved_at, self.unsaved = None, False  # the last write of the model file; a best since?

    def run(self):
        started = time.time()
        for i in sorted(self.finished):
            self.score(i)
        todo = [i for i in range(self.k) if i not in self.finished]
        workers = worker_count(self.args.workers, len(todo))
        if workers > 1:
            from .workers import train_in_workers
            train_in_workers(self, todo, workers)
        else:
            for i in todo:
                if train_fold(self.job(i), self.members[i], self.device, self).stop.reason:
                    break
        kept = self.kept()
        self.report(kept, time.time() - started)
        if self.distils():
            self.distil(kept)
        self.reports.finish(None, sum(h[-1]["epoch"] for h in self.histories if h), self.out_of_fold_report(kept))

    def job(self, i):
        fold = self.folds[i]
        log.info("network %d of %d: validating on fold %d (%d instances), training on the other %d",
                 i + 1, self.k, i + 1, len(fold), len(self.data) - len(fold))
        return FoldJob(i, self.k, self.args, self.model.schema, self.model.vocabs, self.member_arch, self.data,
                       fold, self.histories[i])

    # what train_fold tells, in this process or from a worker's

    def member_improved(self, i, state, temperature, history):
        self.take(i, state, temperature, history)
        self.unsaved = True
        self.save_if_due()

    def member_finished(self, i, state, temperature, history, stopped):
        self.take(i, state, temperature, history)
        if history:
            self.score(i)
            if not stopped:
                self.finished.add(i)
            self.write_ensemble()

    def member_report(self, i, *figures):
        self.reports.record_report(i + 1, *figures)

    def member_validation(self, i, entry, learning_rate, improved):
        self.reports.record_validation(i + 1, entry, learning_rate, improved)
        self.save_if_due()

    def save_if_due(self):
        """Writes the model file if a network improved since it was last written, SAVE_EVERY ago."""
        if self.unsaved and (self.saved_at is None or time.monotonic() - self.saved_at >= SAVE_EVERY):
            self.write_ensemble()

    def take(self, i, state, temperature, history):
        """Network i's best state so far (the same object when it trained in this process)."""
        if state is not None:
            self.members[i].load_state_dict(state)
            self.members[i].temperature = temperature
        self.histories[i] = history

    def kept(self):
        """The networks the model file holds: those with a validation, in fold order."""
        return [i for i in range(self.k) if self.histories[i]]

    def score(self, i):
        """Network i's figures on its own fold, for the cross-validation's."""
        with PHASES.timing("validation"):
            figures, search = validation_pass(self.members[i], TensorData(self.data.subset(self.folds[i])), self.device)
        self.scores[i] = (len(self.folds[i]), figures["loss"], figures["accuracy"], search)

    def search(self, networks):
        """The temperature search over the folds of the scored `networks`, summed in fold order
        (the same sums whatever order the networks finished in); None for regression."""
        if self.model.arch.task == "regression":
            return None
        search = TemperatureSearch()
        for i in (i for i in networks if i in self.scores):
            search.loss_sums += self.scores[i][3].loss_sums
            search.items += self.scores[i][3].items
        return search

    def out_of_fold_report(self, networks):
        """The evaluation report of each of the `networks` on its own fold, together."""
        if not networks:
            return None
        members, folds = [self.members[i] for i in networks], [self.folds[i] for i in networks]
        search = self.search(networks)
        temperature = search.best()[0] if search is not None else 1.0
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

    def write_ensemble(self):
        """Writes the model file: the ensemble of the kept networks, with their histories. The
        networks of an earlier distillation (resumed from) are then out of date, and go."""
        with PHASES.timing("saving"):
            model_io.write_model(self.args.modelprefix, self.ensemble_model(self.kept()))
            model_io.remove_model(ensemble_prefix(self.args.modelprefix))
        self.saved_at, self.unsaved = time.monotonic(), False

    def ensemble_model(self, kept):
        members = [self.members[i] for i in kept]
        network = members[0] if len(members) == 1 else Ensemble(self.model.arch.replace(ensemble=len(members)), members)
        search = self.search(kept)
        if search is not None:
            network.temperature = search.best()[0]
        histories = [self.histories[i] for i in kept]
        finished = sorted(i + 1 for i in self.finished if i in kept)
        # which fold each saved network is, and which finished, for --resume
        position = {"epoch": max(h[-1]["epoch"] for h in histories),
                    "instances": sum(h[-1]["instances"] for h in histories), "networks_finished": len(finished),
                    "folds_finished": finished, "folds_saved": [i + 1 for i in kept]}
        return Model(self.model.schema, self.model.vocabs, self.model.arch.replace(ensemble=len(members)), network,
                     [e for h in histories for e in h], position, options=self.model.options)

    def distils(self):
        """--distill, by default where it was measured to answer as well; only once every
        network has finished."""
        if len(self.finished) < self.k:
            return False
        if self.args.distill is not None:
            return self.args.distill
        if not distils_by_default(self.member_arch):
            log.info("the %d networks answer together: one network distilled from them measured no better on inputs "
                     "with embeddings or n-gram lists (--distill true to try it)", self.k)
            return False
        return True

    def distil(self, kept):
        """Trains one network to answer as the ensemble; the model file then holds it, and the
        ensemble moves to PREFIX.folds (for --resume and --distill false). A stop request
        leaves the ensemble in the model file."""
        ensemble = self.ensemble_model(kept)
        with StopRequest(stop_file(self.args)) as stop, PHASES.timing("distillation"):
            distilled = distil(ensemble.network, self.member_arch, self.data, self.device, self.args.seed + self.k,
                               self.args.maxepochs, stop)
        if distilled is None:
            log.info("distillation stopped (%s): the model file keeps the %d networks", stop.reason, self.k)
            return
        student, closeness = distilled
        student_model = dataclasses.replace(ensemble, arch=self.member_arch, network=student,
                                            position={**ensemble.position, "distilled": True})
        with PHASES.timing("saving"):
            model_io.write_model(ensemble_prefix(self.args.modelprefix), ensemble)
            model_io.write_model(self.args.modelprefix, student_model)
        log.info("%s; the %d networks are kept in %s (train with --distill false to apply them instead)",
                 describe(closeness, self.k, self.model.schema.target_std), self.k,
                 model_io.json_path(ensemble_prefix(self.args.modelprefix)))

    def report(self, networks, seconds):
        scores = [self.scores[i] for i in networks if i in self.scores]
        n = sum(size for size, _, _, _ in scores)
        if not n:
            log.info("done in %s; no network finished a validation, nothing saved", format_seconds(seconds))
            return
        loss = sum(size * value for size, value, _, _ in scores) / n
        if self.model.arch.task == "regression":
            figure = f"rmse {math.sqrt(loss) * self.model.schema.target_std:.4f}"
        else:
            figure = f"accuracy {sum(size * a for size, _, a, _ in scores) / n:.4f}"
        log.info("done in %s; %d of %d networks in %s. Each on the fold it validated on: loss %.4f, %s "
                 "(a little optimistic: that fold also chose its best epoch)", format_seconds(seconds),
                 len(networks), self.k, model_io.json_path(self.args.modelprefix), loss, figure)
        search = self.search(networks)
        if search is not None:
            temperature, calibrated, uncalibrated = search.best()
            log.info("probabilities calibrated on the %d instances of the folds: temperature %.2f, log-loss %.4f -> %.4f",
                     search.items, temperature, uncalibrated, calibrated)


def ensemble_prefix(prefix):
    """Where a distilled model keeps the cross-validation's networks."""
    return f"{prefix}.folds"


def finished_networks(position):
    """The networks (from 0) a saved cross-validation finished; models saved before
    networks trained in parallel record how many, from the first."""
    if "folds_finished" in position:
        return {fold - 1 for fold in position["folds_finished"]}
    return set(range(position.get("networks_finished", 0)))


def saved_folds(position, saved):
    """The folds (from 0) of the `saved` networks of a saved cross-validation; models saved
    before networks trained in parallel hold the first ones."""
    if "folds_saved" in position:
        return [fold - 1 for fold in position["folds_saved"]]
    return list(range(saved))


def worker_count(asked, networks):
    """How many processes train the networks at once: --workers, by default one per two
    cores (two torch threads each); a 2-core machine trains them one after another, as
    starting workers there cost more than they saved (benchmarks/README.md)."""
    return max(1, min(asked or available_cores() // 2, networks))


def available_cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
