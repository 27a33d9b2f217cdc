"""Time to accuracy: default training through `train.sh` on each shared training set, against
the code of another revision, in the same run.

For each data set a fixed held-out part is set aside: for sequence data (sentences of
documents and articles, in order) the last sixth of the lines, so that at most one document
is split between the parts; for instances (independent sentences or measurements) a seeded
random sixth. Each side ("ours": this working tree; "ref": `--reference REV`, default HEAD)
gets its own data directory with the training part and a wrapper installed from its own
code, is trained by `lfhost train` with `--seed S` and nothing else (the defaults; "ours"
also gets `--options`), and is then scored on the held-out part by `lfhost apply`, as GATE
would apply it. The sides take turns (who goes first alternates by run), for each seed of
`--seeds` (default 1); with several seeds each side's mean is printed too.

Printed per data set and side: lfhost's wall time of `train.sh`, the epochs run (the
training log's validations; for folds, of all networks), the epoch of the best validation
(for folds, their mean; chunk labels: of the best entity F1), and the held-out figure
(accuracy; entity F1 for chunk labels; RMSE for regression). `--busy N` runs N busy loops (one process each) during training, as
other work on the machine would.

    python benchmarks/bench_time_to_accuracy.py [--reference REV] [--datasets NAME ...] [--busy N]
                                                [--seeds S ...] [--options "TRAINING OPTIONS"]
"""

import argparse
import json
import multiprocessing
import random
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from statistics import mean

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = REPO.parent / "shared"
LFHOST = SHARED / "lfhost" / "lfhost"
DATASETS = ["sentpol-train", "ner-wikigold-train", "pos-ud-seq-train", "class-ionosphere", "abalone-train"]
HELD_OUT = 6  # one line in six


def main():
    opts = parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tta-") as work:
        work = Path(work)
        sources = {"ours": REPO / "src", "ref": extract(opts.reference, work / "ref-src")}
        rows, turn = [], 0
        for name in opts.datasets:
            train_lines, test_lines, meta = split(name)
            for seed in opts.seeds:
                sides = list(sources)[turn % 2:] + list(sources)[:turn % 2]
                turn += 1
                for side in sides:
                    datadir = make_datadir(work / side / f"{name}-{seed}", meta, train_lines, sources[side], opts.python)
                    rows.append(run(name, side, seed, datadir, test_lines, opts))
                    print_row(rows[-1], file=sys.stderr)
    print_table(rows, opts)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", default="HEAD", help="the git revision to compare with (default HEAD)")
    parser.add_argument("--datasets", nargs="+", default=DATASETS, choices=DATASETS)
    parser.add_argument("--busy", type=int, default=0, help="busy loops running during training")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1], help="train once per seed (default 1)")
    parser.add_argument("--options", default="", help="training options for our side only, e.g. \"--ngram_layer cnn\"")
    parser.add_argument("--python", default=sys.executable, help="the interpreter for both sides")
    return parser.parse_args()


def extract(revision, target):
    """The package source of a git revision, as a directory holding filejsonpytorch/."""
    target.mkdir(parents=True)
    archive = target / "src.tar"
    subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), revision, "src/filejsonpytorch"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target / "src"


def split(name):
    """-> (training lines, held-out lines, meta path) of a shared export."""
    directory = SHARED / "data" / name
    meta, data = (directory / "crvd.meta.json", directory / "crvd.data.json") if directory.is_dir() else \
        (SHARED / "data" / f"{name}.meta.json", SHARED / "data" / f"{name}.data.json")
    lines = [line for line in data.read_text(encoding="utf-8").splitlines() if line.strip()]
    if json.loads(meta.read_text(encoding="utf-8")).get("isSequence"):
        cut = len(lines) - len(lines) // HELD_OUT
        return lines[:cut], lines[cut:], meta
    held_out = set(random.Random(1).sample(range(len(lines)), len(lines) // HELD_OUT))
    return ([line for i, line in enumerate(lines) if i not in held_out],
            [line for i, line in enumerate(lines) if i in held_out], meta)


def make_datadir(datadir, meta, lines, source, python):
    datadir.mkdir(parents=True)
    (datadir / "crvd.meta.json").write_bytes(meta.read_bytes())
    (datadir / "crvd.data.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    install = f"from filejsonpytorch.install import install; install({str(datadir)!r})"
    subprocess.run([python, "-c", install], check=True, env={"PYTHONPATH": str(source), "PATH": "/usr/bin:/bin"})
    return datadir


def run(name, side, seed, datadir, test_lines, opts):
    test = datadir.parent / f"{datadir.name}.test.json"
    test.write_text("\n".join(test_lines) + "\n", encoding="utf-8")
    common = ["--data", str(datadir), "--install", "none", "--python-bin", opts.python]
    busy = [multiprocessing.Process(target=spin, daemon=True) for _ in range(opts.busy)]
    for process in busy:
        process.start()
    try:
        params = f"--seed {seed} {opts.options if side == 'ours' else ''}".strip()
        trained = lfhost("train", *common, "--params", params, "--child-log", str(datadir / "train.out"))
    finally:
        for process in busy:
            process.terminate()
    applied = lfhost("apply", *common, "--test", str(test), "--child-log", str(datadir / "apply.out"))
    model = json.loads((datadir / "FileJsonPyTorch.model.json").read_text(encoding="utf-8"))
    log_text = (datadir / "train.out").read_text(encoding="utf-8", errors="replace")
    return {"dataset": name, "side": side, "seed": seed, "seconds": trained["wall_s"], **epochs(model, log_text),
            "score": score(applied)}


def spin():
    while True:
        pass


def lfhost(*args):
    done = subprocess.run([str(LFHOST), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"lfhost {args[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def epochs(model, log_text):
    """Epochs run (the log's validations, one per epoch by default; for folds, of all the
    networks) and the epoch of the best validation (for folds, their mean)."""
    by_fold = {}
    for entry in model.get("history") or []:
        by_fold.setdefault(entry.get("fold", 1), []).append(entry)
    if not by_fold:
        return {"epochs": None, "best_epoch": None}
    entries = [entry for history in by_fold.values() for entry in history]
    key, sign = ("loss", -1) if model["schema"]["target_kind"] == "numeric" else \
        ("entity_f1", 1) if all("entity_f1" in entry for entry in entries) else ("accuracy", 1)
    bests = [max(history, key=lambda h: sign * h[key])["epoch"] for history in by_fold.values()]
    return {"epochs": log_text.count("validation after epoch"), "best_epoch": round(sum(bests) / len(bests), 1)}


def score(applied):
    if applied.get("rmse") is not None:
        return "rmse", applied["rmse"]
    if applied.get("entity") and applied.get("pr") == "LF_ApplyChunking":
        return "entity F1", applied["entity"]["f1"]
    return "accuracy", applied.get("accuracy", applied.get("token_accuracy"))


def print_row(row, file=sys.stdout):
    metric, value = row["score"]
    print(f"{row['dataset']:20} {row['side']:5} {row['seed']:>4} {row['seconds']:8.1f} {row['epochs'] or '-':>7} "
          f"{row['best_epoch'] or '-':>5} {metric:>10} {value:8.4f}", file=file)


def print_table(rows, opts):
    print(f"defaults through lfhost; ref = {opts.reference}; ours with {opts.options or 'no options'}; "
          f"busy loops during training: {opts.busy}")
    print(f"{'dataset':20} {'side':5} {'seed':>4} {'train s':>8} {'epochs':>7} {'best':>5} {'metric':>10} {'held-out':>8}")
    for row in rows:
        print_row(row)
    if len(opts.seeds) > 1:
        for name in opts.datasets:
            for side in ("ours", "ref"):
                mine = [row for row in rows if row["dataset"] == name and row["side"] == side]
                print_row({"dataset": name, "side": side, "seed": "mean", "score": (mine[0]["score"][0], mean(
                    row["score"][1] for row in mine)), "seconds": mean(row["seconds"] for row in mine),
                    "epochs": round(mean(row["epochs"] or 0 for row in mine), 1), "best_epoch": None})


if __name__ == "__main__":
    main()
