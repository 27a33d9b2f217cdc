"""Ensembles (`--ensemble N`): several networks of one architecture trained together,
their predictions averaged."""

import json

import pytest
import torch

from conftest import PREFIX, data_lines, export_paths, model_info, prepare
from filejsonpytorch import lfdata
from filejsonpytorch.default_architecture import default_architecture, read_arch_file
from filejsonpytorch.network import build_network
from filejsonpytorch.apply import Server
from filejsonpytorch.batches import TensorData
from filejsonpytorch.errors import UsageError
from filejsonpytorch.ensemble import Ensemble

ENSEMBLE_LOG = "an ensemble of 3 networks, trained together"


def built(name, size, seed=0):
    meta, data = export_paths(name)
    prepared = prepare(meta)
    arch = default_architecture(prepared.schema, prepared.vocabs).replace(ensemble=size)
    torch.manual_seed(seed)
    network = build_network(arch)
    batch = TensorData(lfdata.read_dataset(data, prepared.schema, prepared.encoder)).batch(list(range(8)))
    return network.eval(), batch


@pytest.mark.parametrize("name", ["seq-pos2", "class-ionosphere"])
def test_the_ensemble_answers_the_mean_of_its_members_probabilities(name):
    network, batch = built(name, 3)
    assert isinstance(network, Ensemble) and len(network.members) == 3

    with torch.no_grad():
        labels, probabilities = network.predict(network(batch), batch)
        alone = [member.predict(member(batch), batch)[1] for member in network.members]

    assert not torch.allclose(alone[0], alone[1])
    assert torch.allclose(probabilities, sum(alone) / 3)
    assert torch.equal(labels, probabilities.argmax(dim=-1))
    real = probabilities[batch["mask"]] if "mask" in batch else probabilities
    assert torch.allclose(real.sum(dim=-1), torch.ones(len(real), dtype=real.dtype))


def test_the_validation_loss_is_that_of_the_averaged_prediction_and_training_averages_the_members_losses():
    network, batch = built("class-ionosphere", 2)
    with torch.no_grad():
        scores = network(batch)
        _, probabilities = network.predict(scores, batch)
        assert network.loss(scores, batch).item() == pytest.approx(
            -probabilities[torch.arange(8), batch["target"]].log().mean().item())
        network.train()
        members = [m.loss(s, batch).item() for m, s in zip(network.members, scores)]
        assert network.loss(scores, batch).item() == pytest.approx(sum(members) / 2)


def test_one_network_is_not_wrapped():
    network, _ = built("seq-pos2", 1)
    assert not isinstance(network, Ensemble)


def test_an_arch_file_with_a_bad_ensemble_size_is_refused(tmp_path):
    meta, _ = export_paths("seq-pos2")
    prepared = prepare(meta)
    default = default_architecture(prepared.schema, prepared.vocabs)
    for bad in (0, 2.5, "3", True):
        path = tmp_path / "arch.json"
        path.write_text(json.dumps({"ensemble": bad}))
        with pytest.raises(UsageError, match="'ensemble' must be a whole number"):
            read_arch_file(path, json.loads(path.read_text()), default)


def test_a_trained_ensemble_is_saved_and_application_answers_with_it(make_datadir, train_cli):
    datadir = make_datadir("seq-pos2")
    prefix = datadir / PREFIX
    run = train_cli(datadir / "crvd.meta.json", prefix, "--maxepochs", "3", "--ensemble", "3")

    assert run.code == 0, run.err
    assert ENSEMBLE_LOG in run.err
    assert model_info(prefix)["arch"]["ensemble"] == 3
    elements, gold = json.loads(data_lines("seq-pos2", 1)[0])
    answer = json.loads(Server.load(str(prefix)).answer(json.dumps(elements).encode()))
    assert answer["status"] == "ok" and len(answer["output"]) == len(gold)
    for label, conf, dist in zip(answer["output"], answer["conf"], answer["dist"]):
        assert sum(dist) == pytest.approx(1.0) and conf == max(dist) == dist[answer["labels"].index(label)]


def test_by_default_one_network_is_trained(make_datadir, train_cli):
    datadir = make_datadir("seq-pos2")
    prefix = datadir / PREFIX
    run = train_cli(datadir / "crvd.meta.json", prefix, "--maxepochs", "1")

    assert run.code == 0, run.err
    assert "an ensemble" not in run.err
    assert model_info(prefix)["arch"]["ensemble"] == 1


def test_resuming_keeps_the_ensemble_and_says_that_another_size_is_ignored(make_datadir, train_cli):
    datadir = make_datadir("seq-pos2")
    prefix = datadir / PREFIX
    assert train_cli(datadir / "crvd.meta.json", prefix, "--maxepochs", "1", "--ensemble", "2").code == 0
    run = train_cli(datadir / "crvd.meta.json", prefix, "--maxepochs", "1", "--resume", "--ensemble", "3")

    assert run.code == 0, run.err
    assert "--ensemble ignored" in run.err
    assert model_info(prefix)["arch"]["ensemble"] == 2
