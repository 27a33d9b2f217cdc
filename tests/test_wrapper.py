"""The wrapper directory the GATE host runs: installer, start scripts, and runs through them.

The scripts are run as real subprocesses. Most tests replace the trainer and application
programs in the installed copy by a stub that reports how it was started, which is also
how a user's edit in the wrapper directory works.
"""

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import filejsonpytorch
from filejsonpytorch.install import install

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LFHOST = Path(__file__).resolve().parents[2] / "shared" / "lfhost" / "lfhost"

STUB = """\
import json, os, sys
print(json.dumps({"argv": sys.argv[1:], "pid": os.getpid(), "file": __file__,
                  "cwd": os.getcwd(), "pythonpath": os.environ.get("PYTHONPATH")}))
sys.exit(int(os.environ.get("STUB_EXIT", "0")))
"""

FAKE_PYTHON2 = """\
#!/bin/sh
echo "Python 2.7.18"
"""


@pytest.fixture
def datadir(tmp_path):
    path = tmp_path / "my data dir"
    path.mkdir()
    return path


@pytest.fixture
def wrapper(datadir):
    return install(datadir)


@pytest.fixture
def stubbed(wrapper):
    """An installed wrapper whose train and apply programs are the echoing stub."""
    for program in ("train", "apply"):
        (wrapper / "filejsonpytorch" / f"{program}.py").write_text(STUB)
    return wrapper


def run_script(script, *args, env=None, **kwargs):
    return subprocess.run(
        [str(script), *map(str, args)],
        capture_output=True, text=True, env=env or dict(os.environ), timeout=120, **kwargs,
    )


def stub_report(result):
    """The stub's one stdout line: also proves that the script itself wrote nothing there."""
    assert result.stdout.count("\n") == 1, result.stdout + result.stderr
    return json.loads(result.stdout)


def relative_files(root):
    return {path.relative_to(root) for path in root.rglob("*") if path.is_file()}


def make_executable(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# ---- installer ----


def test_install_creates_scripts_and_a_clean_package_copy(datadir):
    wrapper = install(datadir)

    assert wrapper == datadir.resolve() / "FileJsonPyTorch"
    for name in ("train.sh", "apply.sh", "evaluate.sh", "train.cmd", "apply.cmd", "evaluate.cmd", "python.cmd",
                 "README.md"):
        assert (wrapper / name).is_file(), name
    for name in ("train.sh", "apply.sh", "evaluate.sh"):
        assert os.access(wrapper / name, os.X_OK), name
    copy = wrapper / "filejsonpytorch"
    package = Path(filejsonpytorch.__file__).resolve().parent
    source_py = {p for p in relative_files(package) if p.suffix == ".py"}
    assert source_py <= relative_files(copy)
    assert Path("modules/__init__.py") in source_py
    assert Path("wrapper/train.sh") in relative_files(copy)
    assert not [p for p in copy.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"]
    assert sorted(p.name for p in datadir.iterdir()) == ["FileJsonPyTorch"]


def test_the_copied_package_is_the_one_imported(wrapper, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(wrapper))
    result = subprocess.run(
        [sys.executable, "-c", "import filejsonpytorch; print(filejsonpytorch.__file__)"],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=True,
    )
    assert Path(result.stdout.strip()).is_relative_to(wrapper)


def test_install_command_with_another_name(datadir):
    result = subprocess.run(
        [sys.executable, "-m", "filejsonpytorch.install", str(datadir), "--name", "Other"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert os.access(datadir / "Other" / "apply.sh", os.X_OK)


def test_install_refuses_to_overwrite_and_says_how_to_upgrade(datadir):
    existing = datadir / "FileJsonPyTorch"
    existing.mkdir()
    (existing / "train.sh").write_text("# my own edits\n")

    result = subprocess.run(
        [sys.executable, "-m", "filejsonpytorch.install", str(datadir)],
        capture_output=True, text=True,
    )

    assert result.returncode == 2
    assert "edits" in result.stderr
    assert "move it away" in result.stderr and "filejsonpytorch-install" in result.stderr
    assert relative_files(existing) == {Path("train.sh")}
    assert (existing / "train.sh").read_text() == "# my own edits\n"
    assert sorted(p.name for p in datadir.iterdir()) == ["FileJsonPyTorch"]


# ---- start scripts ----


def test_train_sh_runs_the_copy_with_arguments_unchanged(stubbed, datadir):
    args = [datadir / "crvd.meta.json", datadir / "FileJsonPyTorch.model", "--maxepochs", "2", "a b"]
    env = dict(os.environ, PYTHONPATH="/elsewhere")

    report = stub_report(run_script(stubbed / "train.sh", *args, env=env, cwd=datadir))

    assert report["argv"] == [str(a) for a in args]
    assert Path(report["file"]).is_relative_to(stubbed)
    assert report["pythonpath"] == f"{stubbed}:/elsewhere"
    assert report["cwd"] == str(datadir.resolve())


def test_apply_sh_turns_the_host_call_into_the_program_call(stubbed, datadir):
    model, meta = datadir / "FileJsonPyTorch.model", datadir / "crvd.meta.json"

    result = run_script(stubbed / "apply.sh", model, meta, stubbed, "--cuda", "False")

    assert stub_report(result)["argv"] == [str(model), "--metafile", str(meta), "--cuda", "False"]


def test_apply_sh_without_the_host_arguments_is_a_usage_error(stubbed):
    result = run_script(stubbed / "apply.sh", "only-a-model")
    assert result.returncode == 2
    assert "MODELPREFIX METAFILE WRAPPERDIR" in result.stderr
    assert result.stdout == ""


def test_scripts_become_the_python_process(stubbed):
    """exec: exit status and signals are the program's own."""
    env = dict(os.environ, STUB_EXIT="7")
    process = subprocess.Popen(
        [str(stubbed / "train.sh"), "x"], stdout=subprocess.PIPE, text=True, env=env
    )
    stdout, _ = process.communicate(timeout=120)
    assert process.returncode == 7
    assert json.loads(stdout)["pid"] == process.pid


def test_relative_call_from_the_data_directory(stubbed, datadir):
    result = run_script(Path("FileJsonPyTorch") / "train.sh", "--help", cwd=datadir)
    assert Path(stub_report(result)["file"]).is_relative_to(stubbed)


def test_user_edits_in_the_wrapper_take_effect(wrapper):
    init = wrapper / "filejsonpytorch" / "__init__.py"
    init.write_text('import sys\nprint("EDITED", file=sys.stderr)\n' + init.read_text())

    result = run_script(wrapper / "train.sh", "--help")

    assert "EDITED" in result.stderr
    assert "EDITED" not in result.stdout


def test_real_programs_answer_help_through_the_scripts(wrapper, datadir):
    train = run_script(wrapper / "train.sh", "--help", cwd=datadir)
    assert train.returncode == 0, train.stderr
    assert "--maxepochs" in train.stdout
    apply = run_script(wrapper / "apply.sh", datadir / "m", datadir / "crvd.meta.json", wrapper, "--help")
    assert apply.returncode == 0, apply.stderr
    # the application program keeps stdout for protocol lines: its help goes to stderr
    assert "--metafile" in apply.stderr
    assert apply.stdout == ""


def test_bad_option_status_is_the_programs(wrapper):
    result = run_script(wrapper / "train.sh", "--no-such-option")
    direct = subprocess.run(
        [sys.executable, "-m", "filejsonpytorch.train", "--no-such-option"],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(wrapper)),
    )
    assert result.returncode == direct.returncode != 0


# ---- choosing the interpreter ----


def test_missing_python_bin_falls_back_to_python3(stubbed):
    env = dict(os.environ, PYTHON_BIN="/nonexistent/python")
    result = run_script(stubbed / "train.sh", "x", env=env)
    assert result.returncode == 0
    assert stub_report(result)["argv"] == ["x"]
    assert "/nonexistent/python: not found" in result.stderr


def test_python2_as_python_bin_falls_back(stubbed, tmp_path):
    fake = make_executable(tmp_path / "python", FAKE_PYTHON2)
    result = run_script(stubbed / "train.sh", "x", env=dict(os.environ, PYTHON_BIN=str(fake)))
    assert result.returncode == 0
    assert stub_report(result)["argv"] == ["x"]


def test_python_bin_without_torch_falls_back(stubbed, tmp_path):
    # -S hides site-packages, where torch lives
    no_torch = make_executable(tmp_path / "python", f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -S "$@"\n')
    result = run_script(stubbed / "train.sh", "x", env=dict(os.environ, PYTHON_BIN=str(no_torch)))
    assert result.returncode == 0
    assert "cannot import torch" in result.stderr


def no_python_env(tmp_path):
    """A PATH whose python and python3 are Python 2, and a PYTHON_BIN that does not exist."""
    bin_dir = tmp_path / "bin"
    if bin_dir.exists():
        return dict(os.environ, PATH=str(bin_dir), PYTHON_BIN="/nonexistent/python")
    bin_dir.mkdir()
    for tool in ("bash", "tr", "sed"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    for name in ("python", "python3"):
        make_executable(bin_dir / name, FAKE_PYTHON2)
    return dict(os.environ, PATH=str(bin_dir), PYTHON_BIN="/nonexistent/python")


TRIED = ("/nonexistent/python: not found", "python3: Python 2.7.18", "python: Python 2.7.18")


def test_no_usable_python_for_training_exits_5_and_says_what_was_tried(stubbed, tmp_path):
    result = run_script(stubbed / "train.sh", "meta", "model", env=no_python_env(tmp_path))

    assert result.returncode == 5
    assert result.stdout == ""
    assert "no usable Python" in result.stderr and "PYTHON_BIN" in result.stderr
    for tried in TRIED:
        assert tried in result.stderr


def test_no_usable_python_for_application_is_answered_to_every_request(stubbed, tmp_path):
    """The host shows an error answer; an exit would fail the first document with no message."""
    result = run_script(stubbed / "apply.sh", "m", "meta", stubbed, env=no_python_env(tmp_path),
                        input='[1, "caf\u00e9"]\r\n[2]\n[3]')

    assert result.returncode == 0
    assert "no usable Python" in result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == 3 and len(set(map(json.dumps, answers))) == 1
    assert answers[0]["status"] == "error" and answers[0]["error"].isascii()
    for words in ("the model cannot be served: no usable Python", *TRIED, "Set PYTHON_BIN"):
        assert words in answers[0]["error"]
    stopped = run_script(stubbed / "apply.sh", "m", "meta", stubbed, env=no_python_env(tmp_path),
                         input="[1]\n  STOP\r\n[2]\n")
    assert stopped.returncode == 0 and len(stopped.stdout.splitlines()) == 1


@pytest.mark.parametrize("name", ["FileJsonPyTorch.yaml", "FileJsonPyTorch.yaml.txt"])
def test_a_shell_run_takes_python_bin_from_the_yaml_file(stubbed, datadir, tmp_path, name):
    """After --notrain a user runs train.sh by hand: the host's PYTHON_BIN is not exported then."""
    env = no_python_env(tmp_path)
    del env["PYTHON_BIN"]
    (datadir / name).write_text(f"maxepochs: 3\nPYTHON_BIN: '{sys.executable}'  # ours\n")

    result = run_script(stubbed / "train.sh", "meta", env=env, cwd=datadir)

    assert result.returncode == 0, result.stderr
    assert stub_report(result)["argv"] == ["meta"]
    assert result.stderr == ""


# ---- end to end, with the real trainer and application programs ----


def ionosphere_datadir(datadir):
    for kind in ("meta", "data"):
        shutil.copy(SHARED_DATA / f"class-ionosphere.{kind}.json", datadir / f"crvd.{kind}.json")
    return datadir


def host_env(wrapper, datadir):
    return dict(os.environ, WRAPPER_HOME=str(wrapper), GATE_LF_DATA_DIR=str(datadir), PYTHON_BIN=sys.executable)


@pytest.mark.slow
def test_train_then_apply_through_the_scripts(datadir):
    ionosphere_datadir(datadir)
    wrapper = install(datadir)
    env = host_env(wrapper, datadir)
    model = datadir / "FileJsonPyTorch.model"

    train = run_script(
        wrapper / "train.sh", datadir / "crvd.meta.json", model, "--maxepochs", "2", "--seed", "1",
        env=env, cwd=datadir,
    )
    assert train.returncode == 0, train.stderr

    apply = subprocess.Popen(
        [str(wrapper / "apply.sh"), str(model), str(datadir / "crvd.meta.json"), str(wrapper)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8", env=env, cwd=datadir,
    )
    try:
        with open(datadir / "crvd.data.json", encoding="utf-8") as data:
            instances = [json.loads(next(data)) for _ in range(3)]
        for features, _target in instances:
            apply.stdin.write(json.dumps(features) + "\n")
            apply.stdin.flush()
            answer = json.loads(apply.stdout.readline())
            assert answer["status"] == "ok", answer
            assert answer["output"] in {"g", "b"}
        apply.stdin.close()
        assert apply.wait(timeout=60) == 0
    finally:
        apply.kill()


def lfhost(*args):
    result = subprocess.run([str(LFHOST), *args], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("java") is None, reason="the LF host emulator needs java")
def test_the_host_emulator_trains_and_applies_through_the_wrapper(datadir, tmp_path):
    ionosphere_datadir(datadir)
    wrapper = install(datadir)
    test_file = tmp_path / "test.data.json"
    shutil.copy(datadir / "crvd.data.json", test_file)
    common = ["--data", str(datadir), "--wrapper", str(wrapper), "--install", "none", "--python-bin", sys.executable]

    trained = lfhost("train", *common, "--params", "--maxepochs 2 --seed 1")
    assert trained["ok"], trained

    applied = lfhost("apply", *common, "--test", str(test_file), "--limit", "50", "--probe")
    assert applied["host_exceptions"] == 0, applied["host_exception_samples"]
    assert sum(applied["soft_findings"].values()) == 0, applied["soft_findings"]
    assert [p["probe"] for p in applied["probes"] if p["pass"] is False] == []
    probes = {p["probe"]: p for p in applied["probes"]}
    assert probes["nan_string_numeric"]["response"] == "json_ok", probes["nan_string_numeric"]
    assert probes["stop_literal"]["pass"] and probes["crlf_terminated"]["pass"]
    assert applied["idle_check"]["pass"] is True and not applied["unsolicited_output"]
    assert applied["exit_code_after_stdin_closed"] == 0
