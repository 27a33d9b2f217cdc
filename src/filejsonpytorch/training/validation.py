"""Measuring a network: running totals of a training stretch, the validation pass, and
which of two validation results is the better."""

import torch

from ..batches import Passes
from ..calibration import TemperatureSearch
from ..chunks import is_chunk_labelling
from ..errors import UsageError
from ..metrics import entity_report


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


def validation_pass(network, data, device, labels=None, batch_size=256):
    """-> (figures: {loss (mean per instance or element), accuracy, and entity_f1 when
    `labels` are chunk labels}, TemperatureSearch of the predicted probabilities or None
    for regression)."""
    network.eval()
    totals = Totals()
    search = None if network.task == "regression" else TemperatureSearch()
    entities = EntityCount(labels) if labels and is_chunk_labelling(labels) else None
    loss_sum = weight = 0.0
    with torch.no_grad():
        for batch in Passes(data, batch_size, device):
            scores = network(batch)
            n = int(batch["mask"].sum()) if "mask" in batch else len(batch["target"])
            loss_sum += network.loss(scores, batch).item() * n
            weight += n
            predicted, probabilities = network.predict(scores, batch)
            totals.add(0.0, *count_correct(network, scores, batch, predicted=predicted))
            if entities is not None:
                entities.add(predicted, batch)
            if search is not None and probabilities is not None:
                mask = batch.get("mask")
                search.add(*((probabilities[mask], batch["target"][mask]) if mask is not None
                             else (probabilities, batch["target"])))
    figures = {"loss": loss_sum / max(1.0, weight), "accuracy": totals.accuracy()}
    if entities is not None:
        figures["entity_f1"] = entities.f1()
    return figures, search


class EntityCount:
    """Exact-span entity scores of the validation sequences, decoded with the LF's chunk rules."""

    def __init__(self, labels):
        self.labels = labels
        self.gold, self.predicted = [], []

    def add(self, predicted, batch):
        for ids, gold, mask in zip(predicted.tolist(), batch["target"].tolist(), batch["mask"].tolist()):
            length = sum(mask)
            self.predicted.append([self.labels[i] for i in ids[:length]])
            self.gold.append([self.labels[i] for i in gold[:length]])

    def f1(self):
        return entity_report(self.gold, self.predicted)["micro"]["f1"]


#: what each early-stopping metric compares, in order: larger is better
RANKING = {"accuracy": ("accuracy", "-loss"), "entity_f1": ("entity_f1", "accuracy", "-loss"), "loss": ("-loss",)}


#: validations without improvement before early stopping, unless --es_patience says
PATIENCE = 10
#: fewer on a validation set of LARGE_VALIDATION instances or more (not sequences), whose
#: figure moves less by chance: on sentence polarity's 711 the best epoch was the same
#: for each of 5 seeds (benchmarks/README.md)
LARGE_VALIDATION, LARGE_VALIDATION_PATIENCE = 500, 5


def early_stopping_patience(choice, val_data):
    """-> (--es_patience, or the default for this validation set, why: None for the option)."""
    if choice is not None:
        return choice, None
    if val_data is not None and not val_data.is_sequence and val_data.size >= LARGE_VALIDATION:
        return LARGE_VALIDATION_PATIENCE, (f"the default for a validation set of {val_data.size} instances; "
                                           f"{PATIENCE} under {LARGE_VALIDATION}")
    return PATIENCE, None


def early_stopping_metric(choice, arch):
    """What early stopping and the best model watch: --es_metric, by default entity F1 for
    chunk labels (a tagger of all O scores a high accuracy and finds nothing), accuracy for
    other labels; regression always the loss."""
    if arch.task == "regression":
        return "loss"
    chunks = arch.task == "sequence" and is_chunk_labelling(arch.labels)
    if choice == "entity_f1" and not chunks:
        raise UsageError("--es_metric entity_f1 needs chunk labels (Type|B, Type|I, O) in a sequence task; "
                         "use accuracy or loss for these labels")
    return choice or ("entity_f1" if chunks else "accuracy")


def is_better(entry, best, metric):
    if best is None:
        return True
    return _rank(entry, metric) > _rank(best, metric)


def _rank(entry, metric):
    return tuple(-entry[key[1:]] if key.startswith("-") else entry[key] for key in RANKING[metric])


def best_of(history, metric):
    """The best entry of a history; entries of an earlier validation set (see
    training/setup.py) are not comparable and are passed over."""
    best = None
    for entry in history:
        if metric in entry and not entry.get("earlier_validation") and is_better(entry, best, metric):
            best = entry
    return best
