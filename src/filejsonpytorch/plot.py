"""Learning curves: `python -m filejsonpytorch.plot PREFIX [PREFIX...] [--output FILE]`.

Draws each model's `PREFIX.history.tsv` (see history.py) as one row of two panels: the
training and validation loss per epoch, and the validation figure that chooses the best
model (accuracy, entity F1 for chunk labels, RMSE for regression), with one line per
network of an ensemble or cross-validation and the best validation of each marked. Several
prefixes are drawn one under the other, for comparison. Training writes
`PREFIX.curves.png` itself as it goes; this command draws any set of models into one PNG
(default: the first prefix's `.curves.png`, or `curves.png` for several).

matplotlib draws with its file-only Agg canvas: no display is needed.
"""

import argparse
import os
import sys
from pathlib import Path

from .history import history_path, read_history

METRICS = [("val_entity_f1", "validation entity F1"), ("val_accuracy", "validation accuracy"),
           ("val_rmse", "validation RMSE")]


def curves_path(prefix):
    return f"{prefix}.curves.png"


def draw(prefixes, output):
    """Writes the curves of the models at `prefixes` into the PNG `output`."""
    from matplotlib.figure import Figure

    histories = [(str(prefix), read_history(history_path(prefix))) for prefix in prefixes]
    figure = Figure(figsize=(11, 3.6 * len(histories)), layout="constrained")
    axes = figure.subplots(len(histories), 2, squeeze=False)
    for (prefix, rows), (loss_axes, metric_axes) in zip(histories, axes):
        draw_model(Path(prefix).name, rows, loss_axes, metric_axes)
    temporary = f"{output}.tmp{os.getpid()}"  # a reader never sees half a picture
    try:
        figure.savefig(temporary, format="png", dpi=90)
        os.replace(temporary, output)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def draw_model(name, rows, loss_axes, metric_axes):
    column, label = next(((c, t) for c, t in METRICS if any(r[c] is not None for r in rows)), METRICS[1])
    networks = sorted({r["network"] for r in rows if r["network"] is not None})
    for network in networks:
        mine = [r for r in rows if r["network"] == network]
        first = network == networks[0]
        line = loss_axes.plot(*_points(mine, "train_loss"), linewidth=0.8, alpha=0.6,
                              label="training" if first else None)[0]
        loss_axes.plot(*_points(mine, "val_loss"), color=line.get_color(), linewidth=1.8,
                       label="validation" if first else None)
        metric_axes.plot(*_points(mine, column), color=line.get_color(), marker=".",
                         label=f"network {network}" if len(networks) > 1 else None)
        best = [r for r in mine if r["best"] == 1 and r[column] is not None]
        if best:
            metric_axes.plot(_epoch(best[-1], mine), best[-1][column], color=line.get_color(), marker="*",
                             markersize=14, linestyle="none")
    loss_axes.set(title=f"{name}: loss", xlabel="epoch", ylabel="loss")
    metric_axes.set(title=f"{name}: {label} (\u2605 the best)", xlabel="epoch", ylabel=label.split(" ", 1)[1])
    for axes in (loss_axes, metric_axes):
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize="small", ncols=2 if len(networks) > 4 else 1)


def _points(rows, column):
    chosen = [r for r in rows if r[column] is not None]
    return [_epoch(r, rows) for r in chosen], [r[column] for r in chosen]


def _epoch(row, rows):
    """A row's place in epochs: epoch 3 batch 10 of 40 is 2.25."""
    last = max((r["batch"] for r in rows if r["epoch"] == row["epoch"] and r["batch"]), default=0)
    return row["epoch"] - 1 + (row["batch"] / last if last else 1.0)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="filejsonpytorch-plot", description=__doc__.splitlines()[0].split(": ")[0])
    parser.add_argument("prefixes", nargs="+", help="model prefixes whose PREFIX.history.tsv to draw")
    parser.add_argument("--output", help="the PNG to write")
    args = parser.parse_args(argv)
    output = args.output or (curves_path(args.prefixes[0]) if len(args.prefixes) == 1 else "curves.png")
    missing = [p for p in args.prefixes if not Path(history_path(p)).is_file()]
    if missing:
        print(f"error: no training history {history_path(missing[0])} (written by training)", file=sys.stderr)
        return 4
    draw(args.prefixes, output)
    print(f"wrote {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
