"""The stacked form of an MLP ensemble (`stacked.stack`) answers what its members answer."""

import pytest
import torch

from conftest import export_paths, prepare
from filejsonpytorch import lfdata
from filejsonpytorch.batches import TensorData
from filejsonpytorch.default_architecture import default_architecture
from filejsonpytorch.ensemble import Ensemble
from filejsonpytorch.network import build_network
from filejsonpytorch import stacked as stacked_module
from filejsonpytorch.stacked import StackedMLP, stack


def ensemble_and_batches(name, list_layer=None):
    meta, data = export_paths(name)
    prepared = prepare(meta)
    arch = default_architecture(prepared.schema, prepared.vocabs).replace(ensemble=3)
    if list_layer:
        arch = arch.replace(lists=[{**spec, **list_layer} for spec in arch.lists])
    torch.manual_seed(0)
    network = build_network(arch)
    tensors = TensorData(lfdata.read_dataset(data, prepared.schema, prepared.encoder))
    # each member counts its naive Bayes tables on its own part, as cross-validation does
    for m, member in enumerate(network.members):
        member.initialise_from([tensors.batch([i % tensors.size for i in range(m * 40, m * 40 + 200)])])
    return network.eval(), [tensors.batch(list(range(0, 8))), tensors.batch([17])]


@pytest.mark.parametrize("name", ["class-ionosphere", "class-ngram-sp1", "class-window-pos1"])
def test_the_stacked_ensemble_answers_the_members_averaged_probabilities(name):
    ensemble, batches = ensemble_and_batches(name)
    stacked = stack(ensemble)
    assert isinstance(stacked, StackedMLP)
    with torch.inference_mode():
        for batch in batches:
            one_by_one = torch.stack([m.predict(m(batch), batch)[1] for m in ensemble.members]).mean(dim=0)
            labels, probabilities = stacked.predict(stacked(batch), batch)
            assert torch.allclose(probabilities, one_by_one, rtol=0, atol=1e-6)
            assert torch.equal(labels, ensemble.predict(ensemble(batch), batch)[0])


def test_naive_bayes_pairs_a_member_has_not_seen_score_nothing_for_it():
    ensemble, batches = ensemble_and_batches("class-ngram-sp1")
    keys = [set(m.bags[0].pair_keys.tolist()) for m in ensemble.members]
    assert keys[0] != keys[1]
    stacked = stack(ensemble)
    with torch.inference_mode():
        for batch in batches:
            ids = batch["lists"][0]
            merged = stacked.bags[0](ids).view(len(ids), 3, -1).transpose(0, 1)
            assert torch.allclose(merged, torch.stack([m.bags[0](ids) for m in ensemble.members]), atol=1e-6)


def test_the_stacked_ensemble_keeps_the_temperature():
    ensemble, batches = ensemble_and_batches("class-ionosphere")
    ensemble.temperature = 2.5
    stacked = stack(ensemble)
    with torch.inference_mode():
        expected = ensemble.calibrated(ensemble.predict(ensemble(batches[0]), batches[0])[1])
        assert torch.allclose(stacked.calibrated(stacked.predict(stacked(batches[0]), batches[0])[1]), expected, atol=1e-6)


@pytest.mark.parametrize("name, list_layer", [("seq-pos2", None), ("class-ngram-sp1", {"layer": "lstm", "hidden": 8})])
def test_what_cannot_be_stacked_is_served_member_by_member(name, list_layer):
    ensemble, _ = ensemble_and_batches(name, list_layer)
    assert isinstance(ensemble, Ensemble) and stack(ensemble) is ensemble
    assert stack(ensemble.members[0]) is ensemble.members[0]


def test_a_list_longer_than_a_chunk_gets_the_same_answer(monkeypatch):
    ensemble, batches = ensemble_and_batches("class-ngram-sp1")
    monkeypatch.setattr(stacked_module, "CHUNK", 3)
    stacked = stack(ensemble)
    with torch.inference_mode():
        for batch in batches:
            one_by_one = torch.stack([m.predict(m(batch), batch)[1] for m in ensemble.members]).mean(dim=0)
            assert torch.allclose(stacked.predict(stacked(batch), batch)[1], one_by_one, rtol=0, atol=1e-6)
