"""The module library: every module trains and reloads; a user module in the wrapper's
modules/ is found, recorded and needed at application; CRF taggers answer with valid
chunks and real probabilities; evaluate agrees with what the application server says."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from filejsonpytorch import evaluate, lfdata, metrics
from filejsonpytorch.apply import Server
from filejsonpytorch.network import find_module
from filejsonpytorch.batches import TensorData
from filejsonpytorch.install import install
from filejsonpytorch.config import parse_train_args
from filejsonpytorch.model_io import read_model
from filejsonpytorch.modules.bilstm import bidirectional_states, final_states
from filejsonpytorch.modules.dropout import Dropout
from filejsonpytorch.modules.encoder import ListCNN, NaiveBayesBag, by_length, convolve
from filejsonpytorch.train import main as train_main
from filejsonpytorch.training.data import training_data
from filejsonpytorch.training.setup import resumed_model
from filejsonpytorch.training.trainer import Hooks, Trainer

from conftest import SHARED_DATA


def make_datadir(tmp_path, name, lines=None):
    datadir = tmp_path / name
    datadir.mkdir()
    meta, data = ((SHARED_DATA / name / "crvd.meta.json", SHARED_DATA / name / "crvd.data.json")
                  if (SHARED_DATA / name).is_dir() else
                  (SHARED_DATA / f"{name}.meta.json", SHARED_DATA / f"{name}.data.json"))
    shutil.copy(meta, datadir / "crvd.meta.json")
    text = data.read_text(encoding="utf-8").splitlines(keepends=True)
    (datadir / "crvd.data.json").write_text("".join(text[:lines]), encoding="utf-8")
    return datadir


def train(datadir, *options):
    prefix = datadir / "FileJsonPyTorch.model"
    assert train_main([str(datadir / "crvd.meta.json"), str(prefix), "--seed", "1", "--maxepochs", "1", *options]) == 0
    return prefix


def requests(datadir, count):
    with open(datadir / "crvd.data.json", encoding="utf-8") as f:
        return [json.loads(line) for line, _ in zip(f, range(count))]


@pytest.mark.parametrize("name, module", [
    ("class-ngram-sp1", "mlp"),
    ("class-ngram-sp1", "cnn_classifier"),
    ("class-ngram-sp1", "bilstm_classifier"),
    ("abalone-train", "cnn_classifier"),
    ("seq-pos2", "bilstm_tagger"),
    ("seq-pos2", "bilstm_crf"),
    ("class-ionosphere", "template"),
    ("seq-pos2", "template"),
])
def test_every_module_trains_reloads_and_answers(tmp_path, name, module):
    datadir = make_datadir(tmp_path, name, lines=300)
    prefix = train(datadir, "--module", module)
    info = json.loads((datadir / "FileJsonPyTorch.model.json").read_text(encoding="utf-8"))
    assert info["arch"]["module"] == module
    server = Server.load(str(prefix))
    answers = [json.loads(server.answer(json.dumps(features).encode())) for features, _ in requests(datadir, 5)]
    assert all(answer["status"] == "ok" for answer in answers), answers
    # the server answers what the network predicts for the same instances read from the file
    schema, vocabs, network = load_network(prefix)
    data = lfdata.read_dataset(datadir / "crvd.data.json", schema, lfdata.Encoder(schema, vocabs))
    predicted, probabilities = evaluate.predict_all(network, TensorData(data.subset(np.arange(5))))
    outputs = [o for a in answers for o in (a["output"] if schema.is_sequence else [a["output"]])]
    if schema.target_kind == "numeric":
        assert outputs == pytest.approx((predicted * schema.target_std + schema.target_mean).tolist(), rel=1e-4)
        return
    assert outputs == [schema.labels[i] for i in predicted]
    dists = [d for a in answers for d in (a["dist"] if schema.is_sequence else [a["dist"]])]
    np.testing.assert_allclose(dists, probabilities, rtol=1e-4, atol=1e-6)


def test_hparams_shape_the_network_and_are_recorded(tmp_path):
    datadir = make_datadir(tmp_path, "class-ionosphere")
    prefix = train(datadir, "--hparams", "hidden=17,layers=2", "--folds", "1")
    info = json.loads((datadir / "FileJsonPyTorch.model.json").read_text(encoding="utf-8"))
    assert info["arch"]["hparams"]["hidden"] == 17 and info["arch"]["hparams"]["layers"] == 2
    linears = [m for m in Server.load(str(prefix)).network.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [17, 17, 2]


@pytest.mark.parametrize("hparams, message", [
    ("hiddn=3", "module 'mlp' has no hyper-parameter 'hiddn'; it has hidden=200"),
    ("hidden=wide", "hidden must be int like its default 200, got \"wide\""),
    ("dropout=[1]", "dropout must be float"),
])
def test_wrong_hparams_name_the_module_and_its_hyper_parameters(tmp_path, capsys, hparams, message):
    datadir = make_datadir(tmp_path, "class-ionosphere")
    assert train_main([str(datadir / "crvd.meta.json"), str(datadir / "m"), "--hparams", hparams]) == 2
    assert message in capsys.readouterr().err


def test_module_for_another_task_is_refused(tmp_path, capsys):
    datadir = make_datadir(tmp_path, "class-ionosphere")
    code = train_main([str(datadir / "crvd.meta.json"), str(datadir / "m"), "--module", "bilstm_tagger"])
    assert code == 2
    assert "module 'bilstm_tagger' is for sequence, but this data is classification" in capsys.readouterr().err


def test_unknown_module_names_what_is_available(tmp_path, capsys):
    datadir = make_datadir(tmp_path, "class-ionosphere")
    assert train_main([str(datadir / "crvd.meta.json"), str(datadir / "m"), "--module", "NoSuchNet"]) == 4
    err = capsys.readouterr().err
    assert "module 'NoSuchNet' not found" in err and "bilstm_crf" in err and "Traceback" not in err


def host_env(datadir, wrapper):
    return {**os.environ, "WRAPPER_HOME": str(wrapper), "GATE_LF_DATA_DIR": str(datadir), "PYTHON_BIN": sys.executable}


@pytest.mark.slow
def test_user_module_in_the_wrapper_is_found_recorded_and_needed(tmp_path):
    datadir = make_datadir(tmp_path, "class-ionosphere")
    wrapper = install(datadir)
    template = (wrapper / "modules" / "template.py").read_text(encoding="utf-8")
    (wrapper / "modules" / "MyNet.py").write_text(
        template.replace("class TemplateNet", "class MyNet").replace('"hidden": 100', '"hidden": 17'), encoding="utf-8")
    env = host_env(datadir, wrapper)
    meta, prefix = datadir / "crvd.meta.json", datadir / "FileJsonPyTorch.model"
    trained = subprocess.run([wrapper / "train.sh", meta, prefix, "--module", "MyNet", "--maxepochs", "2"],
                             cwd=datadir, env=env, capture_output=True, text=True)
    assert trained.returncode == 0, trained.stderr
    info = json.loads((datadir / "FileJsonPyTorch.model.json").read_text(encoding="utf-8"))
    assert info["arch"]["module"] == "MyNet" and info["arch"]["hparams"]["hidden"] == 17

    features = json.dumps(requests(datadir, 1)[0][0])
    applied = subprocess.run([wrapper / "apply.sh", prefix, meta, wrapper], input=features + "\n",
                             cwd=datadir, env=env, capture_output=True, text=True)
    assert applied.returncode == 0 and json.loads(applied.stdout)["status"] == "ok"
    evaluated = subprocess.run([wrapper / "evaluate.sh", prefix, datadir / "crvd.data.json", "--json"],
                               cwd=datadir, env={k: v for k, v in env.items() if k != "WRAPPER_HOME"},
                               capture_output=True, text=True)
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["classification"]["accuracy"] > 0.5

    (wrapper / "modules" / "MyNet.py").unlink()
    missing = subprocess.run([wrapper / "apply.sh", prefix, meta, wrapper], input=features + "\n",
                             cwd=datadir, env=env, capture_output=True, text=True)
    assert missing.returncode == 0 and "Traceback" not in missing.stderr
    assert "module 'MyNet' not found" in missing.stderr
    answer = json.loads(missing.stdout)
    assert answer["status"] == "error" and "module 'MyNet' not found" in answer["error"]


def crf_answers(tmp_path, decode):
    datadir = make_datadir(tmp_path, "seq-pos2")
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps({"hparams": {"decode": decode}}))
    prefix = train(datadir, "--maxepochs", "3", "--arch", str(arch))
    server = Server.load(str(prefix))
    for features, _ in requests(datadir, 30):
        answer = json.loads(server.answer(json.dumps(features).encode()))
        assert len(answer["output"]) == len(features)
        for label, conf, dist in zip(answer["output"], answer["conf"], answer["dist"]):
            assert abs(sum(dist) - 1) < 1e-9 and min(dist) >= 0
            assert conf == dist[server.labels.index(label)]
        yield answer


def test_crf_tagger_answers_the_most_probable_labels_by_default(tmp_path):
    for answer in crf_answers(tmp_path, "marginal"):
        for label, dist in zip(answer["output"], answer["dist"]):
            assert answer["labels"][int(np.argmax(dist))] == label


def test_crf_viterbi_answers_valid_chunks_with_marginal_probabilities(tmp_path):
    for answer in crf_answers(tmp_path, "viterbi"):
        previous = "O"
        for label in answer["output"]:
            if label.endswith("|I"):
                assert previous in (label, label[:-1] + "B"), answer["output"]
            previous = label


def test_evaluate_agrees_with_the_application_server(tmp_path):
    datadir = make_datadir(tmp_path, "seq-pos2")
    prefix = train(datadir, "--maxepochs", "3", "--module", "bilstm_tagger")
    model_file = Path(f"{prefix}.json")
    model_file.write_text(json.dumps({**json.loads(model_file.read_text()), "temperature": 2.0}))
    report = evaluate.evaluate(str(prefix), str(datadir / "crvd.data.json"))
    server = Server.load(str(prefix))
    gold, predicted, gold_probabilities = [], [], []
    for features, labels in requests(datadir, 10_000):
        answer = json.loads(server.answer(json.dumps(features).encode()))
        gold.append(labels)
        predicted.append(answer["output"])
        gold_probabilities += [dist[answer["labels"].index(label)] for dist, label in zip(answer["dist"], labels)]
    flat_gold, flat_pred = sum(gold, []), sum(predicted, [])
    expected_accuracy = np.mean([g == p for g, p in zip(flat_gold, flat_pred)])
    assert report["tokens"]["accuracy"] == pytest.approx(expected_accuracy)
    assert report["entities"]["micro"]["f1"] == pytest.approx(metrics.entity_report(gold, predicted)["micro"]["f1"])
    assert report["probabilities"]["log_loss"] == pytest.approx(-np.mean(np.log(gold_probabilities)), rel=1e-6)


def test_evaluate_regression_and_json_output(tmp_path, capsys):
    datadir = make_datadir(tmp_path, "abalone-train")
    prefix = train(datadir, "--maxepochs", "5")
    assert evaluate.main([str(prefix), str(datadir / "crvd.data.json"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    server = Server.load(str(prefix))
    errors = [json.loads(server.answer(json.dumps(f).encode()))["output"] - target for f, target in requests(datadir, 1000)]
    assert report["regression"]["rmse"] == pytest.approx(float(np.sqrt(np.mean(np.square(errors)))), rel=1e-5)
    assert report["regression"]["n"] == 320


# --- the tagger's BiLSTM over padded sequences ---------------------------------------


@pytest.mark.parametrize("layers, bias", [(1, True), (2, True), (1, False)])
def test_bidirectional_states_are_those_of_packed_sequences_with_their_gradients(layers, bias):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(6, 5, num_layers=layers, bias=bias, batch_first=True, bidirectional=True).eval()
    x = torch.randn(4, 7, 6, requires_grad=True)
    lengths = torch.tensor([7, 3, 1, 5])
    real = torch.arange(7) < lengths.unsqueeze(1)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    expected = torch.nn.utils.rnn.pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=7)[0][real]
    expected_grads = torch.autograd.grad(expected.square().sum(), [x, *lstm.parameters()])
    states = bidirectional_states(lstm, x, lengths)[real]
    grads = torch.autograd.grad(states.square().sum(), [x, *lstm.parameters()])
    assert torch.allclose(states, expected, atol=1e-6)
    for grad, expected_grad in zip(grads, expected_grads):
        assert torch.allclose(grad, expected_grad, atol=1e-5)


@pytest.mark.parametrize("rows", [4, 1])
def test_final_states_are_the_packed_lstms_with_their_gradients(rows):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(6, 5, batch_first=True, bidirectional=True).eval()
    x = torch.randn(rows, 7, 6, requires_grad=True)
    lengths = torch.tensor([7, 3, 1, 5])[-rows:]  # one row alone: padded all the same
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    h = lstm(packed)[1][0]
    expected = torch.cat([h[-2], h[-1]], dim=-1)
    expected_grads = torch.autograd.grad(expected.square().sum(), [x, *lstm.parameters()])
    final = final_states(lstm, x, lengths)
    grads = torch.autograd.grad(final.square().sum(), [x, *lstm.parameters()])
    assert torch.allclose(final, expected, atol=1e-6)
    for grad, expected_grad in zip(grads, expected_grads):
        assert torch.allclose(grad, expected_grad, atol=1e-5)


def test_bidirectional_states_read_a_padded_sequence_as_the_sequence_alone():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(6, 5, batch_first=True, bidirectional=True)
    x = torch.randn(2, 6, 6)
    alone = lstm(x[1:, :4])[0]
    assert torch.allclose(bidirectional_states(lstm, x, torch.tensor([6, 4]))[1, :4], alone[0], atol=1e-6)


# --- the list CNN: a matrix product per window, rows grouped by length -------------


@pytest.mark.parametrize("width, bias", [(1, True), (2, True), (3, True), (4, False), (5, True)])
def test_convolve_is_conv1d_with_its_gradients(width, bias):
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(6, 4, width, padding=width // 2, bias=bias)
    vectors = torch.randn(3, 7, 6, requires_grad=True)
    expected = conv(vectors.transpose(1, 2))[..., :7].transpose(1, 2)
    expected_grads = torch.autograd.grad(expected.square().sum(), [vectors, *conv.parameters()])
    ours = convolve(conv, vectors)
    grads = torch.autograd.grad(ours.square().sum(), [vectors, *conv.parameters()])
    assert ours.shape == (3, 7, 4) and torch.allclose(ours, expected, atol=1e-6)
    for grad, expected_grad in zip(grads, expected_grads):
        assert torch.allclose(grad, expected_grad, atol=1e-5)


def test_rows_grouped_by_length_encode_as_the_whole_batch_with_their_gradients():
    torch.manual_seed(0)
    embedding, cnn = torch.nn.Embedding(20, 5, padding_idx=0), ListCNN(5, [2, 3], 4, mean=True)
    lengths = torch.tensor([0, 1, 3, 4, 5, 8, 9, 17, 40, 2, 6, 4])
    rows = torch.randint(1, 20, (len(lengths), 40)) * (torch.arange(40) < lengths.unsqueeze(1))
    widths = []

    def compute(ids):
        widths.append(ids.shape[1])
        return cnn(embedding(ids), ids != 0)

    expected = compute(rows)
    expected_grads = torch.autograd.grad(expected.square().sum(), [embedding.weight, *cnn.parameters()])
    widths.clear()
    grouped = by_length(rows, compute)
    grads = torch.autograd.grad(grouped.square().sum(), [embedding.weight, *cnn.parameters()])
    assert torch.allclose(grouped, expected, atol=1e-6)
    for grad, expected_grad in zip(grads, expected_grads):
        assert torch.allclose(grad, expected_grad, atol=1e-5)
    assert widths == [4, 8, 9, 17, 40]  # each group cut to its longest row
    assert by_length(rows[:0], compute).shape == (0, cnn.out_dim)


# --- dropout ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("p", [0.1, 0.25, 0.33, 0.5, 0.9])
def test_dropout_is_torchs_bit_for_bit_with_its_gradients_and_generator_state(p, dtype):
    for shape in [(7, 3), (32, 500), (4, 30, 200)]:
        x = torch.randn(shape, dtype=dtype, requires_grad=True)
        torch.manual_seed(5)
        expected, expected_next = nn.functional.dropout(x, p, True), torch.rand(3)
        expected_grad, = torch.autograd.grad((expected * 3).sum(), x)
        torch.manual_seed(5)
        out, out_next = Dropout(p)(x), torch.rand(3)
        grad, = torch.autograd.grad((out * 3).sum(), x)
        assert torch.equal(out, expected) and torch.equal(grad, expected_grad) and torch.equal(out_next, expected_next)
    assert abs((out == 0).float().mean() - p) < 0.01  # 24,000 elements: 0.01 is over 5 sigma


def test_dropout_passes_its_input_in_evaluation():
    x = torch.rand(3, 4)
    assert Dropout(0.5).eval()(x) is x


def test_dropout_of_0_and_1_is_torchs():
    x = torch.rand(3, 4) + 0.5
    assert torch.equal(Dropout(0.0)(x), x) and torch.equal(Dropout(1.0)(x), torch.zeros(3, 4))


# --- the naive Bayes bag of the mlp ---------------------------------------------------


def test_naive_bayes_bag_takes_each_word_and_pair_once():
    bag = NaiveBayesBag(vocab_size=10, n_classes=2)
    grams = bag.ngrams(torch.tensor([[3, 4, 3, 4, 0, 0]]))[0].tolist()
    assert sorted(g for g in grams if g) == [3, 4, 34, 43] and grams.count(0) == 7


def test_naive_bayes_bag_scores_are_hand_computed_log_probability_ratios():
    bag = NaiveBayesBag(vocab_size=5, n_classes=2)
    ids = torch.tensor([[2, 3], [2, 4], [4, 0]])
    bag.count([(ids, torch.tensor([0, 1, 1]))])
    # class 0 holds 3 n-grams (2, 3, pair 2-3), class 1 holds 4 (2, 4, pair 2-4, 4); five
    # distinct n-grams were seen, so add-one smoothing divides by 3 + 5 and 4 + 5
    word_3 = (np.log(2 / 8) - np.log(1 / 9)) / 2
    pair_2_3 = word_3
    word_2 = (np.log(2 / 8) - np.log(2 / 9)) / 2
    assert bag(torch.tensor([[3, 0]]))[0].tolist() == pytest.approx([word_3, -word_3], rel=1e-5)
    assert bag(torch.tensor([[2, 3]]))[0].tolist() == pytest.approx([word_2 + word_3 + pair_2_3, -(word_2 + word_3 + pair_2_3)], rel=1e-5)
    unseen = torch.tensor([[1, 0], [3, 2], [0, 0]])  # out-of-vocabulary, the unseen pair 3-2, nothing
    assert bag(unseen).flatten().tolist() == pytest.approx([0, 0, word_3 + word_2, -(word_3 + word_2), 0, 0], rel=1e-5)


def test_naive_bayes_bag_without_pairs_still_scores_words():
    bag = NaiveBayesBag(vocab_size=5, n_classes=3)
    bag.count([(torch.tensor([[2], [3], [4]]), torch.tensor([0, 1, 2]))])
    assert len(bag.pair_keys) == 0
    assert bag(torch.tensor([[2, 3], [4, 0]])).argmax(1).tolist()[1] == 2


def load_network(prefix):
    model = read_model(str(prefix))
    return model.schema, model.vocabs, model.network.eval()


def test_sequence_taggers_leave_out_window_features_of_the_neighbours(tmp_path, capsys):
    datadir = make_datadir(tmp_path, "seq-pos1", lines=100)
    prefix = train(datadir)
    assert "leaves out the 15 window features of neighbouring elements (Token┆string╬L-3" in capsys.readouterr().err
    schema, vocabs, network = load_network(prefix)
    ignored = network.arch.ignore_nominal
    assert [f.name for i, f in enumerate(schema.nominal) if i not in ignored] == \
        ["Token┆string╬L0", "Token┆suf2╬L0", "Token┆suf3╬L0"]
    batch = TensorData(lfdata.read_dataset(datadir / "crvd.data.json", schema, lfdata.Encoder(schema, vocabs))).batch(np.arange(8))
    network.eval()
    with torch.no_grad():
        scores = network(batch)
        batch["nominal"][..., ignored] = lfdata.OOV
        assert torch.equal(network(batch), scores)
        batch["nominal"][..., [f.name for f in schema.nominal].index("Token┆string╬L0")] = lfdata.OOV
        assert not torch.equal(network(batch), scores)
    arch = {**network.arch.to_json(), "ignore_nominal": []}
    (tmp_path / "all.json").write_text(json.dumps(arch), encoding="utf-8")
    with_windows = train(datadir, "--arch", str(tmp_path / "all.json"))
    assert Server.load(str(with_windows)).network.encoder.out_dim > network.encoder.out_dim
    assert json.loads((datadir / "FileJsonPyTorch.model.json").read_text(encoding="utf-8"))["arch"]["ignore_nominal"] == []


def test_a_module_that_does_not_read_sequences_gets_every_window_feature(tmp_path):
    prefix = train(make_datadir(tmp_path, "seq-pos1", lines=50), "--module", "template", "--notrain")
    assert Server.load(str(prefix)).network.arch.ignore_nominal == []


def test_mlp_on_lists_counts_naive_bayes_once_and_adds_it_only_outside_training(tmp_path):
    datadir = make_datadir(tmp_path, "class-ngram-sp1")
    prefix = train(datadir, "--maxepochs", "2")
    schema, vocabs, network = load_network(prefix)
    bag = network.bags[0]
    assert len(bag.pair_keys) > 0 and bag.scores.abs().sum() > 0
    data = lfdata.read_dataset(datadir / "crvd.data.json", schema, lfdata.Encoder(schema, vocabs))
    batch = TensorData(data).batch(np.arange(20))
    with torch.no_grad():
        predicting = network(batch)
        network.train()
        network.layers.eval()  # dropout off, so that only the naive Bayes term differs
        learning = network(batch)
    assert torch.allclose(predicting - learning, network.hp["naive_bayes"] * bag(batch["lists"][0]), atol=1e-5)
    args = parse_train_args([str(datadir / "crvd.meta.json"), str(prefix), "--resume"])
    model = resumed_model(args)
    model.network.bags[0].scores.zero_()
    Trainer(args, model, torch.device("cpu"), *training_data(args, model), Hooks())
    assert model.network.bags[0].scores.abs().sum() == 0  # not counted again on resume


def test_mlp_without_lists_or_for_regression_has_no_bag(tmp_path):
    for name in ("class-ionosphere", "abalone-train"):
        prefix = train(make_datadir(tmp_path, name), "--folds", "1")
        assert len(Server.load(str(prefix)).network.bags) == 0


def test_feature_vectors_get_a_deeper_wider_mlp_and_lists_keep_its_defaults(tmp_path, capsys):
    vectors = train(make_datadir(tmp_path, "class-ionosphere"), "--folds", "1", "--notrain")
    assert "module mlp with hidden=500, layers=3: fixed-length feature vectors" in capsys.readouterr().err
    network = Server.load(str(vectors)).network
    assert [m.out_features for m in network.layers if isinstance(m, torch.nn.Linear)] == [500, 500, 500, 2]
    lists = train(make_datadir(tmp_path, "class-ngram-sp1"), "--notrain")
    assert "module mlp with" not in capsys.readouterr().err
    hparams = Server.load(str(lists)).network.arch.hparams
    assert (hparams["hidden"], hparams["layers"]) == (200, 1)
    explicit = train(make_datadir(tmp_path, "abalone-train"), "--folds", "1", "--notrain", "--hparams", "layers=1")
    assert Server.load(str(explicit)).network.arch.hparams["layers"] == 1
    assert "module mlp with hidden=500: fixed-length" in capsys.readouterr().err


def test_arch_file_naming_another_module_gets_that_modules_defaults(tmp_path):
    datadir = make_datadir(tmp_path, "class-ionosphere")
    (tmp_path / "arch.json").write_text(json.dumps({"module": "template"}), encoding="utf-8")
    prefix = train(datadir, "--folds", "1", "--notrain", "--arch", str(tmp_path / "arch.json"))
    arch = Server.load(str(prefix)).network.arch
    assert arch.module == "template" and arch.hparams == find_module("template").hparams


def test_lists_of_a_classification_are_averaged_by_default_and_read_by_a_cnn_on_request(tmp_path, capsys):
    averaged = Server.load(str(train(make_datadir(tmp_path, "class-ngram-sp1"), "--notrain"))).network
    assert averaged.arch.lists[0]["layer"] == "mean"
    assert f"n-gram lists ({averaged.arch.lists[0]['emb']}) averaged" in capsys.readouterr().err
    encoder = averaged.encoder.list_encoders[0]
    assert len(encoder.convs) == 0 and encoder.out_dim == averaged.arch.embeddings[averaged.arch.lists[0]["emb"]].dims
    vectors = torch.randn(2, 4, encoder.out_dim)
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    assert torch.allclose(encoder(vectors, mask), torch.stack([vectors[0, :2].mean(0), vectors[1].mean(0)]))
    other = tmp_path / "cnn"
    other.mkdir()
    convolved = Server.load(str(train(make_datadir(other, "class-ngram-sp1"), "--notrain", "--ngram_layer", "cnn"))).network
    assert convolved.arch.lists[0]["layer"] == "cnn" and len(convolved.encoder.list_encoders[0].convs) == 3
