"""Request latency and start-up of our application server against a bare reference, both
driven by the LF host emulator (lfhost) exactly as GATE drives a backend.

For a default model of every kind (ionosphere: the network distilled from a 5-network
cross-validation; sentence polarity and window POS: the 5-network cross-validation
ensembles that data with words under 1,000 instances gets; seq-pos1 POS and wikigold NER
taggers) it trains on the first 90% of the data lines (--maxepochs 2 --seed 1, otherwise
the defaults: the layer sizes are what counts for latency) in a temporary data
directory, installs the wrapper there, and repeats the held-out 10% into a test file.
Then, round by round, lfhost applies
- ours: the installed wrapper's apply.sh,
- bare: benchmarks/bare_apply.py (JSON line in, dict lookup, tensors, one network of our
  default layer sizes, JSON line out), and
- echo: benchmarks/echo_apply.py (JSON line in, a fixed answer out: the floor),
rotating which goes first. Latencies are lfhost's: request written to response read,
the first answer counted as start-up (process start to first answer) instead.

    python benchmarks/bench_apply.py [--rounds N] [--datasets NAME ...] [--python PYTHON] [--train-options="..."]
"""

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from filejsonpytorch.install import install

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared"
LFHOST = SHARED / "lfhost" / "lfhost"
BARE = HERE / "bare_apply.py"
ECHO = HERE / "echo_apply.py"
#: data (a shared file pair or data directory) -> test requests
CASES = {"class-ionosphere": 2000, "class-ngram-sp1": 1000, "class-window-pos1": 10000, "seq-pos1": 1000,
         "ner-wikigold-train": 1000}
PROGRAMS = ("ours", "bare", "echo")


def main():
    opts = parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-apply-") as workdir:
        cases = [prepare(name, CASES[name], Path(workdir), opts) for name in opts.datasets]
        runs = {(case["name"], program): [] for case in cases for program in PROGRAMS}
        for number in range(opts.rounds):
            for case in cases:
                for program in PROGRAMS[number % 3:] + PROGRAMS[:number % 3]:
                    runs[case["name"], program].append(apply(case, program, opts.python))
    print_table(runs, opts.rounds)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="lfhost runs per program and dataset")
    parser.add_argument("--datasets", nargs="+", choices=list(CASES), default=list(CASES), help="the cases to run (all)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for training and both programs")
    parser.add_argument("--train-options", default="",
                        help="more training options, e.g. --train-options=\"--chars false\"")
    return parser.parse_args()


def prepare(name, count, workdir, opts):
    """A data directory with a trained model and the wrapper, and a test file."""
    datadir = workdir / name
    datadir.mkdir()
    meta = datadir / "crvd.meta.json"
    source = SHARED / "data" / name
    if source.is_dir():
        shutil.copy(source / "crvd.meta.json", meta)
        lines = data_lines(source / "crvd.data.json")
    else:
        shutil.copy(SHARED / "data" / f"{name}.meta.json", meta)
        lines = data_lines(SHARED / "data" / f"{name}.data.json")
    held_out = len(lines) // 10
    (datadir / "crvd.data.json").write_text("\n".join(lines[:-held_out]) + "\n", encoding="utf-8")
    print(f"training {name} ...", file=sys.stderr)
    done = subprocess.run([opts.python, "-m", "filejsonpytorch.train", "crvd.meta.json", "FileJsonPyTorch.model",
                           "--maxepochs", "2", "--seed", "1", *opts.train_options.split()],
                          cwd=datadir, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"training {name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    install(datadir)
    test = workdir / f"{name}.test.json"
    repeated = (lines[-held_out:] * math.ceil(count / held_out))[:count]
    test.write_text("\n".join(repeated) + "\n", encoding="utf-8")
    return {"name": name, "datadir": datadir, "meta": meta, "test": test}


def data_lines(path):
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def apply(case, program, python):
    """One lfhost apply run -> its figures (the JSON lfhost prints on stdout)."""
    command = [str(LFHOST), "apply", "--data", str(case["datadir"]), "--test", str(case["test"]),
               "--install", "none", "--python-bin", python, "--idle", "0",
               "--child-log", str(case["datadir"] / f"{program}.log")]
    if program != "ours":
        command += ["--command", f"{python} {BARE if program == 'bare' else ECHO} {case['meta']}"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"lfhost failed ({done.returncode}) for {program} on {case['name']}:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout)
    if figures["soft_findings"]:
        print(f"note: {program} on {case['name']}: soft findings {figures['soft_findings']}", file=sys.stderr)
    return figures


def print_table(runs, rounds):
    print(f"medians over {rounds} lfhost runs each; ratios: medians over rounds of ours / bare")
    print(f"{'dataset':18} {'program':8} {'p50 us':>8} {'p99 us':>9} {'startup s':>10} {'req/s':>7} "
          f"{'ratio p50':>10} {'ratio startup':>14}")
    for (name, program), figures in runs.items():
        ratios = ""
        if program == "ours":
            ratios = f"{ratio(runs, name, 'latency_us', 'p50'):10.2f} {ratio(runs, name, 'startup_s'):14.2f}"
        print(f"{name:18} {program:8} {median(figures, 'latency_us', 'p50'):>8.0f} "
              f"{median(figures, 'latency_us', 'p99'):>9.0f} {median(figures, 'startup_s'):>10.2f} "
              f"{median(figures, 'throughput_inst_per_s'):>7.0f} {ratios}")


def ratio(runs, name, *keys):
    return statistics.median(median([ours], *keys) / median([bare], *keys)
                             for ours, bare in zip(runs[name, "ours"], runs[name, "bare"]))


def median(figures, *keys):
    values = []
    for run in figures:
        for key in keys:
            run = run[key]
        values.append(run)
    return statistics.median(values)


if __name__ == "__main__":
    main()
