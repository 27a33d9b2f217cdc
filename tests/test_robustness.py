"""The model on disk survives whatever happens to the trainer: SIGKILL at any moment, a
full disk in the middle of a save, damaged files — the last good model always loads, and
`--resume` continues from it or says clearly what is wrong.
"""

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from filejsonpytorch import model_io
from filejsonpytorch.errors import EnvironmentProblem, ModelError
from test_apply import clean_env, flip_a_byte, make_datadir, say, tensor_file, trained_models, truncate

PREFIX = "FileJsonPyTorch.model"


def train_command(datadir, *options):
    return [sys.executable, "-m", "filejsonpytorch.train", str(datadir / "crvd.meta.json"), str(datadir / PREFIX),
            "--seed", "1", *options]


#: the files written beside the model for people to read
COMPANIONS = (".log", ".arch.json", ".history.tsv", ".curves.png", ".report.json", ".md")


def model_files(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(PREFIX) and not p.name.endswith(COMPANIONS))


# ---- SIGKILL at random moments ----

# a small learning rate: the validation loss improves, and the model is saved, after every batch;
# the networks one after another in the trainer's process, which the kill hits (a kill of the
# main process of --workers is tests/test_distributed.py's)
OFTEN = ("--maxepochs", "200", "--valeverybatches", "1", "--es_patience", "0", "--es_metric", "loss",
         "--learningrate", "0.00002", "--workers", "1")


def _start_and_kill(command, delay):
    """Starts the trainer, waits until it trains, then `delay` s more, and SIGKILLs it.
    -> True if it was killed, False if it ended by itself first."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env=clean_env())
    training = threading.Event()
    log = []

    def watch():
        for line in process.stderr:
            log.append(line)
            if line.startswith("training on"):
                training.set()

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    try:
        assert training.wait(timeout=300), "the trainer did not start training:\n" + "".join(log)[-3000:]
        time.sleep(delay)
        if process.poll() is not None:
            return False
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
        return True
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=10)


@pytest.mark.slow
def test_sigkill_at_random_moments_always_leaves_a_loadable_resumable_model(tmp_path, request):
    datadir = make_datadir("ionosphere", tmp_path / "data")
    prefix = datadir / PREFIX
    rng = random.Random(1234)
    kills, position, history = 0, {"epoch": 0, "instances": 0}, 0
    while kills < 20:
        resume = ("--resume",) if Path(model_io.json_path(prefix)).exists() else ()
        if not _start_and_kill(train_command(datadir, *OFTEN, *resume), rng.uniform(0.3, 3.0)):
            continue
        kills += 1
        if not Path(model_io.json_path(prefix)).exists():
            assert position["instances"] == 0, "the model disappeared"
            continue
        info, tensors = model_io.read_files(prefix)
        assert set(tensors["model"]) and all(torch.isfinite(t).all() for t in tensors["model"].values())
        # --resume continued from the saved model: nothing is lost, the count goes on
        assert info["position"]["instances"] >= position["instances"]
        assert info["position"]["epoch"] >= position["epoch"]
        assert len(info["history"]) >= history
        position, history = info["position"], len(info["history"])
        # at most the model's tensor file, a complete newer one, and one temporary file
        assert len([n for n in os.listdir(datadir) if ".pt" in n]) <= 3, os.listdir(datadir)

    say(request.config, f"\n{__name__}: {kills} SIGKILLs; the model reached epoch {position['epoch']}, "
                        f"{position['instances']} instances, {history} validations")
    assert history >= 20 and position["instances"] > 0

    final = subprocess.run(train_command(datadir, *OFTEN, "--resume", "--maxepochs", "1"), capture_output=True,
                           text=True, env=clean_env(), timeout=300)
    assert final.returncode == 0, final.stderr[-3000:]
    resumed = [line for line in final.stderr.splitlines() if line.startswith("resuming ")]
    # 200 epochs without early stopping: the first network of the 5 is still training
    assert resumed == [f"resuming {model_io.json_path(prefix)} at network 1 of a 5-fold cross-validation, "
                       f"after its epoch {position['epoch']}"], resumed
    info, _ = model_io.read_files(prefix)
    assert info["position"]["instances"] > position["instances"]
    # the killed runs' leftovers are gone
    # (the networks all finished, so the five were distilled into one and moved to PREFIX.folds)
    folds = model_io.read_files(f"{prefix}.folds")[0]
    assert model_files(datadir) == sorted([f"{PREFIX}.json", info["tensors"], f"{PREFIX}.folds.json", folds["tensors"]])


# ---- a failing disk ----


def _tensors(value):
    return {"model": {"weight": torch.full((64, 64), float(value))}}


@pytest.fixture
def saved(tmp_path):
    prefix = tmp_path / PREFIX
    model_io.write_files(prefix, {"schema": {}, "vocabs": {}, "arch": {"generation": 1}}, _tensors(1))
    return prefix


class FailingFile:
    """A file whose writes fail once `limit` bytes are written (what is written stays)."""

    def __init__(self, f, limit, error):
        self.f, self.limit, self.error, self.written = f, limit, error, 0

    def write(self, data):
        room = self.limit - self.written
        if len(data) > room:
            self.f.write(bytes(data)[:max(room, 0)])
            self.written = self.limit
            raise self.error
        self.written += len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


class FailingOpen:
    """`open` for model_io: writing to files whose names contain `part` fails after `limit` bytes."""

    def __init__(self, part, limit, error):
        self.part, self.limit, self.error = part, limit, error

    def __call__(self, path, mode="r", *args, **kwargs):
        f = open(path, mode, *args, **kwargs)
        if "w" in mode and self.part in os.path.basename(path):
            return FailingFile(f, self.limit, self.error)
        return f


DISK_FULL = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("part, limit", [(".pt.tmp", 0), (".pt.tmp", 1000), (".json.tmp", 0), (".json.tmp", 50)])
def test_a_full_disk_during_a_save_leaves_the_previous_model_and_no_debris(saved, monkeypatch, part, limit):
    before = sorted(os.listdir(saved.parent))
    monkeypatch.setattr(model_io, "open", FailingOpen(part, limit, DISK_FULL), raising=False)

    with pytest.raises(EnvironmentProblem) as raised:
        model_io.write_files(saved, {"schema": {}, "vocabs": {}, "arch": {"generation": 2}}, _tensors(2))

    monkeypatch.undo()
    assert raised.value.__cause__.errno == errno.ENOSPC
    assert "No space left on device" in str(raised.value) and PREFIX in str(raised.value)
    assert sorted(os.listdir(saved.parent)) == before
    info, tensors = model_io.read_files(saved)
    assert info["arch"] == {"generation": 1}
    assert torch.equal(tensors["model"]["weight"], _tensors(1)["model"]["weight"])


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failing_fsync_or_rename_leaves_the_previous_model(saved, monkeypatch, failing):
    before = sorted(os.listdir(saved.parent))

    def fail(*args):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(model_io.os, failing, fail)
    with pytest.raises(EnvironmentProblem, match="Input/output error"):
        model_io.write_files(saved, {"schema": {}, "vocabs": {}, "arch": {"generation": 2}}, _tensors(2))
    monkeypatch.undo()

    assert sorted(os.listdir(saved.parent)) == before
    assert model_io.read_files(saved)[0]["arch"] == {"generation": 1}


def test_torch_save_failing_midway_leaves_the_previous_model(saved, monkeypatch):
    before = sorted(os.listdir(saved.parent))
    real_save = torch.save

    def save_then_fail(obj, f):
        real_save(obj, f)
        f.truncate(f.tell() // 2)
        raise DISK_FULL

    monkeypatch.setattr(model_io.torch, "save", save_then_fail)
    with pytest.raises(EnvironmentProblem, match="No space left on device"):
        model_io.write_files(saved, {"schema": {}, "vocabs": {}, "arch": {"generation": 2}}, _tensors(2))
    monkeypatch.undo()

    assert sorted(os.listdir(saved.parent)) == before
    assert model_io.read_files(saved)[0]["arch"] == {"generation": 1}


def test_the_next_save_removes_what_a_killed_save_left(saved):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    leftovers = [f"{PREFIX}.7.pt.tmp{dead_pid}", f"{PREFIX}.json.tmp{dead_pid}", f"{PREFIX}.9.pt"]
    for name in leftovers:
        (saved.parent / name).write_bytes(b"half a file")
    unrelated = saved.parent / "other.model.json.tmp1"
    unrelated.write_text("not ours")

    model_io.write_files(saved, {"schema": {}, "vocabs": {}, "arch": {"generation": 2}}, _tensors(2))

    info, _ = model_io.read_files(saved)
    assert sorted(os.listdir(saved.parent)) == sorted([f"{PREFIX}.json", info["tensors"], unrelated.name])


def test_loading_while_a_trainer_saves_never_fails(saved):
    done = threading.Event()
    errors = []

    def keep_saving():
        generation = 2
        while not done.is_set():
            model_io.write_files(saved, {"schema": {}, "vocabs": {}, "arch": {"generation": generation}},
                                _tensors(generation))
            generation += 1

    saver = threading.Thread(target=keep_saving)
    saver.start()
    try:
        for _ in range(1000):
            try:
                info, tensors = model_io.read_files(saved)
                assert tensors["model"]["weight"][0, 0] == info["arch"]["generation"]
            except ModelError as e:
                errors.append(str(e))
    finally:
        done.set()
        saver.join()
    assert errors == []


# ---- damaged model files: ModelError naming the file, for loading and for --resume ----


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return trained_models(tmp_path_factory)


def _edit_json(prefix, **changes):
    path = Path(model_io.json_path(prefix))
    info = json.loads(path.read_text())
    info.update(changes)
    path.write_text(json.dumps(info))


DAMAGE = {
    "corrupted_tensor_file": ("pt", "damaged", lambda p: flip_a_byte(tensor_file(p))),
    "truncated_tensor_file": ("pt", "damaged", lambda p: truncate(tensor_file(p))),
    "missing_tensor_file": ("pt", "missing", lambda p: tensor_file(p).unlink()),
    "truncated_json": ("json", "damaged or truncated", lambda p: truncate(Path(model_io.json_path(p)))),
    "newer_version": ("json", "newer than this program", lambda p: _edit_json(p, version=model_io.VERSION + 1)),
    "no_version": ("json", "no valid format version", lambda p: _edit_json(p, version="one")),
    "tensor_file_elsewhere": ("json", "must name a file next to it", lambda p: _edit_json(p, tensors="../x.pt")),
    "tensor_file_not_a_name": ("json", "must name a file next to it", lambda p: _edit_json(p, tensors=None)),
    "schema_not_an_object": ("json", "'schema' is not a JSON object", lambda p: _edit_json(p, schema=[])),
    "json_is_a_directory": ("json", "cannot read", lambda p: (Path(model_io.json_path(p)).unlink(),
                                                               Path(model_io.json_path(p)).mkdir())),
    "tensor_file_is_a_directory": ("pt", "cannot read", lambda p: (tensor_file(p).unlink(), tensor_file(p).mkdir())),
}


@pytest.fixture(params=sorted(DAMAGE))
def damaged(request, models, tmp_path):
    """(data directory with a damaged copy of a trained model, the file to name, the words to say)."""
    source = models("ionosphere").datadir
    datadir = tmp_path / "data"
    shutil.copytree(source, datadir, ignore=shutil.ignore_patterns("*.log", "*.err", "trained.ok"))
    prefix = datadir / PREFIX
    names, words, damage = DAMAGE[request.param]
    named = model_io.json_path(prefix) if names == "json" else str(tensor_file(prefix))
    damage(prefix)
    return datadir, named, words


def test_loading_a_damaged_model_is_a_model_error_naming_the_file(damaged):
    datadir, named, words = damaged
    with pytest.raises(ModelError) as raised:
        model_io.read_model(datadir / PREFIX)
    assert named in str(raised.value) and words in str(raised.value)
    assert "\n" not in str(raised.value)


def test_resuming_a_damaged_model_is_one_clear_error_and_exit_4(damaged):
    datadir, named, words = damaged
    result = subprocess.run(train_command(datadir, "--resume", "--maxepochs", "1"), capture_output=True, text=True,
                            env=clean_env(), timeout=300)
    assert result.returncode == 4, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: ") and named in error and words in error, result.stderr[-3000:]


def test_a_log_file_that_cannot_be_written_warns_once_and_logging_goes_on(capsys):
    """/dev/full fails every write, as a full disk does: one warning, then stderr alone."""
    from filejsonpytorch.logs import LogFile, log, setup_logging

    setup_logging(logfile="/dev/full")
    try:
        for number in range(3):
            log.info("message %d", number)
    finally:
        err = capsys.readouterr().err
        assert not any(isinstance(h, LogFile) for h in log.handlers)
        setup_logging()
    assert "Logging error" not in err and "Traceback" not in err
    assert err.count("cannot write the log file /dev/full any more (No space left on device)") == 1
    assert [line for line in err.splitlines() if line.startswith("message")] == ["message 0", "message 1", "message 2"]
