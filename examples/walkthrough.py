"""What GATE does with this backend, step by step, on a bundled LF export.

1. copy an export (crvd.meta.json + crvd.data.json) into a fresh data directory,
2. install the wrapper directory there (as the LF does before training),
3. train through FileJsonPyTorch/train.sh, exactly as the host calls it,
4. start FileJsonPyTorch/apply.sh and send it one instance (or sentence) per line, as the
   host does during application, printing each answer next to the gold label.

Run: python examples/walkthrough.py [ionosphere|ner-mini] [--keep DIR]
"""

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from filejsonpytorch.install import install

EXAMPLES = Path(__file__).resolve().parent / "data"


def host_environment(datadir, wrapper):
    return {**os.environ, "WRAPPER_HOME": str(wrapper), "GATE_LF_DATA_DIR": str(datadir), "PYTHON_BIN": sys.executable}


def train(datadir, wrapper):
    command = [str(wrapper / "train.sh"), str(datadir / "crvd.meta.json"), str(datadir / "FileJsonPyTorch.model"),
               "--maxepochs", "20", "--seed", "1"]
    print("$", shlex.join(command), flush=True)
    subprocess.run(command, cwd=datadir, env=host_environment(datadir, wrapper), check=True)


def apply(datadir, wrapper, count):
    command = [str(wrapper / "apply.sh"), str(datadir / "FileJsonPyTorch.model"), str(datadir / "crvd.meta.json"),
               str(wrapper), "--cuda", "False"]
    print("$", shlex.join(command), flush=True)
    process = subprocess.Popen(command, cwd=datadir, env=host_environment(datadir, wrapper), text=True,
                               encoding="utf-8", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    with open(datadir / "crvd.data.json", encoding="utf-8") as data:
        for line, _ in zip(data, range(count)):
            features, gold = json.loads(line)
            process.stdin.write(json.dumps(features, ensure_ascii=False) + "\n")
            process.stdin.flush()
            answer = json.loads(process.stdout.readline())
            print(f"gold {gold}\n  -> {answer['output']}  (confidence {answer['conf']})")
    process.stdin.close()
    return process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("example", nargs="?", default="ionosphere", choices=sorted(p.name for p in EXAMPLES.iterdir()))
    parser.add_argument("--keep", help="use (and keep) this data directory instead of a temporary one")
    args = parser.parse_args()
    datadir = Path(args.keep or tempfile.mkdtemp(prefix="lf data "))
    datadir.mkdir(parents=True, exist_ok=True)
    for name in ("crvd.meta.json", "crvd.data.json"):
        shutil.copy(EXAMPLES / args.example / name, datadir / name)
    wrapper = datadir / "FileJsonPyTorch"
    if not wrapper.exists():
        install(datadir)
    train(datadir, wrapper)
    status = apply(datadir, wrapper, count=5)
    if args.keep:
        print(f"application process exited with {status}; data directory: {shlex.quote(str(datadir))}")
    else:
        shutil.rmtree(datadir)
        print(f"application process exited with {status}; the temporary data directory is removed "
              f"(--keep DIR keeps one)")
    return status


if __name__ == "__main__":
    sys.exit(main())
