"""The model card, `PREFIX.md`: a short page for people about a trained model (what task,
which data, how every feature is read, the network, the options that differ from the
defaults, how training went, how good it is on its validation data, and how to use it).
Training writes it with the model; it is made from the model file's own record and the
validation report, so the two always agree.
"""

import os
import platform
import sys

from . import __version__

def model_card(info, facts, report):
    """The card's Markdown. `info`: the model file's JSON; `facts`: {data_file, items,
    elements, label_counts, parameters, seconds, epochs, defaults}; `report`: the
    validation report (evaluate.report) or None."""
    sections = [_title(info), _data(info, facts), _features(info), _network(info, facts),
                _options(info, facts), _training(info, facts), _validation(info, report),
                _versions(), _usage()]
    name = os.path.basename(info.get("options", {}).get("modelprefix") or "PREFIX")
    return "\n\n".join(sections).replace("PREFIX", name) + "\n"


def _title(info):
    arch, schema = info["arch"], info["schema"]
    task = arch["task"]
    what = {"classification": f"classification into {len(schema['labels'])} labels",
            "regression": "regression of a number",
            "sequence": f"sequence tagging with {len(schema['labels'])} labels"}[task]
    return f"# PREFIX\n\nA filejsonpytorch model for the GATE LearningFramework: {what}."


def _data(info, facts):
    unit = "sequences" if info["schema"]["is_sequence"] else "instances"
    lines = ["## Training data", "",
             f"- file: `{facts['data_file']}`",
             f"- {facts['items']:,} {unit}" + (f", {facts['elements']:,} elements" if facts.get("elements") else "")]
    counts = facts.get("label_counts")
    if counts:
        lines.append("- labels: " + ", ".join(f"`{label}` {n:,}" for label, n in counts.items()))
    if info["schema"]["target_kind"] == "numeric":
        lines.append(f"- target: mean {info['schema']['target_mean']:.4g}, standard deviation "
                     f"{info['schema']['target_std']:.4g}")
    return "\n".join(lines)


def _features(info):
    arch, schema = info["arch"], info["schema"]
    ignored = set(_ignored_features(info))
    rows = ["## Features", "", "| # | feature | read as |", "|---|---|---|"]
    for f in schema["features"]:
        number = f"{f['index']} (characters)" if f["role"] == "chars" else f["index"]
        rows.append(f"| {number} | `{f['name']}` | {_encoding(f, arch, f['index'] in ignored and f['role'] == 'nominal')} |")
    return "\n".join(rows)


def _ignored_features(info):
    nominal = [f for f in info["schema"]["features"] if f["role"] == "nominal"]
    return [nominal[i]["index"] for i in info["arch"].get("ignore_nominal", [])]


def _encoding(feature, arch, ignored):
    if ignored:
        return "left out of the network (see the training log for why)"
    role = feature["role"]
    if role == "numeric":
        return f"number, standardised (mean {feature['mean']:.4g}, sd {feature['std']:.4g}); missing: the mean"
    if role == "boolean":
        return "0/1"
    spec = arch["embeddings"][feature["emb_id"]]
    vectors = "one-hot" if spec["train"] == "onehot" else f"{spec['dims']}-dim embedding ({spec['train']})"
    table = f"id `{feature['emb_id']}`, {spec['vocab_size']:,} values, {vectors}"
    if role == "nominal":
        return table
    layer = next((s for s in arch["lists"] if s["emb"] == feature["emb_id"]), {})
    return f"{'characters' if role == 'chars' else 'list'}: {table}, then a {layer.get('layer', 'cnn').upper()}"


def _network(info, facts):
    arch = info["arch"]
    folds = arch.get("training", {}).get("folds", 1)
    size = arch.get("ensemble", 1)
    whole = f"{size} networks, averaged" + (f" ({folds}-fold cross-validation)" if folds > 1 else "") \
        if size > 1 else "one network"
    if info.get("position", {}).get("distilled"):
        whole = (f"one network, distilled from the {folds} networks of a {folds}-fold cross-validation "
                 f"(`PREFIX.folds.json`)")
    hparams = ", ".join(f"{k}={v}" for k, v in arch["hparams"].items())
    return (f"## Network\n\n- module `{arch['module']}` ({hparams})\n- {whole}, "
            f"{facts['parameters']:,} parameters\n- the whole architecture: `PREFIX.arch.json`")


def _options(info, facts):
    options, defaults = info.get("options", {}), facts.get("defaults", {})
    changed = {k: v for k, v in options.items()
               if k in defaults and v != defaults[k] and k not in ("metafile", "modelprefix", "datadir")}
    if not changed:
        return "## Options\n\nAll training options at their defaults."
    return "## Options that differ from the defaults\n\n" + "\n".join(f"- `--{k}` {v}" for k, v in changed.items())


def _training(info, facts):
    minutes, seconds = divmod(int(facts.get("seconds") or 0), 60)
    training = info["arch"].get("training", {})
    return (f"## Training\n\n- {facts.get('epochs', 0)} epochs in {minutes} min {seconds} s; Adam, learning rate "
            f"{training.get('learningrate')}, batch size {training.get('batchsize')}\n"
            f"- the validation history: `PREFIX.history.tsv`, drawn in `PREFIX.curves.png`")


def _validation(info, report):
    temperature = info.get("temperature", 1.0)
    calibration = f"probabilities calibrated with temperature {temperature:.2f}" if temperature != 1.0 \
        else "probabilities as the network gives them (temperature 1)"
    if report is None:
        return f"## Validation\n\nNo validation set was scored; {calibration}."
    folds = info["arch"]["training"].get("folds", 1)
    scored = "each network of the cross-validation on the fold it did not train on" if folds > 1 else "the validation data"
    lines = ["## Validation", "", f"Scored on {scored} (the full report: `PREFIX.report.json`); {calibration}.", ""]
    lines += _figures(report)
    return "\n".join(lines)


def _figures(report):
    if report.get("task") == "regression":
        r = report["regression"]
        return [f"- MAE {r['mae']:.4f}, RMSE {r['rmse']:.4f}, R² {r['r2']:.4f} ({r['n']:,} instances)"]
    scores = report.get("classification") or report["tokens"]
    lines = [f"- accuracy {scores['accuracy']:.4f} ({scores['n']:,} {'elements' if 'tokens' in report else 'instances'})"]
    if report.get("entities"):
        micro = report["entities"]["micro"]
        lines.append(f"- entity F1 {micro['f1']:.4f} (exact spans), precision {micro['precision']:.4f}, "
                     f"recall {micro['recall']:.4f}")
    weak = sorted(((s["f1"], label) for label, s in scores["per_class"].items() if s["support"]), key=lambda x: x[0])
    if weak:
        lines.append("- weakest labels (F1): " + ", ".join(f"`{label}` {f1:.3f}" for f1, label in weak[:3]))
    if report.get("probabilities"):
        p = report["probabilities"]
        lines.append(f"- log-loss {p['log_loss']:.4f}, expected calibration error {p['ece']:.4f}")
    return lines


def _versions():
    import torch

    return (f"## Made with\n\nfilejsonpytorch {__version__}, torch {torch.__version__}, "
            f"Python {platform.python_version()} ({sys.platform})")


def _usage():
    return ("## Use\n\n- in GATE: an LF application PR (`LF_ApplyClassification`, `LF_ApplyChunking`) with this "
            "data directory;\n- from a shell in the data directory: `FileJsonPyTorch/apply.sh PREFIX crvd.meta.json "
            "FileJsonPyTorch` answers one request per line;\n- score it on a labeled export: "
            "`FileJsonPyTorch/evaluate.sh PREFIX DATAFILE`.")
