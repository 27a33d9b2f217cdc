"""The trainer's hooks: what it announces, when, and that it writes nothing itself."""

import torch

from conftest import PREFIX
from filejsonpytorch.config import parse_train_args
from filejsonpytorch.training.setup import new_model
from filejsonpytorch.training.trainer import Hooks, Trainer


def trainer_with_hooks(datadir, *options):
    args = parse_train_args([str(datadir / "crvd.meta.json"), str(datadir / PREFIX), "--folds", "1", *options])
    torch.manual_seed(args.seed)
    model, train_set, val_set = new_model(args)
    calls = []

    def on_improvement(trainer):
        calls.append(("improvement", trainer.model.history[-1]["epoch"] if trainer.model.history else None,
                      trainer.model.position["epoch"]))

    def on_finish(trainer):
        calls.append(("finish", len(trainer.model.history), trainer.model.position["epoch"]))

    trainer = Trainer(args, model, torch.device("cpu"), train_set, val_set, Hooks(on_improvement, on_finish))
    return trainer, calls


def test_on_improvement_comes_at_each_new_best_and_on_finish_once_at_the_end(make_datadir):
    datadir = make_datadir("class-ionosphere")
    trainer, calls = trainer_with_hooks(datadir, "--maxepochs", "4", "--es_metric", "loss")
    trainer.run()
    history = trainer.model.history
    assert [e["epoch"] for e in history] == [1, 2, 3, 4]
    best_so_far, improved = float("inf"), []
    for entry in history:
        if entry["loss"] < best_so_far:
            best_so_far = entry["loss"]
            improved.append(entry["epoch"])
    assert calls[:-1] == [("improvement", epoch, epoch) for epoch in improved]
    assert calls[-1] == ("finish", 4, 4)
    assert trainer.best["epoch"] == improved[-1]
    assert not any(datadir.glob(f"{PREFIX}*.pt"))  # writing the model is the hooks' business


def test_without_a_validation_set_each_epoch_is_an_improvement(make_datadir):
    datadir = make_datadir("class-ionosphere")
    trainer, calls = trainer_with_hooks(datadir, "--maxepochs", "3", "--valsize", "0.001")
    assert trainer.val_data is None
    trainer.run()
    assert calls == [("improvement", None, 1), ("improvement", None, 2), ("improvement", None, 3), ("finish", 0, 3)]


def test_on_finish_comes_after_a_stop_request_too(make_datadir):
    datadir = make_datadir("class-ionosphere")
    trainer, calls = trainer_with_hooks(datadir, "--maxepochs", "5")
    (datadir / "STOP").write_text("")
    trainer.stop.check()  # as if the file appeared during the first batch
    trainer.run()
    assert calls == [("finish", 0, 0)] and trainer.stop.reason.startswith("stop file")
