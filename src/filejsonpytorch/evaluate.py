"""Evaluation: `python -m filejsonpytorch.evaluate MODELPREFIX DATAFILE [--json]`.

Applies a saved model to a labeled LF data file (an export in crvd.data.json format) and
reports accuracy, per-class precision/recall/F1, macro/micro averages and the confusion
matrix; for LF chunk labels also exact-span entity scores per type; for regression
MAE/RMSE/R². The table goes to stdout (or the JSON report with --json).
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
    _, schema, vocabs, network = model_io.load_network(prefix)
    data = lfdata.read_dataset(datafile, schema, lfdata.Encoder(schema, vocabs))
    predicted = predict_all(network, TensorData(data))
    if schema.target_kind == "numeric":
        gold = data.target * schema.target_std + schema.target_mean
        values = predicted * schema.target_std + schema.target_mean
        return {"task": "regression", "regression": metrics.regression_report(gold.tolist(), values.tolist())}
    labels = schema.labels
    gold = [labels[i] for i in data.target]
    pred = [labels[i] for i in predicted]
    if not schema.is_sequence:
        return {"task": "classification", "classification": metrics.classification_report(gold, pred, labels)}
    bounds = data.seq_offsets
    gold_seqs = [gold[s:e] for s, e in zip(bounds[:-1], bounds[1:])]
    pred_seqs = [pred[s:e] for s, e in zip(bounds[:-1], bounds[1:])]
    return metrics.sequence_report(gold_seqs, pred_seqs, labels)


def predict_all(network, data, batch_size=256):
    """Predictions in data order: class ids per instance or element, or regression values."""
    outputs = []
    with torch.inference_mode():
        for start in range(0, data.size, batch_size):
            indices = np.arange(start, min(start + batch_size, data.size))
            batch = data.batch(indices)
            predicted, _ = network.predict(network(batch), batch)
            if "mask" in batch:
                outputs.append(predicted[batch["mask"]])
            else:
                outputs.append(predicted)
    return torch.cat(outputs).numpy() if outputs else np.zeros(0)


if __name__ == "__main__":
    sys.exit(main())
