"""Pre-trained embeddings through the trainer: every emb_train mode, --embs, and what
the saved model holds (seq-pos2's lower-cased tokens with the real 20-word file)."""

import json
import shutil

import numpy as np
import pytest
import torch

from filejsonpytorch import model_io
from filejsonpytorch.train import main as train_main

from conftest import SHARED_DATA

EMB_TXT = SHARED_DATA / "emb-mini20-25.txt"
EMB_GZ = SHARED_DATA / "emb-mini20-25.txt.gz"


def file_vectors(path=EMB_TXT):
    vectors = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        word, *values = line.split(" ")
        vectors[word] = np.array(values, dtype=np.float32)
    return vectors


@pytest.fixture
def datadir(tmp_path):
    shutil.copy(SHARED_DATA / "seq-pos2.meta.json", tmp_path / "crvd.meta.json")
    shutil.copy(SHARED_DATA / "seq-pos2.data.json", tmp_path / "crvd.data.json")
    return tmp_path


def train(datadir, *options):
    prefix = datadir / "m"
    code = train_main([str(datadir / "crvd.meta.json"), str(prefix), "--seed", "1", "--chars", "false", *options])
    assert code == 0
    info, tensors = model_io.read_files(prefix)
    return info, tensors["model"]


def rows(info, weights, words):
    itos = info["vocabs"]["attr0"]["itos"]
    return {w: weights[itos.index(w)].numpy() for w in words if w in itos}


def test_yes_starts_from_the_file_vectors(datadir):
    info, tensors = train(datadir, "--notrain", "--embs", f"attr0::yes::{EMB_TXT}")
    found = rows(info, tensors["encoder.embeddings.attr0.weight"], file_vectors())
    assert len(found) >= 5
    for word, vector in found.items():
        np.testing.assert_allclose(vector, file_vectors()[word], rtol=1e-6)
    assert info["arch"]["embeddings"]["attr0"]["dims"] == 25


def test_yes_trains_the_vectors_and_no_keeps_them(datadir):
    _, trained = train(datadir, "--maxepochs", "1", "--embs", f"attr0::yes::{EMB_TXT}")
    info, fixed = train(datadir, "--maxepochs", "1", "--embs", f"attr0::no::{EMB_TXT}")
    vectors = file_vectors()
    kept = rows(info, fixed["encoder.embeddings.attr0.weight"], vectors)
    moved = rows(info, trained["encoder.embeddings.attr0.weight"], vectors)
    assert all(np.allclose(v, vectors[w]) for w, v in kept.items())
    assert not all(np.allclose(v, vectors[w]) for w, v in moved.items())


def test_mapping_keeps_vectors_fixed_learns_a_mapping_and_adds_file_words(datadir):
    info, weights = train(datadir, "--maxepochs", "1", "--embs", f"attr0::mapping::{EMB_GZ}")
    vectors = file_vectors()
    itos = info["vocabs"]["attr0"]["itos"]
    assert set(vectors) <= set(itos), "mapping keeps every word of the file"
    for word, vector in rows(info, weights["encoder.embeddings.attr0.vectors.weight"], vectors).items():
        np.testing.assert_allclose(vector, vectors[word], rtol=1e-6)
    mapping = weights["encoder.embeddings.attr0.mapping.weight"]
    assert mapping.shape == (25, 25)
    assert not torch.equal(mapping, torch.zeros_like(mapping))


def test_emb_addwords_false_keeps_only_words_of_the_data(datadir):
    info, _ = train(datadir, "--notrain", "--emb_addwords", "false", "--embs", f"attr0::mapping::{EMB_TXT}")
    data_words = {w for line in (datadir / "crvd.data.json").read_text(encoding="utf-8").splitlines()
                  for element in json.loads(line)[0] for w in element}
    extra = set(info["vocabs"]["attr0"]["itos"][2:]) - data_words
    meta_words = set(json.loads((datadir / "crvd.meta.json").read_text(encoding="utf-8"))
                     ["featureStats"]["Token┆string_lc╬A"]["stringCounts"])
    assert extra <= meta_words


def test_onehot_uses_no_file_and_no_weights(datadir):
    info, weights = train(datadir, "--notrain", "--embs", f"attr0::onehot::{EMB_TXT}")
    assert info["arch"]["embeddings"]["attr0"]["train"] == "onehot"
    assert not any(name.startswith("encoder.embeddings.attr0") for name in weights)


def test_fixed_vectors_are_stored_once(datadir):
    info, weights = train(datadir, "--notrain", "--embs", f"attr0::no::{EMB_TXT}")
    matrices = [name for name in weights if "attr0" in name]
    assert matrices == ["encoder.embeddings.attr0.weight"]
    rows_, dims = weights[matrices[0]].shape
    assert rows_ == len(info["vocabs"]["attr0"]["itos"]) and dims == 25


def test_embs_with_empty_elements_keeps_the_spec_values(datadir):
    info, _ = train(datadir, "--notrain", "--embs", "attr0:12:::")
    assert info["arch"]["embeddings"]["attr0"] == {"vocab_size": len(info["vocabs"]["attr0"]["itos"]), "dims": 12, "train": "yes"}


@pytest.mark.parametrize("spec, message", [
    ("attr0::sometimes", "embtrain must be one of"),
    ("attr0:x", "dims must be a whole number"),
    ("nosuchid:10", "unknown embedding id 'nosuchid'"),
    ("attr0:1:2:3:4:5", "is not embid:embdims:embtrain:embminfreq:embfile"),
    ("attr0::yes::missing-file.txt", "embeddings file not found"),
])
def test_bad_embs_is_one_clear_error(datadir, capsys, spec, message):
    code = train_main([str(datadir / "crvd.meta.json"), str(datadir / "m"), "--notrain", "--embs", spec])
    err = capsys.readouterr().err
    assert code in (2, 3)
    assert message in err and "Traceback" not in err


def test_relative_embedding_file_is_found_in_the_data_directory(datadir):
    shutil.copy(EMB_TXT, datadir / "vectors.txt")
    info, weights = train(datadir, "--notrain", "--embs", "attr0::no::vectors.txt")
    assert rows(info, weights["encoder.embeddings.attr0.weight"], file_vectors())
