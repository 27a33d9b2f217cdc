"""Training and application driven by the LF host emulator (../shared/lfhost), exactly as
the GATE host drives them: the installed wrapper's scripts, the host's environment, the
host's serialisation of requests and its casts of the answers, and its robustness probes.

Numeric classification (ionosphere) is covered by tests/test_wrapper.py.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from filejsonpytorch.install import install
from test_apply import make_datadir

LFHOST = Path(__file__).resolve().parents[2] / "shared" / "lfhost" / "lfhost"
TEST_LINES = 100

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None, reason="the LF host emulator needs java"),
]


def lfhost(*args, status=0, log=None):
    result = subprocess.run([str(LFHOST), *map(str, args)], capture_output=True, text=True, timeout=1200)
    backend = Path(log).read_text(errors="replace")[-3000:] if log and Path(log).exists() else ""
    assert result.returncode == status, result.stderr[-4000:] + backend
    return json.loads(result.stdout)


def host_setup(kind, tmp_path):
    """A data directory with the installed wrapper, and a labeled test file of 100 lines."""
    datadir = make_datadir(kind, tmp_path / "data")
    install(datadir)
    test_file = tmp_path / "test.data.json"
    with open(datadir / "crvd.data.json", encoding="utf-8") as f:
        test_file.write_text("".join(f.readlines()[:TEST_LINES]), encoding="utf-8")
    common = ["--data", datadir, "--python-bin", sys.executable]
    return datadir, test_file, common


def host_train(datadir, common, log):
    trained = lfhost("train", *common, "--wrapper", datadir / "FileJsonPyTorch", "--install", "none",
                     "--params", "--maxepochs 2 --seed 1", "--child-log", log, log=log)
    assert trained["ok"] and trained["exit_code"] == 0, trained
    assert trained["model_files"] and all(name.startswith("FileJsonPyTorch.model") for name in trained["model_files"])
    return trained


def probes_by_name(applied):
    return {p["probe"]: p for p in applied["probes"]}


def assert_the_host_takes_every_answer(applied):
    assert applied["sent"] == applied["accepted_by_host"] == TEST_LINES
    assert applied["host_exceptions"] == 0, applied["host_exception_samples"]
    assert applied["soft_findings"] == {}, applied["soft_findings"]
    assert not applied["backend_died"] and not applied["unsolicited_output"]
    assert applied["idle_check"]["pass"] is True, applied["idle_check"]
    assert applied["exit_code_after_stdin_closed"] == 0


def assert_every_probe_passes(applied, *answered_ok):
    """Every probe passes, by its own rule (STOP: exit 0 and no output); the probes named in
    `answered_ok` are lines a real host sends, so they get an ok answer, not an error."""
    probes = probes_by_name(applied)
    failed = {name: p["summary"] for name, p in probes.items() if p["pass"] is False}
    assert failed == {}
    assert probes["stop_literal"]["pass"] is True and probes["crlf_terminated"]["response"] == "json_ok"
    for name in answered_ok:
        assert probes[name]["response"] == "json_ok", probes[name]


@pytest.mark.parametrize("kind, answered_ok", [
    ("ngram", ["non_utf8_bytes"]),
    ("sequence", ["empty_sequence", "non_utf8_bytes"]),
    ("multi", ["empty_sequence", "non_utf8_bytes", "nan_string_numeric"]),
])
def test_the_host_trains_and_applies_without_exceptions_and_passes_the_probes(kind, answered_ok, tmp_path):
    datadir, test_file, common = host_setup(kind, tmp_path)
    host_train(datadir, common, tmp_path / "train.log")

    log = tmp_path / "apply.log"
    applied = lfhost("apply", *common, "--test", test_file, "--probe", "--child-log", log, log=log)

    assert applied["instances"] == TEST_LINES
    assert_the_host_takes_every_answer(applied)
    assert 0.0 < applied["conf_min"] <= applied["conf_max"] <= 1.0
    if kind != "ngram":
        assert applied["tokens"] > TEST_LINES and applied["token_accuracy"] > 0.2
    assert_every_probe_passes(applied, *answered_ok)


def test_the_host_takes_regression_answers(tmp_path):
    """Answers are JSON floating-point numbers, as the host casts `output` to a Double (no
    released LF goes on from there: that is reported apart as its limitation)."""
    datadir, test_file, common = host_setup("regression", tmp_path)
    host_train(datadir, common, tmp_path / "train.log")

    log = tmp_path / "apply.log"
    applied = lfhost("apply", *common, "--test", test_file, "--probe", "--child-log", log, log=log)

    assert applied["task"] == "regression"
    assert_the_host_takes_every_answer(applied)
    assert applied["scored"] == TEST_LINES and applied["rmse"] < 4.0
    assert_every_probe_passes(applied, "nan_string_numeric", "non_utf8_bytes")


def test_a_model_that_cannot_be_loaded_is_an_error_answer_the_host_shows(tmp_path):
    datadir, test_file, common = host_setup("sequence", tmp_path)
    host_train(datadir, common, tmp_path / "train.log")
    (datadir / "FileJsonPyTorch.model.json").unlink()

    log = tmp_path / "apply.log"
    applied = lfhost("apply", *common, "--test", test_file, "--limit", "3", "--child-log", log, status=3, log=log)

    assert applied["host_exception_kinds"] == {"status_not_ok": 3}, applied["host_exception_kinds"]
    for sample in applied["host_exception_samples"]:  # the response, cut to 200 characters
        assert '"status": "error"' in sample["response"] and "FileJsonPyTorch.model.json: no model here" in sample["response"]
    assert not applied["backend_died"] and applied["exit_code_after_stdin_closed"] == 0
