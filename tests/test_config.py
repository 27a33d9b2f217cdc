"""Trainer options: the command line, FileJsonPyTorch.yaml, and --help against the
options promised in ../shared/spec/training-options.md."""

import re
from pathlib import Path

import pytest

from filejsonpytorch import config
from filejsonpytorch.errors import EXIT_USAGE, UsageError

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec" / "training-options.md"


def spec_options():
    """Every option named in the first column of the spec's option table."""
    names = []
    for line in SPEC.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `--"):
            names += re.findall(r"--[a-z_]+", line.split("|")[1])
    return names


def parse(tmp_path, *args, yaml=None, yaml_name="FileJsonPyTorch.yaml"):
    if yaml is not None:
        (tmp_path / yaml_name).write_text(yaml, encoding="utf-8")
    return config.parse_train_args([str(tmp_path / "crvd.meta.json"), str(tmp_path / "M"), *args])


def help_entries():
    """{option: its help text} from the trainer's --help."""
    text = config.train_parser().format_help().split("options:", 1)[1]
    text = re.sub(r"\n\S[^\n]*:\n", "\n", text)  # the groups' headings
    entries = {}
    for block in re.split(r"\n(?=  -)", text):
        name = re.search(r"--[a-z_]+", block)
        if name:
            entries[name.group()] = " ".join(block.split())
    return entries


def test_spec_table_is_parsed():
    options = spec_options()
    assert len(options) == 25 and "--valeveryinstances" in options and "--help" in options


def test_help_lists_every_spec_option_with_its_default():
    entries = help_entries()
    for option in spec_options():
        if option == "--help":
            continue
        assert option in entries, f"{option} missing from --help"
        assert "default" in entries[option], f"{option}: no default in --help: {entries[option]}"


@pytest.mark.parametrize("option, default", [("--maxepochs", "100"), ("--seed", "1"), ("--valsize", "0.1"),
                                             ("--es_patience", "10; 5 for a validation set of 500 instances or more"), ("--stopfile", "DATADIR/STOP"),
                                             ("--es_metric", "entity_f1 for chunk labels, else accuracy"), ("--ngram_layer", "mean for classification, cnn otherwise")])
def test_help_shows_the_default_value(option, default):
    assert f"(default: {default})" in help_entries()[option]


def test_help_says_each_default_once():
    assert all(entry.count("(default:") <= 1 for entry in help_entries().values())


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as caught:
        config.parse_train_args(["--help"])
    assert caught.value.code == 0 and "--maxepochs" in capsys.readouterr().out


def test_defaults(tmp_path):
    args = parse(tmp_path)
    assert (args.maxepochs, args.seed, args.valsize, args.cuda, args.es_metric) == (100, 1, 0.1, None, None)
    assert args.datadir == str(tmp_path) and args.explicit == set()


@pytest.mark.parametrize("text, value", [("False", False), ("false", False), ("TRUE", True), ("true", True),
                                         ("auto", None)])
def test_cuda_is_case_insensitive(tmp_path, text, value):
    assert parse(tmp_path, "--cuda", text).cuda is value


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--cuda", "maybe"], "--cuda"),
    (["--maxepochs", "0"], "--maxepochs"),
    (["--maxepochs", "many"], "--maxepochs"),
    (["--valsize", "0"], "--valsize"),
    (["--valsize", "-3"], "--valsize"),
    (["--valsize", "inf"], "--valsize"),
    (["--learningrate", "nan"], "--learningrate"),
    (["--es_metric", "f1"], "--es_metric"),
    (["--ngram_layer", "rnn"], "--ngram_layer"),
])
def test_bad_command_line_is_one_usage_error(tmp_path, args, message):
    with pytest.raises(UsageError, match=re.escape(message)) as caught:
        parse(tmp_path, *args)
    assert caught.value.exit_code == EXIT_USAGE and "\n" not in str(caught.value)


def test_valsize_is_a_fraction_or_a_count(tmp_path):
    assert parse(tmp_path, "--valsize", "0.25").valsize == 0.25
    assert parse(tmp_path, "--valsize", "50").valsize == 50


def test_explicit_options_are_recorded(tmp_path):
    assert parse(tmp_path, "--maxepochs", "3", "--seed=4", "--noshuffle").explicit == {"maxepochs", "seed", "noshuffle"}


def test_hparams_are_read_as_json_values(tmp_path):
    args = parse(tmp_path, "--hparams", "hidden=64, dropout=0.25,widths=[2, 3],decode=viterbi,constrain_chunks=false")
    assert args.hparams == {"hidden": 64, "dropout": 0.25, "widths": [2, 3], "decode": "viterbi", "constrain_chunks": False}


@pytest.mark.parametrize("text", ["hidden", "=3", "two words=1"])
def test_bad_hparams_are_a_usage_error(tmp_path, text):
    with pytest.raises(UsageError, match="--hparams.*expected name=value"):
        parse(tmp_path, "--hparams", text)


def test_yaml_hparams_may_be_a_mapping_or_text(tmp_path):
    assert parse(tmp_path, yaml="hparams:\n  hidden: 50\n  widths: [2, 3]\n").hparams == {"hidden": 50, "widths": [2, 3]}
    assert parse(tmp_path, yaml="hparams: hidden=50\n").hparams == {"hidden": 50}


# --- FileJsonPyTorch.yaml ---------------------------------------------------------


def test_yaml_sets_options(tmp_path):
    args = parse(tmp_path, yaml="maxepochs: 1\nseed: 7\nnoshuffle: true\ncuda: False\nembs: token:10\n")
    assert (args.maxepochs, args.seed, args.noshuffle, args.cuda, args.embs) == (1, 7, True, False, "token:10")


def test_yaml_txt_name_is_read(tmp_path):
    assert parse(tmp_path, yaml="maxepochs: 2\n", yaml_name="FileJsonPyTorch.yaml.txt").maxepochs == 2


def test_yaml_keys_may_be_written_as_options(tmp_path):
    assert parse(tmp_path, yaml="--maxepochs: 4\n").maxepochs == 4


def test_command_line_wins_over_yaml(tmp_path):
    args = parse(tmp_path, "--maxepochs", "5", "--seed=9", yaml="maxepochs: 1\nseed: 7\nbatchsize: 8\n")
    assert (args.maxepochs, args.seed, args.batchsize) == (5, 9, 8)


def test_options_are_taken_by_their_exact_names_as_in_the_yaml_file(tmp_path):
    with pytest.raises(UsageError, match="unrecognized arguments: --maxepoch 5"):
        parse(tmp_path, "--maxepoch", "5")
    with pytest.raises(UsageError, match="unknown option 'maxepoch'"):
        parse(tmp_path, yaml="maxepoch: 5\n")


def test_the_options_the_yaml_file_set_are_recorded_for_the_log(tmp_path):
    args = parse(tmp_path, "--seed", "9", yaml="maxepochs: 1\nseed: 7\nvalfile:\n")
    assert args.from_yaml == {"maxepochs": 1} and args.yaml_file == str(tmp_path / "FileJsonPyTorch.yaml")
    assert parse(tmp_path / "none").from_yaml == {}


def test_the_training_log_names_the_options_from_the_yaml_file(train_cli, make_datadir):
    datadir = make_datadir("class-ionosphere", lines=60)
    (datadir / "FileJsonPyTorch.yaml").write_text("maxepochs: 1\nPYTHON_BIN: python3\n", encoding="utf-8")
    run = train_cli(datadir / "crvd.meta.json", datadir / "M", "--notrain")
    assert run.code == 0, run.err
    assert f"options from {datadir / 'FileJsonPyTorch.yaml'}: maxepochs=1\n" in run.err


def test_host_keys_in_yaml_are_ignored(tmp_path):
    args = parse(tmp_path, yaml="PYTHON_BIN: /opt/conda/bin/python\nshellcmd: nice\nshellparms: -n 5\n"
                                "CUDA_VISIBLE_DEVICES: ''\nmaxepochs: 3\n")
    assert args.maxepochs == 3 and not hasattr(args, "shellcmd") and not hasattr(args, "PYTHON_BIN")


@pytest.mark.parametrize("yaml, message", [
    ("maxepoch: 3\n", "unknown option 'maxepoch'"),
    ("help: true\n", "unknown option 'help'"),
    ("maxepochs: many\n", "maxepochs"),
    ("maxepochs: 0\n", "maxepochs"),
    ("cuda: maybe\n", "cuda"),
    ("es_metric: f1\n", "es_metric must be one of loss, accuracy, entity_f1"),
    ("noshuffle: 3\n", "noshuffle must be true or false"),
    ("maxepochs: [1\n", "not valid YAML"),
    ("- maxepochs\n- 3\n", "expected key: value lines"),
])
def test_bad_yaml_is_one_usage_error_naming_the_file(tmp_path, yaml, message):
    with pytest.raises(UsageError, match=re.escape(message)) as caught:
        parse(tmp_path, yaml=yaml)
    assert str(caught.value).startswith(str(tmp_path / "FileJsonPyTorch.yaml"))
    assert caught.value.exit_code == EXIT_USAGE and "\n" not in str(caught.value)


def test_empty_yaml_changes_nothing(tmp_path):
    assert parse(tmp_path, yaml="# nothing\n").maxepochs == 100


def test_yaml_key_without_a_value_keeps_the_default(tmp_path):
    args = parse(tmp_path, yaml="valfile:\nstopfile:\nmaxepochs: 2\n")
    assert (args.valfile, args.stopfile, args.maxepochs) == (None, None, 2)


def test_apply_options_accept_host_cuda_and_metafile():
    args = config.apply_parser().parse_args(["M", "--cuda", "False", "--metafile", "d/crvd.meta.json"])
    assert (args.cuda, args.metafile) == (False, "d/crvd.meta.json")
    assert config.apply_parser().parse_args(["M"]).cuda is False
