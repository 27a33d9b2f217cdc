"""Cross-validation ensembles (`--folds K`, the default for small non-sequence data): K
networks, each validated on its own fold and trained on the others, averaged."""

import json

import pytest
import torch

from conftest import PREFIX, data_lines, model_info, write_lines
from filejsonpytorch import model_io
from filejsonpytorch.config import parse_train_args
from filejsonpytorch.training import crossval, distillation
from filejsonpytorch.training.setup import resumed_model
from filejsonpytorch.training.trainer import Trainer
from filejsonpytorch.apply import Server
from filejsonpytorch.ensemble import Ensemble


def train_abalone(make_datadir, train_cli, *options, lines=None):
    datadir = make_datadir("abalone-train", lines=lines)
    run = train_cli(datadir / "crvd.meta.json", datadir / PREFIX, "--maxepochs", "2", *options)
    return datadir, run


def test_small_data_trains_one_network_per_fold_on_all_of_it(make_datadir, train_cli):
    datadir, run = train_abalone(make_datadir, train_cli, "--distill", "false")
    assert run.code == 0, run.err
    assert "5-fold cross-validation: 5 networks, each trained on 80% of the data" in run.err
    for fold in range(1, 6):
        assert f"network {fold} of 5: validating on fold {fold} (64 instances), training on the other 256" in run.err
    assert "5 of 5 networks in" in run.err and "Each on the fold it validated on: loss" in run.err
    assert "distilled" not in run.err and not (datadir / f"{PREFIX}.folds.json").exists()
    info = model_info(datadir / PREFIX)
    assert info["arch"]["ensemble"] == 5 and info["arch"]["training"]["folds"] == 5
    assert sorted({entry["fold"] for entry in info["history"]}) == [1, 2, 3, 4, 5]
    assert info["position"]["networks_finished"] == 5


def test_the_saved_ensemble_answers_the_mean_of_its_networks(make_datadir, train_cli):
    datadir, run = train_abalone(make_datadir, train_cli, "--distill", "false")
    assert run.code == 0, run.err
    server = Server.load(str(datadir / PREFIX))
    network = server.network
    assert isinstance(network, Ensemble) and len(network.members) == 5
    # trained on different folds, the networks differ
    first, second = (dict(m.named_parameters())["layers.1.weight"] for m in network.members[:2])
    assert not torch.equal(first, second)
    features, _ = json.loads(data_lines("abalone-train", 1)[0])
    answer = json.loads(server.answer(json.dumps(features).encode()))
    batch = server.request_batch(server.encode(features), False)
    with torch.no_grad():
        values = [float(m.predict(m(batch), batch)[0][0]) for m in network.members]
    schema = server.schema
    assert answer["status"] == "ok"
    assert answer["output"] == pytest.approx(sum(values) / 5 * schema.target_std + schema.target_mean, rel=1e-5)


@pytest.mark.parametrize("options, logged", [
    (("--valsize", "0.2"), "training on 256, validating on 64"),
    (("--ensemble", "2"), "an ensemble of 2 networks, trained together"),
    (("--folds", "1"), "training on 288, validating on 32"),
])
def test_a_chosen_validation_or_ensemble_trains_as_asked(make_datadir, train_cli, options, logged):
    datadir, run = train_abalone(make_datadir, train_cli, *options)
    assert run.code == 0, run.err
    assert "cross-validation" not in run.err
    assert logged in run.err
    assert "folds" not in model_info(datadir / PREFIX)["arch"]["training"]


def test_sequences_and_larger_data_train_one_network(make_datadir, train_cli):
    for name, lines in (("seq-pos2", None), ("class-window-pos1", None)):
        datadir = make_datadir(name, lines=lines)
        run = train_cli(datadir / "crvd.meta.json", datadir / PREFIX, "--maxepochs", "1")
        assert run.code == 0, run.err
        assert "cross-validation" not in run.err and model_info(datadir / PREFIX)["arch"]["ensemble"] == 1


def test_folds_can_be_asked_for_on_any_data(make_datadir, train_cli):
    datadir = make_datadir("seq-pos2")
    run = train_cli(datadir / "crvd.meta.json", datadir / PREFIX, "--maxepochs", "1", "--folds", "3")
    assert run.code == 0, run.err
    assert "3-fold cross-validation" in run.err and model_info(datadir / PREFIX)["arch"]["ensemble"] == 3


@pytest.mark.parametrize("options, message", [
    (("--folds", "3", "--ensemble", "2"), "--folds 3 and an ensemble trained together"),
    (("--folds", "200"), "--folds 200: too many for 320 training instances (at most 160)"),
])
def test_conflicting_options_are_usage_errors(make_datadir, train_cli, options, message):
    datadir, run = train_abalone(make_datadir, train_cli, *options)
    assert run.code == 2 and message in run.err
    assert not (datadir / f"{PREFIX}.json").exists()


def test_folds_with_a_validation_file_are_a_usage_error(make_datadir, train_cli):
    datadir = make_datadir("abalone-train")
    valfile = write_lines(datadir / "val.data.json", data_lines("abalone-train", 20))
    run = train_cli(datadir / "crvd.meta.json", datadir / PREFIX, "--folds", "5", "--valfile", valfile)
    assert run.code == 2 and "leave out --valfile, or pass --folds 1" in run.err
    run = train_cli(datadir / "crvd.meta.json", datadir / PREFIX, "--maxepochs", "1", "--valfile", valfile)
    assert run.code == 0 and "training on 320, validating on 20" in run.err


def test_resume_goes_on_with_every_finished_network(make_datadir, train_cli):
    datadir, run = train_abalone(make_datadir, train_cli, "--maxepochs", "1")
    assert run.code == 0, run.err
    run = train_cli(datadir / "crvd.meta.json", datadir / PREFIX, "--maxepochs", "1", "--resume")
    assert run.code == 0, run.err
    history = model_info(datadir / PREFIX)["history"]
    assert sorted((entry["fold"], entry["epoch"]) for entry in history) == [(f, e) for f in range(1, 6) for e in (1, 2)]


def test_an_interrupted_run_saves_the_networks_done_and_resume_trains_the_rest(make_datadir, train_cli, monkeypatch):
    datadir = make_datadir("abalone-train")
    validate = Trainer.validate

    def stop_in_the_third_network(self, epoch, number):
        if self.args.seed == 3:  # seeds 1, 2, 3: the third network
            (datadir / "STOP").write_text("")
        return validate(self, epoch, number)

    monkeypatch.setattr(Trainer, "validate", stop_in_the_third_network)
    # one after another, in this process: the patched trainer does not reach worker processes
    run = train_cli(datadir / "crvd.meta.json", datadir / PREFIX, "--maxepochs", "3", "--workers", "1")
    monkeypatch.undo()
    assert run.code == 0 and "stopping: stop file" in run.err
    info = model_info(datadir / PREFIX)
    assert info["arch"]["ensemble"] == 3 and info["position"]["networks_finished"] == 2
    assert len(Server.load(str(datadir / PREFIX)).network.members) == 3

    run = train_cli(datadir / "crvd.meta.json", datadir / PREFIX, "--maxepochs", "3", "--resume")
    assert run.code == 0, run.err
    assert "network 1 of 5" not in run.err and "network 3 of 5" in run.err and "network 5 of 5" in run.err
    assert "one network distilled from the 5" in run.err
    info = model_info(datadir / f"{PREFIX}.folds")
    assert info["arch"]["ensemble"] == 5 and info["position"]["networks_finished"] == 5


def test_the_printed_architecture_trains_by_folds_again(make_datadir, train_cli):
    datadir, run = train_abalone(make_datadir, train_cli, "--maxepochs", "1")
    assert run.code == 0, run.err
    arch_file = datadir / f"{PREFIX}.arch.json"
    assert json.loads(arch_file.read_text())["ensemble"] == 5
    run = train_cli(datadir / "crvd.meta.json", datadir / "again", "--maxepochs", "1", "--arch", arch_file)
    assert run.code == 0, run.err
    assert "5-fold cross-validation" in run.err and "trained together" not in run.err


@pytest.mark.parametrize("cores, asked, networks, workers", [
    (2, None, 5, 1), (8, None, 5, 4), (16, None, 5, 5), (1, None, 5, 1), (2, 3, 5, 3), (8, 9, 5, 5)])
def test_workers_default_to_one_per_two_cores_and_never_outnumber_the_networks(monkeypatch, cores, asked, networks,
                                                                                workers):
    monkeypatch.setattr(crossval, "available_cores", lambda: cores)
    assert crossval.worker_count(asked, networks) == workers


def answers_on(prefix, lines):
    server = Server.load(str(prefix))
    return [json.loads(server.answer(json.dumps(json.loads(line)[0]).encode())) for line in lines]


def test_numbers_only_data_is_distilled_into_one_network_that_answers_as_the_ensemble(make_datadir, train_cli):
    datadir = make_datadir("class-ionosphere")
    run = train_cli(datadir / "crvd.meta.json", datadir / PREFIX, "--maxepochs", "10")
    assert run.code == 0, run.err
    assert "one network distilled from the 5 answers in their place" in run.err
    assert "distillation" in run.err.split("time spent:")[1]
    info, ensemble_info = model_info(datadir / PREFIX), model_info(datadir / f"{PREFIX}.folds")
    assert info["arch"]["ensemble"] == 1 and info["position"]["distilled"]
    assert ensemble_info["arch"]["ensemble"] == 5 and "distilled" not in ensemble_info["position"]
    assert info["temperature"] == ensemble_info["temperature"] != 1.0
    assert not isinstance(Server.load(str(datadir / PREFIX)).network, Ensemble)
    lines = data_lines("class-ionosphere")
    student, ensemble = answers_on(datadir / PREFIX, lines), answers_on(datadir / f"{PREFIX}.folds", lines)
    assert sum(s["output"] == e["output"] for s, e in zip(student, ensemble)) >= 0.95 * len(lines)
    assert "one network, distilled from the 5 networks" in (datadir / f"{PREFIX}.md").read_text()


def test_a_distilled_model_resumes_from_its_networks_and_is_distilled_again(make_datadir, train_cli):
    datadir, run = train_abalone(make_datadir, train_cli, "--maxepochs", "1")
    assert run.code == 0, run.err
    assert "one network distilled from the 5" in run.err and "a root mean square of" in run.err
    args = parse_train_args([str(datadir / "crvd.meta.json"), str(datadir / PREFIX), "--resume"])
    resumed, saved = resumed_model(args).network, model_io.read_model(str(datadir / f"{PREFIX}.folds")).network
    assert len(resumed.members) == 5
    assert all(torch.equal(a, b) for a, b in zip(resumed.state_dict().values(), saved.state_dict().values()))
    run = train_cli(datadir / "crvd.meta.json", datadir / PREFIX, "--maxepochs", "1", "--resume")
    assert run.code == 0, run.err
    assert "with the 5 networks of a 5-fold cross-validation" in run.err
    assert "one network distilled from the 5" in run.err
    info = model_info(datadir / PREFIX)
    assert info["position"]["distilled"] and info["arch"]["ensemble"] == 1
    history = model_info(datadir / f"{PREFIX}.folds")["history"]
    assert sorted((e["fold"], e["epoch"]) for e in history) == [(f, e) for f in range(1, 6) for e in (1, 2)]

    run = train_cli(datadir / "crvd.meta.json", datadir / PREFIX, "--maxepochs", "1", "--resume", "--distill", "false")
    assert run.code == 0, run.err
    assert model_info(datadir / PREFIX)["arch"]["ensemble"] == 5
    assert not [p.name for p in datadir.iterdir() if p.name.startswith(f"{PREFIX}.folds")]  # none out of date


def test_resuming_a_distilled_model_without_its_networks_says_what_is_missing(make_datadir, train_cli):
    datadir, run = train_abalone(make_datadir, train_cli, "--maxepochs", "1")
    assert run.code == 0, run.err
    (datadir / f"{PREFIX}.folds.json").unlink()
    run = train_cli(datadir / "crvd.meta.json", datadir / PREFIX, "--maxepochs", "1", "--resume")
    assert run.code != 0 and f"{PREFIX}.folds.json, which is missing" in run.err


def test_a_stop_while_distilling_leaves_the_ensemble_in_the_model_file(make_datadir, train_cli, monkeypatch):
    datadir = make_datadir("abalone-train")
    learn = distillation.learn

    def stop_while_distilling(*args):
        (datadir / "STOP").write_text("")
        return learn(*args)

    monkeypatch.setattr(distillation, "learn", stop_while_distilling)
    run = train_cli(datadir / "crvd.meta.json", datadir / PREFIX, "--maxepochs", "2")
    assert run.code == 0, run.err
    assert "distillation stopped (stop file" in run.err and "the model file keeps the 5 networks" in run.err
    info = model_info(datadir / PREFIX)
    assert info["arch"]["ensemble"] == 5 and "distilled" not in info["position"]
    assert not (datadir / f"{PREFIX}.folds.json").exists()


def test_inputs_with_embeddings_keep_the_ensemble_unless_distillation_is_asked_for(make_datadir, train_cli):
    datadir = make_datadir("class-ngram-sp1", lines=200)
    run = train_cli(datadir / "crvd.meta.json", datadir / PREFIX, "--maxepochs", "1")
    assert run.code == 0, run.err
    assert "the 5 networks answer together" in run.err and model_info(datadir / PREFIX)["arch"]["ensemble"] == 5
    run = train_cli(datadir / "crvd.meta.json", datadir / "asked", "--maxepochs", "1", "--distill", "true")
    assert run.code == 0, run.err
    assert "one network distilled from the 5" in run.err and model_info(datadir / "asked")["arch"]["ensemble"] == 1


def test_distilling_sequences_is_a_usage_error(make_datadir, train_cli):
    datadir = make_datadir("seq-pos2")
    run = train_cli(datadir / "crvd.meta.json", datadir / PREFIX, "--folds", "3", "--distill", "true")
    assert run.code == 2 and "these are sequences" in run.err
