"""The application program as the GATE host runs it: one JSON request line in, one JSON
response line out, for every model kind, every way a request can be wrong, and every way
a model file can be broken.

Models are trained once per session with the real trainer on copies of real LF exports;
every test talks to a real `python -m filejsonpytorch.apply` subprocess.
"""

import json
import math
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from filejsonpytorch import model_io

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# kind -> (meta file, data file, data lines to keep (None: all))
DATASETS = {
    "ionosphere": ("class-ionosphere.meta.json", "class-ionosphere.data.json", None),
    "ngram": ("class-ngram-sp1.meta.json", "class-ngram-sp1.data.json", 200),
    "window": ("class-window-pos1.meta.json", "class-window-pos1.data.json", 300),
    "sequence": ("seq-pos1.meta.json", "seq-pos1.data.json", 200),
    "multi": ("ner-wikigold-multi-train/crvd.meta.json", "ner-wikigold-multi-train/crvd.data.json", 200),
    "regression": ("abalone-train/crvd.meta.json", "abalone-train/crvd.data.json", None),
}
TRAIN_OPTIONS = ("--maxepochs", "2", "--seed", "1")
NON_ASCII = "Gr\u00fc\u00dfe na\u00efve \u2013 \u65e5\u672c\u8a9e \U0001f642"
UNSEEN = "never_seen_value_7f3a"


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("WRAPPER_HOME", "GATE_LF_DATA_DIR")}
    return {**env, **extra}


def make_datadir(kind, datadir):
    meta, data, keep = DATASETS[kind]
    datadir.mkdir(parents=True, exist_ok=True)
    shutil.copy(SHARED_DATA / meta, datadir / "crvd.meta.json")
    with open(SHARED_DATA / data, encoding="utf-8") as f:
        lines = f.readlines()
    (datadir / "crvd.data.json").write_text("".join(lines[:keep]), encoding="utf-8")
    return datadir


def train(datadir, *options, env=None):
    result = subprocess.run(
        [sys.executable, "-m", "filejsonpytorch.train", str(datadir / "crvd.meta.json"),
         str(datadir / "FileJsonPyTorch.model"), *TRAIN_OPTIONS, *options],
        capture_output=True, text=True, env=env or clean_env(), timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


class Model:
    def __init__(self, kind, datadir):
        self.kind, self.datadir = kind, datadir
        self.prefix = datadir / "FileJsonPyTorch.model"
        self.meta = datadir / "crvd.meta.json"
        with open(datadir / "crvd.data.json", encoding="utf-8") as f:
            self.lines = [json.loads(line) for line in f]
        self.labels = model_io.read_files(self.prefix)[0]["schema"]["labels"]

    def instances(self, n=1):
        return [features for features, _ in self.lines[:n]]

    def targets(self, n=1):
        return [target for _, target in self.lines[:n]]

    def start(self, env=None, prefix=None):
        return Backend(prefix or self.prefix, self.meta, env=env)


def trained_models(tmp_path_factory):
    """kind -> Model, trained on first use; shared by every test module of the session."""
    base = tmp_path_factory.getbasetemp() / "trained-models"

    def get(kind):
        datadir = base / kind
        if not (datadir / "trained.ok").exists():
            shutil.rmtree(datadir, ignore_errors=True)
            train(make_datadir(kind, datadir))
            (datadir / "trained.ok").write_text("")
        return Model(kind, datadir)

    return get


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return trained_models(tmp_path_factory)


class Backend:
    """A running application program; its stdout lines are read by a thread."""

    def __init__(self, prefix, meta, env=None):
        self.errors = open(f"{prefix}.apply-{time.monotonic_ns()}.err", "w+b")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "filejsonpytorch.apply", str(prefix), "--metafile", str(meta)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors, env=env or clean_env(),
        )
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def stderr(self):
        self.errors.flush()
        self.errors.seek(0)
        return self.errors.read().decode("utf-8", "replace")

    def send(self, line):
        self.process.stdin.write(line + b"\n")
        self.process.stdin.flush()

    def receive(self, timeout=120):
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no answer in {timeout} s; stderr:\n{self.stderr()[-3000:]}") from None

    def ask(self, request, timeout=120):
        """Sends one request (bytes as they are, anything else as JSON) and returns the
        parsed answer, checking that it is exactly one JSON object line."""
        if not isinstance(request, bytes):
            request = json.dumps(request, ensure_ascii=False).encode("utf-8")
        self.send(request)
        raw = self.receive(timeout)
        assert raw is not None, f"the backend died; stderr:\n{self.stderr()[-3000:]}"
        assert raw.endswith(b"\n") and raw.count(b"\n") == 1
        answer = json.loads(raw.decode("utf-8"))
        assert isinstance(answer, dict), raw[:300]
        return answer

    def close(self, timeout=60):
        """Closes stdin (EOF) and returns the exit status; no unread answer may be left."""
        self.process.stdin.close()
        status = self.process.wait(timeout=timeout)
        left = []
        while (line := self.receive(timeout=10)) is not None:
            left.append(line)
        assert left == [], left[:3]
        return status

    def rss_kb(self):
        with open(f"/proc/{self.process.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.errors.close()


@pytest.fixture(scope="module")
def serving(models):
    """kind -> a running backend, started once and restarted only if it died."""
    running = {}

    def get(kind):
        if kind not in running or running[kind].process.poll() is not None:
            running[kind] = models(kind).start()
        return running[kind]

    yield get
    for backend in running.values():
        backend.kill()


def say(config, text):
    """Writes a line to the terminal, whether or not pytest captures output (-s)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(text)


def assert_ok(answer):
    assert answer.get("status") == "ok", answer
    return answer


def check_distribution(output, conf, dist, labels):
    assert len(dist) == len(labels)
    assert all(isinstance(p, float) and 0.0 <= p <= 1.0 for p in dist), dist
    assert abs(sum(dist) - 1.0) < 1e-9
    assert isinstance(output, str) and isinstance(conf, float)
    assert conf == dist[labels.index(output)] == max(dist)


# ---- answers ----


@pytest.mark.parametrize("kind", ["ionosphere", "ngram", "window"])
def test_classification_answers_are_distributions_over_the_model_labels(models, kind):
    model = models(kind)
    backend = model.start()
    answers = [assert_ok(backend.ask(features)) for features in model.instances(40)]
    for answer in answers:
        assert set(answer) == {"status", "output", "conf", "dist", "labels"}
        assert answer["labels"] == model.labels
        check_distribution(answer["output"], answer["conf"], answer["dist"], answer["labels"])
    assert backend.close() == 0


def test_classification_uses_the_trained_model(models):
    model = models("ionosphere")
    backend = model.start()
    outputs = [assert_ok(backend.ask(features))["output"] for features in model.instances(100)]
    correct = sum(o == t for o, t in zip(outputs, model.targets(100)))
    assert correct >= 75, outputs
    assert backend.close() == 0


@pytest.mark.parametrize("kind", ["sequence", "multi"])
def test_sequence_answers_have_one_label_per_element(models, kind):
    model = models(kind)
    backend = model.start()
    for sequence in model.instances(25):
        answer = assert_ok(backend.ask(sequence))
        assert set(answer) == {"status", "output", "conf", "dist", "labels"}
        assert answer["labels"] == model.labels
        assert len(answer["output"]) == len(answer["conf"]) == len(answer["dist"]) == len(sequence)
        for output, conf, dist in zip(answer["output"], answer["conf"], answer["dist"]):
            check_distribution(output, conf, dist, answer["labels"])
    assert backend.close() == 0


def test_regression_answers_a_number_on_the_target_scale(models):
    model = models("regression")
    backend = model.start()
    answers = [assert_ok(backend.ask(features)) for features in model.instances(50)]
    assert all(set(a) == {"status", "output"} for a in answers)
    outputs = [a["output"] for a in answers]
    assert all(isinstance(o, float) and math.isfinite(o) for o in outputs)
    targets = model.targets(50)
    # standardised outputs (around 0) would be far off the mean number of rings (about 10)
    assert abs(sum(outputs) / len(outputs) - sum(targets) / len(targets)) < 3
    assert len(set(outputs)) > 10
    assert backend.close() == 0


# ---- bad requests: an error answer that names the problem, then service as usual ----


def _replace_values(instance, sequence, replace):
    if sequence:
        return [[replace(v) for v in element] for element in instance]
    return [replace(v) for v in instance]


def _texts(value, text):
    if isinstance(value, str):
        return text
    if isinstance(value, list):
        return [text] * max(1, len(value))
    return value


BAD = {
    "ionosphere": [
        ("not_json", lambda t: b"this is not json", ["not valid JSON"]),
        ("empty_line", lambda t: b"", ["empty request"]),
        ("only_spaces", lambda t: b" \t ", ["empty request"]),
        ("json_object", lambda t: b'{"features": [1, 2, 3]}', ["expected a list of 34", "object"]),
        ("empty_list", lambda t: [], ["expected 34 feature values, got 0"]),
        ("json_null", lambda t: None, ["expected a list of 34", "null"]),
        ("a_sequence", lambda t: [t, t], ["expected 34 feature values, got 2", "single instances"]),
        ("fewer_features", lambda t: t[:-1], ["expected 34 feature values, got 33"]),
        ("more_features", lambda t: t + [0.5], ["expected 34 feature values, got 35"]),
        ("string_for_number", lambda t: ["high"] + t[1:], ["feature 0", "expected a number", "string"]),
        ("boolean_for_number", lambda t: t[:5] + [True] + t[6:], ["feature 5", "expected a number"]),
        ("list_for_number", lambda t: [[1.0]] + t[1:], ["feature 0", "expected a number"]),
        ("nulls", lambda t: [None] * len(t), ["feature 0", "null"]),
        ("nan_literal", lambda t: ("[NaN, " + json.dumps(t[1:])[1:]).encode(), ["not valid JSON", "NaN"]),
        ("infinite_number", lambda t: ("[1e400, " + json.dumps(t[1:])[1:]).encode(), ["feature 0", "not a finite number"]),
        ("number_too_large_for_the_network", lambda t: [1e39] * len(t), ["too large"]),
    ],
    "ngram": [
        ("a_sequence", lambda t: [t, t], ["expected 1 feature values, got 2", "single instances"]),
        ("number_for_list", lambda t: [5], ["feature 0", "expected a list of strings", "number"]),
        ("numbers_in_list", lambda t: [[1, 2]], ["feature 0", "list items must be strings"]),
        ("null", lambda t: [None], ["feature 0", "null"]),
        ("empty_list", lambda t: [], ["expected 1 feature values, got 0"]),
    ],
    "sequence": [
        ("one_instance_not_a_sequence", lambda t: t[0], ["element 0", "expected a list of feature values"]),
        ("fewer_features_in_element", lambda t: [t[0], t[1][:-1]], ["element 1", "expected 18 feature values, got 17"]),
        ("nulls", lambda t: _replace_values(t, True, lambda v: None), ["element 0", "feature 0", "null"]),
        ("object_element", lambda t: [{"a": 1}], ["element 0"]),
        ("list_for_string", lambda t: [[["a"]] + t[0][1:]], ["element 0", "feature 0", "expected a string"]),
        ("json_object", lambda t: b'{"features": [1, 2, 3]}', ["expected a sequence"]),
    ],
    "multi": [
        ("one_instance_not_a_sequence", lambda t: t[0], ["element 0", "expected a list of feature values"]),
        ("string_for_number", lambda t: [[e[0], "long", e[2]] for e in t], ["element 0", "feature 1", "expected a number"]),
        ("numbers_in_list", lambda t: [[e[0], e[1], [7]] for e in t], ["element 0", "feature 2", "list items must be strings"]),
        ("wrong_types", lambda t: [[1.0, "x", 2.0] for e in t], ["element 0", "expected a number"]),
    ],
    "regression": [
        ("a_sequence", lambda t: [t, t], ["expected 8 feature values, got 2", "single instances"]),
        ("fewer_features", lambda t: t[:-1], ["expected 8 feature values, got 7"]),
        ("string_for_number", lambda t: [t[0], "big"] + t[2:], ["feature 1", "expected a number"]),
        ("infinity_literal", lambda t: ('["M", Infinity, ' + json.dumps(t[2:])[1:]).encode(), ["Infinity"]),
        ("huge_integer", lambda t: ('["M", 1' + "0" * 400 + ", " + json.dumps(t[2:])[1:]).encode(), ["too large"]),
        ("null", lambda t: [None] * len(t), ["feature 0", "null"]),
    ],
}
BAD_CASES = [pytest.param(kind, make, expected, id=f"{kind}-{name}")
             for kind, cases in BAD.items() for name, make, expected in cases]


@pytest.mark.parametrize("kind, make, expected", BAD_CASES)
def test_a_bad_request_gets_an_error_naming_the_problem_and_service_goes_on(models, serving, kind, make, expected):
    model, backend = models(kind), serving(kind)
    template = model.instances(1)[0]

    answer = backend.ask(make(template))

    assert set(answer) == {"status", "error"} and answer["status"] == "error", answer
    for words in expected:
        assert words in answer["error"], answer["error"]
    assert_ok(backend.ask(template))


GOOD = {
    "ngram": [
        ("unknown_tokens", lambda t: [[UNSEEN, UNSEEN + "2"]]),
        ("empty_ngram_list", lambda t: [[]]),
        ("non_ascii", lambda t: [[NON_ASCII, "caf\u00e9"]]),
        ("hundred_thousand_tokens", lambda t: [[f"tok{i}" for i in range(100_000)]]),
    ],
    "sequence": [
        ("unknown_values", lambda t: _replace_values(t, True, lambda v: _texts(v, UNSEEN))),
        ("non_ascii", lambda t: _replace_values(t, True, lambda v: _texts(v, NON_ASCII))),
        ("one_mb_value", lambda t: [["abcdefghij" * 104_858] + t[0][1:]] + t[1:]),
        ("numbers_for_strings", lambda t: _replace_values(t, True, lambda v: 12345.0)),
        ("one_element", lambda t: t[:1]),
    ],
    "multi": [
        ("unknown_values", lambda t: [[UNSEEN, e[1], [UNSEEN]] for e in t]),
        ("non_ascii", lambda t: [[NON_ASCII, e[1], [NON_ASCII]] for e in t]),
        ("empty_lists", lambda t: [[e[0], e[1], []] for e in t]),
        ("integers_for_numbers", lambda t: [[e[0], int(e[1]), e[2]] for e in t]),
    ],
    "regression": [
        ("unknown_nominal", lambda t: ["Q"] + t[1:]),
        ("non_ascii_nominal", lambda t: [NON_ASCII] + t[1:]),
    ],
    "ionosphere": [
        ("integers", lambda t: [int(v) for v in t]),
        ("padded_to_one_mb", lambda t: b"[" + b" " * (1 << 20) + json.dumps(t)[1:].encode()),
        ("escaped_json", lambda t: json.dumps(t, indent=None, separators=(" ,", " : ")).encode()),
    ],
}
GOOD_CASES = [pytest.param(kind, make, id=f"{kind}-{name}") for kind, cases in GOOD.items() for name, make in cases]


@pytest.mark.parametrize("kind, make", GOOD_CASES)
def test_unusual_but_valid_requests_are_answered(models, serving, kind, make):
    model, backend = models(kind), serving(kind)
    template = model.instances(1)[0]
    request = make(template)

    answer = assert_ok(backend.ask(request))

    if kind in ("sequence", "multi"):
        assert len(answer["output"]) == len(request)
        assert set(answer["output"]) <= set(model.labels)
    elif model.labels:
        assert answer["output"] in model.labels
    assert_ok(backend.ask(template))


def test_non_ascii_answers_are_utf8_and_the_same_escaped_or_not(models, serving):
    backend = serving("sequence")
    request = _replace_values(models("sequence").instances(1)[0], True, lambda v: _texts(v, NON_ASCII))
    raw = backend.ask(json.dumps(request, ensure_ascii=False).encode("utf-8"))
    escaped = backend.ask(json.dumps(request, ensure_ascii=True).encode("ascii"))
    assert raw == escaped


def test_a_padded_request_gets_the_same_answer(models, serving):
    template = models("ionosphere").instances(1)[0]
    backend = serving("ionosphere")
    assert backend.ask(b"  [" + b" " * (1 << 20) + json.dumps(template)[1:].encode() + b"\t") == backend.ask(template)


# ---- what a real host sends: empty spans, its JVM's charset, Jackson's NaN ----


@pytest.mark.parametrize("kind", ["sequence", "multi"])
def test_an_empty_sequence_gets_an_ok_answer_with_empty_lists(models, serving, kind):
    answer = serving(kind).ask([])
    assert answer == {"status": "ok", "output": [], "conf": [], "dist": [], "labels": models(kind).labels}
    assert_ok(serving(kind).ask(models(kind).instances(1)[0]))


def _latin1_sequence(model):
    """A sequence of the model's data with a word like 'Vélez' (windows-1252 can write it)."""
    for sequence in model.instances(200):
        if any(isinstance(v, str) and any(127 < ord(c) < 256 for c in v) for e in sequence for v in e):
            return sequence
    raise AssertionError("no such word in the data")


def test_a_windows_1252_request_reads_as_the_same_text(models, serving):
    backend = serving("multi")
    sequence = _latin1_sequence(models("multi"))
    text = json.dumps(sequence, ensure_ascii=False)

    as_utf8 = assert_ok(backend.ask(text.encode("utf-8")))
    as_cp1252 = backend.ask(text.encode("cp1252") + b"\r")

    assert as_cp1252 == as_utf8
    garbled = "".join(c if ord(c) < 128 else "\ufffd" for c in text)
    assert assert_ok(backend.ask(garbled.encode("utf-8")))["dist"] != as_utf8["dist"]


def test_undecodable_bytes_never_fail_a_request():
    from filejsonpytorch.apply import decode_request

    assert decode_request("caf\u00e9 \u20ac".encode("cp1252")) == "caf\u00e9 \u20ac"
    assert decode_request(b"caf\xe9 \x81") == "caf\u00e9 \ufffd"
    assert decode_request("caf\u00e9".encode("utf-8")) == "caf\u00e9"


@pytest.mark.parametrize("kind", ["ionosphere", "regression"])
def test_nan_and_infinity_strings_read_as_missing_numbers(models, serving, kind):
    backend = serving(kind)
    template = models(kind).instances(1)[0]
    numbers = [i for i, v in enumerate(template) if isinstance(v, float)]
    as_missing = [("" if i in numbers[:3] else v) for i, v in enumerate(template)]
    as_strings = [({numbers[0]: "NaN", numbers[1]: "Infinity", numbers[2]: "-Infinity"}.get(i, v))
                  for i, v in enumerate(template)]

    answer = assert_ok(backend.ask(as_strings))

    assert answer == backend.ask(as_missing)
    assert answer != backend.ask(template)


def test_regression_answers_are_written_as_json_floating_point_numbers(models, serving):
    backend = serving("regression")
    for features in models("regression").instances(20):
        backend.send(json.dumps(features).encode())
        output = backend.receive().decode().split('"output":', 1)[1].strip(" }\n")
        assert math.isfinite(float(output)) and ("." in output or "e" in output), output


# ---- ending ----


def test_eof_ends_the_program_promptly_with_status_0(models):
    model = models("ionosphere")
    backend = model.start()
    assert_ok(backend.ask(model.instances(1)[0]))
    started = time.monotonic()
    assert backend.close() == 0
    assert time.monotonic() - started < 10


def test_a_last_line_without_a_line_end_is_answered(models):
    model = models("ionosphere")
    backend = model.start()
    backend.process.stdin.write(json.dumps(model.instances(1)[0]).encode())
    backend.process.stdin.close()
    assert json.loads(backend.receive())["status"] == "ok"
    assert backend.process.wait(timeout=60) == 0


@pytest.mark.parametrize("stop", [b"STOP", b"STOP\r"])
def test_stop_ends_the_program_with_status_0_and_nothing_more_is_answered(models, stop):
    model = models("ionosphere")
    backend = model.start()
    good = json.dumps(model.instances(1)[0]).encode()
    assert_ok(backend.ask(good))
    backend.process.stdin.write(stop + b"\n" + good + b"\n")
    backend.process.stdin.flush()
    assert backend.process.wait(timeout=60) == 0
    assert backend.receive() is None


def test_a_host_that_stops_reading_ends_the_program_quietly(models):
    model = models("ionosphere")
    good = json.dumps(model.instances(1)[0]).encode() + b"\n"
    process = subprocess.Popen(
        [sys.executable, "-m", "filejsonpytorch.apply", str(model.prefix), "--metafile", str(model.meta)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
    )
    try:
        process.stdin.write(good)
        process.stdin.flush()
        assert json.loads(process.stdout.readline())["status"] == "ok"
        process.stdout.close()
        process.stdin.write(good)
        process.stdin.flush()
        assert process.wait(timeout=60) == 0
        assert "Traceback" not in process.stderr.read().decode()
    finally:
        process.kill()
        process.wait()


# ---- nothing but answers on stdout ----

PRINTY = '''\
import os
import sys
import warnings

from filejsonpytorch.modules.mlp import MLP

print("PRINTY: imported")


class MyPrinty(MLP):
    def forward(self, batch):
        print("PRINTY: forward")
        sys.stdout.write("PRINTY: sys.stdout.write\\n")
        sys.stdout.flush()
        os.write(1, b"PRINTY: os.write to fd 1\\n")
        sys.__stdout__.write("PRINTY: sys.__stdout__\\n")
        sys.__stdout__.flush()
        warnings.warn("PRINTY: a warning")
        return super().forward(batch)
'''


def test_a_network_module_that_prints_never_corrupts_stdout(tmp_path):
    wrapper = tmp_path / "wrapper"
    (wrapper / "modules").mkdir(parents=True)
    (wrapper / "modules" / "MyPrinty.py").write_text(PRINTY)
    env = clean_env(WRAPPER_HOME=str(wrapper))
    datadir = make_datadir("ionosphere", tmp_path / "data")
    train(datadir, "--module", "MyPrinty", env=env)
    model = Model("ionosphere", datadir)
    backend = model.start(env=env)

    answers = [backend.ask(features) for features in model.instances(5)]

    assert all(a["status"] == "ok" for a in answers), answers
    assert backend.close() == 0
    for text in ("PRINTY: imported", "PRINTY: forward", "os.write to fd 1", "sys.__stdout__", "a warning"):
        assert text in backend.stderr(), text


# ---- model files ----


def _save_as_if_on_a_gpu(prefix, monkeypatch):
    """Saves the model again; its tensors say they come from cuda:0, as after GPU training."""
    info, tensors = model_io.read_files(prefix)
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        model_io.write_files(prefix, info, tensors)


def copy_model(model, directory):
    directory.mkdir()
    for path in model.datadir.glob("FileJsonPyTorch.model*"):
        if path.suffix in (".json", ".pt"):
            shutil.copy(path, directory / path.name)
    shutil.copy(model.meta, directory / "crvd.meta.json")
    return directory / "FileJsonPyTorch.model"


def tensor_file(prefix):
    return prefix.parent / json.loads(Path(model_io.json_path(prefix)).read_text())["tensors"]


def test_a_model_saved_on_a_gpu_is_applied_on_the_cpu(models, tmp_path, monkeypatch):
    model = models("ionosphere")
    prefix = copy_model(model, tmp_path / "gpu")
    _save_as_if_on_a_gpu(prefix, monkeypatch)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(tensor_file(prefix), weights_only=True)

    _, tensors = model_io.read_files(prefix, map_location="cpu")
    assert all(t.device.type == "cpu" for t in tensors["model"].values())
    backend = model.start(prefix=prefix)
    for features in model.instances(3):
        assert_ok(backend.ask(features))
    assert backend.close() == 0


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x55
    path.write_bytes(bytes(data))


def _newer_version(path):
    info = json.loads(path.read_text())
    info["version"] += 1
    path.write_text(json.dumps(info))


def _bad_temperature(path):
    info = json.loads(path.read_text())
    info["temperature"] = -2.0
    path.write_text(json.dumps(info))


def _bad_ensemble(path):
    info = json.loads(path.read_text())
    info["arch"]["ensemble"] = "three"
    path.write_text(json.dumps(info))


BROKEN = [
    ("no_model", lambda prefix: Path(model_io.json_path(prefix)).unlink(), "json", "no model here"),
    ("truncated_json", lambda prefix: truncate(Path(model_io.json_path(prefix))), "json", "damaged or truncated"),
    ("newer_version", lambda prefix: _newer_version(Path(model_io.json_path(prefix))), "json", "newer"),
    ("bad_temperature", lambda prefix: _bad_temperature(Path(model_io.json_path(prefix))), "json",
     "'temperature' must be a positive number"),
    ("bad_ensemble", lambda prefix: _bad_ensemble(Path(model_io.json_path(prefix))), "json",
     "'ensemble' must be a whole number of networks"),
    ("not_a_model_json", lambda prefix: Path(model_io.json_path(prefix)).write_text("[1, 2]"), "json", "not a filejsonpytorch model"),
    ("missing_tensor_file", lambda prefix: tensor_file(prefix).unlink(), "pt", "missing"),
    ("truncated_tensor_file", lambda prefix: truncate(tensor_file(prefix)), "pt", "damaged"),
    ("garbage_tensor_file", lambda prefix: tensor_file(prefix).write_bytes(os.urandom(5000)), "pt", "damaged"),
    ("one_byte_changed_in_the_tensor_file", lambda prefix: flip_a_byte(tensor_file(prefix)), "pt", "damaged"),
]


def serve_until_eof(prefix, meta, *options, requests=3, env=None, timeout=120):
    """Runs the application program on `requests` request lines and EOF -> CompletedProcess."""
    request = json.dumps([0.5] * 34) + "\n"
    return subprocess.run(
        [sys.executable, "-m", "filejsonpytorch.apply", str(prefix), "--metafile", str(meta), *options],
        input=request * requests, capture_output=True, text=True, env=env or clean_env(), timeout=timeout,
    )


def assert_served_the_error(result, *words, requests=3):
    """Start-up failed: the error on stderr, then one error answer per request, exit 0 on EOF."""
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: ") and all(w in error for w in words), result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == requests and result.stdout.count("\n") == requests
    for answer in answers:
        assert answer == {"status": "error", "error": "the model cannot be served: " + error[len("error: "):]}


@pytest.mark.parametrize("damage, names, message", [pytest.param(*b[1:], id=b[0]) for b in BROKEN])
def test_a_broken_model_is_one_clear_error_naming_the_file_answered_to_every_request(
        models, tmp_path, damage, names, message):
    model = models("ionosphere")
    prefix = copy_model(model, tmp_path / "broken")
    named = model_io.json_path(prefix) if names == "json" else str(tensor_file(prefix))
    damage(prefix)

    assert_served_the_error(serve_until_eof(prefix, model.meta), named, message)


@pytest.mark.parametrize("options, words", [
    (["--no-such-option", "1"], ["unrecognized arguments: --no-such-option 1"]),
    (["--cuda", "maybe"], ["--cuda", "expected true, false or auto"]),
])
def test_bad_options_of_the_apply_pr_are_answered_as_errors(models, options, words):
    model = models("ionosphere")
    assert_served_the_error(serve_until_eof(model.prefix, model.meta, *options), *words)


def test_a_stop_line_ends_the_error_answers_too(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "filejsonpytorch.apply", str(tmp_path / "none"), "--metafile", "m"],
        input="[1]\n STOP \r\n[2]\n", capture_output=True, text=True, env=clean_env(), timeout=120,
    )
    assert result.returncode == 0
    assert [json.loads(line)["status"] for line in result.stdout.splitlines()] == ["error"]
    assert "no model here" in result.stdout
