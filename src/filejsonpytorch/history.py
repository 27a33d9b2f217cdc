"""The live training history, `PREFIX.history.tsv`: one row per training report and per
validation, written and flushed as training goes, so that a crash keeps every row before
it. A new training run starts the file anew; `--resume` appends to it. A file that cannot
be written costs one warning, never the training.

Columns (an empty cell: not measured in that row):
  time            seconds since the file was started (a resumed run goes on counting)
  network         the network's number: the fold of a cross-validation, else 1
  epoch, batch    where in training the row was taken
  instances       training instances (sequences) seen so far by this network
  learning_rate   the optimizer's learning rate then
  train_loss, train_accuracy   over the batches since the previous report
  val_loss, val_accuracy, val_entity_f1, val_rmse   the validation set's figures
  best            1 when this validation is the best so far (the network kept), else 0
"""

import csv
import logging
import math
import os
import time

log = logging.getLogger("filejsonpytorch")

COLUMNS = ["time", "network", "epoch", "batch", "instances", "learning_rate", "train_loss", "train_accuracy",
           "val_loss", "val_accuracy", "val_entity_f1", "val_rmse", "best"]
VALIDATION_FIGURES = {"loss": "val_loss", "accuracy": "val_accuracy", "entity_f1": "val_entity_f1",
                      "rmse": "val_rmse"}


def history_path(prefix):
    return f"{prefix}.history.tsv"


class HistoryFile:
    """Appends rows to PREFIX.history.tsv; `resume` keeps the rows already there."""

    def __init__(self, prefix, resume=False):
        self.path = history_path(prefix)
        appending = resume and os.path.isfile(self.path) and os.path.getsize(self.path) > 0
        earlier = _readable_rows(self.path) if appending else []
        self.offset = max((row["time"] for row in earlier if row["time"] is not None), default=0.0)
        self.started = time.monotonic()
        self.file = None
        try:
            self.file = open(self.path, "a" if appending else "w", encoding="utf-8", newline="")
        except OSError as e:
            self._give_up(e)
            return
        self.writer = csv.writer(self.file, delimiter="\t", lineterminator="\n")
        if not appending:
            self._write(COLUMNS)

    def report(self, network, epoch, batch, instances, learning_rate, loss, accuracy=None):
        self._row(network, epoch, batch, instances, learning_rate, train_loss=loss, train_accuracy=accuracy)

    def validation(self, network, epoch, batch, instances, learning_rate, figures, best):
        """`figures`: {loss, accuracy, entity_f1, rmse: value}, any of them."""
        cells = {VALIDATION_FIGURES[k]: v for k, v in figures.items() if k in VALIDATION_FIGURES}
        self._row(network, epoch, batch, instances, learning_rate, best=int(bool(best)), **cells)

    def _row(self, network, epoch, batch, instances, learning_rate, **figures):
        values = {"time": round(self.offset + time.monotonic() - self.started, 3), "network": network,
                  "epoch": epoch, "batch": batch, "instances": instances, "learning_rate": learning_rate, **figures}
        self._write([_cell(values.get(column)) for column in COLUMNS])

    def _write(self, cells):
        if self.file is None:
            return
        try:
            self.writer.writerow(cells)
            self.file.flush()
        except OSError as e:
            self._give_up(e)

    def _give_up(self, error):
        log.warning("cannot write the history file %s (%s); training goes on without it",
                    self.path, error.strerror or error)
        if self.file is not None:
            try:
                self.file.close()
            except OSError:
                pass
        self.file = None

    def close(self):
        if self.file is not None:
            self.file.close()


def _readable_rows(path):
    try:
        return read_history(path)
    except (OSError, ValueError):
        return []


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else ""
    return str(value)


def read_history(path):
    """The rows of a history file as dicts of numbers (None for an empty cell)."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [{column: _number(row.get(column)) for column in COLUMNS} for row in rows]


def _number(text):
    if text in (None, ""):
        return None
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value
