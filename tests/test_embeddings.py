"""Loading pre-trained embeddings files (filejsonpytorch.embeddings)."""

import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from filejsonpytorch.embeddings import format_stats, load_pretrained
from filejsonpytorch.errors import DataError

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MINI_TXT = SHARED_DATA / "emb-mini20-25.txt"
MINI_GZ = SHARED_DATA / "emb-mini20-25.txt.gz"
MINI_WORDS = ("was as las mas please has say always mais because thanks esta last ass sama "
              "pas said bisa same days").split()
SPECIALS = ["<pad>", "<oov>"]


def mini_vectors():
    """The mini file parsed independently of the loader: word -> float32 vector."""
    vectors = {}
    for line in MINI_TXT.read_text(encoding="utf-8").splitlines():
        word, *values = line.split(" ")
        vectors[word] = np.array(values, dtype=np.float32)
    return vectors


def load(path, words, counts=None, seed=0, **options):
    itos = SPECIALS + list(words)
    counts = counts if counts is not None else [0, 0] + [1] * len(words)
    return load_pretrained(str(path), itos, counts, rng=np.random.default_rng(seed), **options)


def write_text(path, text, compress=False):
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def mini_text(header=False, newline="\n", trailing=""):
    lines = MINI_TXT.read_text(encoding="utf-8").splitlines()
    if header:
        lines.insert(0, "20 25")
    return "".join(line + trailing + newline for line in lines)


def test_mini_file_is_as_documented():
    vectors = mini_vectors()
    assert list(vectors) == MINI_WORDS
    assert {vector.shape for vector in vectors.values()} == {(25,)}


def test_rows_of_found_words_are_the_file_vectors():
    vectors = mini_vectors()
    pretrained = load(MINI_TXT, ["said", "was", "nothere"])
    assert pretrained.dims == 25
    assert pretrained.matrix.dtype == np.float32
    assert pretrained.matrix.shape == (5, 25)
    assert pretrained.itos == SPECIALS + ["said", "was", "nothere"]
    assert pretrained.found.tolist() == [False, False, True, True, False]
    np.testing.assert_array_equal(pretrained.matrix[2], vectors["said"])
    np.testing.assert_array_equal(pretrained.matrix[3], vectors["was"])
    assert pretrained.stats["lines_read"] == 20


@pytest.mark.parametrize("name, header, compress, newline, trailing", [
    ("emb.txt", True, False, "\n", ""),
    ("emb.vec", True, False, "\n", " "),
    ("emb.vec", False, False, "\r\n", ""),
    ("emb.txt.gz", True, True, "\n", ""),
    ("emb.vec.gz", False, True, "\r\n", " "),
    ("emb.txt", False, True, "\n", ""),  # gzip without .gz: found by the magic bytes
])
def test_file_variants_load_the_same(tmp_path, name, header, compress, newline, trailing):
    words = ["was", "days", "absent"]
    path = write_text(tmp_path / name, mini_text(header, newline, trailing), compress)
    expected = load(MINI_TXT, words)
    pretrained = load(path, words)
    np.testing.assert_array_equal(pretrained.matrix, expected.matrix)
    assert pretrained.found.tolist() == expected.found.tolist()
    assert pretrained.stats["lines_read"] == 20 + header


def test_shared_gz_gives_same_result_as_txt():
    words = ["because", "Thanks", "zzz"]
    from_txt, from_gz = load(MINI_TXT, words), load(MINI_GZ, words)
    np.testing.assert_array_equal(from_txt.matrix, from_gz.matrix)
    assert from_txt.found.tolist() == from_gz.found.tolist() == [False, False, True, True, False]


def test_relative_path_is_relative_to_datadir():
    pretrained = load(MINI_TXT.name, ["was"], datadir=str(SHARED_DATA))
    assert pretrained.found[2]
    assert pretrained.stats["file"] == str(MINI_TXT)


def test_lowercase_fallback():
    vectors = mini_vectors()
    pretrained = load(MINI_TXT, ["Was", "SAID", "said"])
    assert pretrained.found.tolist() == [False, False, True, True, True]
    np.testing.assert_array_equal(pretrained.matrix[2], vectors["was"])
    np.testing.assert_array_equal(pretrained.matrix[3], vectors["said"])
    assert pretrained.stats["lowercase_matches"] == 2

    without = load(MINI_TXT, ["Was", "SAID", "said"], lowercase_fallback=False)
    assert without.found.tolist() == [False, False, False, False, True]
    assert without.stats["lowercase_matches"] == 0


def test_exact_match_wins_over_lowercase(tmp_path):
    path = write_text(tmp_path / "emb.txt", "the 1 1\nThe 2 2\n")
    pretrained = load(path, ["The", "THE"])
    assert pretrained.matrix[2:].tolist() == [[2, 2], [1, 1]]
    assert pretrained.stats["lowercase_matches"] == 1


def test_repeated_word_keeps_its_first_vector(tmp_path):
    path = write_text(tmp_path / "emb.txt", "a 1 1\nb 2 2\na 3 3\n")
    assert load(path, ["a"]).matrix[2].tolist() == [1, 1]


def test_add_file_words_appends_file_words_in_file_order():
    vectors = mini_vectors()
    pretrained = load(MINI_TXT, ["was", "unknownword", "Days"], add_file_words=True)
    extra = [word for word in MINI_WORDS if word != "was"]  # "days" is not "Days"
    assert pretrained.itos == SPECIALS + ["was", "unknownword", "Days"] + extra
    assert pretrained.found.tolist() == [False, False, True, False, True] + [True] * len(extra)
    for index, word in enumerate(extra, start=5):
        np.testing.assert_array_equal(pretrained.matrix[index], vectors[word])
    assert pretrained.stats["extra_words"] == 19
    assert pretrained.stats["vocab"] == 3  # coverage is about the training vocabulary
    assert pretrained.stats["found_types"] == 2


def test_max_extra_limits_the_added_words():
    pretrained = load(MINI_TXT, ["as"], add_file_words=True, max_extra=3)
    assert pretrained.itos == SPECIALS + ["as", "was", "las", "mas"]
    assert pretrained.found.tolist() == [False, False] + [True] * 4
    assert pretrained.stats["extra_words"] == 3


def test_coverage_stats_hand_checked():
    pretrained = load(MINI_TXT, ["was", "Said", "zzz", "yyy"], counts=[5, 9, 6, 3, 1, 0])
    assert pretrained.stats == {
        "file": str(MINI_TXT),
        "dims": 25,
        "vocab": 4,
        "found_types": 2,  # was, and Said via said
        "coverage_types": 0.5,
        "coverage_tokens": pytest.approx(9 / 10),  # (6 + 3) / (6 + 3 + 1 + 0); specials ignored
        "lowercase_matches": 1,
        "extra_words": 0,
        "lines_read": 20,
        "rows": 6,
    }


def test_format_stats_summarises_in_one_line():
    pretrained = load(MINI_TXT, ["was", "Said", "zzz", "yyy"], counts=[5, 9, 6, 3, 1, 0])
    line = format_stats("tokens", pretrained.stats, trainable=False)
    assert "\n" not in line
    for part in ["'tokens'", "4 words", "25 dims", "50.0% of types", "90.0% of tokens",
                 "1 via lower case", "fixed", "0.00 MB"]:
        assert part in line
    assert "trainable" in format_stats("tokens", pretrained.stats, trainable=True)


def test_padding_row_is_zero_and_specials_are_not_looked_up():
    pretrained = load_pretrained(str(MINI_TXT), ["<pad>", "was", "as"], [0, 0, 4],
                                 rng=np.random.default_rng(0))
    assert not pretrained.matrix[0].any()
    assert pretrained.matrix[1].any()  # the out-of-vocabulary row is random
    assert pretrained.found.tolist() == [False, False, True]


def test_rows_not_found_are_random_with_the_file_scale():
    file_values = np.concatenate(list(mini_vectors().values()))
    pretrained = load(MINI_TXT, [f"absent{index}" for index in range(4000)])
    random_rows = pretrained.matrix[1:]
    assert abs(random_rows.mean()) < 0.05 * file_values.std()
    assert random_rows.std() == pytest.approx(file_values.std(), rel=0.02)


def test_same_seed_same_matrix_other_seed_other_random_rows():
    words = ["was", "absent1", "absent2"]
    first, again, other = load(MINI_TXT, words, seed=7), load(MINI_TXT, words, seed=7), \
        load(MINI_TXT, words, seed=8)
    np.testing.assert_array_equal(first.matrix, again.matrix)
    np.testing.assert_array_equal(first.matrix[2], other.matrix[2])
    assert not np.array_equal(first.matrix[3:], other.matrix[3:])


def test_non_ascii_words(tmp_path):
    text = "2 2\ncafé 1 2\n日本 3 4\néclair 5 6\nnaïve 7 8\n"
    path = write_text(tmp_path / "emb.vec.gz", text, compress=True)
    pretrained = load(path, ["日本", "Éclair", "café"], add_file_words=True)
    assert pretrained.itos == SPECIALS + ["日本", "Éclair", "café", "éclair", "naïve"]
    assert pretrained.matrix[2:].tolist() == [[3, 4], [5, 6], [1, 2], [5, 6], [7, 8]]
    assert pretrained.stats["lowercase_matches"] == 1


def test_words_containing_spaces(tmp_path):
    text = "3 2\nat 1 1\n. . . 2 2\nat name@domain.com 3 3\n"
    path = write_text(tmp_path / "glove.txt", text)
    pretrained = load(path, ["at name@domain.com", ". . .", "."], add_file_words=True)
    assert pretrained.itos == SPECIALS + ["at name@domain.com", ". . .", ".", "at"]
    assert pretrained.matrix[2:4].tolist() == [[3, 3], [2, 2]]
    assert pretrained.found.tolist() == [False, False, True, True, False, True]


def test_blank_lines_and_byte_order_mark_are_ignored(tmp_path):
    path = write_text(tmp_path / "emb.txt", "\ufeffword 1 2\n\nother 3 4\n\n")
    pretrained = load(path, ["word", "other"])
    assert pretrained.matrix[2:].tolist() == [[1, 2], [3, 4]]


# Errors: a DataError naming the file, and the line where there is one.

def assert_data_error(path, line, words=("was",), expected_text="", **options):
    with pytest.raises(DataError) as caught:
        load(path, words, **options)
    message = str(caught.value)
    assert str(path) in message
    if line is not None:
        assert f"{path}:{line}:" in message
    assert expected_text in message
    return message


def test_missing_file(tmp_path):
    assert_data_error(tmp_path / "nothere.txt", None, expected_text="not found")


def test_missing_file_relative_to_datadir(tmp_path):
    with pytest.raises(DataError, match="nothere.vec"):
        load("nothere.vec", ["was"], datadir=str(tmp_path))


def test_empty_file(tmp_path):
    assert_data_error(write_text(tmp_path / "emb.txt", ""), None, expected_text="empty")


def test_empty_gzip_file(tmp_path):
    assert_data_error(write_text(tmp_path / "emb.txt.gz", "", compress=True), None,
                      expected_text="empty")


def test_header_without_vectors(tmp_path):
    assert_data_error(write_text(tmp_path / "emb.txt", "0 25\n"), None, "no vectors")


def test_line_with_fewer_values(tmp_path):
    path = write_text(tmp_path / "emb.txt", "a 1 2 3\nb 4 5 6\nc 7 8\nd 1 1 1\n")
    message = assert_data_error(path, 3, words=["d"])
    assert "2 values" in message and "the first vector (line 1) has 3" in message


def test_line_with_more_values(tmp_path):
    path = write_text(tmp_path / "emb.txt", "a 1 2 3\nb 4 5 6 7\n")
    assert_data_error(path, 2, expected_text="4 values")


def test_header_dims_more_than_vectors(tmp_path):
    path = write_text(tmp_path / "emb.txt", "20 30\n" + mini_text())
    assert_data_error(path, 2, expected_text="the header (line 1) says 30 dimensions")


def test_header_dims_fewer_than_vectors(tmp_path):
    path = write_text(tmp_path / "emb.txt", "20 20\n" + mini_text())
    assert_data_error(path, 2, expected_text="25 values, but the header (line 1) says 20")


def test_non_number_in_vector(tmp_path):
    path = write_text(tmp_path / "emb.txt.gz", "a 1 2\nwas 3 x4\n", compress=True)
    assert_data_error(path, 2, expected_text="'x4'")


@pytest.mark.parametrize("value", ["nan", "inf", "1e40"])
def test_non_finite_value_in_vector(tmp_path, value):
    path = write_text(tmp_path / "emb.txt", f"a 1 2\nwas 3 {value}\n")
    assert_data_error(path, 2, expected_text="finite")


def test_word_without_vector(tmp_path):
    assert_data_error(write_text(tmp_path / "emb.txt", "lonely\n"), 1)


def test_truncated_gzip(tmp_path):
    path = tmp_path / "emb.txt.gz"
    path.write_bytes(MINI_GZ.read_bytes()[:-40])
    assert_data_error(path, None, expected_text="cannot read")


def test_truncated_big_gzip_names_the_last_line_read(tmp_path):
    path = tmp_path / "emb.txt.gz"
    path.write_bytes(gzip.compress(mini_text().encode() * 2000)[:-40])
    assert_data_error(path, None, expected_text="cannot read the file after line ")


def test_gz_name_but_not_gzip(tmp_path):
    path = tmp_path / "emb.txt.gz"
    shutil.copy(MINI_TXT, path)
    assert_data_error(path, None, expected_text="cannot read")


def test_invalid_utf8_in_an_added_word(tmp_path):
    path = tmp_path / "emb.txt"
    path.write_bytes(b"was 1 2\nbad\xff 3 4\n")
    assert_data_error(path, 2, expected_text="UTF-8", add_file_words=True)


def test_embeddings_module_does_not_import_torch():
    code = "import sys, filejsonpytorch.embeddings; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
