"""Shared fixtures: the real LF exports in ../shared/data, data directories made from
them, and running the trainer in-process (fast) or as the real command (subprocess)."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SAMPLES = ["class-ionosphere", "class-ngram-sp1", "class-window-pos1", "seq-pos1", "seq-pos2"]
DIRECTORIES = ["abalone-train", "ner-wikigold-train", "ner-wikigold-multi-train", "sentpol-train", "pos-ud-seq-train"]
EXPORTS = SAMPLES + DIRECTORIES
PREFIX = "FileJsonPyTorch.model"


def export_paths(name):
    """(meta file, data file) of a shared export: a sample file pair or a data directory."""
    if name in DIRECTORIES:
        return SHARED_DATA / name / "crvd.meta.json", SHARED_DATA / name / "crvd.data.json"
    return SHARED_DATA / f"{name}.meta.json", SHARED_DATA / f"{name}.data.json"


def data_lines(name, count=None):
    """The first `count` (all) lines of an export's data file, without line ends."""
    lines = []
    with open(export_paths(name)[1], encoding="utf-8") as f:
        for line in f:
            if count is not None and len(lines) >= count:
                break
            lines.append(line.rstrip("\n"))
    return lines


def write_lines(path, lines, newline="\n"):
    Path(path).write_text("".join(line + newline for line in lines), encoding="utf-8")
    return Path(path)


@pytest.fixture
def make_datadir(tmp_path):
    """make_datadir(name, lines=None, subdir=name) -> a fresh data directory holding the
    export as crvd.meta.json + crvd.data.json (`lines`: only the first N data lines)."""

    def make(name, lines=None, subdir=None):
        datadir = tmp_path / (subdir or name)
        datadir.mkdir()
        meta, data = export_paths(name)
        shutil.copy(meta, datadir / "crvd.meta.json")
        if lines is None:
            shutil.copy(data, datadir / "crvd.data.json")
        else:
            write_lines(datadir / "crvd.data.json", data_lines(name, lines))
        return datadir

    return make


@dataclass
class Prepared:
    meta: dict
    attributes: list
    schema: object
    vocabs: dict
    encoder: object


def prepare(meta_path, embs="", maxlens="", data_path=None):
    """Schema, vocabularies and encoder for an export, made the way the trainer makes them."""
    from filejsonpytorch import config, lfdata, vocab

    meta = lfdata.read_meta(meta_path)
    attributes = meta["featureInfo"]["attributes"]
    schema = lfdata.schema_from_meta(meta)
    data_path = data_path or lfdata.data_file_for(meta_path)
    lfdata.detect_list_features(schema, lfdata.peek_first_values(data_path, schema.is_sequence))
    schema.maxlens = config.parse_maxlens(maxlens, schema, attributes)
    settings = vocab.embedding_settings(schema, attributes, vocab.parse_embs(embs))
    vocabs = vocab.build_vocabs(schema, meta["featureStats"], settings)
    return Prepared(meta, attributes, schema, vocabs, lfdata.Encoder(schema, vocabs))


@dataclass
class Run:
    code: int
    err: str

    @property
    def error_lines(self):
        return [line for line in self.err.splitlines() if line.startswith("error:")]


@pytest.fixture
def train_cli(capsys, monkeypatch):
    """train_cli(*args) runs the trainer in this process -> Run(exit code, stderr).

    Cheaper than a subprocess (no torch import); the logger's file handlers and the
    signal handlers that training installs are restored afterwards."""
    from filejsonpytorch import train

    monkeypatch.delenv("WRAPPER_HOME", raising=False)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def run(*args):
        capsys.readouterr()
        code = train.main([str(a) for a in args])
        return Run(code, capsys.readouterr().err)

    yield run
    for number, handler in handlers.items():
        signal.signal(number, handler)
    logger = logging.getLogger("filejsonpytorch")
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)


def train_env():
    env = dict(os.environ)
    env.pop("WRAPPER_HOME", None)
    return env


def train_command(*args):
    return [sys.executable, "-m", "filejsonpytorch.train", *map(str, args)]


def run_train_process(*args, timeout=300):
    """The real command line, as the host starts it -> CompletedProcess (text)."""
    return subprocess.run(train_command(*args), capture_output=True, text=True, timeout=timeout, env=train_env())


def model_info(prefix):
    with open(f"{prefix}.json", encoding="utf-8") as f:
        return json.load(f)


def load_tensors(prefix):
    """The tensor file named by PREFIX.json, loaded with weights_only=True."""
    import torch

    info = model_info(prefix)
    return torch.load(Path(prefix).parent / info["tensors"], map_location="cpu", weights_only=True)
