"""The trainer, `python -m filejsonpytorch.train METAFILE MODELPREFIX [options]`, on the
real LF exports: what it writes, user errors, stopping, resuming, options, and one short
training run for every shared export.

Most runs call the trainer in-process (`train_cli`, no interpreter start); the tests of
the stop file, signals and the command itself start it as the host does."""

import json
import math
import queue
import signal
import subprocess
import threading
import time

import pytest
import torch

from conftest import (EXPORTS, PREFIX, data_lines, load_tensors, model_info, run_train_process,
                      train_command, train_env, write_lines)
from filejsonpytorch import model_io
from filejsonpytorch.history import read_history
from filejsonpytorch.errors import EXIT_DATA, EXIT_ENVIRONMENT, EXIT_USAGE

SLOW_EXPORTS = {"class-ngram-sp1", "class-window-pos1", "seq-pos1", "ner-wikigold-train",
                "ner-wikigold-multi-train", "sentpol-train", "pos-ud-seq-train"}
TASKS = {"abalone-train": "regression", "seq-pos1": "sequence", "seq-pos2": "sequence",
         "ner-wikigold-train": "sequence", "ner-wikigold-multi-train": "sequence", "pos-ud-seq-train": "sequence"}


@pytest.fixture
def iono(make_datadir):
    """A data directory with class-ionosphere (351 numeric instances): quick to train."""
    return make_datadir("class-ionosphere")


def paths(datadir, prefix=PREFIX):
    return datadir / "crvd.meta.json", datadir / prefix


def history(prefix):
    return model_info(prefix)["history"]


def assert_loadable(prefix):
    model_io.read_model(str(prefix))  # builds the network and loads its weights, or raises
    return model_info(prefix)


def assert_one_error_line(run, code, *parts):
    assert run.code == code, run.err
    assert len(run.error_lines) == 1, run.err
    for part in parts:
        assert part in run.error_lines[0], run.error_lines[0]
    assert "Traceback" not in run.err


def written_files(datadir):
    return sorted(p.name for p in datadir.iterdir())


def same_tensors(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- --notrain, --nocreate, the files written -----------------------------------------


def test_notrain_saves_a_loadable_untrained_model_and_shows_the_architecture(train_cli, iono):
    meta, prefix = paths(iono)
    run = train_cli(meta, prefix, "--notrain")
    assert run.code == 0, run.err
    arch_text = (iono / f"{PREFIX}.arch.json").read_text(encoding="utf-8")
    assert arch_text in run.err  # printed as written
    info = assert_loadable(prefix)
    assert info["history"] == [] and info["arch"] == json.loads(arch_text)
    assert "Linear(in_features=34" in run.err and "parameters:" in run.err
    assert arch_text in (iono / f"{PREFIX}.train.log").read_text(encoding="utf-8")


def test_nocreate_exits_zero_writing_nothing(train_cli, iono):
    meta, prefix = paths(iono)
    before = written_files(iono)
    assert train_cli(meta, prefix, "--nocreate").code == 0
    assert written_files(iono) == before


def test_nocreate_builds_no_model(train_cli, iono):
    meta, prefix = paths(iono)
    assert train_cli(meta, prefix, "--nocreate").code == 0
    assert not any(name.endswith((".json", ".pt")) and name.startswith(PREFIX) for name in written_files(iono))


def test_training_writes_only_files_starting_with_the_prefix(train_cli, iono):
    meta, prefix = paths(iono)
    assert train_cli(meta, prefix, "--maxepochs", "2", "--seed", "1").code == 0
    written = set(written_files(iono)) - {"crvd.meta.json", "crvd.data.json"}
    assert {f"{PREFIX}.json", f"{PREFIX}.arch.json", f"{PREFIX}.train.log"} <= written
    assert all(name.startswith(PREFIX + ".") for name in written), written
    # the distilled network's tensors, and those of the five it was distilled from
    assert sorted(n for n in written if n.endswith(".pt")) == sorted(
        [model_info(prefix)["tensors"], model_info(f"{prefix}.folds")["tensors"]])
    assert_loadable(prefix)


def test_training_log_holds_architecture_and_progress(train_cli, iono):
    meta, prefix = paths(iono)
    assert train_cli(meta, prefix, "--maxepochs", "1").code == 0
    log = (iono / f"{PREFIX}.train.log").read_text(encoding="utf-8")
    assert '"hparams"' in log and "validation after epoch 1" in log and "learning rate 0.001" in log


def test_threads_are_torchs_own_unless_asked_for(train_cli, make_datadir):
    threads = torch.get_num_threads()
    try:
        tagger = make_datadir("seq-pos2", lines=40)
        torch.set_num_threads(2)
        run = train_cli(*paths(tagger), "--maxepochs", "1")
        assert run.code == 0 and "torch threads" not in run.err and torch.get_num_threads() == 2
        run = train_cli(*paths(tagger), "--maxepochs", "1", "--threads", "1")
        assert run.code == 0 and "torch threads: 1" in run.err and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


# --- reproducibility --------------------------------------------------------------


@pytest.mark.parametrize("name, lines, epochs", [("class-ionosphere", None, "2"), ("seq-pos2", 40, "1")])
def test_same_seed_gives_identical_tensors_other_seed_differs(train_cli, make_datadir, name, lines, epochs):
    datadir = make_datadir(name, lines)
    meta = datadir / "crvd.meta.json"
    for prefix, seed in (("run1", "3"), ("run2", "3"), ("other", "4")):
        assert train_cli(meta, datadir / prefix, "--maxepochs", epochs, "--seed", seed).code == 0
    run1, run2, other = (load_tensors(datadir / p)["model"] for p in ("run1", "run2", "other"))
    assert same_tensors(run1, run2)
    assert not same_tensors(run1, other)
    assert history(datadir / "run1") == history(datadir / "run2")


# --- stop file and signals (the real command, in a subprocess) ----------------------


class TrainingProcess:
    """The trainer as a subprocess whose stderr is read line by line in a thread."""

    def __init__(self, *args):
        self.process = subprocess.Popen(train_command(*args), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True, encoding="utf-8", env=train_env())
        self.lines, self.err = queue.Queue(), []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stderr:
            self.err.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, text, timeout=120):
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no {text!r} on stderr after {timeout}s:\n{''.join(self.err)}")
            if line is None:
                pytest.fail(f"trainer ended before {text!r}:\n{''.join(self.err)}")
            if text in line:
                return

    def finish(self, timeout=60):
        code = self.process.wait(timeout)
        self.reader.join(10)
        return code, "".join(self.err)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def start_training():
    started = []

    def start(*args):
        started.append(TrainingProcess(*args))
        return started[-1]

    yield start
    for process in started:
        process.kill()


LONG_RUN = ("--maxepochs", "100000", "--es_patience", "0")


@pytest.mark.parametrize("custom", [False, True], ids=["default STOP", "--stopfile"])
def test_stop_file_ends_training_gracefully(start_training, iono, tmp_path, custom):
    meta, prefix = paths(iono)
    stopfile = tmp_path / "elsewhere" / "halt.now" if custom else iono / "STOP"
    stopfile.parent.mkdir(exist_ok=True)
    training = start_training(meta, prefix, *LONG_RUN, *(["--stopfile", stopfile] if custom else []))
    training.wait_for("validation after")
    stopfile.touch()
    code, err = training.finish()
    assert code == 0, err
    assert f"stopping: stop file {stopfile}" in err
    assert not stopfile.exists()
    history = assert_loadable(prefix)["history"]
    assert len(history) >= 1
    assert all(name.startswith(PREFIX + ".") and ".tmp" not in name
               for name in set(written_files(iono)) - {"crvd.meta.json", "crvd.data.json"})
    # the interrupted run's history and model card are there, readable and in step with the model
    rows = read_history(f"{prefix}.history.tsv")
    assert len([r for r in rows if r["val_loss"] is not None]) == len(history)
    assert "## Validation" in (iono / f"{PREFIX}.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_ends_training_gracefully(start_training, iono, number):
    meta, prefix = paths(iono)
    training = start_training(meta, prefix, *LONG_RUN)
    training.wait_for("validation after")
    training.process.send_signal(number)
    code, err = training.finish()
    assert code == 0, err
    assert f"stopping: {signal.Signals(number).name}" in err
    history = assert_loadable(prefix)["history"]
    assert len(history) >= 1
    assert all(name.startswith(PREFIX + ".") and ".tmp" not in name
               for name in set(written_files(iono)) - {"crvd.meta.json", "crvd.data.json"})
    # the interrupted run's history and model card are there, readable and in step with the model
    rows = read_history(f"{prefix}.history.tsv")
    assert len([r for r in rows if r["val_loss"] is not None]) == len(history)
    assert "## Validation" in (iono / f"{PREFIX}.md").read_text(encoding="utf-8")


def test_an_old_stop_file_is_removed_and_does_not_stop_training(train_cli, iono):
    meta, prefix = paths(iono)
    (iono / "STOP").touch()
    run = train_cli(meta, prefix, "--maxepochs", "2")
    assert run.code == 0 and "removing an old stop file" in run.err
    assert "reached --maxepochs 2" in run.err and not (iono / "STOP").exists()


# --- --resume ---------------------------------------------------------------------


def adam_steps(prefix):
    state = load_tensors(prefix)["optimizer"]["state"]
    return {int(s["step"]) for s in state.values()}


def test_resume_continues_training_with_the_optimizer_state(train_cli, iono):
    meta, prefix = paths(iono)
    options = ("--maxepochs", "1", "--es_metric", "loss", "--seed", "2", "--folds", "1")
    assert train_cli(meta, prefix, *options).code == 0
    first = model_info(prefix)
    assert first["position"]["epoch"] == 1 and len(first["history"]) == 1
    steps = adam_steps(prefix)
    assert steps == {10}  # 316 training instances, batches of 32
    run = train_cli(meta, prefix, *options, "--resume")
    assert run.code == 0 and "resuming" in run.err
    second = model_info(prefix)
    assert second["position"]["epoch"] == 2 and second["history"][0] == first["history"][0]
    assert [h["epoch"] for h in second["history"]] == [1, 2]
    assert adam_steps(prefix) == {20}  # Adam went on counting: its state was loaded


def test_resume_without_a_model_is_a_clear_error(train_cli, iono):
    meta, prefix = paths(iono)
    run = train_cli(meta, prefix, "--resume")
    assert_one_error_line(run, 4, f"{prefix}.json", "no model here")


# --- FileJsonPyTorch.yaml ---------------------------------------------------------


def test_yaml_options_apply_and_host_keys_are_ignored(train_cli, make_datadir):
    with_yaml, plain = make_datadir("class-ionosphere", subdir="a"), make_datadir("class-ionosphere", subdir="b")
    (with_yaml / "FileJsonPyTorch.yaml").write_text(
        "PYTHON_BIN: /nowhere/python\nshellcmd: nice\nshellparms: -n 5\nmaxepochs: 1\nseed: 5\n", encoding="utf-8")
    run = train_cli(*paths(with_yaml))
    assert run.code == 0, run.err
    assert "reached --maxepochs 1" in run.err
    assert model_info(with_yaml / PREFIX)["options"]["seed"] == 5
    assert train_cli(*paths(plain), "--maxepochs", "1", "--seed", "5").code == 0
    assert same_tensors(load_tensors(with_yaml / PREFIX)["model"], load_tensors(plain / PREFIX)["model"])


def test_command_line_wins_over_yaml(train_cli, iono):
    (iono / "FileJsonPyTorch.yaml").write_text("maxepochs: 1\n", encoding="utf-8")
    run = train_cli(*paths(iono), "--maxepochs", "2")
    assert run.code == 0 and "validation after epoch 2" in run.err and "reached --maxepochs 2" in run.err


@pytest.mark.parametrize("yaml, part", [("maxepochs: many\n", "maxepochs"), ("maxepoch: 1\n", "unknown option 'maxepoch'")])
def test_bad_yaml_is_one_error_line(train_cli, iono, yaml, part):
    (iono / "FileJsonPyTorch.yaml").write_text(yaml, encoding="utf-8")
    assert_one_error_line(train_cli(*paths(iono)), EXIT_USAGE, "FileJsonPyTorch.yaml", part)


# --- options ----------------------------------------------------------------------


def test_cuda_false_as_the_host_passes_it(train_cli, iono):
    run = train_cli(*paths(iono), "--cuda", "False", "--maxepochs", "1")
    assert run.code == 0 and "device: cpu" in run.err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a usable GPU")
def test_cuda_true_without_a_gpu_is_an_environment_error(train_cli, iono):
    assert_one_error_line(train_cli(*paths(iono), "--cuda", "true", "--notrain"), EXIT_ENVIRONMENT, "--cuda true")


def test_arch_file_round_trip_changes_the_network(train_cli, iono):
    meta, prefix = paths(iono)
    assert train_cli(meta, prefix, "--notrain").code == 0
    arch = json.loads((iono / f"{PREFIX}.arch.json").read_text(encoding="utf-8"))
    assert arch["hparams"]["hidden"] != 17
    arch["hparams"]["hidden"] = 17
    edited = iono / f"{PREFIX}.edited.json"
    edited.write_text(json.dumps(arch), encoding="utf-8")
    run = train_cli(meta, iono / "M2", "--arch", edited, "--maxepochs", "1")
    assert run.code == 0, run.err
    assert model_info(iono / "M2")["arch"]["hparams"]["hidden"] == 17
    shapes = {tuple(t.shape) for t in load_tensors(iono / "M2")["model"].values()}
    default_shapes = {tuple(t.shape) for t in load_tensors(prefix)["model"].values()}
    assert (17, 34) in shapes and (17, 34) not in default_shapes
    assert_loadable(iono / "M2")


@pytest.mark.parametrize("content, part", [("{", "not valid JSON"), ('{"n_outputs": 5}', "'n_outputs'"),
                                           ('{"ignore_nominal": [34]}', "'ignore_nominal' must be a list")])
def test_bad_arch_file_is_one_error_line(train_cli, iono, content, part):
    (iono / "bad.json").write_text(content)
    assert_one_error_line(train_cli(*paths(iono), "--arch", iono / "bad.json", "--notrain"), EXIT_USAGE, "--arch", part)


def test_maxlens_is_kept_in_the_model(train_cli, make_datadir):
    datadir = make_datadir("class-ngram-sp1", lines=50)
    assert train_cli(*paths(datadir), "--maxlens", "0:5:middle", "--notrain").code == 0
    assert model_info(datadir / PREFIX)["schema"]["maxlens"] == {"0": [5, "middle"]}


def test_valfile_replaces_the_split(train_cli, make_datadir, tmp_path):
    datadir = make_datadir("class-ionosphere", lines=300)
    valfile = write_lines(tmp_path / "val.data.json", data_lines("class-ionosphere")[300:])
    run = train_cli(*paths(datadir), "--valfile", valfile, "--maxepochs", "1")
    assert run.code == 0, run.err
    assert "training on 300, validating on 51 instances" in run.err


def test_missing_valfile_is_a_data_error(train_cli, iono, tmp_path):
    run = train_cli(*paths(iono), "--valfile", tmp_path / "none.data.json", "--maxepochs", "1")
    assert_one_error_line(run, EXIT_DATA, "none.data.json", "not found")


@pytest.mark.parametrize("valsize, sizes", [("50", (301, 50)), ("0.2", (281, 70))])
def test_valsize_is_a_count_or_a_fraction(train_cli, iono, valsize, sizes):
    run = train_cli(*paths(iono), "--valsize", valsize, "--maxepochs", "1")
    assert run.code == 0 and "training on %d, validating on %d instances" % sizes in run.err


def test_valeverybatches_and_repeverybatches(train_cli, iono):
    run = train_cli(*paths(iono), "--valeverybatches", "4", "--repeverybatches", "5", "--maxepochs", "1", "--folds", "1")
    assert run.code == 0
    for batch in (4, 8, 10):  # 10 batches an epoch; always at its end
        assert f"validation after epoch 1 batch {batch}:" in run.err
    assert "epoch 1 batch 5/10: loss" in run.err and "epoch 1 batch 10/10: loss" in run.err


def test_regression_history_has_rmse(train_cli, make_datadir):
    datadir = make_datadir("abalone-train")
    assert train_cli(*paths(datadir), "--maxepochs", "2", "--es_metric", "accuracy").code == 0
    info = model_info(datadir / PREFIX)
    target_std = math.sqrt(json.loads((datadir / "crvd.meta.json").read_text())["targetStats"]["variance"])
    for entry in info["history"]:
        assert "accuracy" not in entry
        assert entry["rmse"] == pytest.approx(math.sqrt(entry["loss"]) * target_std)
        assert 0 < entry["rmse"] < 20


def test_batchsize_and_learningrate_reach_the_architecture(train_cli, iono):
    run = train_cli(*paths(iono), "--batchsize", "8", "--learningrate", "0.01", "--maxepochs", "1")
    assert run.code == 0 and "batch size 8, learning rate 0.01" in run.err
    training = model_info(iono / PREFIX)["arch"]["training"]
    assert (training["batchsize"], training["learningrate"]) == (8, 0.01)


# --- user errors: one line, the right exit code, a traceback only with --debug ---------


def corrupt(datadir, line):
    """Replaces data line 3 of the directory's data file."""
    lines = data_lines_of(datadir)
    lines[2] = line
    write_lines(datadir / "crvd.data.json", lines)


def data_lines_of(datadir):
    return (datadir / "crvd.data.json").read_text(encoding="utf-8").splitlines()


IONO_OK = "[[" + ",".join(["0.5"] * 34) + '],"g"]'


@pytest.mark.parametrize("name, line, part", [
    ("class-ionosphere", IONO_OK[:-5], "crvd.data.json:3: malformed JSON"),
    ("class-ionosphere", IONO_OK.replace("0.5,", "", 1), "crvd.data.json:3: expected 34 feature values, got 33"),
    ("abalone-train", '[["M","long",0.3,0.1,0.5,0.2,0.1,0.2],3.0]',
     "crvd.data.json:3: feature 1 '┆length╬A': expected a number, got a string"),
    ("abalone-train", '[["M",0.4,NaN,0.1,0.5,0.2,0.1,0.2],3.0]',
     "crvd.data.json:3: feature 2 '┆diameter╬A': nan is not a finite number"),
    ("class-ionosphere", IONO_OK.replace('"g"', '"maybe"'), "crvd.data.json:3: target label 'maybe' is not among"),
    ("seq-pos2", '[[["a"],["b"]],["O","FOO|B"]]', "crvd.data.json:3: element 1: target label 'FOO|B'"),
])
def test_bad_data_line_is_one_error_line(train_cli, make_datadir, name, line, part):
    datadir = make_datadir(name, lines=20)
    corrupt(datadir, line)
    run = train_cli(*paths(datadir), "--maxepochs", "1")
    assert_one_error_line(run, EXIT_DATA, str(datadir / part.split(":")[0]), part)


def test_missing_data_file(train_cli, iono):
    (iono / "crvd.data.json").unlink()
    assert_one_error_line(train_cli(*paths(iono)), EXIT_DATA, str(iono / "crvd.data.json"), "not found")


@pytest.mark.parametrize("content", ["", "\n"])
def test_empty_data_file(train_cli, iono, content):
    (iono / "crvd.data.json").write_text(content)
    assert_one_error_line(train_cli(*paths(iono)), EXIT_DATA, str(iono / "crvd.data.json"), "empty")


def test_missing_meta_file(train_cli, tmp_path):
    assert_one_error_line(train_cli(*paths(tmp_path)), EXIT_DATA, str(tmp_path / "crvd.meta.json"), "not found")


@pytest.mark.parametrize("args, part", [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--embs", "token::maybe"], "embtrain must be one of"),
    (["--embs", "token:big"], "dims must be a whole number"),
    (["--embs", "nosuch:10"], "unknown embedding id 'nosuch'"),
    (["--maxlens", "0:x:left"], "--maxlens"),
    (["--maxlens", "0:3:sideways"], "shorten must be left, right, both or middle"),
    (["--cuda", "perhaps"], "--cuda"),
])
def test_bad_option_is_one_usage_error_line(train_cli, make_datadir, args, part):
    datadir = make_datadir("class-ngram-sp1", lines=20)
    assert_one_error_line(train_cli(*paths(datadir), *args, "--notrain"), EXIT_USAGE, part)


def test_debug_shows_the_traceback(train_cli, make_datadir):
    datadir = make_datadir("abalone-train", lines=10)
    corrupt(datadir, '[["M","x",0.3,0.1,0.5,0.2,0.1,0.2],3.0]')
    run = train_cli(*paths(datadir), "--debug")
    assert run.code == EXIT_DATA and "Traceback" in run.err and len(run.error_lines) == 1
    run = train_cli(*paths(datadir), "--bogus", "--debug")
    assert run.code == EXIT_USAGE and "Traceback" in run.err


def test_the_command_reports_a_data_error_in_one_line(make_datadir):
    datadir = make_datadir("abalone-train", lines=10)
    corrupt(datadir, '[["M","x",0.3,0.1,0.5,0.2,0.1,0.2],3.0]')
    result = run_train_process(*paths(datadir))
    assert result.returncode == EXIT_DATA and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {datadir / 'crvd.data.json'}:3: feature 1 '┆length╬A': expected a number, got a string"]
    assert "Traceback" not in result.stderr


def test_quirky_but_valid_data_file_trains(train_cli, make_datadir):
    """CRLF line ends, a UTF-8 byte order mark, a trailing empty line, integers and exponents."""
    datadir = make_datadir("abalone-train")
    lines = data_lines_of(datadir)
    lines[0] = "\ufeff" + lines[0]
    lines[1] = '[["M",3.5e-1,2.65E-1,0.09,0.2255,0.0995,0.0485,0.07],7]'
    write_lines(datadir / "crvd.data.json", lines + [""], newline="\r\n")
    run = train_cli(*paths(datadir), "--maxepochs", "1")
    assert run.code == 0, run.err
    assert "read 320 instances" in run.err


# --- every shared export trains -----------------------------------------------------


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_EXPORTS else n for n in EXPORTS])
def test_every_export_trains_one_epoch(train_cli, make_datadir, name):
    datadir = make_datadir(name, lines=1000 if name == "pos-ud-seq-train" else None)
    run = train_cli(*paths(datadir), "--maxepochs", "1", "--seed", "1")
    assert run.code == 0, run.err
    info = assert_loadable(datadir / PREFIX)
    assert info["arch"]["task"] == TASKS.get(name, "classification")
    # small non-sequence exports train one network per cross-validation fold
    assert [h["epoch"] for h in info["history"]] == [1] * info["arch"]["training"].get("folds", 1)
    assert info["position"]["epoch"] == 1


@pytest.mark.slow
def test_full_pos_export_notrain_reads_the_data_and_saves_a_loadable_model(make_datadir):
    datadir = make_datadir("pos-ud-seq-train")
    result = run_train_process(*paths(datadir), "--notrain")
    assert result.returncode == 0, result.stderr
    assert "read 12543 sequences" in result.stderr and "training on" not in result.stderr
    assert_loadable(datadir / PREFIX)
