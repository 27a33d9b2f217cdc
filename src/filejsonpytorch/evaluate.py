"""Evaluation: `python -m filejsonpytorch.evaluate MODELPREFIX DATAFILE [--json]`.

Applies a saved model to a labeled LF data file (an export in crvd.data.json format) and
reports accuracy, per-class precision/recall/F1, macro/micro averages and the confusion
matrix; for LF chunk labels also exact-span entity scores per type; for regression
MAE/RMSE/R². For labels, also how good the probabilities the application would answer
are (log-loss, calibration error). The table goes to stdout (or the JSON report with --json).
"""

import json
import sys

import numpy as np
import torch

from . import lfdata, metrics, model_io
from .batches import TensorData
from .config import Parser
from .logs import run_main, setup_logging


def main(argv=None):
    return run_main(lambda: evaluate_cli(argv), argv)


def evaluate_cli(argv):
    p = Parser(prog="filejsonpytorch-evaluate", description="Evaluate a trained model on a labeled LF data file.")
    p.add_argument("modelprefix")
    p.add_argument("datafile", help="a labeled data file in the LF format (crvd.data.json)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--debug", action="store_true")
    args = p.parse_args(argv)
    setup_logging(args.debug)
    report = evaluate(args.modelprefix, args.datafile)
    print(json.dumps(report, indent=1) if args.json else metrics.format_report(report))
    return 0


def evaluate(prefix, datafile):
    model = model_io.read_model(prefix)
    schema = model.schema
    return report(model.network.eval(), schema, lfdata.read_dataset(datafile, schema, lfdata.Encoder(schema, model.vocabs)))


def report(network, schema, data):
    """The report of `network` on a parsed data set; training writes the same for its
    validation set (PREFIX.report.json)."""
    return report_of_predictions(schema, data, *predict_all(network, TensorData(data)))


def report_of_predictions(schema, data, predicted, probabilities):
    """The report of predictions (as `predict_all` gives them) against the data's targets."""
    if schema.target_kind == "numeric":
        gold = data.target * schema.target_std + schema.target_mean
        values = predicted * schema.target_std + schema.target_mean
        return {"task": "regression", "regression": metrics.regression_report(gold.tolist(), values.tolist())}
    labels = schema.labels
    gold = [labels[i] for i in data.target]
    pred = [labels[i] for i in predicted]
    if not schema.is_sequence:
        report = {"task": "classification", "classification": metrics.classification_report(gold, pred, labels)}
    else:
        bounds = data.seq_offsets
        gold_seqs = [gold[s:e] for s, e in zip(bounds[:-1], bounds[1:])]
        pred_seqs = [pred[s:e] for s, e in zip(bounds[:-1], bounds[1:])]
        report = metrics.sequence_report(gold_seqs, pred_seqs, labels)
    if probabilities is not None:
        report["probabilities"] = probability_report(probabilities, data.target, predicted)
    return report


def probability_report(probabilities, target, predicted):
    rows = np.arange(len(target))
    return metrics.probability_report(probabilities[rows, target].tolist(), probabilities[rows, predicted].tolist(),
                                      (predicted == target).tolist())


def predict_all(network, data, batch_size=256):
    """-> (predictions in data order: class ids per instance or element, or regression
    values; the probabilities the application would answer [N, C], None for regression)."""
    outputs, distributions = [], []
    with torch.inference_mode():
        for start in range(0, data.size, batch_size):
            indices = np.arange(start, min(start + batch_size, data.size))
            batch = data.batch(indices)
            predicted, probabilities = network.predict(network(batch), batch)
            probabilities = network.calibrated(probabilities)
            if "mask" in batch:
                predicted = predicted[batch["mask"]]
                probabilities = probabilities[batch["mask"]] if probabilities is not None else None
            outputs.append(predicted)
            if probabilities is not None:
                distributions.append(probabilities)
    if not outputs:
        return np.zeros(0), None
    return torch.cat(outputs).numpy(), torch.cat(distributions).numpy() if distributions else None


if __name__ == "__main__":
    sys.exit(main())
