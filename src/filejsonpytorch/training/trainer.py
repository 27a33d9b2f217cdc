"""The trainer: one network, one epoch loop (Adam on shuffled batches), regular validation,
early stopping and the calibration of its probabilities.

What happens to the network it improves is the caller's: the trainer announces it through
named hooks (`Hooks`, given to its constructor), each called with the trainer first:
  on_improvement(trainer)  the network is the best so far (or, without a validation set,
                           has finished an epoch): keep it now, it may change from the next batch
  on_finish(trainer)       training has ended: --maxepochs reached, an early stop, a stop request
  on_report(trainer, epoch, batch, totals)   a training report: Totals since the previous one
  on_validation(trainer, entry, improved)    a validation's history entry, after any on_improvement
`train_one_network` is the ordinary run, writing the model file at each improvement;
cross-validation (crossval.py) drives the same trainer for each of its networks; the
training reports (reports.py) listen to the last two.
"""

import dataclasses
import logging
import math
import time
from typing import Callable

import numpy as np
import torch

from .. import model_io
from ..batches import Passes, TensorData, epoch_order, to_device
from ..calibration import MIN_ITEMS
from ..errors import EXIT_DATA, UserError
from .adam import Adam
from .phases import PHASES
from .precision import Precision
from .stop import StopRequest, stop_file
from .validation import (Totals, best_of, count_correct, early_stopping_metric, early_stopping_patience, is_better,
                         validation_pass)
from .word_dropout import WordDropout

log = logging.getLogger("filejsonpytorch")


class TrainingDiverged(UserError):
    exit_code = EXIT_DATA


def _nothing(*args):
    pass


@dataclasses.dataclass
class Hooks:
    """The trainer's named events (see the module docstring)."""

    on_improvement: Callable = _nothing
    on_finish: Callable = _nothing
    on_report: Callable = _nothing
    on_validation: Callable = _nothing

    def then(self, other):
        """These hooks, each followed by `other`'s of the same name."""
        def both(first, second):
            return lambda *args: (first(*args), second(*args))
        return Hooks(**{f.name: both(getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self)})


class Trainer:
    """Trains `model.network` on train_set, validating on val_set (or None); `model`'s
    history and position are kept up to date. See the module's docstring for the hooks."""

    def __init__(self, args, model, device, train_set, val_set, hooks, part=None, stop=None):
        self.args, self.model, self.network, self.device = args, model, model.network, device
        self.hooks = hooks
        self.task = model.arch.task
        self.metric = early_stopping_metric(args.es_metric, model.arch)
        # (network number, networks in all) when this trains one network of several
        self.part = part
        self.name = f"network {part[0]} of {part[1]}, " if part else ""
        training = model.arch.training
        self.batch_size = int(training.batchsize)
        self.train_data = TensorData(train_set)
        self.val_data = TensorData(val_set) if val_set is not None else None
        self.patience, self.patience_reason = early_stopping_patience(args.es_patience, self.val_data)
        self.optimizer = Adam([p for p in self.network.parameters() if p.requires_grad], lr=training.learningrate)
        if model.optimizer_state:
            self.optimizer.load_state_dict(model.optimizer_state)
        if not model.history:
            self.network.initialise_from(Passes(self.train_data, 1024, device))
        self.grad_clip = training.grad_clip or 0
        self.precision = Precision(args.amp, device)
        self.word_dropout = WordDropout(model.arch, model.vocabs, training.word_dropout or 0)
        self.rng = np.random.default_rng(args.seed + model.position["epoch"])
        # `stop`: a request the caller watches instead (a worker process, a distributed run)
        self.stop = stop or StopRequest(stop_file(args))
        self.best = best_of(model.history, self.metric)
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
        log.info("training on %d, validating on %d %s; batch size %d, learning rate %g, early stopping on %s with patience %d%s",
                 self.train_data.size, self.val_data.size if self.val_data else 0,
                 "sequences" if self.train_data.is_sequence else "instances",
                 self.batch_size, self.model.arch.training.learningrate, self.metric, self.patience,
                 f" ({self.patience_reason})" if self.patience_reason else "")
        self.epochs_left = args.maxepochs
        first_epoch = self.model.position["epoch"] + 1
        self.started = time.time()
        self.total_batches = args.maxepochs * self.batches_per_epoch
        self.done_batches = self.seen = 0
        for epoch in range(first_epoch, first_epoch + args.maxepochs):
            finished = self.run_epoch(epoch)
            if finished:
                break
        else:
            log.info("reached --maxepochs %d", args.maxepochs)
        self.hooks.on_finish(self)

    def run_epoch(self, epoch):
        self.network.train()
        totals = Totals()
        batches = epoch_order(self.train_data, self.batch_size, self.rng, shuffle=not self.args.noshuffle)
        for number, indices in enumerate(batches, 1):
            with PHASES.timing("training"):
                self.train_step(indices, totals)
            self.done_batches += 1
            # every epoch reports at least once, at its end when it is shorter than the interval
            if number % self.report_every == 0 or (number == len(batches) and totals.batches == number):
                self.report(epoch, number, totals)
                self.hooks.on_report(self, epoch, number, totals)
                totals = Totals()
            if self.validate_every and number % self.validate_every == 0 and number < len(batches):
                if self.validate(epoch, number):
                    return True
            if self.stop.check():
                log.info("stopping: %s", self.stop.reason)
                return True
        self.model.position["epoch"] = epoch
        self.epochs_left -= 1
        if epoch % self.args.valeveryepochs == 0 or self.val_data is None:
            return self.validate(epoch, len(batches))
        return False

    def train_step(self, indices, totals):
        batch = to_device(self.word_dropout(self.train_data.batch(indices)), self.device, pin=True)
        loss, scores = self.learn(batch, self.network)
        self.count_step(indices, loss.item(), count_correct(self.network, scores, batch), totals)

    def learn(self, batch, forward, share=1.0):
        """One optimizer step on the batch's loss times `share` (a distributed rank's part,
        see distributed.py), the forward pass through `forward`; -> (loss, scores)."""
        with self.precision.autocast():
            scores = forward(batch)
            loss = self.network.loss(scores, batch)
        self.optimizer.zero_grad()
        self.precision.scaler.scale(loss * share).backward()
        if self.grad_clip:
            self.precision.scaler.unscale_(self.optimizer)
            self.clip_gradients()
        self.precision.scaler.step(self.optimizer)
        self.precision.scaler.update()
        return loss, scores

    def count_step(self, indices, value, correct_count, totals):
        if not math.isfinite(value):
            raise TrainingDiverged(f"the training loss became {value}: lower --learningrate, or check the data for "
                                   f"extreme numbers; the last good model is kept")
        totals.add(value, *correct_count)
        self.model.position["instances"] += len(indices)
        self.seen += len(indices)

    def clip_gradients(self):
        # an ensemble's loss is the mean of its members', which scales each member's
        # gradient by 1/N: clipping each at 1/N of the threshold trains it as if alone
        members = getattr(self.network, "members", [self.network])
        for member in members:
            torch.nn.utils.clip_grad_norm_(member.parameters(), self.grad_clip / len(members))

    def report(self, epoch, number, totals):
        log.info("%sepoch %d batch %d/%d: loss %.4f%s, %s", self.name, epoch, number, self.batches_per_epoch,
                 totals.loss(), self.accuracy_text(totals), self.speed())

    def speed(self):
        """Instances (sequences) per second in this run, and the time an epoch takes."""
        elapsed = time.time() - self.started
        rate = self.seen / elapsed if elapsed else 0.0
        unit = "sequences" if self.train_data.is_sequence else "instances"
        return f"{rate:.0f} {unit}/s, {self.epoch_seconds():.1f} s/epoch"

    def learning_rate(self):
        return self.optimizer.param_groups[0]["lr"]

    def epochs_run(self):
        return self.model.position["epoch"]

    def epoch_seconds(self):
        return (time.time() - self.started) * self.batches_per_epoch / max(1, self.done_batches)

    def budget(self):
        """What is known of the training still to come: the early stop's and --maxepochs' limits."""
        parts = [f"{self.epoch_seconds():.1f} s/epoch", f"{plural(self.epochs_left, 'epoch')} left by --maxepochs"]
        if self.patience:
            left = self.patience - self.bad_validations
            parts.insert(1, f"stops if {plural(left, 'more validation')} {'brings' if left == 1 else 'bring'} no improvement")
        if self.part:
            parts.append(f"{plural(self.part[1] - self.part[0], 'network')} left")
        return ", ".join(parts)

    def accuracy_text(self, totals):
        return "" if self.task == "regression" else f", accuracy {totals.accuracy():.4f}"

    def validate(self, epoch, number):
        """Evaluates; a new best (or no validation set) calls on_improvement; True means stop training."""
        if self.val_data is None:
            self.hooks.on_improvement(self)
            return False
        with PHASES.timing("validation"):
            figures, search = validation_pass(self.network, self.val_data, self.device, self.model.arch.labels)
        entry = self.history_entry(epoch, number, figures)
        self.model.history.append(entry)
        improved = is_better(entry, self.best, self.metric)
        self.network.train()
        if improved:
            self.best = entry
            self.bad_validations = 0
            self.calibrate(search)
            self.hooks.on_improvement(self)
        else:
            self.bad_validations += 1
        log.info("%svalidation after epoch %d batch %d: %s; %s%s", self.name, epoch, number, figures_text(entry),
                 self.budget(), self.improvement_text() if improved else "")
        self.hooks.on_validation(self, entry, improved)
        if not improved and self.patience and self.bad_validations >= self.patience:
            log.info("%searly stopping: no improvement of validation %s in %d validations",
                     self.name, self.metric, self.bad_validations)
            return True
        return False

    def improvement_text(self):
        # the network of a cross-validation is kept, and saved with the others within crossval.SAVE_EVERY
        return " (best so far)" if self.part else " (best so far, saved)"

    def history_entry(self, epoch, number, figures):
        entry = {"epoch": epoch, "batch": number, "loss": figures["loss"], "instances": self.model.position["instances"]}
        if self.task == "regression":
            entry["rmse"] = math.sqrt(figures["loss"]) * self.model.schema.target_std
        else:
            entry["accuracy"] = figures["accuracy"]
        if "entity_f1" in figures:
            entry["entity_f1"] = figures["entity_f1"]
        return entry

    def calibrate(self, search):
        """Sets the temperature of the reported probabilities from this validation pass."""
        if search is not None:
            temperature, loss, uncalibrated_loss = search.best()
            self.network.temperature = temperature
            self.calibration = (temperature, loss, uncalibrated_loss, search.items)

    def log_summary(self, prefix):
        summary = figures_text(self.best) if self.best else ""
        log.info("done in %s; best model (%s) in %s", format_seconds(time.time() - self.started),
                 summary or "last epoch", model_io.json_path(prefix))
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


def train_one_network(args, model, device, train_set, val_set, reports, trainer_class=Trainer):
    """The ordinary run: the model file holds the best network so far, always;
    `trainer_class`: distributed.py's under torchrun."""
    def keep(trainer):
        with PHASES.timing("saving"):
            model_io.write_model(args.modelprefix, model, trainer.optimizer)

    def finish(trainer):
        if trainer.best is None and trainer.val_data is not None:
            keep(trainer)  # stopped before its first validation: the network so far
        trainer.log_summary(args.modelprefix)
        reports.finish(val_set, trainer.epochs_run())

    hooks = Hooks(on_improvement=keep, on_finish=finish).then(reports.hooks())
    trainer_class(args, model, device, train_set, val_set, hooks).run()


FIGURE_NAMES = {"loss": "loss", "accuracy": "accuracy", "entity_f1": "entity F1", "rmse": "rmse"}


def figures_text(entry):
    """'loss 0.3125, accuracy 0.9012, entity F1 0.5512' of a history entry."""
    return ", ".join(f"{name} {entry[key]:.4f}" for key, name in FIGURE_NAMES.items() if key in entry)


def plural(count, noun):
    return f"{count} {noun}" + ("" if count == 1 else "s")


def format_seconds(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
