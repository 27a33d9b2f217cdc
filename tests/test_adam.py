"""Our Adam (training/adam.py) is torch.optim.Adam, bit for bit, without importing TorchDynamo."""

import subprocess
import sys

import pytest
import torch

from conftest import PREFIX, train_env
from filejsonpytorch.batches import TensorData, epoch_order
from filejsonpytorch.config import parse_train_args
from filejsonpytorch.errors import UsageError
from filejsonpytorch.training import trainer as trainer_module
from filejsonpytorch.training.adam import Adam
from filejsonpytorch.training.setup import new_model
from filejsonpytorch.training.trainer import Hooks, Trainer


def trained_network(datadir, optimizer_class, monkeypatch, *options):
    """The network the trainer makes of `datadir` in two epochs, stepping with `optimizer_class`."""
    monkeypatch.setattr(trainer_module, "Adam", optimizer_class)
    args = parse_train_args([str(datadir / "crvd.meta.json"), str(datadir / PREFIX), "--folds", "1",
                             "--maxepochs", "2", "--es_patience", "0", *options])
    torch.manual_seed(args.seed)
    model, train_set, val_set = new_model(args)
    Trainer(args, model, torch.device("cpu"), train_set, val_set, Hooks()).run()
    return model.network


@pytest.mark.parametrize("export", ["class-ionosphere", "class-ngram-sp1", "seq-pos1"])
def test_training_with_our_adam_gives_torchs_weights_exactly(make_datadir, monkeypatch, export):
    datadir = make_datadir(export)
    ours = trained_network(datadir, Adam, monkeypatch)
    theirs = trained_network(datadir, torch.optim.Adam, monkeypatch)
    pairs = list(zip(ours.state_dict().items(), theirs.state_dict().items()))
    assert pairs and all(a == b and torch.equal(x, y) for (a, x), (b, y) in pairs)


def steps(network, optimizer, data, count, seed, lr=None):
    """`count` optimizer steps on shuffled batches of `data`; `lr` changes it halfway."""
    generator = __import__("numpy").random.default_rng(seed)
    batches = epoch_order(data, 16, generator, shuffle=True)
    for number, indices in enumerate(batches[:count]):
        if lr is not None and number == count // 2:
            optimizer.param_groups[0]["lr"] = lr
        batch = data.batch(indices)
        loss = network.loss(network(batch), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def network_and_data(make_datadir):
    datadir = make_datadir("class-ionosphere")
    args = parse_train_args([str(datadir / "crvd.meta.json"), str(datadir / PREFIX), "--folds", "1"])
    torch.manual_seed(3)
    model, train_set, _ = new_model(args)
    return model.network, TensorData(train_set)


def test_a_state_saved_by_either_resumes_with_the_other_as_with_itself(make_datadir):
    network, data = network_and_data(make_datadir)
    start = {k: v.clone() for k, v in network.state_dict().items()}
    results = {}
    for first, second in [(torch.optim.Adam, torch.optim.Adam), (torch.optim.Adam, Adam), (Adam, torch.optim.Adam)]:
        network.load_state_dict(start)
        torch.manual_seed(4)  # the same dropout
        optimizer = first(network.parameters(), lr=0.002)
        steps(network, optimizer, data, 6, seed=1, lr=0.001)
        saved = optimizer.state_dict()
        resumed = second(network.parameters(), lr=0.5)  # the saved learning rate wins, as in torch
        resumed.load_state_dict(saved)
        assert resumed.param_groups[0]["lr"] == 0.001
        steps(network, resumed, data, 6, seed=2)
        results[(first.__module__, second.__module__)] = {k: v.clone() for k, v in network.state_dict().items()}
    reference, *others = results.values()
    assert all(torch.equal(reference[k], other[k]) for other in others for k in reference)


@pytest.mark.parametrize("eps, betas, dtype", [(1e-8, (0.9, 0.999), torch.float32), (1e-6, (0.9, 0.99), torch.float32),
                                               (1e-12, (0.8, 0.9999), torch.float32), (0.0, (0.9, 0.999), torch.float32),
                                               (1e-8, (0.9, 0.999), torch.float64)])
def test_second_moments_of_zero_or_next_to_it_step_as_in_torch(eps, betas, dtype):
    """The floor under the square roots (negligible_square) must change no weight: gradients
    of 0, subnormal squares and squares from far below to far above the floor."""
    magnitudes = [0.0, 1e-23, 1e-21, 1e-19] + [2.0 ** -k for k in range(80, 0, -2)] + [1.0, 30.0]
    signs = torch.tensor([1.0, -1.0, 0.5], dtype=dtype).repeat_interleave(len(magnitudes))
    gradients = torch.tensor(magnitudes * 3, dtype=dtype) * signs
    # weights from 0, so that every difference in a step shows
    ours, theirs = (torch.zeros(len(gradients), dtype=dtype, requires_grad=True) for _ in range(2))
    optimizers = Adam([ours], lr=0.01, betas=betas, eps=eps), torch.optim.Adam([theirs], lr=0.01, betas=betas, eps=eps)
    for step in range(6):
        for param, optimizer in zip((ours, theirs), optimizers):
            param.grad = gradients * (step % 3 != 2)  # every third step a zero gradient
            optimizer.step()
        assert torch.equal(ours.isnan(), theirs.isnan())
        assert torch.equal(ours.nan_to_num(), theirs.nan_to_num()), step


def test_a_state_of_other_parameters_is_refused(make_datadir):
    network, _ = network_and_data(make_datadir)
    parameters = list(network.parameters())
    saved = torch.optim.Adam(parameters[:2]).state_dict()
    with pytest.raises(ValueError, match="other parameters"):
        Adam(parameters).load_state_dict(saved)


def test_a_sparse_gradient_is_a_named_error():
    embedding = torch.nn.Embedding(10, 3, sparse=True)
    embedding(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(UsageError, match="sparse gradient"):
        Adam(embedding.parameters()).step()


def test_the_gradient_scaler_steps_it(make_datadir):
    network, data = network_and_data(make_datadir)
    start = {k: v.clone() for k, v in network.state_dict().items()}
    optimizer = Adam(network.parameters())
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    batch = data.batch(list(range(16)))
    loss = network.loss(network(batch), batch)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    scaler.step(optimizer)
    scaler.update()
    assert any(not torch.equal(start[k], v) for k, v in network.state_dict().items())
    assert optimizer.state[0]["step"].item() == 1.0


@pytest.mark.slow
def test_training_never_imports_torchdynamo(make_datadir):
    """The reason our Adam exists: torch.optim's would import the compiler (seconds of start-up)."""
    datadir = make_datadir("class-ionosphere")
    program = ("import sys\nfrom filejsonpytorch.train import main\n"
               f"code = main([{str(datadir / 'crvd.meta.json')!r}, {str(datadir / PREFIX)!r}, '--maxepochs', '2'])\n"
               "assert code == 0, code\nprint('torch._dynamo' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=train_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "False"
