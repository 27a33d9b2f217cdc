"""The stacked form of an MLP ensemble (`stacked.stack`) answers what its members answer."""

import dataclasses
import json

import pytest
import torch

from conftest import data_lines, export_paths, prepare
from filejsonpytorch import lfdata
from filejsonpytorch import stacked as stacked_module
from filejsonpytorch.batches import TensorData, request_batch
from filejsonpytorch.default_architecture import add_char_features, default_architecture
from filejsonpytorch.ensemble import Ensemble
from filejsonpytorch.network import build_network
from filejsonpytorch.stacked import MergedBag, StackedMLP, stack


def ensemble_and_instances(name, list_layer=None, members=3, count=40):
    """A default network of `members` MLPs (initialised, naive Bayes counted, not
    trained; a word feature's characters read as the trainer adds them) and the export's
    first `count` instances, encoded."""
    meta, data = export_paths(name)
    prepared = prepare(meta)
    add_char_features(prepared.schema, prepared.vocabs, prepared.meta["featureStats"])
    prepared = dataclasses.replace(prepared, encoder=lfdata.Encoder(prepared.schema, prepared.vocabs))
    arch = default_architecture(prepared.schema, prepared.vocabs).replace(ensemble=members)
    if list_layer:
        arch = arch.replace(lists=[{**spec, **list_layer} for spec in arch.lists])
    torch.manual_seed(0)
    network = build_network(arch)
    tensors = TensorData(lfdata.read_dataset(data, prepared.schema, prepared.encoder))
    # each member counts its naive Bayes tables on its own part, as cross-validation does
    for m, member in enumerate(network.members if members > 1 else [network]):
        member.initialise_from([tensors.batch([i % tensors.size for i in range(m * 40, m * 40 + 200)])])
    instances = [prepared.encoder.encode(json.loads(line)[0]) for line in data_lines(name, count)]
    return network.eval(), instances


def members_answer(network, instance):
    """(label index, probabilities) or value, member by member as Ensemble.predict gives them."""
    batch = request_batch(instance, False)
    predicted, probabilities = network.predict(network(batch), batch)
    if probabilities is None:
        return float(predicted[0])
    return int(predicted[0]), network.calibrated(probabilities)[0]


def assert_same_answers(network, stacked, instances):
    with torch.inference_mode():
        for instance in instances:
            expected = members_answer(network, instance)
            if isinstance(expected, float):
                assert stacked.answer(instance) == pytest.approx(expected, rel=1e-6, abs=1e-6)
                continue
            label, probabilities = stacked.answer(instance)
            assert label == expected[0]
            assert torch.allclose(torch.tensor(probabilities, dtype=torch.float64), expected[1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["class-ionosphere", "class-ngram-sp1", "class-window-pos1", "abalone-train"])
def test_the_stacked_ensemble_answers_the_members_averaged_probabilities(name):
    ensemble, instances = ensemble_and_instances(name)
    stacked = stack(ensemble)
    assert isinstance(stacked, StackedMLP) and stacked.n_members == 3
    assert_same_answers(ensemble, stacked, instances + instances[::-1])  # the second time remembered


@pytest.mark.parametrize("name", ["class-window-pos1", "class-ionosphere"])
def test_one_network_is_stacked_as_one_member(name):
    network, instances = ensemble_and_instances(name, members=1)
    assert not isinstance(network, Ensemble)
    stacked = stack(network)
    assert stacked.n_members == 1
    assert_same_answers(network, stacked, instances)


def test_terms_remembered_past_the_limit_give_the_same_answers(monkeypatch):
    ensemble, instances = ensemble_and_instances("class-window-pos1")
    stacked = stack(ensemble)
    full = stacked.first.values.limits
    # 4 memos (token, shape, suffix, characters) of 3 members' [3, 200] terms: two each
    monkeypatch.setattr(stacked_module, "MEMO_FLOATS", 4 * 2 * 3 * 200)
    stacked = stack(ensemble)
    (chars,) = [term for term in stacked.first.lists if term.memo is not None]
    assert stacked.first.values.limits == [1, 1, 1] and chars.limit == 2 and min(full) > 100
    assert_same_answers(ensemble, stacked, instances)
    values = stacked.first.values  # a memo started afresh keeps the values of the request at hand
    assert len(chars.memo) <= 2 and all(len(m) <= len(c) for m, c in zip(values.memos, values.group_columns))


def test_naive_bayes_pairs_a_member_has_not_seen_score_nothing_for_it():
    ensemble, instances = ensemble_and_instances("class-ngram-sp1")
    bags = [m.bags[0] for m in ensemble.members]
    assert set(bags[0].pair_keys.tolist()) != set(bags[1].pair_keys.tolist())
    merged = MergedBag(bags, weight=1.0)
    with torch.inference_mode():
        for _, _, (ids,) in instances + [([], [], ([],))]:
            expected = torch.stack([bag(torch.tensor([ids or [0]])) for bag in bags])
            assert torch.allclose(merged(ids), expected, atol=1e-6)


def test_the_stacked_ensemble_keeps_the_temperature():
    ensemble, instances = ensemble_and_instances("class-ngram-sp1")
    ensemble.temperature = 2.5
    stacked = stack(ensemble)
    assert_same_answers(ensemble, stacked, instances)
    with torch.inference_mode():
        softer = stacked.answer(instances[0])[1]
        ensemble.temperature = 1.0
        assert max(softer) < max(stack(ensemble).answer(instances[0])[1])


def test_an_empty_list_reads_as_nothing():
    ensemble, instances = ensemble_and_instances("class-ngram-sp1")
    nominal, numeric, _ = instances[0]
    assert_same_answers(ensemble, stack(ensemble), [(nominal, numeric, [[]])])


@pytest.mark.parametrize("name, list_layer", [("seq-pos2", None), ("class-ngram-sp1", {"layer": "lstm", "hidden": 8})])
def test_what_cannot_be_stacked_is_served_member_by_member(name, list_layer):
    ensemble, _ = ensemble_and_instances(name, list_layer, count=0)
    assert isinstance(ensemble, Ensemble) and stack(ensemble) is None
    assert stack(ensemble.members[0]) is None


def test_a_list_longer_than_a_chunk_gets_the_same_answer(monkeypatch):
    ensemble, instances = ensemble_and_instances("class-ngram-sp1", {"layer": "cnn", "widths": [3, 4, 5], "channels": 20})
    monkeypatch.setattr(stacked_module, "CHUNK", 3)
    assert max(len(ids) for _, _, (ids,) in instances) > 3
    assert_same_answers(ensemble, stack(ensemble), instances)


def test_a_words_characters_are_remembered_once():
    ensemble, instances = ensemble_and_instances("class-window-pos1")
    stacked = stack(ensemble)
    (chars,) = [term for term in stacked.first.lists if term.memo is not None]
    with torch.inference_mode():
        for instance in instances + instances:
            stacked.answer(instance)
    assert len(chars.memo) == len({tuple(lists[0]) for _, _, lists in instances})
