"""The server's prepared network (a stacked ensemble, remembered character vectors) gives
the answers of the model file's network as training built it, for every default kind."""

import json

import pytest
import torch

from filejsonpytorch import lfdata, model_io
from filejsonpytorch.apply import Server
from filejsonpytorch.ensemble import Ensemble
from filejsonpytorch.modules import encoder as encoder_module
from filejsonpytorch.stacked import StackedMLP
from test_apply import trained_models


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return trained_models(tmp_path_factory)


def unprepared(prefix):
    model = model_io.read_model(prefix, torch.device("cpu"))
    return Server(model.schema, lfdata.Encoder(model.schema, model.vocabs), model.network.eval(), torch.device("cpu"))


# numbers-only data is distilled into one network; its cross-validation's five are PREFIX.folds
@pytest.mark.parametrize("kind, suffix, stacked, members", [
    ("ionosphere", ".folds", True, 5), ("ionosphere", "", True, 1), ("ngram", "", True, 5), ("window", "", True, 5),
    ("regression", ".folds", True, 5), ("regression", "", True, 1), ("sequence", "", False, 1), ("multi", "", False, 1)])
def test_prepared_answers_equal_the_model_files_network(models, kind, suffix, stacked, members):
    model = models(kind)
    prefix = f"{model.prefix}{suffix}"
    server, plain = Server.load(prefix), unprepared(prefix)
    assert isinstance(server.stacked, StackedMLP) == stacked
    assert isinstance(server.network, Ensemble) == isinstance(plain.network, Ensemble) == (members > 1)
    if stacked:
        assert server.stacked.n_members == members
    requests = [json.dumps(features).encode() for features in model.instances(40)]
    for request in requests + requests[::-1]:  # the second time from remembered vectors
        ours, theirs = json.loads(server.answer(request)), json.loads(plain.answer(request))
        assert ours["status"] == "ok"
        if "dist" in ours:
            assert ours["output"] == theirs["output"]
            assert torch.allclose(torch.tensor(ours["dist"], dtype=torch.float64),
                                  torch.tensor(theirs["dist"], dtype=torch.float64), rtol=0, atol=1e-6)
        else:  # float32 sums in another order, on the target's scale
            assert ours["output"] == pytest.approx(theirs["output"], rel=1e-6)


def test_a_tagger_whose_memo_starts_afresh_answers_the_same(models, monkeypatch):
    model = models("sequence")
    monkeypatch.setattr(encoder_module, "MEMO_LIMIT", 3)  # every sentence has more distinct words
    server, plain = Server.load(model.prefix), unprepared(model.prefix)
    for features in model.instances(20):
        request = json.dumps(features).encode()
        ours, theirs = json.loads(server.answer(request)), json.loads(plain.answer(request))
        assert ours["status"] == "ok" and ours["output"] == theirs["output"]
        assert torch.allclose(torch.tensor(ours["dist"], dtype=torch.float64),
                              torch.tensor(theirs["dist"], dtype=torch.float64), rtol=0, atol=1e-6)
