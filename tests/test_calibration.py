"""Calibrated probabilities: the temperature search, `LFModule.calibrated`, and models
trained on real exports whose answers are better probabilities than the network's raw
ones on data they never saw."""

import json
import math
import re
import shutil

import pytest
import torch
from torch.nn import functional as F

from conftest import PREFIX, data_lines, export_paths, model_info, run_train_process, write_lines
from filejsonpytorch.apply import Server
from filejsonpytorch.calibration import GRID, MIN_ITEMS, TemperatureSearch
from filejsonpytorch.config import parse_train_args
from filejsonpytorch.architecture import Architecture, Training
from filejsonpytorch.modules.base import LFModule
from filejsonpytorch.training.setup import resumed_model

CALIBRATED = re.compile(r"probabilities calibrated on (\d+) validation (\w+): temperature ([\d.]+), "
                        r"validation log-loss ([\d.]+) -> ([\d.]+)")


def random_predictions(n, classes, seed, sharpness=3.0):
    g = torch.Generator().manual_seed(seed)
    probabilities = torch.softmax(torch.randn(n, classes, generator=g, dtype=torch.float64) * sharpness, dim=1)
    return probabilities, torch.randint(0, classes, (n,), generator=g)


# --- the search -----------------------------------------------------------------------


def test_the_search_sums_the_log_loss_under_every_temperature_batch_by_batch():
    probabilities, target = random_predictions(300, 4, seed=0)
    search = TemperatureSearch()
    search.add(probabilities[:120], target[:120])
    search.add(probabilities[120:], target[120:])

    for index in (0, 20, 30, 60, len(GRID) - 1):
        expected = F.cross_entropy(probabilities.log() / GRID[index], target)
        assert search.mean_loss(index) == pytest.approx(float(expected), rel=1e-5)
    temperature, loss, loss_at_one = search.best()
    assert loss == min(search.mean_loss(i) for i in range(len(GRID)))
    assert loss == search.mean_loss(int((GRID == temperature).nonzero()))
    assert loss_at_one == pytest.approx(float(F.cross_entropy(probabilities.log(), target)), rel=1e-5)


@pytest.mark.parametrize("true_temperature", [0.5, 3.0, 20.0])
def test_the_search_finds_the_temperature_the_labels_were_drawn_with(true_temperature):
    # the network reports softmax(z), the labels follow softmax(z / T): the search must find T
    g = torch.Generator().manual_seed(1)
    z = torch.randn(20000, 5, generator=g, dtype=torch.float64) * 4
    target = torch.multinomial(torch.softmax(z / true_temperature, dim=1), 1, generator=g).squeeze(1)
    search = TemperatureSearch()
    search.add(torch.softmax(z, dim=1), target)
    assert search.best()[0] == pytest.approx(true_temperature, rel=0.1)


def test_a_gold_label_of_probability_zero_keeps_the_search_finite():
    probabilities, target = random_predictions(MIN_ITEMS, 3, seed=2)
    probabilities[0] = torch.tensor([0.0, 0.5, 0.5], dtype=torch.float64)
    target[0] = 0
    search = TemperatureSearch()
    search.add(probabilities, target)
    assert all(math.isfinite(search.mean_loss(i)) for i in range(len(GRID)))


def test_too_few_validation_items_leave_the_temperature_at_one():
    confidently_wrong = torch.tensor([[0.99, 0.01]], dtype=torch.float64)
    search = TemperatureSearch()
    search.add(confidently_wrong.expand(MIN_ITEMS - 1, 2), torch.ones(MIN_ITEMS - 1, dtype=torch.long))
    assert search.best()[0] == 1.0
    search.add(confidently_wrong, torch.ones(1, dtype=torch.long))
    assert search.best()[0] > 1.0


# --- applying the temperature ---------------------------------------------------------


def test_calibrated_divides_the_log_probabilities_and_keeps_the_labels():
    arch = Architecture("m", "classification", 3, ["a", "b", "c"], {}, [], training=Training(0.001, 32))
    module = LFModule(arch)
    scores = torch.randn(50, 3, generator=torch.Generator().manual_seed(3)) * 5
    labels, probabilities = module.predict(scores, None)
    assert torch.equal(module.calibrated(probabilities), probabilities)

    module.temperature = 2.5
    calibrated = module.calibrated(probabilities)
    assert torch.allclose(calibrated, torch.softmax(scores.double() / 2.5, dim=1))
    assert torch.equal(calibrated.argmax(dim=1), labels)
    ruled_out = module.calibrated(torch.tensor([[0.7, 0.3, 0.0]], dtype=torch.float64))
    assert ruled_out[0, 2] == 0.0 and float(ruled_out.sum()) == pytest.approx(1.0)
    assert module.calibrated(None) is None


# --- trained models -------------------------------------------------------------------


def polarity_lines(start, end):
    """Lines start..end of both halves of sentpol-train: all negative sentences come first."""
    lines = data_lines("sentpol-train")
    first_positive = next(i for i, line in enumerate(lines) if line.endswith('"pos"]'))
    return lines[start:end] + lines[first_positive + start:first_positive + end]


@pytest.fixture(scope="module")
def polarity(tmp_path_factory):
    """mlp with naive Bayes, trained on 1500 sentences of sentpol-train (500 of them for
    validation) -> (model prefix, training log); known to be over-confident uncalibrated."""
    datadir = tmp_path_factory.mktemp("polarity")
    shutil.copy(export_paths("sentpol-train")[0], datadir / "crvd.meta.json")
    write_lines(datadir / "crvd.data.json", polarity_lines(0, 750))
    prefix = datadir / PREFIX
    run = run_train_process(datadir / "crvd.meta.json", prefix, "--valsize", "500", "--maxepochs", "3", "--seed", "1")
    assert run.returncode == 0, run.stderr[-3000:]
    return prefix, run.stderr


def test_training_logs_and_saves_the_fitted_temperature(polarity):
    prefix, log = polarity
    found = CALIBRATED.search(log)
    assert found, log[-3000:]
    items, kind, temperature, before, after = found.groups()
    assert (items, kind) == ("500", "instances")
    assert float(after) < float(before)
    saved = model_info(prefix)["temperature"]
    assert saved == pytest.approx(float(temperature), abs=0.005) and saved > 1.5  # softened, as it should be


def log_loss_and_labels(server, lines):
    answers = [json.loads(server.answer(json.dumps(features).encode("utf-8"))) for features, _ in lines]
    loss = -sum(math.log(a["dist"][a["labels"].index(target)]) for a, (_, target) in zip(answers, lines))
    return loss / len(lines), [a["output"] for a in answers]


def test_answers_on_unseen_sentences_are_better_probabilities_with_the_same_labels(polarity):
    prefix, _ = polarity
    unseen = [json.loads(line) for line in polarity_lines(750, 1150)]
    server = Server.load(str(prefix))
    calibrated_loss, calibrated_labels = log_loss_and_labels(server, unseen)
    server.network.temperature = 1.0
    raw_loss, raw_labels = log_loss_and_labels(server, unseen)

    assert calibrated_labels == raw_labels
    assert calibrated_loss < 0.75 * raw_loss, (calibrated_loss, raw_loss)
    assert calibrated_loss < math.log(2), calibrated_loss  # better than not knowing


def test_a_resumed_network_keeps_its_temperature(polarity):
    prefix, _ = polarity
    args = parse_train_args([str(prefix.parent / "crvd.meta.json"), str(prefix), "--resume"])
    assert resumed_model(args).network.temperature == model_info(prefix)["temperature"]


def test_a_small_validation_set_leaves_the_probabilities_alone(train_cli, make_datadir):
    datadir = make_datadir("class-ionosphere")
    run = train_cli(datadir / "crvd.meta.json", datadir / PREFIX, "--maxepochs", "2", "--folds", "1")
    assert run.code == 0, run.err
    assert f"35 validation instances are too few to calibrate them ({MIN_ITEMS} needed)" in run.err
    assert model_info(datadir / PREFIX)["temperature"] == 1.0


def test_a_tagger_is_calibrated_on_the_elements_of_its_validation_sequences(train_cli, make_datadir):
    datadir = make_datadir("seq-pos1", lines=400)
    validation = data_lines("seq-pos1", 480)[400:]
    valfile = write_lines(datadir / "validation.data.json", validation)
    run = train_cli(datadir / "crvd.meta.json", datadir / PREFIX, "--valfile", valfile, "--maxepochs", "2", "--seed", "1")
    assert run.code == 0, run.err
    found = CALIBRATED.search(run.err)
    assert found, run.err[-3000:]
    elements = sum(len(json.loads(line)[1]) for line in validation)
    assert found.group(1, 2) == (str(elements), "elements")
    assert float(found.group(5)) <= float(found.group(4))
    assert model_info(datadir / PREFIX)["temperature"] in GRID.tolist()
