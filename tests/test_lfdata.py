"""Reading LF exports: every feature kind and value type of the real exports in
../shared/data, vocabularies and ids, standardisation, list shortening, subsets, and the
data quirks and errors a reader meets."""

import json
import math

import numpy as np
import pytest
import torch

from conftest import data_lines, export_paths, prepare, write_lines
from filejsonpytorch import config, lfdata, vocab
from filejsonpytorch.default_architecture import default_architecture
from filejsonpytorch.network import build_network
from filejsonpytorch.batches import TensorData, epoch_order
from filejsonpytorch.errors import DataError, UsageError

PAD, OOV = 0, 1


def read(name, lines=None, tmp_path=None, **options):
    """(Prepared, Dataset) for a shared export, or for its first `lines` lines."""
    meta, data = export_paths(name)
    if lines is not None:
        data = write_lines(tmp_path / "part.data.json", data_lines(name, lines))
    p = prepare(meta, data_path=data, **options)
    return p, lfdata.read_dataset(data, p.schema, p.encoder)


def stats(p, feature_name):
    return p.meta["featureStats"][feature_name]


def standardised(value, feature_stats):
    return (value - feature_stats["mean"]) / math.sqrt(feature_stats["variance"])


def assert_same_dataset(a, b):
    np.testing.assert_array_equal(a.nominal, b.nominal)
    np.testing.assert_array_equal(a.numeric, b.numeric)
    np.testing.assert_array_equal(a.target, b.target)
    for x, y in zip(a.list_ids + a.list_offsets, b.list_ids + b.list_offsets):
        np.testing.assert_array_equal(x, y)
    if a.seq_offsets is None:
        assert b.seq_offsets is None
    else:
        np.testing.assert_array_equal(a.seq_offsets, b.seq_offsets)


# --- numeric and nominal ATTRIBUTE features, the three target kinds -------------------


def test_ionosphere_numeric_features_are_standardised_with_meta_stats():
    p, data = read("class-ionosphere")
    first = json.loads(data_lines("class-ionosphere", 1)[0])
    assert [f.role for f in p.schema.features] == ["numeric"] * 34
    assert data.numeric.shape == (351, 34) and data.nominal.shape == (351, 0)
    for column in (0, 2, 33):
        feature = p.schema.features[column]
        expected = standardised(first[0][column], stats(p, feature.name))
        assert data.numeric[0, column] == pytest.approx(expected, rel=1e-5)


def test_zero_variance_feature_is_only_centred():
    p, data = read("class-ionosphere")
    feature = p.schema.features[1]  # a02 is 0.0 everywhere
    assert stats(p, feature.name)["variance"] == 0.0
    assert feature.std == 1.0
    assert np.all(data.numeric[:, 1] == 0.0)


def test_nominal_target_labels_are_sorted_ids():
    p, data = read("class-ionosphere")
    assert p.schema.target_kind == "nominal" and p.schema.labels == ["b", "g"]
    assert data.target[:2].tolist() == [1, 0]  # "g", "b"
    assert data.target.dtype == np.int64 and len(data) == 351 and data.seq_offsets is None


def test_abalone_nominal_and_numeric_features_and_numeric_target():
    p, data = read("abalone-train")
    sex = p.schema.features[0]
    assert sex.role == "nominal" and [f.role for f in p.schema.features[1:]] == ["numeric"] * 7
    # vocabulary by descending count: M 138, F 122, I 60
    assert p.vocabs[sex.emb_id].itos == ["<pad>", "<oov>", "M", "F", "I"]
    assert data.nominal[:5, 0].tolist() == [2, 2, 3, 2, 4]  # M M F M I
    assert data.numeric[0, 0] == pytest.approx(standardised(0.455, stats(p, "┆length╬A")), rel=1e-5)
    target = p.meta["targetStats"]
    assert p.schema.target_kind == "numeric" and p.schema.labels == []
    assert data.target.dtype == np.float32
    assert data.target[0] == pytest.approx(standardised(15.0, target), rel=1e-5)


def test_value_not_in_the_meta_stats_is_out_of_vocabulary(tmp_path):
    meta, _ = export_paths("abalone-train")
    data = write_lines(tmp_path / "x.data.json", ['[["X",0.5,0.4,0.1,0.5,0.2,0.1,0.2],9]',
                                                  '[["<pad>",0.5,0.4,0.1,0.5,0.2,0.1,0.2],9]'])
    p = prepare(meta, data_path=data)
    assert lfdata.read_dataset(data, p.schema, p.encoder).nominal[:, 0].tolist() == [OOV, OOV]


def test_nominal_value_written_as_a_number_is_looked_up_as_text(tmp_path):
    meta, _ = export_paths("abalone-train")
    p = prepare(meta)
    sex = p.schema.features[0]
    p.vocabs[sex.emb_id].stoi["3.5"] = 4
    encoder = lfdata.Encoder(p.schema, p.vocabs)
    assert encoder.encode([3.5, 0.5, 0.4, 0.1, 0.5, 0.2, 0.1, 0.2])[0] == [4]


# --- sequences ---------------------------------------------------------------------


def test_sequence_of_nominal_elements_with_label_targets():
    p, data = read("ner-wikigold-train")
    first = json.loads(data_lines("ner-wikigold-train", 1)[0])
    stoi = p.vocabs[p.schema.features[0].emb_id].stoi
    n = len(first[0])
    assert p.schema.is_sequence and len(data) == 1384
    assert data.seq_offsets[:2].tolist() == [0, n]
    assert data.nominal[:n, 0].tolist() == [stoi[e[0]] for e in first[0]]
    assert data.target[:n].tolist() == [p.schema.labels.index(label) for label in first[1]]
    assert data.seq_offsets[-1] == len(data.target) == p.meta["targetStats"]["n"]


def test_elements_with_nominal_numeric_and_ngram_features():
    p, data = read("ner-wikigold-multi-train")
    first = json.loads(data_lines("ner-wikigold-multi-train", 1)[0])
    token, length, ngram = p.schema.features
    assert (token.role, length.role, ngram.role) == ("nominal", "numeric", "list")
    n = len(first[0])
    assert data.nominal[:n, 0].tolist() == [p.vocabs[token.emb_id].stoi[e[0]] for e in first[0]]
    np.testing.assert_allclose(data.numeric[:n, 0], [standardised(e[1], stats(p, length.name)) for e in first[0]],
                               rtol=1e-5)
    ids, offsets = data.list_ids[0], data.list_offsets[0]
    ngram_stoi = p.vocabs["tokenstring"].stoi
    for row, element in enumerate(first[0][:10]):
        assert ids[offsets[row]:offsets[row + 1]].tolist() == [ngram_stoi.get(w, OOV) for w in element[2]]


def test_emb_minfreq_makes_rare_values_out_of_vocabulary():
    p, data = read("ner-wikigold-multi-train")
    counts = stats(p, "Token┆string╬N1")["stringCounts"]
    assert counts["010"] == 2 and counts["album"] == 17
    assert p.vocabs["tokenstring"].settings.minfreq == 3
    assert "010" not in p.vocabs["tokenstring"].stoi and "album" in p.vocabs["tokenstring"].stoi
    assert len(p.vocabs["tokenstring"]) == 2 + sum(1 for n in counts.values() if n >= 3)
    # the first element of the first sentence is "010": OOV in the n-gram feature (minfreq 3),
    # a real id in the A feature (minfreq 1)
    assert data.list_ids[0][0] == OOV
    assert data.nominal[0, 0] >= 2


def test_embs_override_of_minfreq():
    meta, _ = export_paths("ner-wikigold-multi-train")
    p = prepare(meta, embs="tokenstring:::1")
    assert p.vocabs["tokenstring"].settings.minfreq == 1
    assert "010" in p.vocabs["tokenstring"].stoi


def test_missing_emb_minfreq_means_one():
    meta, _ = export_paths("class-ngram-sp1")
    p = prepare(meta)
    counts = stats(p, "Token┆string╬N1")["stringCounts"]
    assert "emb_minfreq" not in p.attributes[0]
    assert len(p.vocabs["token"]) == 2 + len(counts)


# --- window (L) features, gate.LF.target, shared embedding ids -------------------------


def test_window_features_with_previous_target_labels():
    p, data = read("class-window-pos1")
    first = json.loads(data_lines("class-window-pos1", 1)[0])
    names = [f.name for f in p.schema.features]
    assert all(f.kind == "L" and f.role == "nominal" for f in p.schema.features)
    target_columns = [names.index("Token┆gate.LF.target╬L-2"), names.index("Token┆gate.LF.target╬L-1")]
    label_stoi = p.vocabs["label"].stoi
    assert [first[0][c] for c in target_columns] == ["VERB", "DET"]
    assert data.nominal[0, target_columns].tolist() == [label_stoi["VERB"], label_stoi["DET"]]
    # the LF writes "" outside the sentence: a real value, neither padding nor OOV
    assert label_stoi[""] >= 2
    for column, value in enumerate(first[0]):
        assert data.nominal[0, column] == p.vocabs[p.schema.features[column].emb_id].stoi.get(value, OOV)


def test_features_sharing_an_emb_id_share_one_vocabulary():
    p, data = read("class-window-pos1")
    assert sorted(p.vocabs) == ["label", "shape", "suf", "token"]
    suf2 = set(stats(p, "Token┆suf2╬L0")["stringCounts"])
    suf3 = set(stats(p, "Token┆suf3╬L0")["stringCounts"])
    assert "'s" in suf2 - suf3 and "ing" in suf3 - suf2
    suf = p.vocabs["suf"]
    assert {"'s", "ing"} <= set(suf.stoi)
    encoder_stoi = {f.name: stoi for _, stoi, f in p.encoder.nominal}
    assert encoder_stoi["Token┆suf2╬L0"] is encoder_stoi["Token┆suf3╬L2"] is suf.stoi


def test_vocabulary_counts_a_window_once_and_sums_the_attributes_sharing_an_id():
    p, _ = read("class-window-pos1")

    def count(attribute, value):
        return max(stats(p, f"Token┆{attribute}╬L{i}")["stringCounts"].get(value, 0) for i in range(-3, 3))

    token, suf = p.vocabs["token"], p.vocabs["suf"]
    assert token.counts[token.stoi["the"]] == count("string", "the") < 6 * count("string", "the")
    assert suf.counts[suf.stoi["ing"]] == count("suf2", "ing") + count("suf3", "ing")
    assert token.counts[2:] == sorted(token.counts[2:], reverse=True)


def test_emb_minfreq_counts_how_often_a_word_occurs_not_its_window_positions(tmp_path):
    meta, data = export_paths("class-window-pos1")
    edited = json.loads(open(meta, encoding="utf-8").read())
    for attribute in edited["featureInfo"]["attributes"]:
        if attribute.get("emb_id") == "token":
            attribute["emb_minfreq"] = 3
    (tmp_path / "crvd.meta.json").write_text(json.dumps(edited, ensure_ascii=False), encoding="utf-8")
    write_lines(tmp_path / "crvd.data.json", data_lines("class-window-pos1"))
    p = prepare(tmp_path / "crvd.meta.json")
    occurrences = {}
    for i in range(-3, 3):
        for word, n in stats(p, f"Token┆string╬L{i}")["stringCounts"].items():
            occurrences[word] = max(occurrences.get(word, 0), n)
    assert set(p.vocabs["token"].itos[2:]) == {w for w, n in occurrences.items() if n >= 3}


def test_training_counts_of_a_window_are_its_largest_count_at_one_position():
    p, data = read("class-window-pos1")
    sizes = {k: len(v) for k, v in p.vocabs.items()}
    counts = data.id_counts(p.schema, sizes)
    columns = [c for c, f in enumerate(p.schema.nominal) if f.name.startswith("Token┆string╬L")]
    per_column = [np.bincount(data.nominal[:, c], minlength=sizes["token"]) for c in columns]
    np.testing.assert_array_equal(counts["token"], np.max(per_column, axis=0))


def test_onehot_emb_train_gives_a_onehot_input():
    p, _ = read("class-window-pos1")
    assert p.vocabs["label"].settings.train == "onehot"
    arch = default_architecture(p.schema, p.vocabs)
    size = len(p.vocabs["label"])
    assert arch.to_json()["embeddings"]["label"] == {"vocab_size": size, "dims": size, "train": "onehot"}
    network = build_network(arch)
    vectors = network.encoder.embeddings["label"](torch.tensor([3, 5]))
    assert vectors.tolist() == [[1.0 if i == k else 0.0 for i in range(size)] for k in (3, 5)]


def test_features_without_emb_id_get_one_vocabulary_per_attribute():
    p, _ = read("seq-pos2")
    assert [f.emb_id for f in p.schema.features] == ["attr0"] and list(p.vocabs) == ["attr0"]


# --- n-gram (N) list features -------------------------------------------------------


@pytest.mark.parametrize("name", ["class-ngram-sp1", "sentpol-train"])
def test_ngram_list_feature_ids(name):
    p, data = read(name)
    feature = p.schema.features[0]
    stoi = p.vocabs[feature.emb_id].stoi
    assert feature.kind == "N" and feature.role == "list"
    for row, line in enumerate(data_lines(name, 3)):
        words = json.loads(line)[0][0]
        start, end = data.list_offsets[0][row], data.list_offsets[0][row + 1]
        assert data.list_ids[0][start:end].tolist() == [stoi.get(w, OOV) for w in words]
    assert len(data.list_offsets[0]) == len(data) + 1


def test_empty_ngram_list_is_read(tmp_path):
    meta, _ = export_paths("sentpol-train")
    data = write_lines(tmp_path / "x.data.json", ['[[[]],"pos"]', '[[["good"]],"neg"]'])
    p = prepare(meta, data_path=data)
    dataset = lfdata.read_dataset(data, p.schema, p.encoder)
    assert dataset.list_offsets[0].tolist() == [0, 0, 1]


def test_list_padding_is_zero_in_batches():
    _, data = read("class-ngram-sp1")
    lists = TensorData(data).batch([0, 1])["lists"][0]  # 6 and 10 words
    assert lists.shape == (2, 10)
    assert lists[0, 6:].tolist() == [PAD] * 4 and (lists[0, :6] >= 2).all()


def test_an_epoch_groups_instances_with_lists_by_length_and_takes_each_once():
    _, data = read("class-ngram-sp1")
    data = TensorData(data)
    batches = epoch_order(data, 8, np.random.default_rng(1))
    assert sorted(np.concatenate(batches).tolist()) == list(range(data.size))
    padded = sum(len(b) * int(data.lengths[b].max()) for b in batches)
    shuffled = np.random.default_rng(1).permutation(data.size)
    padded_at_random = sum(len(b) * int(data.lengths[b].max()) for b in np.array_split(shuffled, len(batches)))
    assert padded < 0.8 * padded_at_random


def test_sequence_padding_is_zero_and_masked():
    _, data = read("seq-pos2")
    batch = TensorData(data).batch([0, 1])  # 11 and 36 elements
    assert batch["mask"].sum(dim=1).tolist() == [11, 36]
    assert batch["nominal"][0, 11:].eq(PAD).all() and batch["nominal"][0, :11].ne(PAD).all()


# --- --maxlens --------------------------------------------------------------------


@pytest.mark.parametrize("shorten, kept", [
    ("right", [0, 1, 2, 3]),
    ("left", [6, 7, 8, 9]),
    ("both", [3, 4, 5, 6]),
    ("middle", [0, 1, 8, 9]),
])
def test_shorten_cuts_on_the_named_side(shorten, kept):
    assert lfdata.shorten(list(range(10)), 4, shorten) == kept


def test_shorten_keeps_short_lists():
    assert lfdata.shorten([5, 6], 4, "left") == [5, 6]


@pytest.mark.parametrize("spec, shorten", [("0:3:left", "left"), (":3:middle", "middle"), ("0:3", "right")])
def test_maxlens_shortens_ngram_lists_when_reading(spec, shorten):
    p, data = read("class-ngram-sp1", maxlens=spec)
    assert p.schema.maxlens == {0: (3, shorten)}
    full, _ = read("class-ngram-sp1")
    stoi = full.vocabs["token"].stoi
    for row, line in enumerate(data_lines("class-ngram-sp1", 3)):
        ids = [stoi[w] for w in json.loads(line)[0][0]]
        start, end = data.list_offsets[0][row], data.list_offsets[0][row + 1]
        assert data.list_ids[0][start:end].tolist() == lfdata.shorten(ids, 3, shorten)
    assert np.diff(data.list_offsets[0]).max() == 3


@pytest.mark.parametrize("spec", ["0:x", "0:0", "0:3:sideways", "0:3:left:1", "5:3"])
def test_bad_maxlens_is_a_usage_error(spec):
    p, _ = read("seq-pos2")
    with pytest.raises(UsageError, match="--maxlens"):
        config.parse_maxlens(spec, p.schema, p.attributes)


def test_maxlens_on_a_feature_that_is_not_a_list_is_refused():
    meta, _ = export_paths("abalone-train")
    with pytest.raises(UsageError, match="not an n-gram/list attribute"):
        prepare(meta, maxlens="0:3")


# --- boolean and list-valued ATTRIBUTE features (a hand-made export) -------------------

TINY_META = {
    "isSequence": False,
    "features": [
        {"attrid": 0, "datatype": "boolean", "kind": "A", "name": "Token┆isCap╬A"},
        {"attrid": 1, "datatype": "boolean", "kind": "A", "name": "Person┆╬A"},
        {"attrid": 2, "datatype": "nominal", "kind": "A", "name": "Token┆tags╬A"},
        {"attrid": 3, "datatype": "nominal", "kind": "A", "name": "Token┆senses╬A"},
        {"attrid": 4, "datatype": "nominal", "kind": "A", "name": "Token┆string╬A"},
    ],
    "featureNames": ["Token┆isCap╬A", "Person┆╬A", "Token┆tags╬A", "Token┆senses╬A", "Token┆string╬A"],
    "featureInfo": {"globalScalingMethod": "NONE", "attributes": [
        {"annType": "Token", "feature": "isCap", "datatype": "boolean", "code": "A", "featureCode": "A"},
        {"annType": "Person", "feature": "", "datatype": "boolean", "code": "A", "featureCode": "A"},
        {"annType": "Token", "feature": "tags", "datatype": "nominal", "code": "A", "featureCode": "A",
         "listsep": ";", "emb_id": "tags"},
        {"annType": "Token", "feature": "senses", "datatype": "nominal", "code": "A", "featureCode": "A"},
        {"annType": "Token", "feature": "string", "datatype": "nominal", "code": "A", "featureCode": "A"},
    ]},
    "featureStats": {
        "Token┆isCap╬A": {"isString": False, "stringCounts": {}, "min": 0.0, "max": 1.0, "mean": 0.67, "variance": 0.3, "n": 3},
        "Person┆╬A": {"isString": False, "stringCounts": {}, "min": 0.0, "max": 1.0, "mean": 0.67, "variance": 0.3, "n": 3},
        "Token┆tags╬A": {"isString": True, "stringCounts": {"a": 1, "b": 1, "c": 2}, "n": 3},
        "Token┆senses╬A": {"isString": True, "stringCounts": {"s1": 2, "s2": 1}, "n": 3},
        "Token┆string╬A": {"isString": True, "stringCounts": {"x": 1, "y": 1}, "n": 3},
    },
    "targetStats": {"isString": True, "stringCounts": {"yes": 2, "no": 1}, "min": 0.0, "max": 0.0,
                    "mean": 0.0, "variance": 0.0, "n": 3},
    "linesWritten": 3,
    "dataFile": "/elsewhere/crvd.data.json",
    "savedOn": "2026.11.21,08:20:12",
}
TINY_DATA = [
    '[[true,false,["c","a"],["s1"],"x"],"yes"]',
    '[[false,true,[],[],"y"],"no"]',
    '[[true,true,["c","unseen"],["s2","s1"],"unseen"],"yes"]',
]


@pytest.fixture
def tiny(tmp_path):
    (tmp_path / "crvd.meta.json").write_text(json.dumps(TINY_META, ensure_ascii=False), encoding="utf-8")
    data = write_lines(tmp_path / "crvd.data.json", TINY_DATA)
    p = prepare(tmp_path / "crvd.meta.json")
    return p, lfdata.read_dataset(data, p.schema, p.encoder)


def test_boolean_features_are_zero_and_one_not_standardised(tiny):
    p, data = tiny
    assert [f.role for f in p.schema.features[:2]] == ["boolean", "boolean"]
    assert data.numeric.tolist() == [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]


def test_list_valued_attribute_features(tiny):
    p, data = tiny
    tags, senses = p.schema.features[2:4]
    assert tags.role == "list"  # listsep in the attribute
    assert senses.role == "list"  # a list-valued GATE feature: detected from the data
    t, s = p.vocabs["tags"].stoi, p.vocabs["attr3"].stoi
    assert data.list_ids[0].tolist() == [t["c"], t["a"], t["c"], OOV]
    assert data.list_offsets[0].tolist() == [0, 2, 2, 4]
    assert data.list_ids[1].tolist() == [s["s1"], s["s2"], s["s1"]]
    assert data.nominal[:, 0].tolist() == [p.vocabs["attr4"].stoi["x"], p.vocabs["attr4"].stoi["y"], OOV]
    assert data.target.tolist() == [1, 0, 1]


def test_boolean_feature_given_a_string_names_the_feature(tiny):
    p, _ = tiny
    with pytest.raises(ValueError, match="feature 0 'Token┆isCap╬A': expected true/false, got a string"):
        p.encoder.encode(["true", False, [], [], "x"])


# --- subsets ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ner-wikigold-multi-train", "class-ngram-sp1", "abalone-train"])
def test_subset_equals_reading_those_lines(name, tmp_path):
    p, data = read(name, lines=40, tmp_path=tmp_path)
    indices = np.array([7, 0, 31, 2])
    lines = data_lines(name, 40)
    part = write_lines(tmp_path / "subset.data.json", [lines[i] for i in indices])
    assert_same_dataset(data.subset(indices), lfdata.read_dataset(part, p.schema, p.encoder))


def test_subset_takes_a_list_of_indices(tmp_path):
    _, data = read("seq-pos2", lines=5, tmp_path=tmp_path)
    assert_same_dataset(data.subset([3, 1]), data.subset(np.array([3, 1])))


def test_empty_subset(tmp_path):
    _, data = read("ner-wikigold-multi-train", lines=5, tmp_path=tmp_path)
    empty = data.subset(np.array([], dtype=np.int64))
    assert len(empty) == 0 and empty.nominal.shape == (0, 1) and len(empty.list_ids[0]) == 0


# --- data quirks ------------------------------------------------------------------


def test_crlf_bom_trailing_empty_line_and_number_forms_read_alike(tmp_path):
    meta, _ = export_paths("abalone-train")
    plain = ['[["M",0.455,0.365,0.095,0.514,0.2245,0.101,0.15],15.0]',
             '[["F",0.53,0.42,0.135,0.677,0.2565,0.1415,0.21],9.0]']
    quirky = ['\ufeff[["M",4.55e-1,0.365,0.095,0.514,0.2245,0.101,0.15],15]',
              '[["F",0.53,0.42,1.35E-1,0.677,0.2565,0.1415,0.21],9]',
              '']
    plain_path = write_lines(tmp_path / "plain.data.json", plain)
    quirky_path = write_lines(tmp_path / "quirky.data.json", quirky, newline="\r\n")
    p = prepare(meta, data_path=plain_path)
    assert_same_dataset(lfdata.read_dataset(plain_path, p.schema, p.encoder),
                        lfdata.read_dataset(quirky_path, p.schema, p.encoder))


def test_meta_file_with_bom_is_read(tmp_path):
    meta, _ = export_paths("seq-pos2")
    path = tmp_path / "crvd.meta.json"
    path.write_bytes(b"\xef\xbb\xbf" + meta.read_bytes())
    assert lfdata.read_meta(path)["isSequence"] is True


def test_data_file_is_found_next_to_the_meta_file():
    assert lfdata.data_file_for("/d/crvd.meta.json") == "/d/crvd.data.json"
    with pytest.raises(DataError, match="must end in .meta.json"):
        lfdata.data_file_for("/d/crvd.json")


# --- errors -----------------------------------------------------------------------


def read_error(tmp_path, name, lines):
    meta, _ = export_paths(name)
    good = data_lines(name, 2)
    path = write_lines(tmp_path / "bad.data.json", good + lines)
    p = prepare(meta)  # the schema comes from the good export
    with pytest.raises(DataError) as caught:
        lfdata.read_dataset(path, p.schema, p.encoder)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}:3: ")
    return message


@pytest.mark.parametrize("name, line, expected", [
    ("abalone-train", '[["M",0.4,0.3],3.0', "malformed JSON"),
    ("abalone-train", '[["M",0.4,0.3,0.1,0.5,0.2,0.1],3.0]', "expected 8 feature values, got 7"),
    ("abalone-train", '[["M","0.4",0.3,0.1,0.5,0.2,0.1,0.2],3.0]', "feature 1 '┆length╬A': expected a number, got a string"),
    ("abalone-train", '[["M",NaN,0.3,0.1,0.5,0.2,0.1,0.2],3.0]', "feature 1 '┆length╬A': nan is not a finite number"),
    ("abalone-train", '[["M",0.4,0.3,0.1,0.5,0.2,0.1,Infinity],3.0]', "'┆shell_weight╬A': inf is not a finite number"),
    ("abalone-train", '[[1,0.4,0.3,0.1,0.5,NaN,0.1,0.2],3.0]', "is not a finite number"),
    ("abalone-train", '[["M",0.4,0.3,0.1,0.5,0.2,0.1,0.2],"old"]', "target: expected a number"),
    ("abalone-train", '[["M",0.4,0.3,0.1,0.5,0.2,0.1,0.2]]', "expected [features, target]"),
    ("abalone-train", '[[null,0.4,0.3,0.1,0.5,0.2,0.1,0.2],3.0]', "feature 0 '┆sex╬A': expected a string, got null"),
    ("class-ionosphere", '[[' + ",".join(["1.0"] * 34) + '],"maybe"]', "target label 'maybe' is not among the labels"),
    ("sentpol-train", '[[["good",3]],"pos"]', "feature 0 'Token┆string╬N1': list items must be strings"),
    ("seq-pos2", '[[["a"],["b"]],["O"]]', "2 elements but 1 labels"),
    ("seq-pos2", '[[["a"],["b"]],["O","FOO|B"]]', "element 1: target label 'FOO|B' is not among the labels"),
    ("seq-pos2", '[[["a"],[7,8]],["O","O"]]', "element 1: expected 1 feature values, got 2"),
])
def test_data_error_names_file_line_and_feature(tmp_path, name, line, expected):
    assert expected in read_error(tmp_path, name, [line])


def test_empty_sequences_are_left_out_and_said(tmp_path, caplog):
    meta, _ = export_paths("seq-pos2")
    good = data_lines("seq-pos2", 3)
    path = write_lines(tmp_path / "with-empty.data.json", good[:1] + ["[[],[]]"] + good[1:] + ["[[],[]]"])
    p = prepare(meta)
    with caplog.at_level("INFO", logger="filejsonpytorch"):
        data = lfdata.read_dataset(path, p.schema, p.encoder)
    plain = lfdata.read_dataset(write_lines(tmp_path / "plain.data.json", good), p.schema, p.encoder)
    assert len(data) == 3 and (data.lengths() == plain.lengths()).all()
    assert (data.nominal == plain.nominal).all() and (data.target == plain.target).all()
    assert "2 empty sequences (no elements) left out" in caplog.text
    with pytest.raises(DataError, match="holds no instances"):
        lfdata.read_dataset(write_lines(tmp_path / "only-empty.data.json", ["[[],[]]"]), p.schema, p.encoder)


def test_nan_and_infinity_strings_are_missing_numbers_read_as_the_mean(tmp_path):
    """Jackson writes a numeric feature's NaN as "NaN": a missing value, like the LF's ""."""
    meta, _ = export_paths("abalone-train")
    p = prepare(meta)
    lines = ['[["M","NaN",0.3,0.1,0.5,0.2,0.1,"Infinity"],3.0]', '[["M","",0.3,0.1,0.5,0.2,0.1,"-Infinity"],3.0]']
    data = lfdata.read_dataset(write_lines(tmp_path / "nan.data.json", lines), p.schema, p.encoder)
    length, shell_weight = p.schema.numeric[0], p.schema.numeric[-1]
    assert (length.name, shell_weight.name) == ("┆length╬A", "┆shell_weight╬A")
    assert data.numeric[:, 0].tolist() == data.numeric[:, -1].tolist() == [0.0, 0.0]
    assert data.numeric[0, 1] == pytest.approx((0.3 - p.schema.numeric[1].mean) / p.schema.numeric[1].std)


def test_missing_and_empty_data_files(tmp_path):
    meta, _ = export_paths("seq-pos2")
    p = prepare(meta)
    with pytest.raises(DataError, match="data file not found"):
        lfdata.read_dataset(tmp_path / "none.data.json", p.schema, p.encoder)
    for content in ("", "\n\n", "\r\n"):
        (tmp_path / "empty.data.json").write_text(content)
        with pytest.raises(DataError, match="the data file is empty"):
            lfdata.read_dataset(tmp_path / "empty.data.json", p.schema, p.encoder)


def test_meta_file_errors(tmp_path):
    with pytest.raises(DataError, match="meta file not found"):
        lfdata.read_meta(tmp_path / "none.meta.json")
    (tmp_path / "bad.meta.json").write_text("{")
    with pytest.raises(DataError, match="not a valid JSON meta file"):
        lfdata.read_meta(tmp_path / "bad.meta.json")
    (tmp_path / "partial.meta.json").write_text('{"features": []}')
    with pytest.raises(DataError, match="lacks the key 'featureInfo'"):
        lfdata.read_meta(tmp_path / "partial.meta.json")


# --- --embs -----------------------------------------------------------------------


def test_embs_overrides_the_feature_spec():
    meta, _ = export_paths("class-window-pos1")
    p = prepare(meta, embs="suf:7:no,shape::onehot")
    assert (p.vocabs["suf"].settings.dims, p.vocabs["suf"].settings.train) == (7, "no")
    assert (p.vocabs["shape"].settings.dims, p.vocabs["shape"].settings.train) == (10, "onehot")
    assert (p.vocabs["token"].settings.dims, p.vocabs["token"].settings.train) == (0, "yes")


@pytest.mark.parametrize("spec, expected", [
    ("token:ten", "dims must be a whole number"),
    ("token::maybe", "embtrain must be one of"),
    ("token:1:yes:1:f:extra", "is not embid:embdims"),
    (":10", "is not embid:embdims"),
    ("nosuch:10", "unknown embedding id 'nosuch'"),
])
def test_bad_embs_is_a_usage_error(spec, expected):
    meta, _ = export_paths("class-window-pos1")
    with pytest.raises(UsageError, match=expected):
        prepare(meta, embs=spec)


def test_parse_embs_keeps_only_given_elements():
    assert vocab.parse_embs("a:5,b::no,c:::3:f.txt") == {
        "a": {"dims": 5}, "b": {"train": "no"}, "c": {"minfreq": 3, "file": "f.txt"}}
