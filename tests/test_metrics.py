"""Metrics for `evaluate`, checked against numbers worked out by hand in the comments."""

import math
import re

import pytest

from filejsonpytorch.chunks import chunk_spans, detect_scheme, is_chunk_labelling
from filejsonpytorch.metrics import (
    classification_report,
    entity_report,
    format_report,
    probability_report,
    regression_report,
    sequence_report,
)

approx = pytest.approx

# ---------------------------------------------------------------- classification

# gold a a a b b c
# pred a a b b c c
GOLD = ["a", "a", "a", "b", "b", "c"]
PRED = ["a", "a", "b", "b", "c", "c"]


def test_confusion_matrix_rows_gold_columns_predicted():
    report = classification_report(GOLD, PRED, ["a", "b", "c"])
    # a: 2 right, 1 taken for b; b: 1 right, 1 taken for c; c: 1 right
    assert report["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert report["labels"] == ["a", "b", "c"]


def test_accuracy_and_per_class_scores():
    report = classification_report(GOLD, PRED, ["a", "b", "c"])
    assert report["n"] == 6
    assert report["accuracy"] == approx(4 / 6)  # diagonal 2+1+1 of 6
    per_class = report["per_class"]
    # a: tp 2, predicted 2, gold 3 -> P 1, R 2/3, F1 2*1*(2/3)/(1+2/3) = (4/3)/(5/3) = 0.8
    assert per_class["a"] == approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    # b: tp 1, predicted 2, gold 2 -> P 1/2, R 1/2, F1 1/2
    assert per_class["b"] == approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    # c: tp 1, predicted 2, gold 1 -> P 1/2, R 1, F1 2*0.5*1/1.5 = 2/3
    assert per_class["c"] == approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})


def test_macro_and_micro_averages():
    report = classification_report(GOLD, PRED, ["a", "b", "c"])
    # macro P (1 + 1/2 + 1/2)/3 = 2/3; R (2/3 + 1/2 + 1)/3 = 13/18; F1 (0.8 + 0.5 + 2/3)/3 = 59/90
    assert report["macro"] == approx({"precision": 2 / 3, "recall": 13 / 18, "f1": 59 / 90})
    # micro: tp 4 of 6 predictions and of 6 gold labels -> all 4/6
    assert report["micro"] == approx({"precision": 4 / 6, "recall": 4 / 6, "f1": 4 / 6})


def test_label_never_seen_is_zero_and_left_out_of_macro():
    report = classification_report(GOLD, PRED, ["a", "b", "c", "d"])
    assert report["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert report["confusion"][3] == [0, 0, 0, 0]
    assert [row[3] for row in report["confusion"]] == [0, 0, 0, 0]
    # macro over a, b, c only: the same as without d
    assert report["macro"] == approx({"precision": 2 / 3, "recall": 13 / 18, "f1": 59 / 90})


def test_label_predicted_but_never_gold_counts_in_macro():
    report = classification_report(["a", "a"], ["a", "b"], ["a", "b"])
    # b: tp 0 of 1 predicted -> P 0; no gold b -> R 0/0 -> 0.0; F1 0
    assert report["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # a: P 1/1, R 1/2, F1 2*1*0.5/1.5 = 2/3
    assert report["per_class"]["a"] == approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    # macro over a and b: P (1+0)/2, R (0.5+0)/2, F1 (2/3+0)/2
    assert report["macro"] == approx({"precision": 0.5, "recall": 0.25, "f1": 1 / 3})


def test_labels_not_listed_are_appended():
    report = classification_report(["a", "x"], ["a", "a"], ["a"])
    assert report["labels"] == ["a", "x"]
    assert report["confusion"] == [[1, 0], [1, 0]]
    assert report["accuracy"] == 0.5


def test_empty_classification_is_all_zero():
    report = classification_report([], [], ["a", "b"])
    assert report["n"] == 0
    assert report["accuracy"] == 0.0
    assert report["confusion"] == [[0, 0], [0, 0]]
    assert report["macro"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert report["micro"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_classification_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        classification_report(["a"], ["a", "b"], ["a", "b"])


# ---------------------------------------------------------------- scheme detection


def test_detects_lf_and_conll_schemes():
    assert detect_scheme(["O", "PER|B", "PER|I", "PER|B,LOC|I"]) == "lf"
    assert detect_scheme(["O", "B-PER", "I-PER", "B", "I"]) == "conll"
    assert is_chunk_labelling(["PER|B", "O"])
    assert is_chunk_labelling(["B-PER", "O"])


def test_not_chunk_labelling():
    assert not is_chunk_labelling(["NOUN", "VERB"])  # POS tags
    assert not is_chunk_labelling(["O"])  # no entity label at all
    assert not is_chunk_labelling(["PER|B", "B-LOC"])  # schemes mixed
    assert not is_chunk_labelling(["PER|B,"])  # empty part after the comma
    assert not is_chunk_labelling(["PER|X"])
    assert not is_chunk_labelling(["B-"])


# ---------------------------------------------------------------- LF spans


def test_lf_simple_chunk_closed_by_o_and_by_sequence_end():
    assert chunk_spans(["PER|B", "PER|I", "O", "LOC|B", "LOC|I"]) == {("PER", 0, 2), ("LOC", 3, 5)}


def test_lf_stray_i_is_ignored():
    # no PER open at 1 or 2: both I are dropped, no chunk
    assert chunk_spans(["O", "PER|I", "PER|I"]) == set()
    # the stray I at 0 is dropped; the chunk starts at the B
    assert chunk_spans(["PER|I", "PER|B", "PER|I"]) == {("PER", 1, 3)}


def test_lf_i_of_another_type_closes_and_is_ignored():
    # LOC|I does not mention PER, so PER closes at 1; no LOC is open, so LOC|I is dropped
    assert chunk_spans(["PER|B", "LOC|I", "LOC|I"]) == {("PER", 0, 1)}


def test_lf_b_after_b_starts_a_new_chunk():
    assert chunk_spans(["PER|B", "PER|B", "PER|I"]) == {("PER", 0, 1), ("PER", 1, 3)}


def test_lf_overlapping_types():
    labels = ["PER|B,LOC|B", "PER|I,LOC|I", "LOC|I", "O"]
    # PER not mentioned at 2 -> closes there; LOC closes at the O
    assert chunk_spans(labels) == {("PER", 0, 2), ("LOC", 0, 3)}


def test_lf_nested_types():
    labels = ["LOC|B", "LOC|I,PER|B", "LOC|I,PER|I", "LOC|I"]
    assert chunk_spans(labels) == {("LOC", 0, 4), ("PER", 1, 3)}


def test_lf_same_type_twice_in_one_label_as_the_host():
    # the second B closes the chunk the first one opened at the same token: an empty span
    assert chunk_spans(["PER|B,PER|B", "PER|I"]) == {("PER", 0, 0), ("PER", 0, 2)}


def test_lf_malformed_label_closes_everything():
    # "B-PER" is no type|code: skipped (the LF would throw), PER not mentioned -> closes;
    # the PER|I after it is stray
    assert chunk_spans(["PER|B", "B-PER", "PER|I"], scheme="lf") == {("PER", 0, 1)}


def test_lf_trailing_bar_is_accepted_like_java_split():
    assert chunk_spans(["PER|B|", "PER|I"], scheme="lf") == {("PER", 0, 2)}


# ---------------------------------------------------------------- B-/I- spans


def test_conll_simple_chunks():
    assert chunk_spans(["B-PER", "I-PER", "O", "B-LOC"]) == {("PER", 0, 2), ("LOC", 3, 4)}


def test_conll_stray_i_starts_a_chunk():
    assert chunk_spans(["O", "I-PER", "I-PER"]) == {("PER", 1, 3)}


def test_conll_i_of_another_type_starts_a_chunk():
    assert chunk_spans(["B-PER", "I-LOC", "I-LOC"]) == {("PER", 0, 1), ("LOC", 1, 3)}


def test_conll_b_after_b_starts_a_new_chunk():
    assert chunk_spans(["B-PER", "B-PER", "I-PER"]) == {("PER", 0, 1), ("PER", 1, 3)}


def test_conll_bare_b_and_i():
    assert chunk_spans(["B", "I", "O", "I"]) == {("", 0, 2), ("", 3, 4)}


def test_chunk_spans_of_all_o_is_empty_and_mixed_schemes_an_error():
    assert chunk_spans(["O", "O"]) == set()
    assert chunk_spans([]) == set()
    with pytest.raises(ValueError):
        chunk_spans(["PER|B", "B-LOC"])


# ---------------------------------------------------------------- entity report

# s1 gold PER(0,2) LOC(3,4); pred PER(0,2) right, PER(3,4) wrong
# s2 gold ORG(0,3);          pred ORG(0,2) wrong (span too short)
LF_GOLD = [["PER|B", "PER|I", "O", "LOC|B"], ["ORG|B", "ORG|I", "ORG|I", "O"]]
LF_PRED = [["PER|B", "PER|I", "O", "PER|B"], ["ORG|B", "ORG|I", "O", "O"]]


def test_entity_micro_scores():
    report = entity_report(LF_GOLD, LF_PRED)
    assert report["scheme"] == "lf"
    # 3 gold, 3 predicted, 1 correct -> P = R = F1 = 1/3
    assert report["micro"] == approx(
        {"precision": 1 / 3, "recall": 1 / 3, "f1": 1 / 3, "gold": 3, "predicted": 3, "correct": 1}
    )


def test_entity_per_type_scores():
    per_type = entity_report(LF_GOLD, LF_PRED)["per_type"]
    assert list(per_type) == ["LOC", "ORG", "PER"]
    # LOC: nothing predicted -> P 0/0 = 0, R 0/1 = 0
    assert per_type["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "gold": 1, "predicted": 0, "correct": 0}
    assert per_type["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "gold": 1, "predicted": 1, "correct": 0}
    # PER: 1 of 2 predicted right, 1 of 1 gold found -> P 1/2, R 1, F1 2*0.5/1.5 = 2/3
    assert per_type["PER"] == approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "gold": 1, "predicted": 2, "correct": 1}
    )


def test_entity_macro_scores():
    # mean over LOC, ORG, PER: P (0+0+1/2)/3 = 1/6, R (0+0+1)/3 = 1/3, F1 (0+0+2/3)/3 = 2/9
    assert entity_report(LF_GOLD, LF_PRED)["macro"] == approx({"precision": 1 / 6, "recall": 1 / 3, "f1": 2 / 9})


def test_entity_stray_i_differs_between_schemes():
    # conll: the stray I-PER starts PER(0,2), which is right
    conll = entity_report([["B-PER", "I-PER"]], [["I-PER", "I-PER"]])
    assert conll["micro"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "gold": 1, "predicted": 1, "correct": 1}
    # lf: the stray PER|I are dropped, nothing predicted
    lf = entity_report([["PER|B", "PER|I"]], [["PER|I", "PER|I"]])
    assert lf["micro"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "gold": 1, "predicted": 0, "correct": 0}


def test_entity_scheme_comes_from_gold():
    # gold is B-/I-: the LF-style predictions are not B-/I- labels, so they read as O
    report = entity_report([["B-PER", "O"]], [["PER|B", "O"]])
    assert report["scheme"] == "conll"
    assert report["micro"]["predicted"] == 0
    # gold is LF: a B-PER prediction is malformed there, the LF chunker would throw on it
    report = entity_report([["PER|B", "O"]], [["B-PER", "O"]])
    assert report["pred_labels_lf_would_throw_on"] == 1
    assert report["micro"]["predicted"] == 0


def test_entity_gold_without_chunks_still_counts_false_positives():
    report = entity_report([["O", "O"]], [["PER|B", "O"]])
    assert report["per_type"]["PER"] == {
        "precision": 0.0, "recall": 0.0, "f1": 0.0, "gold": 0, "predicted": 1, "correct": 0,
    }


def test_entity_report_with_no_chunks_anywhere():
    report = entity_report([["O"]], [["O"]])
    assert report["per_type"] == {}
    assert report["micro"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "gold": 0, "predicted": 0, "correct": 0}
    assert report["macro"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_entity_sequence_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        entity_report([["PER|B", "O"]], [["PER|B"]])
    with pytest.raises(ValueError):
        entity_report([["PER|B"]], [])


# ---------------------------------------------------------------- sequence report


def test_sequence_report_combines_tokens_exact_sequences_and_entities():
    labels = ["PER|B", "PER|I", "LOC|B", "LOC|I", "O"]
    report = sequence_report(LF_GOLD, LF_PRED, labels)
    assert report["task"] == "sequence"
    # tokens: s1 3 of 4 right (last), s2 3 of 4 right (third) -> 6/8
    assert report["tokens"]["n"] == 8
    assert report["tokens"]["accuracy"] == approx(6 / 8)
    assert report["sequences_exact"] == 0.0  # neither sequence is all right
    assert report["entities"]["micro"]["f1"] == approx(1 / 3)


def test_sequence_report_without_chunk_labels_has_no_entities():
    report = sequence_report([["NOUN", "VERB"], ["DET"]], [["NOUN", "NOUN"], ["DET"]], ["NOUN", "VERB", "DET"])
    assert "entities" not in report
    assert report["sequences_exact"] == 0.5  # the second of two
    assert report["tokens"]["accuracy"] == approx(2 / 3)


# ---------------------------------------------------------------- regression


def test_regression_report():
    # errors 0, 1, 0, -1: MAE 2/4 = 0.5, MSE 2/4 -> RMSE sqrt(0.5);
    # gold mean 2.5, total variation 2.25+0.25+0.25+2.25 = 5 -> R2 = 1 - 2/5 = 0.6
    report = regression_report([1, 2, 3, 4], [1, 3, 3, 3])
    assert report == approx({"n": 4, "mae": 0.5, "rmse": math.sqrt(0.5), "r2": 0.6})


def test_regression_perfect_and_worse_than_the_mean():
    assert regression_report([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == {"n": 3, "mae": 0.0, "rmse": 0.0, "r2": 1.0}
    # squared errors 4+0+4 = 8, total variation 1+0+1 = 2 -> R2 = 1 - 8/2 = -3
    report = regression_report([1, 2, 3], [3, 2, 1])
    assert report == approx({"n": 3, "mae": 4 / 3, "rmse": math.sqrt(8 / 3), "r2": -3.0})


def test_regression_zero_division():
    # constant gold: R2 undefined -> 0.0
    assert regression_report([2, 2], [1, 3]) == {"n": 2, "mae": 1.0, "rmse": 1.0, "r2": 0.0}
    assert regression_report([], []) == {"n": 0, "mae": 0.0, "rmse": 0.0, "r2": 0.0}


def test_regression_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        regression_report([1.0], [])


# ---------------------------------------------------------------- probabilities


def test_probability_report():
    # log-loss: -(ln 0.5 + ln 0.25 + ln 1 + ln 0.8) / 4
    # bins of width 1/15: 0.5 and 0.52 share bin 7 (one right: |1 - 1.02| = 0.02),
    # 1.0 is in the last bin (right: 0), 0.8 in bin 12 (wrong: 0.8) -> ECE (0.02 + 0 + 0.8) / 4
    report = probability_report([0.5, 0.25, 1.0, 0.8], [0.5, 0.52, 1.0, 0.8], [True, False, True, False])
    expected_loss = -(math.log(0.5) + math.log(0.25) + math.log(0.8)) / 4
    assert report == approx({"n": 4, "log_loss": expected_loss, "ece": 0.82 / 4})


def test_probability_report_of_a_gold_label_ruled_out_and_of_nothing():
    assert probability_report([0.0], [1.0], [False])["log_loss"] == approx(-math.log(1e-15))
    assert probability_report([], [], []) == {"n": 0, "log_loss": 0.0, "ece": 0.0}
    with pytest.raises(ValueError):
        probability_report([0.5], [0.5, 0.5], [True])


# ---------------------------------------------------------------- text rendering


def _row(text: str, first_cell: str) -> list[str]:
    """The cells of the table line starting with first_cell."""
    for line in text.splitlines():
        if line.startswith(first_cell + " "):
            return line[len(first_cell):].split()
    raise AssertionError(f"no row {first_cell!r} in\n{text}")


def test_format_classification_report():
    text = format_report(classification_report(GOLD, PRED, ["a", "b", "c"]))
    assert "n=6, accuracy 0.6667" in text
    lines = text.splitlines()
    assert lines[1].split() == ["label", "precision", "recall", "f1", "support"]
    assert _row(text, "a") == ["1.0000", "0.6667", "0.8000", "3"]
    assert _row(text, "macro avg") == ["0.6667", "0.7222", "0.6556", "6"]  # 13/18, 59/90
    assert _row(text, "micro avg") == ["0.6667", "0.6667", "0.6667", "6"]
    assert "Confusion matrix (rows gold, columns predicted)" in text
    assert _row(text, "gold\\pred") == ["a", "b", "c"]
    confusion = text[text.index("Confusion matrix"):]
    assert _row(confusion, "a") == ["2", "1", "0"]
    assert _row(confusion, "c") == ["0", "0", "1"]


def test_format_table_is_aligned():
    text = format_report(classification_report(GOLD, PRED, ["a", "b", "c"]))
    score_table = text.splitlines()[1:7]  # header, a, b, c, macro, micro
    # numbers right-aligned under their header: every line's last four cells end at the same columns
    cell_ends = {tuple(match.end() for match in re.finditer(r"\S+", line))[-4:] for line in score_table}
    assert len(cell_ends) == 1


def test_format_entity_report():
    text = format_report(entity_report(LF_GOLD, LF_PRED))
    assert "exact span, lf scheme" in text
    assert _row(text, "PER") == ["0.5000", "1.0000", "0.6667", "1", "2", "1"]
    assert _row(text, "micro avg") == ["0.3333", "0.3333", "0.3333", "3", "3", "1"]
    assert _row(text, "macro avg") == ["0.1667", "0.3333", "0.2222"]


def test_format_entity_report_mentions_labels_the_lf_would_throw_on():
    text = format_report(entity_report([["PER|B", "O"]], [["B-PER", "O"]]))
    assert "would throw on: 1" in text


def test_format_regression_report():
    text = format_report(regression_report([1, 2, 3, 4], [1, 3, 3, 3]))
    assert "n=4" in text
    assert _row(text, "MAE") == ["0.5000"]
    assert _row(text, "RMSE") == ["0.7071"]
    assert _row(text, "R2") == ["0.6000"]


def test_format_combined_sequence_report():
    report = sequence_report(LF_GOLD, LF_PRED, ["PER|B", "PER|I", "LOC|B", "LOC|I", "O"])
    text = format_report(report)
    assert "Task: sequence" in text
    assert "Tokens: n=8, accuracy 0.7500" in text
    assert "Sequences exactly right: 0.0000" in text
    assert _row(text, "PER")[:3] == ["0.5000", "1.0000", "0.6667"]


def test_format_combined_classification_and_regression_reports():
    classification = classification_report(GOLD, PRED, ["a", "b", "c"])
    probabilities = probability_report([0.5, 0.25], [0.5, 0.75], [True, False])
    text = format_report({"task": "classification", "classification": classification, "probabilities": probabilities})
    assert "Task: classification" in text and "accuracy 0.6667" in text
    assert text.rstrip().endswith("Probabilities: n=2, log-loss 1.0397, expected calibration error 0.6250")
    text = format_report({"task": "regression", "regression": regression_report([1, 2, 3, 4], [1, 3, 3, 3])})
    assert "Task: regression" in text and _row(text, "R2") == ["0.6000"]


def test_format_sections_without_task():
    report = {
        "classification": classification_report(GOLD, PRED, ["a", "b", "c"]),
        "entities": entity_report(LF_GOLD, LF_PRED),
        "regression": regression_report([1, 2, 3, 4], [1, 3, 3, 3]),
    }
    text = format_report(report)
    assert "Task:" not in text
    assert text.index("Classification") < text.index("Entities") < text.index("Regression")


def test_format_rejects_other_dicts():
    with pytest.raises(ValueError):
        format_report({"loss": 0.3})
