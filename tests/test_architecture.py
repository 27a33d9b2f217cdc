"""The typed architecture: its JSON form, old model files, --arch files, module look-up."""

import json

import pytest

from conftest import PREFIX, export_paths, prepare
from filejsonpytorch import model_io
from filejsonpytorch.architecture import Architecture, merge_arch_file
from filejsonpytorch.default_architecture import default_architecture
from filejsonpytorch.errors import EnvironmentProblem, ModelError, UsageError
from filejsonpytorch.modules.base import LFModule
from filejsonpytorch.modules.mlp import MLP, VECTOR_HPARAMS
from filejsonpytorch.network import available_modules, find_module
from filejsonpytorch.train import main as train_main


def default_for(name):
    prepared = prepare(export_paths(name)[0])
    return prepared.schema, default_architecture(prepared.schema, prepared.vocabs)


@pytest.mark.parametrize("name", ["seq-pos2", "class-ionosphere", "class-ngram-sp1"])
def test_the_json_form_reads_back_to_the_same_architecture(name):
    _, arch = default_for(name)
    text = json.dumps(arch.to_json())
    again = Architecture.from_json(json.loads(text))
    assert again == arch and json.dumps(again.to_json()) == text
    assert list(arch.to_json()) == ["module", "task", "n_outputs", "labels", "embeddings", "nominal", "ignore_nominal",
                                    "numeric", "lists", "ensemble", "hparams", "training"]


def test_a_model_saved_before_ensembles_word_dropout_and_clipping_still_loads(make_datadir, capsys):
    datadir = make_datadir("class-ionosphere")
    prefix = datadir / PREFIX
    assert train_main([str(datadir / "crvd.meta.json"), str(prefix), "--folds", "1", "--notrain"]) == 0
    path = datadir / f"{PREFIX}.json"
    info = json.loads(path.read_text(encoding="utf-8"))
    for key in ("ignore_nominal", "ensemble"):
        del info["arch"][key]
    for key in ("word_dropout", "grad_clip"):
        del info["arch"]["training"][key]
    path.write_text(json.dumps(info), encoding="utf-8")
    arch = model_io.read_model(str(prefix)).arch
    assert (arch.ensemble, arch.ignore_nominal, arch.training.word_dropout, arch.training.grad_clip) == (1, [], None, None)
    assert "word_dropout" not in arch.to_json()["training"]  # written back as it was


def test_a_model_file_with_an_unknown_architecture_key_is_a_model_error(make_datadir):
    datadir = make_datadir("class-ionosphere")
    prefix = datadir / PREFIX
    assert train_main([str(datadir / "crvd.meta.json"), str(prefix), "--folds", "1", "--notrain"]) == 0
    path = datadir / f"{PREFIX}.json"
    info = json.loads(path.read_text(encoding="utf-8"))
    info["arch"]["hiden"] = 3
    path.write_text(json.dumps(info), encoding="utf-8")
    with pytest.raises(ModelError, match="unknown key 'hiden'"):
        model_io.read_model(str(prefix))


def test_an_arch_file_with_an_unknown_key_names_it(tmp_path):
    _, default = default_for("class-ionosphere")
    with pytest.raises(UsageError, match=r"--arch a.json: unknown key 'hiden'"):
        merge_arch_file("a.json", {"hiden": 3}, default)
    with pytest.raises(UsageError, match=r"--arch a.json: training has no setting 'momentum'"):
        merge_arch_file("a.json", {"training": {"momentum": 0.9}}, default)
    assert merge_arch_file("a.json", {"hparams": {"hidden": 7}}, default).hparams["hidden"] == 7


def test_modules_own_their_data_dependent_defaults():
    schema, arch = default_for("class-ionosphere")
    assert MLP.data_hparams(schema)[0] == VECTOR_HPARAMS
    assert LFModule.data_hparams(schema) == ({}, None)
    assert {k: arch.hparams[k] for k in VECTOR_HPARAMS} == VECTOR_HPARAMS
    lists_schema, lists_arch = default_for("class-ngram-sp1")
    assert MLP.data_hparams(lists_schema) == ({}, None) and lists_arch.hparams == MLP.hparams


def test_building_blocks_are_not_modules():
    available = available_modules()
    assert {"mlp", "cnn_classifier", "bilstm_classifier", "bilstm_tagger", "bilstm_crf", "template"} <= set(available)
    assert not {"base", "encoder", "crf", "ensemble"} & set(available)
    with pytest.raises(ModelError, match="a building block, not a module"):
        find_module("encoder")


def test_a_module_chooses_its_list_layers_without_changing_the_architecture():
    schema, arch = default_for("class-ngram-sp1")
    before = json.dumps(arch.to_json())
    network = find_module("bilstm_classifier")(arch)
    assert [spec["layer"] for spec in network.arch.lists] == ["lstm" if s["emb"] != "chars" else "cnn" for s in arch.lists]
    assert json.dumps(arch.to_json()) == before


def test_the_arch_file_is_replaced_atomically(make_datadir, monkeypatch):
    datadir = make_datadir("class-ionosphere")
    _, arch = default_for("class-ionosphere")
    prefix = str(datadir / PREFIX)
    model_io.write_arch_file(prefix, arch)
    written = (datadir / f"{PREFIX}.arch.json").read_text(encoding="utf-8")
    assert json.loads(written) == arch.to_json()

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model_io.os, "replace", full_disk)
    with pytest.raises(EnvironmentProblem, match="cannot write .*arch.json"):
        model_io.write_arch_file(prefix, arch.replace(module="template"))
    assert (datadir / f"{PREFIX}.arch.json").read_text(encoding="utf-8") == written
    assert [p.name for p in datadir.iterdir() if ".tmp" in p.name] == []
