"""The floor of any Python backend for the GATE host's line protocol: the lower bound
that bench_apply.py prints beside our server and the bare reference.

    python benchmarks/echo_apply.py METAFILE

Per request it parses the JSON line and writes a fixed answer (the first label, every
label equally likely; for sequences one such answer per element), flushed: no encoding,
no tensors, no network. What it costs per request is the pipe, the interpreter and the
host's own work, which no backend can go below.
"""

import json
import sys


def main():
    with open(sys.argv[1], encoding="utf-8-sig") as f:
        meta = json.load(f)
    labels = sorted(meta["targetStats"]["stringCounts"])
    dist = [1.0 / len(labels)] * len(labels)
    sequence = bool(meta.get("isSequence"))
    for line in sys.stdin.buffer:
        if line.strip() == b"STOP":
            break
        request = json.loads(line)
        sys.stdout.write(answer(request, labels, dist, sequence) + "\n")
        sys.stdout.flush()


def answer(request, labels, dist, sequence):
    if not sequence:
        return json.dumps({"status": "ok", "output": labels[0], "conf": dist[0], "dist": dist, "labels": labels})
    n = len(request)
    return json.dumps({"status": "ok", "output": [labels[0]] * n, "conf": [dist[0]] * n, "dist": [dist] * n,
                       "labels": labels})


if __name__ == "__main__":
    main()
