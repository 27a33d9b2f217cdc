"""Measuring a network: running totals of a training stretch, the validation pass, and
which of two validation results is the better."""

import torch

from ..batches import Passes
from ..calibration import TemperatureSearch


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


def validation_pass(network, data, device, batch_size=256):
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
