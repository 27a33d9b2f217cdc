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


def assert_stop_ended_the_backend(probes):
    """Our protocol: STOP makes the program exit (status 0, see test_apply); the host
    emulator expects an answer, so the probe fails — but by end-of-file, not a hang."""
    stop = probes.pop("stop_literal")
    assert stop["response"] == "eof", stop
    assert probes, "no other probes"


@pytest.mark.parametrize("kind", ["ngram", "sequence", "multi"])
def test_the_host_trains_and_applies_without_exceptions_and_passes_the_probes(kind, tmp_path):
    datadir, test_file, common = host_setup(kind, tmp_path)
    host_train(datadir, common, tmp_path / "train.log")

    log = tmp_path / "apply.log"
    applied = lfhost("apply", *common, "--test", test_file, "--probe", "--child-log", log, log=log)

    assert applied["instances"] == applied["sent"] == applied["accepted_by_host"] == TEST_LINES
    assert applied["host_exceptions"] == 0, applied["host_exception_samples"]
    assert applied["soft_findings"] == {}, applied["soft_findings"]
    assert not applied["backend_died"] and not applied["unsolicited_output"]
    assert 0.0 < applied["conf_min"] <= applied["conf_max"] <= 1.0
    if kind != "ngram":
        assert applied["tokens"] > TEST_LINES and applied["token_accuracy"] > 0.2
    probes = probes_by_name(applied)
    assert_stop_ended_the_backend(probes)
    failed = {name: p["summary"] for name, p in probes.items() if p["pass"] is not True}
    assert failed == {}
    assert applied["exit_code_after_stdin_closed"] == 0


def test_the_host_cannot_take_a_regression_answer(tmp_path):
    """host-protocol.md answers regression with {"status": "ok", "output": NUMBER}; the host
    casts `output` to a String and throws ClassCastException on every such answer. This
    pins down that the backend's side is right (every answer ok, a number; every probe a
    JSON answer) and that the host's cast is the only problem."""
    datadir, test_file, common = host_setup("regression", tmp_path)
    host_train(datadir, common, tmp_path / "train.log")

    log = tmp_path / "apply.log"
    applied = lfhost("apply", *common, "--test", test_file, "--probe", "--child-log", log, status=3, log=log)

    assert applied["sent"] == TEST_LINES and not applied["backend_died"]
    assert applied["host_exception_kinds"] == {"cast_output": TEST_LINES}
    for sample in applied["host_exception_samples"]:
        answer = json.loads(sample["response"])
        assert answer["status"] == "ok" and isinstance(answer["output"], float), sample
    probes = probes_by_name(applied)
    assert_stop_ended_the_backend(probes)
    assert {name: p["response"] for name, p in probes.items() if not p["response"].startswith("json_")} == {}
