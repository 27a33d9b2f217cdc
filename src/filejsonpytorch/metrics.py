"""Evaluation metrics for the ``evaluate`` command (pure Python, no torch).

Every report is a plain dict of JSON-serialisable values. A ratio whose denominator is
zero is 0.0 (precision with nothing predicted, recall with nothing gold, F1 when both
are 0, R² when the gold values are constant, anything with n = 0).

``classification_report(gold, pred, labels)``::

    {"n": int, "accuracy": float,
     "labels": [str, ...],      # the given labels, then any other label found in gold or
                                # pred (sorted); the order of per_class and of both
                                # confusion axes
     "per_class": {label: {"precision", "recall", "f1", "support"}},
     "macro": {"precision", "recall", "f1"},  # unweighted mean over the labels that occur
                                              # in gold or pred (absent ones don't count)
     "micro": {"precision", "recall", "f1"},  # from summed counts; equals accuracy
     "confusion": [[int]]}      # confusion[i][j]: gold labels[i] predicted as labels[j]

``entity_report(gold_seqs, pred_seqs)`` (exact-span match, as the LF host emulator)::

    {"scheme": "lf" | "conll",
     "per_type": {type: {"precision", "recall", "f1", "gold", "predicted", "correct"}},
     "micro": {"precision", "recall", "f1", "gold", "predicted", "correct"},
     "macro": {"precision", "recall", "f1"},   # mean over the types in per_type
     "pred_labels_lf_would_throw_on": int}    # predicted tokens the LF chunker rejects

``regression_report(gold, pred)``: ``{"n", "mae", "rmse", "r2"}``.

``probability_report(gold_probabilities, confidences, correct)`` (the probabilities a model
reports, per instance or element: of the gold label, of the predicted label, and whether
the prediction is right)::

    {"n": int, "log_loss": float,   # mean -ln p(gold); a gold label of probability 0 counts
                                    # as -ln 1e-15
     "ece": float}                  # expected calibration error: over 15 equal-width bins of
                                    # the confidence, the n-weighted mean of
                                    # |accuracy - mean confidence| (Guo et al. 2017)

Combined reports written by ``evaluate``; ``format_report`` renders these, the bare
reports above, and ``{"classification": ..., "entities": ..., "regression": ...}``::

    {"task": "classification", "classification": <classification_report>,
     "probabilities": <probability_report>}
    {"task": "regression", "regression": <regression_report>}
    {"task": "sequence",
     "tokens": <classification_report over the flattened tokens>,
     "sequences_exact": float,       # fraction of sequences with every token right
     "entities": <entity_report>,    # only when is_chunk_labelling(labels)
     "probabilities": <probability_report over the tokens>}

``sequence_report`` builds the sequence shape.

Chunk labels are decoded by chunks.py, as the host emulator decodes them.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Iterable, Optional

from .chunks import Span, decode, detect_scheme, is_chunk_labelling, scheme_of

SCORE_KEYS = ("precision", "recall", "f1")
SPAN_COUNT_KEYS = ("gold", "predicted", "correct")


# ---------------------------------------------------------------- shared arithmetic


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def _scores(correct: int, predicted: int, gold: int) -> dict:
    precision = _ratio(correct, predicted)
    recall = _ratio(correct, gold)
    return {"precision": precision, "recall": recall, "f1": _ratio(2 * precision * recall, precision + recall)}


def _mean_scores(scores: list[dict]) -> dict:
    return {key: _ratio(sum(s[key] for s in scores), len(scores)) for key in SCORE_KEYS}


def _check_same_length(gold, pred, what: str = "gold and pred") -> None:
    if len(gold) != len(pred):
        raise ValueError(f"{what} differ in length: {len(gold)} vs {len(pred)}")


# ---------------------------------------------------------------- classification


def classification_report(gold: list[str], pred: list[str], labels: list[str]) -> dict:
    _check_same_length(gold, pred)
    labels = _labels_with_unlisted(labels, gold, pred)
    confusion = _confusion(gold, pred, labels)
    per_class = {label: _class_scores(confusion, i) for i, label in enumerate(labels)}
    occurring = [per_class[label] for i, label in enumerate(labels) if _occurs(confusion, i)]
    n = len(gold)
    correct = sum(confusion[i][i] for i in range(len(labels)))
    return {
        "n": n,
        "accuracy": _ratio(correct, n),
        "labels": labels,
        "per_class": per_class,
        "macro": _mean_scores(occurring),
        # every token is one prediction and one gold label, so both denominators are n
        "micro": _scores(correct, n, n),
        "confusion": confusion,
        "most_confused": _most_confused(confusion, labels),
    }


def _most_confused(confusion: list[list[int]], labels: list[str], count: int = 5) -> list[dict]:
    """The `count` most frequent (gold, predicted) pairs of different labels."""
    pairs = sorted((-n, g, p) for g, row in enumerate(confusion) for p, n in enumerate(row) if g != p and n)
    return [{"gold": labels[g], "predicted": labels[p], "count": -n} for n, g, p in pairs[:count]]


def _labels_with_unlisted(labels: Iterable[str], gold: list[str], pred: list[str]) -> list[str]:
    listed = list(dict.fromkeys(labels))
    unlisted = (set(gold) | set(pred)) - set(listed)
    return listed + sorted(unlisted, key=str)


def _confusion(gold: list[str], pred: list[str], labels: list[str]) -> list[list[int]]:
    index = {label: i for i, label in enumerate(labels)}
    confusion = [[0] * len(labels) for _ in labels]
    for gold_label, pred_label in zip(gold, pred):
        confusion[index[gold_label]][index[pred_label]] += 1
    return confusion


def _class_scores(confusion: list[list[int]], i: int) -> dict:
    support = sum(confusion[i])
    predicted = sum(row[i] for row in confusion)
    return {**_scores(confusion[i][i], predicted, support), "support": support}


def _occurs(confusion: list[list[int]], i: int) -> bool:
    return sum(confusion[i]) + sum(row[i] for row in confusion) > 0


# ---------------------------------------------------------------- entities


def entity_report(gold_seqs: list[list[str]], pred_seqs: list[list[str]], scheme: Optional[str] = None) -> dict:
    _check_same_length(gold_seqs, pred_seqs, "gold and pred sequence lists")
    scheme = scheme or _report_scheme(gold_seqs, pred_seqs)
    counts: dict[str, Counter] = defaultdict(Counter)
    lf_would_throw = 0
    for gold_labels, pred_labels in zip(gold_seqs, pred_seqs):
        _check_same_length(gold_labels, pred_labels, "a gold and pred sequence")
        gold_spans, _ = decode(gold_labels, scheme)
        pred_spans, malformed = decode(pred_labels, scheme)
        lf_would_throw += malformed
        _count_spans(counts, "gold", gold_spans)
        _count_spans(counts, "predicted", pred_spans)
        _count_spans(counts, "correct", gold_spans & pred_spans)
    per_type = {chunk_type: _span_scores(counts[chunk_type]) for chunk_type in sorted(counts)}
    return {
        "scheme": scheme,
        "per_type": per_type,
        "micro": _span_scores(sum(counts.values(), Counter())),
        "macro": _mean_scores(list(per_type.values())),
        "pred_labels_lf_would_throw_on": lf_would_throw,
    }


def _report_scheme(gold_seqs: list[list[str]], pred_seqs: list[list[str]]) -> str:
    """The host's choice (from gold); when gold has no chunk at all, the predictions decide,
    so that false positives are still counted."""
    gold_labels = [label for seq in gold_seqs for label in seq]
    return detect_scheme(gold_labels) or scheme_of(gold_labels + [label for seq in pred_seqs for label in seq])


def _count_spans(counts: dict[str, Counter], key: str, spans: set[Span]) -> None:
    for chunk_type, _, _ in spans:
        counts[chunk_type][key] += 1


def _span_scores(counts: Counter) -> dict:
    gold, predicted, correct = (counts[key] for key in SPAN_COUNT_KEYS)
    return {**_scores(correct, predicted, gold), "gold": gold, "predicted": predicted, "correct": correct}


# ---------------------------------------------------------------- sequences


def sequence_report(gold_seqs: list[list[str]], pred_seqs: list[list[str]], labels: list[str]) -> dict:
    """The combined {"task": "sequence", ...} report described in the module docstring."""
    _check_same_length(gold_seqs, pred_seqs, "gold and pred sequence lists")
    exact = sum(list(gold) == list(pred) for gold, pred in zip(gold_seqs, pred_seqs))
    report = {
        "task": "sequence",
        "tokens": classification_report(_flatten(gold_seqs), _flatten(pred_seqs), labels),
        "sequences_exact": _ratio(exact, len(gold_seqs)),
    }
    if is_chunk_labelling(labels):
        report["entities"] = entity_report(gold_seqs, pred_seqs)
    return report


def _flatten(seqs: list[list[str]]) -> list[str]:
    return [label for seq in seqs for label in seq]


# ---------------------------------------------------------------- regression


def regression_report(gold: list[float], pred: list[float]) -> dict:
    _check_same_length(gold, pred)
    gold = [float(value) for value in gold]
    errors = [float(p) - g for g, p in zip(gold, pred)]
    n = len(gold)
    squared_error = sum(e * e for e in errors)
    gold_mean = _ratio(sum(gold), n)
    gold_variation = sum((g - gold_mean) ** 2 for g in gold)
    return {
        "n": n,
        "mae": _ratio(sum(abs(e) for e in errors), n),
        "rmse": math.sqrt(_ratio(squared_error, n)),
        "r2": 1.0 - squared_error / gold_variation if gold_variation else 0.0,
    }


# ---------------------------------------------------------------- probabilities

CALIBRATION_BINS = 15
SMALLEST_PROBABILITY = 1e-15


def probability_report(gold_probabilities: list[float], confidences: list[float], correct: list[bool]) -> dict:
    _check_same_length(gold_probabilities, confidences, "gold probabilities and confidences")
    _check_same_length(confidences, correct, "confidences and correct")
    n = len(confidences)
    log_loss = -sum(math.log(max(p, SMALLEST_PROBABILITY)) for p in gold_probabilities)
    bins = defaultdict(list)
    for confidence, right in zip(confidences, correct):
        bins[min(int(confidence * CALIBRATION_BINS), CALIBRATION_BINS - 1)].append((confidence, right))
    gaps = sum(abs(sum(right for _, right in members) - sum(c for c, _ in members)) for members in bins.values())
    return {"n": n, "log_loss": _ratio(log_loss, n), "ece": _ratio(gaps, n)}


# ---------------------------------------------------------------- text rendering


def format_report(report: dict) -> str:
    return "\n\n".join(_format_sections(report)) + "\n"


def _format_sections(report: dict) -> list[str]:
    if "per_class" in report:
        return [_format_classification("Classification", report)]
    if "per_type" in report:
        return [_format_entities("Entities", report)]
    if "mae" in report:
        return [_format_regression("Regression", report)]
    sections = [f"Task: {report['task']}"] if "task" in report else []
    for key, title, formatter in _SECTIONS:
        if report.get(key) is not None:
            sections.append(formatter(title, report[key]))
    if not sections:
        raise ValueError(f"not a metrics report (keys: {sorted(report)})")
    return sections


def _format_classification(title: str, report: dict) -> str:
    n = report["n"]
    rows = [[label, *_score_cells(scores), scores["support"]] for label, scores in report["per_class"].items()]
    rows += [["macro avg", *_score_cells(report["macro"]), n], ["micro avg", *_score_cells(report["micro"]), n]]
    table = _table(["label", *SCORE_KEYS, "support"], rows)
    return f"{title}: n={n}, accuracy {report['accuracy']:.4f}\n{table}\n\n{_format_confusion(report)}"


def _format_confusion(report: dict) -> str:
    labels = report["labels"]
    rows = [[label, *counts] for label, counts in zip(labels, report["confusion"])]
    text = "Confusion matrix (rows gold, columns predicted)\n" + _table(["gold\\pred", *labels], rows)
    confused = report.get("most_confused")
    if confused:
        text += "\nMost confused: " + ", ".join(f"{c['gold']} as {c['predicted']} {c['count']}" for c in confused)
    return text


def _format_entities(title: str, report: dict) -> str:
    per_type = report["per_type"].items()
    rows = [[chunk_type, *_score_cells(scores), *_count_cells(scores)] for chunk_type, scores in per_type]
    rows.append(["micro avg", *_score_cells(report["micro"]), *_count_cells(report["micro"])])
    rows.append(["macro avg", *_score_cells(report["macro"]), "", "", ""])
    text = f"{title} (exact span, {report['scheme']} scheme)\n" + _table(["type", *SCORE_KEYS, *SPAN_COUNT_KEYS], rows)
    if report.get("pred_labels_lf_would_throw_on"):
        text += f"\npredicted labels the LF chunker would throw on: {report['pred_labels_lf_would_throw_on']}"
    return text


def _format_regression(title: str, report: dict) -> str:
    rows = [["MAE", report["mae"]], ["RMSE", report["rmse"]], ["R2", report["r2"]]]
    return f"{title}: n={report['n']}\n" + _table(["metric", "value"], rows)


def _format_fraction(title: str, value: float) -> str:
    return f"{title}: {value:.4f}"


def _format_probabilities(title: str, report: dict) -> str:
    return f"{title}: n={report['n']}, log-loss {report['log_loss']:.4f}, expected calibration error {report['ece']:.4f}"


_SECTIONS = (
    ("classification", "Classification", _format_classification),
    ("tokens", "Tokens", _format_classification),
    ("sequences_exact", "Sequences exactly right", _format_fraction),
    ("entities", "Entities", _format_entities),
    ("regression", "Regression", _format_regression),
    ("probabilities", "Probabilities", _format_probabilities),
)


def _score_cells(scores: dict) -> list[float]:
    return [scores[key] for key in SCORE_KEYS]


def _count_cells(scores: dict) -> list[int]:
    return [scores[key] for key in SPAN_COUNT_KEYS]


def _table(header: list[str], rows: list[list]) -> str:
    """First column left-aligned, the others right-aligned; floats with 4 decimals."""
    cells = [[str(h) for h in header]] + [[_cell(value) for value in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
    return "\n".join(_aligned_line(row, widths) for row in cells)


def _aligned_line(cells: list[str], widths: list[int]) -> str:
    padded = [cells[0].ljust(widths[0])] + [text.rjust(width) for text, width in zip(cells[1:], widths[1:])]
    return "  ".join(padded).rstrip()


def _cell(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
