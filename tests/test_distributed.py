"""Training beyond one process: one network on two torchrun ranks (DistributedDataParallel
with gloo), the networks of a cross-validation in two worker processes, and the options
that belong to a GPU refused on a CPU."""

import contextlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import PREFIX, load_tensors, model_info, train_command, train_env
from filejsonpytorch import model_io
from filejsonpytorch.config import parse_train_args
from filejsonpytorch.errors import UsageError
from filejsonpytorch.training import distributed
from filejsonpytorch.training.workers import worker_main
from test_lfhost import assert_the_host_takes_every_answer, host_setup, lfhost

#: no dropout and no word dropout (ionosphere is numeric): the ranks' random masks would
#: differ from a single process's, and then only the distribution of the weights would match;
#: on the CPU (gloo) also where a GPU is: two ranks cannot share one with NCCL
EXACT = ("--folds", "1", "--hparams", "dropout=0", "--seed", "1", "--cuda", "false")


def torchrun(*args, ranks=2):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks),
            "-m", "filejsonpytorch.train", *map(str, args)]


def run(command, timeout=300):
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=train_env())
    assert result.returncode == 0, result.stderr[-4000:]
    return result


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("java") is None, reason="the LF host emulator needs java")
def test_two_ranks_train_the_weights_one_process_trains_and_the_model_answers_the_host(tmp_path):
    datadir, test_file, common = host_setup("ionosphere", tmp_path)
    meta, prefix = datadir / "crvd.meta.json", datadir / PREFIX
    # 316 training instances in batches of 315: the ranks' parts differ (158/157), and the
    # batch of 1 leaves the second rank without an instance. Few steps: over many, rounding
    # (other sums in smaller batches) grows, see the README
    options = ("--maxepochs", "2", "--batchsize", "315", *EXACT)
    run([sys.executable, "-m", "filejsonpytorch.train", meta, datadir / "single", *options])
    ranks = run(torchrun(meta, prefix, *options))
    assert ranks.stdout == ""  # stdout carries protocol lines only
    assert "distributed: rank 0 of 2 on cpu (gloo)" in ranks.stderr
    assert "rank 1" not in ranks.stderr  # rank 0 alone logs
    single, distributed_run = load_tensors(datadir / "single")["model"], load_tensors(prefix)["model"]
    assert single.keys() == distributed_run.keys()
    for name in single:  # a wrong share of the gradient would move weights by a learning rate, 1e-3
        torch.testing.assert_close(distributed_run[name], single[name], rtol=1e-3, atol=1e-4)
    histories = [model_info(p)["history"] for p in (datadir / "single", prefix)]
    assert [(e["epoch"], e["accuracy"]) for e in histories[0]] == [(e["epoch"], e["accuracy"]) for e in histories[1]]
    assert [e["loss"] for e in histories[1]] == pytest.approx([e["loss"] for e in histories[0]], rel=1e-4)

    applied = lfhost("apply", *common, "--test", test_file, "--child-log", tmp_path / "apply.log")
    assert_the_host_takes_every_answer(applied)
    assert applied["accuracy"] > 0.7  # 4 steps of training; 64% are of one class


@pytest.mark.slow
def test_two_ranks_share_sequence_batches_by_their_elements(make_datadir):
    datadir = make_datadir("seq-pos1", lines=150)
    meta = datadir / "crvd.meta.json"
    run([sys.executable, "-m", "filejsonpytorch.train", meta, datadir / "built", "--notrain", "--folds", "1"])
    arch = json.loads((datadir / "built.arch.json").read_text())
    arch["training"]["word_dropout"], arch["hparams"]["dropout"] = 0.0, 0.0  # no random masks, as EXACT
    (datadir / "exact.arch.json").write_text(json.dumps(arch))
    # batches of 7 sequences: 4 and 3 on the ranks, of different lengths
    options = ("--maxepochs", "1", "--batchsize", "7", "--arch", datadir / "exact.arch.json", "--seed", "1",
               "--cuda", "false")
    run([sys.executable, "-m", "filejsonpytorch.train", meta, datadir / "single", *options])
    run(torchrun(meta, datadir / PREFIX, *options))
    single, distributed_run = load_tensors(datadir / "single")["model"], load_tensors(datadir / PREFIX)["model"]
    for name in single:  # weighted by sequences instead of elements, they differ by 2e-2
        torch.testing.assert_close(distributed_run[name], single[name], rtol=1e-3, atol=1e-4)


def descendants(pid):
    """The pids of the processes below `pid` (torchrun's ranks)."""
    children = {}
    for entry in (e for e in Path("/proc").iterdir() if e.name.isdigit()):
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@contextlib.contextmanager
def saved_once(command, datadir):
    """The command started, once its first model is saved; whatever is left of it (its
    descendants too) is killed at the end."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=train_env())
    try:
        deadline = time.monotonic() + 120
        while not (datadir / f"{PREFIX}.json").exists():
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1][-3000:]
            time.sleep(0.2)
        yield process
    finally:
        for pid in descendants(process.pid):
            os.kill(pid, signal.SIGKILL)
        if process.poll() is None:
            process.kill()
        process.communicate()


def long_run(datadir):
    """A torchrun of two ranks that would train for long, once its first model is saved."""
    return saved_once(torchrun(datadir / "crvd.meta.json", datadir / PREFIX, "--maxepochs", "500", "--es_patience",
                               "0", "--valeverybatches", "3", *EXACT), datadir)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["stop file", "SIGTERM"])
def test_a_stop_request_ends_both_ranks_with_the_best_model_saved(make_datadir, how):
    datadir = make_datadir("class-ionosphere")
    with long_run(datadir) as launcher:
        ranks = descendants(launcher.pid)
        if how == "stop file":
            (datadir / "STOP").write_text("")
        else:
            launcher.send_signal(signal.SIGTERM)  # torchrun passes it on to both ranks
        _, err = launcher.communicate(timeout=120)
    assert f"stopping: {how}" in err, err[-3000:]
    assert "done in" in err and not any(Path(f"/proc/{pid}").exists() for pid in ranks)
    info = model_info(datadir / PREFIX)
    assert 0 < info["position"]["instances"] < 500 * 316
    model_io.read_model(str(datadir / PREFIX))
    if how == "stop file":
        assert launcher.returncode == 0, err[-3000:]
        assert not (datadir / "STOP").exists()
        # and --resume goes on from it on two ranks
        resumed = run(torchrun(datadir / "crvd.meta.json", datadir / PREFIX, "--maxepochs", "1", "--resume"))
        assert f"resuming {datadir / PREFIX}.json after epoch {info['position']['epoch']}" in resumed.stderr
        assert model_info(datadir / PREFIX)["history"][-1]["epoch"] == info["position"]["epoch"] + 1


@pytest.mark.slow
def test_a_killed_rank_ends_the_run_instead_of_leaving_the_other_waiting(make_datadir):
    datadir = make_datadir("class-ionosphere")
    with long_run(datadir) as launcher:
        ranks = [pid for pid in descendants(launcher.pid)
                 if b"filejsonpytorch.train" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(ranks) == 2
        os.kill(ranks[-1], signal.SIGKILL)
        launcher.communicate(timeout=120)
    assert launcher.returncode != 0 and not any(Path(f"/proc/{pid}").exists() for pid in ranks)
    model_io.read_model(str(datadir / PREFIX))  # the last best model still loads


@pytest.mark.parametrize("sequences", [False, True])
def test_each_rank_takes_a_part_of_every_batch_weighted_by_its_items(sequences):
    indices = np.array([4, 9, 1, 7, 3])
    lengths = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) if sequences else None
    parts = [distributed.shard(indices, rank, 2, lengths) for rank in (0, 1)]
    assert sorted(np.concatenate([part for part, _ in parts]).tolist()) == sorted(indices.tolist())
    items = [(lengths[part].sum() if sequences else len(part)) for part, _ in parts]
    assert [share for _, share in parts] == pytest.approx([2 * n / sum(items) for n in items])
    # the ranks' mean losses, weighted so, average to the mean loss of the whole batch
    assert sum(share for _, share in parts) / 2 == pytest.approx(1.0)
    part, share = distributed.shard(np.array([6]), 1, 2, lengths)
    assert part.tolist() == [6] and share == 0.0


def test_torchrun_trains_one_network_and_refuses_folds(make_datadir):
    meta = make_datadir("class-ionosphere") / "crvd.meta.json"
    args = parse_train_args([str(meta), "prefix"])
    distributed.check_options(args)
    assert args.folds == 1  # not the cross-validation small data gets by default
    with pytest.raises(UsageError, match=r"--folds 5 under torchrun: .* \(--workers N\)"):
        distributed.check_options(parse_train_args([str(meta), "prefix", "--folds", "5"]))


def test_mixed_precision_is_refused_on_a_cpu(make_datadir, train_cli):
    datadir = make_datadir("class-ionosphere")
    result = train_cli(datadir / "crvd.meta.json", datadir / PREFIX, "--amp", "bf16", "--cuda", "false")
    assert result.code == 2 and "--amp bf16: mixed precision is for training on a GPU" in result.err
    assert not (datadir / f"{PREFIX}.json").exists()


@pytest.mark.slow
def test_folds_in_two_workers_are_the_networks_trained_one_after_another(make_datadir, train_cli):
    datadir = make_datadir("abalone-train")
    meta = datadir / "crvd.meta.json"
    logs = {}
    for workers in (1, 2):
        result = train_cli(meta, datadir / f"w{workers}", "--maxepochs", "2", "--workers", str(workers))
        assert result.code == 0, result.err
        logs[workers] = result.err
    assert "training 5 networks in 2 worker processes at once" in logs[2]
    one, two = (load_tensors(datadir / f"w{w}")["model"] for w in (1, 2))
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-5, atol=1e-6)
    infos = [model_info(datadir / f"w{w}") for w in (1, 2)]
    assert infos[0]["position"] == infos[1]["position"]
    assert infos[0]["temperature"] == infos[1]["temperature"]
    figures = [sorted((e["fold"], e["epoch"], round(e["rmse"], 5)) for e in info["history"]) for info in infos]
    assert figures[0] == figures[1]
    # every line of a worker's log names its network
    trained = [line for line in logs[2].splitlines() if "epoch 1 batch" in line or "training on" in line]
    assert len(trained) >= 10 and all(line.startswith("network ") for line in trained)
    cross_validation = [[line for line in logs[w].splitlines() if "Each on the fold it validated on" in line]
                        for w in (1, 2)]
    figure = "Each on the fold it validated on: "
    assert cross_validation[0][0].split(figure)[1] == cross_validation[1][0].split(figure)[1]


def long_folds(datadir):
    """Five folds of abalone in two workers, 300 epochs each: long."""
    return train_command(datadir / "crvd.meta.json", datadir / PREFIX, "--maxepochs", "300", "--es_patience", "0",
                         "--workers", "2")


@pytest.mark.slow
def test_a_stop_file_stops_every_worker_with_a_loadable_model_and_resume_trains_the_rest(make_datadir):
    datadir = make_datadir("abalone-train")
    meta, prefix = datadir / "crvd.meta.json", datadir / PREFIX
    with saved_once(long_folds(datadir), datadir) as process:
        deadline = time.monotonic() + 60
        while len(model_info(prefix)["position"]["folds_saved"]) < 2:  # either may have saved first
            assert time.monotonic() < deadline, "the second network saved nothing in 60 s"
            time.sleep(0.2)
        (datadir / "STOP").write_text("")
        _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-3000:]
    assert "stopping: stop file" in err
    for network in (1, 2):  # both were training
        assert f"network {network} of 5: stopping: the main process asked" in err
    info = model_info(prefix)
    assert info["position"]["folds_finished"] == [] and info["arch"]["ensemble"] == 2
    assert len(info["position"]["folds_saved"]) == info["arch"]["ensemble"]  # which folds they are
    model_io.read_model(str(prefix))
    first_epochs = max(e["epoch"] for e in info["history"] if e["fold"] == 1)

    resumed = run([*train_command(meta, prefix, "--maxepochs", "1", "--resume", "--workers", "2")])
    assert f"at network 1 of a 5-fold cross-validation, after its epoch {first_epochs}" in resumed.stderr
    assert "one network distilled from the 5" in resumed.stderr
    info = model_info(f"{prefix}.folds")
    assert info["position"]["folds_finished"] == [1, 2, 3, 4, 5] and info["arch"]["ensemble"] == 5
    assert max(e["epoch"] for e in info["history"] if e["fold"] == 1) == first_epochs + 1


def start_a_worker_and_cut_its_job_short(pids):
    """In a process of its own, as a main process would: starts a worker, writes it the
    beginning of a job (as when the main process is killed while sending one) and waits."""
    context = torch.multiprocessing.get_context("spawn")
    jobs, events, stopping = context.Queue(), context.Queue(), context.Event()
    worker = context.Process(target=worker_main, args=(jobs, events, stopping, 1, False, os.getpid()))
    worker.start()
    os.write(jobs._writer.fileno(), struct.pack("!i", 1 << 20) + b"the first bytes of a job")
    pids.put(worker.pid)
    time.sleep(600)


def test_a_worker_ends_when_its_main_process_dies_while_sending_it_a_job():
    context = torch.multiprocessing.get_context("spawn")
    pids = context.Queue()
    main = context.Process(target=start_a_worker_and_cut_its_job_short, args=(pids,))
    main.start()
    worker = pids.get(timeout=120)
    time.sleep(3)  # the worker is reading the job that never ends
    assert alive(worker)
    os.kill(main.pid, signal.SIGKILL)
    main.join()
    deadline = time.monotonic() + 30
    while alive(worker):
        assert time.monotonic() < deadline, "the worker waits for the rest of the job"
        time.sleep(0.2)


def alive(pid):
    """True while `pid` runs (a zombie has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_workers_end_when_the_main_process_is_killed(make_datadir):
    datadir = make_datadir("abalone-train")
    with saved_once(long_folds(datadir), datadir) as process:
        workers = descendants(process.pid)
        assert workers  # the two workers and multiprocessing's resource tracker
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        deadline = time.monotonic() + 60
        while any(alive(pid) for pid in workers):
            assert time.monotonic() < deadline, "a worker goes on without its main process"
            time.sleep(0.5)
    model_io.read_model(str(datadir / PREFIX))
