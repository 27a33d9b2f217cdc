"""What training leaves for people to read, beside the model: the live history
(`PREFIX.history.tsv`), the learning curves (`PREFIX.curves.png`), the validation report
(`PREFIX.report.json`, the same as `evaluate` gives, also in the log) and the model card
(`PREFIX.md`). They follow the trainer's on_report and on_validation hooks and are
finished when training ends. None of them may end training: a failure is one warning.
"""

import json
import logging
import os
import time

import numpy as np

from .. import evaluate, metrics, model_io
from ..config import train_defaults
from ..history import HistoryFile
from ..model_card import model_card
from ..plot import curves_path, draw
from .phases import PHASES
from .trainer import Hooks

log = logging.getLogger("filejsonpytorch")
#: the share of training time the curves may take while training runs
CURVES_SHARE = 0.03
FIRST_DRAW_SECONDS = 0.6  # matplotlib's import and a first figure


class TrainingReports:
    def __init__(self, args, data):
        """`data`: the data sets trained and validated on, for the model card's counts."""
        self.args, self.prefix, self.data = args, args.modelprefix, [d for d in data if d is not None]
        self.started = time.monotonic()
        self.history = HistoryFile(self.prefix, resume=args.resume)
        self.drawing_seconds, self.draws = 0.0, 0
        self.broken = set()

    def hooks(self, network=1):
        """The hooks that keep the history and the curves of network number `network`."""
        def on_report(trainer, epoch, batch, totals):
            accuracy = None if trainer.task == "regression" else totals.accuracy()
            self.record_report(network, epoch, batch, trainer.model.position["instances"],
                               trainer.learning_rate(), totals.loss(), accuracy)

        def on_validation(trainer, entry, improved):
            self.record_validation(network, entry, trainer.learning_rate(), improved)

        return Hooks(on_report=on_report, on_validation=on_validation)

    def record_report(self, network, epoch, batch, instances, learning_rate, loss, accuracy):
        """A training report of network number `network` (also from a worker process, see workers.py)."""
        with PHASES.timing("reports"):
            self.history.report(network, epoch, batch, instances, learning_rate, loss, accuracy)

    def record_validation(self, network, entry, learning_rate, improved):
        with PHASES.timing("reports"):
            self.history.validation(network, epoch=entry["epoch"], batch=entry["batch"], instances=entry["instances"],
                                    learning_rate=learning_rate, figures=entry, best=improved)
            self.draw_curves(final=False)

    def draw_curves(self, final=True):
        """Redraws the curves, while training only as long as they cost CURVES_SHARE of its time."""
        elapsed = time.monotonic() - self.started
        expected = self.drawing_seconds / max(1, self.draws) if self.drawing_seconds else FIRST_DRAW_SECONDS
        if not final and self.drawing_seconds + expected > CURVES_SHARE * elapsed:
            return
        started = time.monotonic()
        self.attempt("curves", curves_path(self.prefix), lambda: draw([self.prefix], curves_path(self.prefix)))
        self.drawing_seconds += time.monotonic() - started
        self.draws += 1

    def finish(self, validation, epochs, report=None):
        """At the end of training: the curves, the report of the saved model on `validation`
        (or the given one: a cross-validation's), and the model card; then the time per phase."""
        with PHASES.timing("reports"):
            self.write_final(validation, epochs, report)
        PHASES.log()

    def write_final(self, validation, epochs, report):
        self.history.close()
        self.draw_curves()
        log.info("learning curves in %s, drawn %d times in %.1f s (%.1f%% of the training time)",
                 curves_path(self.prefix), self.draws, self.drawing_seconds,
                 100 * self.drawing_seconds / max(1e-9, time.monotonic() - self.started))
        if not os.path.exists(model_io.json_path(self.prefix)):
            return
        model = model_io.read_model(self.prefix)
        if report is None and validation is not None:
            report = evaluate.report(model.network.eval(), model.schema, validation)
        if report is not None:
            log.info("the validation data scored as `evaluate` scores it:\n%s", metrics.format_report(report).rstrip())
            self.attempt("report", f"{self.prefix}.report.json", lambda: write_text(
                f"{self.prefix}.report.json", json.dumps(report, indent=1, ensure_ascii=False)))
        card = model_card(json.loads(read_text(model_io.json_path(self.prefix))), self.facts(model, epochs), report)
        self.attempt("model card", f"{self.prefix}.md", lambda: write_text(f"{self.prefix}.md", card))

    def facts(self, model, epochs):
        """What the model card says of the data and the run, beside the model file's own record."""
        elements = sum(int(d.seq_offsets[-1]) for d in self.data if d.seq_offsets is not None)
        facts = {"data_file": self.args.metafile.replace(".meta.json", ".data.json"),
                 "items": sum(len(d) for d in self.data), "elements": elements,
                 "parameters": sum(p.numel() for p in model.network.parameters()),
                 "seconds": time.monotonic() - self.started, "epochs": epochs, "defaults": train_defaults()}
        if model.schema.labels:
            counts = np.bincount(np.concatenate([d.target for d in self.data]), minlength=len(model.schema.labels))
            facts["label_counts"] = dict(zip(model.schema.labels, map(int, counts)))
        return facts

    def attempt(self, what, path, write):
        try:
            write()
        except Exception as e:  # a report must never end training
            if what not in self.broken:
                log.warning("cannot write the %s %s (%s: %s); training goes on without it",
                            what, path, type(e).__name__, e)
            self.broken.add(what)


def write_text(path, text):
    """Writes a text file whole or not at all: a reader never sees half of it."""
    temporary = f"{path}.tmp{os.getpid()}"
    try:
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def read_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()
