"""What training leaves for people to read: the live history, the learning curves, the
validation report (the same as `evaluate` gives) and the model card, all consistent with
the model file; and that none of them can end a training run."""

import json
import re
import subprocess
import sys

import pytest

from conftest import PREFIX, data_lines, model_info, write_lines
from filejsonpytorch.history import COLUMNS, read_history

PNG = b"\x89PNG\r\n\x1a\n"


def paths(datadir):
    return datadir / "crvd.meta.json", datadir / PREFIX


def rows_of(prefix):
    return read_history(f"{prefix}.history.tsv")


def test_a_cross_validation_leaves_history_curves_report_and_card_in_step_with_the_model(train_cli, make_datadir):
    datadir = make_datadir("class-ionosphere")
    meta, prefix = paths(datadir)
    run = train_cli(meta, prefix, "--maxepochs", "2")
    assert run.code == 0, run.err
    info = model_info(prefix)

    rows = rows_of(prefix)
    assert (datadir / f"{PREFIX}.history.tsv").read_text().splitlines()[0].split("\t") == COLUMNS
    validations = [r for r in rows if r["val_loss"] is not None]
    assert len(validations) == len(info["history"]) == 10
    # the history file is in the order of events: the networks' rows interleave when they train at once
    assert sorted((r["network"], r["epoch"], r["val_accuracy"]) for r in validations) == \
        sorted((h["fold"], h["epoch"], round(h["accuracy"], 6)) for h in info["history"])
    assert len([r for r in rows if r["train_loss"] is not None]) == 10 and all(r["learning_rate"] == 0.001 for r in rows)
    assert (datadir / f"{PREFIX}.curves.png").read_bytes().startswith(PNG)

    report = json.loads((datadir / f"{PREFIX}.report.json").read_text())
    folds_figure = re.search(r"Each on the fold it validated on: loss [\d.]+, accuracy ([\d.]+)", run.err).group(1)
    assert f"{report['classification']['accuracy']:.4f}" == folds_figure and report["classification"]["n"] == 351
    assert "Most confused:" in run.err
    assert re.search(r"\ntime spent: reading [\d.]+ s, vocabularies [\d.]+ s, training [\d.]+ s, validation "
                     r"[\d.]+ s, distillation [\d.]+ s, saving [\d.]+ s, reports [\d.]+ s\n$", run.err), run.err[-500:]

    card = (datadir / f"{PREFIX}.md").read_text()
    parameters = int(re.search(r"parameters: ([\d,]+)", run.err).group(1).replace(",", ""))  # the five's
    assert f"one network, distilled from the 5 networks of a 5-fold cross-validation (`{PREFIX}.folds.json`), " \
           f"{parameters // 5:,} parameters" in card
    assert "labels: `b` 126, `g` 225" in card and "- `--maxepochs` 2" in card
    assert f"accuracy {report['classification']['accuracy']:.4f}" in card


def test_the_report_is_what_evaluate_says_of_the_saved_model_on_its_validation_data(train_cli, make_datadir, tmp_path):
    datadir = make_datadir("ner-wikigold-train", lines=300)
    valfile = write_lines(tmp_path / "val.data.json", data_lines("ner-wikigold-train")[300:400])
    meta, prefix = paths(datadir)
    assert train_cli(meta, prefix, "--valfile", valfile, "--maxepochs", "2").code == 0

    evaluated = subprocess.run([sys.executable, "-m", "filejsonpytorch.evaluate", str(prefix), str(valfile), "--json"],
                               capture_output=True, text=True, timeout=300)

    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads((datadir / f"{PREFIX}.report.json").read_text())
    assert_equal_up_to_rounding(report, json.loads(evaluated.stdout))
    best = max(model_info(prefix)["history"], key=lambda h: h["entity_f1"])
    assert abs(report["entities"]["micro"]["f1"] - best["entity_f1"]) < 1e-9
    assert [r["val_entity_f1"] for r in rows_of(prefix) if r["val_loss"] is not None] == \
        [round(h["entity_f1"], 6) for h in model_info(prefix)["history"]]
    assert f"entity F1 {report['entities']['micro']['f1']:.4f} (exact spans)" in (datadir / f"{PREFIX}.md").read_text()


def test_resume_appends_to_the_history(train_cli, make_datadir):
    datadir = make_datadir("class-ionosphere")
    meta, prefix = paths(datadir)
    assert train_cli(meta, prefix, "--folds", "1", "--maxepochs", "2").code == 0
    first = rows_of(prefix)
    assert train_cli(meta, prefix, "--resume", "--maxepochs", "1").code == 0
    rows = rows_of(prefix)
    assert rows[:len(first)] == first and len(rows) == len(first) + 2
    assert rows[-1]["epoch"] == 3 and rows[-1]["time"] >= first[-1]["time"]
    assert (datadir / f"{PREFIX}.history.tsv").read_text().count("time\tnetwork") == 1
    assert train_cli(meta, prefix, "--folds", "1", "--maxepochs", "1").code == 0
    assert len(rows_of(prefix)) == 2  # a new training starts a new history


def test_a_report_that_cannot_be_written_is_a_warning_and_training_succeeds(train_cli, make_datadir):
    datadir = make_datadir("class-ionosphere", lines=80)
    meta, prefix = paths(datadir)
    (datadir / f"{PREFIX}.curves.png").mkdir()
    (datadir / f"{PREFIX}.md").mkdir()
    run = train_cli(meta, prefix, "--folds", "1", "--maxepochs", "2")
    assert run.code == 0, run.err
    assert run.err.count(f"cannot write the curves {prefix}.curves.png") == 1
    assert run.err.count(f"cannot write the model card {prefix}.md") == 1
    assert (datadir / f"{PREFIX}.report.json").is_file() and model_info(prefix)["history"]


def test_the_plot_command_draws_several_models_side_by_side(train_cli, make_datadir, tmp_path):
    prefixes = []
    for name in ("a", "b"):
        datadir = make_datadir("class-ionosphere", lines=80, subdir=name)
        assert train_cli(*paths(datadir), "--folds", "1", "--maxepochs", "2").code == 0
        prefixes.append(str(paths(datadir)[1]))
    output = tmp_path / "both.png"
    done = subprocess.run([sys.executable, "-m", "filejsonpytorch.plot", *prefixes, "--output", str(output)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert output.read_bytes().startswith(PNG) and output.stat().st_size > 20_000
    missing = subprocess.run([sys.executable, "-m", "filejsonpytorch.plot", str(tmp_path / "none")],
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 4 and "no training history" in missing.stderr


def assert_equal_up_to_rounding(written, evaluated, where="report"):
    """Equal structure, counts and labels; floats equal up to float32 rounding, which differs
    between processes when the CPU's kernels sum in another order."""
    assert type(written) is type(evaluated), where
    if isinstance(written, dict):
        assert written.keys() == evaluated.keys(), where
        for key in written:
            assert_equal_up_to_rounding(written[key], evaluated[key], f"{where}.{key}")
    elif isinstance(written, list):
        assert len(written) == len(evaluated), where
        for i, (a, b) in enumerate(zip(written, evaluated)):
            assert_equal_up_to_rounding(a, b, f"{where}[{i}]")
    elif isinstance(written, float):
        assert written == pytest.approx(evaluated, rel=1e-6, abs=1e-9), where
    else:
        assert written == evaluated, where
