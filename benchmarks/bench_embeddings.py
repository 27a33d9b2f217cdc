"""Load time and peak memory of filejsonpytorch.embeddings.load_pretrained on a big file.

Writes a 400,000 x 300 embeddings text file (about 1 GB) into a temporary directory (or
--dir), then loads it in a child process with a 20,000-word vocabulary, so that the peak
RSS reported is the loader's own. The generated file is deleted afterwards.

    python benchmarks/bench_embeddings.py [--dir DIR] [--rows N] [--dims D] [--gzip]
"""

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

WORD_WIDTH = 8  # words are "w" + 7 digits, so every line has the same layout
FIELD_WIDTH = 9  # " -d.ddddd"; the "-" is dropped for values >= 0
ROWS_PER_BLOCK = 10_000
ABSENT_WORDS = 1_000


def main():
    args = parse_args()
    if args.child:
        measure_load(*args.child)
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as workdir:
        run_benchmark(args, workdir)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", help="where to write the file (default: a temporary dir)")
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--dims", type=int, default=300)
    parser.add_argument("--vocab", type=int, default=20_000, help="vocabulary size")
    parser.add_argument("--gzip", action="store_true", help="write and load a .txt.gz file")
    parser.add_argument("--child", nargs=2, metavar=("FILE", "VOCAB_JSON"), help=argparse.SUPPRESS)
    return parser.parse_args()


def run_benchmark(args, workdir):
    rng = np.random.default_rng(12345)
    path = os.path.join(workdir, "bench-emb.txt" + (".gz" if args.gzip else ""))
    started = time.perf_counter()
    text_mb = write_embeddings(path, args.rows, args.dims, rng) / 2**20
    print(f"generated {path} in {time.perf_counter() - started:.1f} s")
    vocab_path = os.path.join(workdir, "vocab.json")
    with open(vocab_path, "w") as out:
        json.dump(make_vocabulary(args.rows, args.vocab, rng), out)
    result = json.loads(subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", path, vocab_path],
        check=True, capture_output=True, text=True).stdout)
    print(f"file size      {os.path.getsize(path) / 2**20:10.1f} MB ({text_mb:.1f} MB of text)")
    print(f"load time      {result['seconds']:10.2f} s")
    print(f"throughput     {text_mb / result['seconds']:10.1f} MB/s of text")
    print(f"peak RSS       {result['peak_rss_mb']:10.1f} MB "
          f"(after imports: {result['rss_before_mb']:.1f} MB)")
    print(f"found words    {result['found']:10,} of {result['vocab']:,}")


def write_embeddings(path, rows, dims, rng):
    """Write the file (with a `rows dims` header); return the size of the text in bytes."""
    opener = gzip.open(path, "wb", compresslevel=1) if path.endswith(".gz") else open(path, "wb")
    with opener as out:
        written = out.write(f"{rows} {dims}\n".encode())
        for start in range(0, rows, ROWS_PER_BLOCK):
            written += out.write(format_block(start, min(ROWS_PER_BLOCK, rows - start), dims, rng))
    return written


def format_block(start, rows, dims, rng):
    """Lines `w0000123 v1 ... vD` for rows start.., values formatted like '%.5f'."""
    values = np.clip(rng.standard_normal((rows, dims)) * 0.4, -9.99999, 9.99999)
    fixed = np.rint(np.abs(values) * 1e5).astype(np.int64)
    fields = np.empty((rows, dims, FIELD_WIDTH), dtype=np.uint8)
    fields[:, :, 0] = ord(" ")
    fields[:, :, 1] = ord("-")
    fields[:, :, 2] = ord("0") + fixed // 100_000
    fields[:, :, 3] = ord(".")
    for digit in range(5):
        fields[:, :, 8 - digit] = ord("0") + fixed // 10**digit % 10
    words = np.array([f"w{index:07d}".encode() for index in range(start, start + rows)],
                     dtype=f"S{WORD_WIDTH}").view(np.uint8).reshape(rows, WORD_WIDTH)
    newline = np.full((rows, 1), ord("\n"), dtype=np.uint8)
    lines = np.concatenate([words, fields.reshape(rows, -1), newline], axis=1)
    keep_fields = np.ones(fields.shape, dtype=bool)
    keep_fields[:, :, 1] = (values < 0) & (fixed > 0)
    keep = np.concatenate([np.ones(words.shape, dtype=bool), keep_fields.reshape(rows, -1),
                           np.ones(newline.shape, dtype=bool)], axis=1)
    return lines[keep].tobytes()


def make_vocabulary(rows, size, rng):
    """Specials, then words of the file in random order, then words not in the file."""
    present = rng.choice(rows, size=size - ABSENT_WORDS, replace=False)
    itos = ["<pad>", "<oov>"] + [f"w{index:07d}" for index in present]
    itos += [f"absent{index}" for index in range(ABSENT_WORDS)]
    counts = [0, 0] + rng.integers(1, 1000, size=len(itos) - 2).tolist()
    return {"itos": itos, "counts": counts}


def measure_load(path, vocab_path):
    from filejsonpytorch.embeddings import load_pretrained

    with open(vocab_path) as stream:
        vocab = json.load(stream)
    rss_before_mb = peak_rss_mb()
    started = time.perf_counter()
    pretrained = load_pretrained(path, vocab["itos"], vocab["counts"],
                                 rng=np.random.default_rng(0))
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb(),
                      "rss_before_mb": rss_before_mb, "vocab": pretrained.stats["vocab"],
                      "found": pretrained.stats["found_types"]}))


def peak_rss_mb():
    """This process's peak RSS. Not ru_maxrss: on Linux that keeps the forking parent's."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


if __name__ == "__main__":
    main()
