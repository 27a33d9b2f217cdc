"""Chunk labels (NER, chunking): which scheme labels follow, the chunks they spell, and
which label may follow which; used by evaluation (metrics.py) and the CRF (modules/crf.py).

Chunk decoding follows the host emulator (lfhost ``Chunks.java``). The scheme is detected
from the gold labels: "lf" when every label other than "O" is one or more ``Type|B`` /
``Type|I`` parts joined by ",", else "conll" when every such label is ``B-Type``,
``I-Type``, ``B`` or ``I``. Both gold and predicted labels are decoded with that scheme.

- lf (the LF's chunk builder): ``B`` closes an open chunk of its type and opens a new one;
  ``I`` extends an open chunk of its type and is ignored when none is open; every open type
  the label does not mention closes; "O" closes everything. A part that is not
  ``type|B``/``type|I`` is skipped (the LF itself would throw on it; counted).
- conll (conlleval): an ``I`` that does not continue a chunk of its type starts a new
  chunk; any other label (``O`` or malformed) closes the open chunk.
"""

from __future__ import annotations

import re
from typing import Iterable, Optional

LF_PART = re.compile(r"[^|,]+\|[BI]")
CONLL_LABEL = re.compile(r"[BI](-.+)?")
OUTSIDE = "O"

Span = tuple[str, int, int]


def detect_scheme(labels: Iterable[Optional[str]]) -> Optional[str]:
    """"lf", "conll", or None when there is no entity label or the labels fit neither."""
    entity_labels = {label for label in labels if label is not None and label != "O"}
    if not entity_labels:
        return None
    if all(_is_lf_label(label) for label in entity_labels):
        return "lf"
    if all(CONLL_LABEL.fullmatch(label) for label in entity_labels):
        return "conll"
    return None


def _is_lf_label(label: str) -> bool:
    return all(LF_PART.fullmatch(part) for part in label.split(","))


def is_chunk_labelling(labels: Iterable[Optional[str]]) -> bool:
    return detect_scheme(labels) is not None


def chunk_spans(labels: list[str], scheme: Optional[str] = None) -> set[Span]:
    """Chunks as (type, start, end_exclusive); the scheme is detected from labels unless given."""
    return decode(labels, scheme or scheme_of(labels))[0]


def scheme_of(labels: list[Optional[str]]) -> str:
    scheme = detect_scheme(labels)
    if scheme is None and any(label is not None and label != "O" for label in labels):
        raise ValueError("labels follow neither the LF (Type|B, Type|I) nor the B-Type/I-Type scheme")
    # all "O": no scheme finds a chunk, any will do
    return scheme or "lf"


def decode(labels: list[Optional[str]], scheme: str) -> tuple[set[Span], int]:
    """Spans, and how many labels the LF chunker would throw on (lf scheme only)."""
    if scheme == "lf":
        return _decode_lf(labels)
    if scheme == "conll":
        return _decode_conll(labels), 0
    raise ValueError(f"unknown chunk scheme {scheme!r}")


def _decode_lf(labels: list[Optional[str]]) -> tuple[set[Span], int]:
    spans: set[Span] = set()
    open_starts: dict[str, int] = {}
    malformed = 0
    for position, label in enumerate(labels):
        kept, has_malformed_part = set(), False
        if label is not None and label != "O":
            kept, has_malformed_part = _apply_lf_label(label, position, open_starts, spans)
        malformed += has_malformed_part
        for chunk_type in set(open_starts) - kept:
            spans.add((chunk_type, open_starts.pop(chunk_type), position))
    spans.update((chunk_type, start, len(labels)) for chunk_type, start in open_starts.items())
    return spans, malformed


def _apply_lf_label(label: str, position: int, open_starts: dict[str, int], spans: set[Span]) -> tuple[set[str], bool]:
    """Applies the B/I parts of one label; returns the types still open because of it, and
    whether some part was malformed."""
    kept: set[str] = set()
    malformed = False
    for part in _java_split(label, ","):
        type_and_code = _java_split(part, "|")
        if len(type_and_code) != 2 or type_and_code[1] not in ("B", "I"):
            malformed = True
            continue
        chunk_type, code = type_and_code
        if code == "B":
            if chunk_type in open_starts:
                spans.add((chunk_type, open_starts[chunk_type], position))
            open_starts[chunk_type] = position
            kept.add(chunk_type)
        elif chunk_type in open_starts:
            kept.add(chunk_type)
    return kept, malformed


def _java_split(text: str, separator: str) -> list[str]:
    """Java's String.split, which the LF uses: trailing empty parts are dropped, so
    "PER|B|" is a valid PER|B there; a text without the separator stays whole."""
    if separator not in text:
        return [text]
    parts = text.split(separator)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def _decode_conll(labels: list[Optional[str]]) -> set[Span]:
    spans: set[Span] = set()
    open_type, start = None, 0
    for position, label in enumerate(labels):
        code, chunk_type = _conll_code_and_type(label)
        continues = code == "I" and open_type == chunk_type
        if open_type is not None and not continues:
            spans.add((open_type, start, position))
            open_type = None
        if code != "O" and not continues:
            open_type, start = chunk_type, position
    if open_type is not None:
        spans.add((open_type, start, len(labels)))
    return spans


def _conll_code_and_type(label: Optional[str]) -> tuple[str, str]:
    if label is None or not CONLL_LABEL.fullmatch(label):
        return "O", ""
    return label[0], label[2:]


def transitions(labels: list[str]) -> Optional[list[list[bool]]]:
    """Which label may follow which, for chunk labels (None for other labels): rows for
    each previous label and a last row for the start, a column per following label.

    A label may follow another (or start a sequence) unless one of its parts is an
    inside part "T|I" (or "I-T") and the previous label has no part of type T.
    """
    scheme = detect_scheme(labels)
    if scheme is None:
        return None
    parts = [_chunk_parts(label, scheme) for label in labels]
    previous = parts + [[]]  # the last row is the start: no chunk is open there
    return [[_may_follow(prev, nxt) for nxt in parts] for prev in previous]


def _chunk_parts(label: str, scheme: str) -> list[tuple[str, str]]:
    """(type, code) for each chunk a label takes part in; code is "B" or "I"."""
    if label == OUTSIDE:
        return []
    if scheme == "lf":
        return [tuple(part.split("|")) for part in label.split(",")]
    return [(label[2:], label[0])]


def _may_follow(previous: list[tuple[str, str]], following: list[tuple[str, str]]) -> bool:
    open_types = {chunk_type for chunk_type, _ in previous}
    return all(code == "B" or chunk_type in open_types for chunk_type, code in following)
