"""Every option keeps its word: a resumed run trains as the saved run did, --notrain saves
what training builds, chunk labels are validated on entity F1, every write failure is the
documented error, the --arch file is checked like --hparams, impossible validation sizes
are refused, and the progress lines say only what is known."""

import json
import re
import resource
import subprocess

import pytest

from conftest import PREFIX, model_info, train_command, train_env
from filejsonpytorch.errors import EXIT_ENVIRONMENT, EXIT_USAGE


def paths(datadir):
    return datadir / "crvd.meta.json", datadir / PREFIX


def parameters(log):
    return int(re.search(r"parameters: ([\d,]+)", log).group(1).replace(",", ""))


def best_line(log):
    return re.findall(r"best model \(([^)]*)\)", log)[-1]


# --- 1. --resume trains with the saved run's options ---------------------------------


def test_resume_keeps_the_saved_runs_options_and_its_best_model(train_cli, make_datadir):
    datadir = make_datadir("class-ionosphere")
    meta, prefix = paths(datadir)
    options = ("--folds", "1", "--valsize", "0.2", "--es_patience", "2", "--es_metric", "loss")
    assert train_cli(meta, prefix, *options, "--maxepochs", "3").code == 0
    saved = min(model_info(prefix)["history"], key=lambda h: h["loss"])

    run = train_cli(meta, prefix, "--resume", "--maxepochs", "2")

    assert run.code == 0, run.err
    assert "the saved run's options: valsize=0.2, es_patience=2, es_metric=loss, folds=1" in run.err
    assert "validating on 70 instances" in run.err and "early stopping on loss with patience 2" in run.err
    best = min(model_info(prefix)["history"], key=lambda h: h["loss"])
    assert best["loss"] <= saved["loss"]
    assert f"loss {best['loss']:.4f}" in best_line(run.err)


def test_an_option_given_again_on_resume_wins_and_is_said(train_cli, make_datadir):
    datadir = make_datadir("class-ionosphere")
    meta, prefix = paths(datadir)
    assert train_cli(meta, prefix, "--folds", "1", "--es_patience", "2", "--maxepochs", "1").code == 0
    run = train_cli(meta, prefix, "--resume", "--maxepochs", "1", "--es_patience", "4")
    assert run.code == 0, run.err
    assert "patience 4" in run.err and "es_patience=4 (the saved run had 2)" in run.err


def test_a_resumed_cross_validation_names_its_network_and_epoch(train_cli, make_datadir):
    datadir = make_datadir("abalone-train")
    meta, prefix = paths(datadir)
    assert train_cli(meta, prefix, "--maxepochs", "2").code == 0
    info = model_info(prefix)
    assert info["position"]["networks_finished"] == 5
    run = train_cli(meta, prefix, "--resume", "--maxepochs", "1")
    assert run.code == 0, run.err
    assert "with the 5 networks of a 5-fold cross-validation, each after its epoch 2" in run.err


# --- 2. --notrain saves what training builds --------------------------------------------


def test_notrain_shows_and_saves_what_training_builds_and_resume_trains_exactly_that(train_cli, make_datadir):
    deferred, direct = make_datadir("class-ionosphere", subdir="deferred"), make_datadir("class-ionosphere", subdir="direct")
    shown = train_cli(*paths(deferred), "--notrain")
    assert shown.code == 0, shown.err
    trained = train_cli(*paths(direct), "--maxepochs", "1")
    assert parameters(shown.err) == parameters(trained.err)
    assert "5-fold cross-validation" in shown.err
    # what --notrain saved is the five networks the direct run distilled its model from
    assert model_info(paths(deferred)[1])["arch"] == model_info(f"{paths(direct)[1]}.folds")["arch"]

    later = train_cli(*paths(deferred), "--resume", "--maxepochs", "1")

    assert later.code == 0, later.err
    assert "network 5 of 5" in later.err
    info = model_info(paths(deferred)[1])
    assert {h["fold"] for h in info["history"]} == {1, 2, 3, 4, 5}
    assert info["position"]["networks_finished"] == 5 and info["arch"] == model_info(paths(direct)[1])["arch"]


# --- 3. chunk labels: entity F1 chooses the model -----------------------------------------


def test_chunk_labels_validate_on_entity_f1_and_choose_the_best_model_by_it(train_cli, make_datadir):
    datadir = make_datadir("ner-wikigold-train", lines=300)
    run = train_cli(*paths(datadir), "--maxepochs", "2")
    assert run.code == 0, run.err
    assert "early stopping on entity_f1" in run.err
    validations = [line for line in run.err.splitlines() if line.startswith("validation after")]
    assert len(validations) == 2 and all("entity F1" in line for line in validations)
    history = model_info(paths(datadir)[1])["history"]
    assert all(0.0 <= h["entity_f1"] <= 1.0 for h in history)
    assert f"entity F1 {max(h['entity_f1'] for h in history):.4f}" in best_line(run.err)


def test_entity_f1_is_refused_without_chunk_labels(train_cli, make_datadir):
    run = train_cli(*paths(make_datadir("seq-pos1", lines=50)), "--es_metric", "entity_f1", "--maxepochs", "1")
    assert run.code == EXIT_USAGE and "entity_f1 needs chunk labels" in run.err


# --- 4. every write failure is the documented error ----------------------------------------


def test_a_model_prefix_that_cannot_be_written_is_exit_5_naming_the_file(train_cli, make_datadir):
    datadir = make_datadir("class-ionosphere", lines=40)
    (datadir / "not-a-directory").write_text("")
    run = train_cli(datadir / "crvd.meta.json", datadir / "not-a-directory" / PREFIX, "--folds", "1")
    assert run.code == EXIT_ENVIRONMENT, run.err
    assert "Traceback" not in run.err and "internal error" not in run.err
    assert f"cannot write {datadir / 'not-a-directory' / PREFIX}" in run.err


def _limit_file_size(limit):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_full_disk_before_the_first_save_is_exit_5_and_leaves_no_empty_files(make_datadir):
    """A file-size limit makes every write past 200 bytes fail (EFBIG), as a full disk does."""
    datadir = make_datadir("class-ionosphere", lines=60)
    meta, prefix = paths(datadir)
    result = subprocess.run(train_command(meta, prefix, "--folds", "1", "--maxepochs", "1"), capture_output=True,
                            text=True, env=train_env(), timeout=300, preexec_fn=_limit_file_size(200))
    assert result.returncode == EXIT_ENVIRONMENT, result.stderr[-3000:]
    assert "Logging error" not in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("cannot write the log file") == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: cannot write ")
    assert not [p.name for p in datadir.iterdir() if p.name.startswith(PREFIX) and p.stat().st_size == 0]
    assert "(best so far, saved)" not in result.stderr


# --- 5. the --arch file is checked like --hparams --------------------------------------


@pytest.mark.parametrize("edit, words", [
    (lambda a: a["hparams"].update(hiden=10), ["'hiden'", "hparams", "hidden"]),
    (lambda a: a.update(modul="mlp"), ["unknown key 'modul'"]),
    (lambda a: a["hparams"].update(hidden="big"), ["hidden", "int", '"big"']),
    (lambda a: a["training"].update(learningrate=-1), ["learningrate", "positive"]),
    (lambda a: a["training"].update(batchsize=2.5), ["batchsize", "whole number"]),
])
def test_a_bad_arch_file_is_exit_2_naming_the_key_and_the_file(train_cli, make_datadir, tmp_path, edit, words):
    datadir = make_datadir("class-ionosphere", lines=60)
    meta, prefix = paths(datadir)
    assert train_cli(meta, prefix, "--notrain", "--folds", "1").code == 0
    arch = json.loads((datadir / f"{PREFIX}.arch.json").read_text(encoding="utf-8"))
    edit(arch)
    path = tmp_path / "edited.arch.json"
    path.write_text(json.dumps(arch), encoding="utf-8")

    run = train_cli(meta, datadir / "other", "--arch", path, "--folds", "1", "--maxepochs", "1")

    assert run.code == EXIT_USAGE, run.err
    error = run.error_lines[0]
    assert str(path) in error and all(w in error for w in words), error


def edited_list_arch(train_cli, make_datadir, tmp_path, **entry):
    """-> (the run of sentence polarity with its list entry replaced by `entry`, the file,
    the data directory)."""
    datadir = make_datadir("class-ngram-sp1", lines=200)
    meta, prefix = paths(datadir)
    assert train_cli(meta, prefix, "--notrain", "--folds", "1").code == 0
    arch = json.loads((datadir / f"{PREFIX}.arch.json").read_text(encoding="utf-8"))
    arch["lists"][0] = {"emb": arch["lists"][0]["emb"], **entry}
    path = tmp_path / "edited.arch.json"
    path.write_text(json.dumps(arch), encoding="utf-8")
    return train_cli(meta, datadir / "other", "--arch", path, "--folds", "1", "--maxepochs", "1"), path, datadir


@pytest.mark.parametrize("entry, words", [
    ({"layer": "gru"}, ["lists[0] (embedding 'token')", "layer must be one of mean, cnn, lstm", '"gru"']),
    ({"layer": "cnn", "widths": [2, 0]}, ["lists[0]", "widths must be a non-empty list", "[2, 0]"]),
    ({"layer": "cnn", "channels": 2.5}, ["lists[0]", "channels must be a positive whole number", "2.5"]),
    ({"layer": "lstm", "hidden": "big"}, ["lists[0]", "hidden must be a positive whole number", '"big"']),
])
def test_a_bad_list_layer_in_an_arch_file_is_exit_2_naming_the_entry(train_cli, make_datadir, tmp_path, entry, words):
    run, path, _ = edited_list_arch(train_cli, make_datadir, tmp_path, **entry)
    assert run.code == EXIT_USAGE, run.err
    error = run.error_lines[0]
    assert str(path) in error and all(w in error for w in words), error


def test_a_list_layer_without_its_sizes_gets_the_layers_defaults(train_cli, make_datadir, tmp_path):
    run, _, datadir = edited_list_arch(train_cli, make_datadir, tmp_path, layer="cnn")
    assert run.code == 0, run.err
    trained = json.loads((datadir / "other.arch.json").read_text(encoding="utf-8"))
    assert trained["lists"] == [{"emb": "token", "layer": "cnn", "widths": [3, 4, 5], "channels": 100}]


# --- 6. impossible validation sizes ------------------------------------------------------


@pytest.mark.parametrize("valsize", ["5000", "0.999", "300"])
def test_a_validation_part_that_leaves_too_little_to_train_on_is_refused(train_cli, make_datadir, valsize):
    run = train_cli(*paths(make_datadir("class-ionosphere")), "--valsize", valsize, "--maxepochs", "1")
    assert run.code == EXIT_USAGE, run.err
    assert f"--valsize {valsize}" in run.err and "at most half of the 351 instances" in run.err


def test_a_tiny_validation_part_is_said(train_cli, make_datadir):
    run = train_cli(*paths(make_datadir("class-ionosphere")), "--valsize", "1", "--maxepochs", "1")
    assert run.code == 0, run.err
    assert "validating on 1 instance: too few to choose the best epoch" in run.err


# --- 9. honest progress -------------------------------------------------------------------


def test_progress_says_what_is_known(train_cli, make_datadir):
    """Every epoch reports its training loss (ionosphere's have 9 batches); validation lines
    give the time per epoch, the early-stopping budget and the networks left; a network of
    a cross-validation is "best so far", not "saved": the model file follows within
    crossval.SAVE_EVERY."""
    run = train_cli(*paths(make_datadir("class-ionosphere")), "--maxepochs", "3", "--es_patience", "2")
    assert run.code == 0, run.err
    lines = run.err.splitlines()
    reports = [line for line in lines if re.match(r"network \d of 5, epoch \d batch 9/9: loss \d", line)]
    assert len(reports) == 15, lines
    validations = [line for line in lines if line.startswith("network") and "validation after" in line]
    assert len(validations) == 15
    for line in validations:
        assert re.search(r"[\d.]+ s/epoch, stops if \d more validations? brings? no improvement, \d epochs? left "
                         r"by --maxepochs, \d networks? left", line), line
    assert "at most" not in run.err
    assert all(line.endswith("(best so far)") or "best so far" not in line for line in validations)


# --- early stopping's patience follows the validation set ---------------------------


@pytest.mark.parametrize("lines, valsize, patience", [(None, "768", 5), (None, "499", 10)])
def test_a_large_validation_set_stops_after_fewer_validations(train_cli, make_datadir, lines, valsize, patience):
    run = train_cli(*paths(make_datadir("sentpol-train", lines)), "--maxepochs", "1", "--valsize", valsize)
    assert run.code == 0, run.err
    said = re.search(r"validating on (\d+) instances; .* with patience (\d+)(.*)", run.err)
    assert said and int(said.group(1)) == int(valsize) and int(said.group(2)) == patience, run.err
    assert ("the default for a validation set of 768 instances; 10 under 500" in said.group(3)) == (patience == 5)


def test_the_given_patience_is_kept_on_a_large_validation_set(train_cli, make_datadir):
    run = train_cli(*paths(make_datadir("sentpol-train")), "--maxepochs", "1", "--es_patience", "10")
    assert run.code == 0, run.err
    assert re.search(r"validating on 853 instances; .* with patience 10\n", run.err), run.err
