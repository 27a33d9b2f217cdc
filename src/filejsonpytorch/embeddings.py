"""Pre-trained word embeddings from text files (word2vec, GloVe, fastText text format).

One word per line followed by its vector, space separated, an optional first line
`count dims`, plain or gzip-compressed. The file is streamed and only the vectors the
vocabulary needs are parsed and kept, so a file of several GB loads in bounded memory.
Only numpy is imported here, never torch, so loading stays light in memory.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import zlib
from dataclasses import dataclass

import numpy as np

from .errors import DataError, located

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
READ_BUFFER_BYTES = 1 << 20
# The first vectors of the file are parsed whatever the vocabulary, so that the scale of
# the random rows is known even when few vocabulary words are in the file.
SCALE_SAMPLE_VECTORS = 1000


@dataclass
class Pretrained:
    """Embedding matrix for a vocabulary, with the rows found in a pre-trained file."""

    matrix: np.ndarray  # float32 [len(itos), dims]; row 0 (padding) is zeros
    itos: list[str]  # the input vocabulary, then any words added from the file
    found: np.ndarray  # bool [len(itos)]: the row came from the file
    dims: int
    stats: dict


def load_pretrained(path: str, itos: list[str], counts: list[int], *, first_real: int = 2,
                    datadir: str | None = None, lowercase_fallback: bool = True,
                    add_file_words: bool = False, max_extra: int | None = None,
                    rng: np.random.Generator) -> Pretrained:
    """Build the embedding matrix for `itos` from the pre-trained vectors in `path`.

    Entries of `itos` before `first_real` are special and not looked up; row 0 is the
    padding row and is all zeros. Rows not in the file are random normal, scaled to the
    standard deviation of the file's values. With `lowercase_fallback`, a word missing
    from the file takes the vector of its lower-cased form. With `add_file_words`, file
    words not in `itos` are appended to it in file order (at most `max_extra` of them).

    A line with more fields than `dims + 1` has a word containing spaces (as in GloVe
    840B), unless all the word's tokens after the first are numbers: then it is reported
    as a vector with too many values.
    """
    if len(counts) != len(itos):
        raise ValueError(f"counts has {len(counts)} entries but itos has {len(itos)}")
    file_path = _resolve(path, datadir)
    wanted = _Wanted(itos, first_real, lowercase_fallback, add_file_words, max_extra)
    scan = _Scan(file_path, wanted)
    with _open_binary(file_path) as stream:
        scan.run(_numbered_lines(stream, file_path))
    return _assemble(scan, itos, counts, first_real, lowercase_fallback, rng)


def format_stats(emb_id: str, stats: dict, trainable: bool) -> str:
    """One-line summary of a `Pretrained.stats` dict, for the training log."""
    megabytes = stats["rows"] * stats["dims"] * np.dtype(np.float32).itemsize / 2**20
    extra = f" + {stats['extra_words']:,} added from the file" if stats["extra_words"] else ""
    lower = f", {stats['lowercase_matches']:,} via lower case" if stats["lowercase_matches"] else ""
    return (f"embedding {emb_id!r}: {stats['vocab']:,} words{extra}, {stats['dims']} dims, "
            f"{stats['found_types']:,} found in {stats['file']} "
            f"({stats['coverage_types']:.1%} of types, {stats['coverage_tokens']:.1%} of tokens"
            f"{lower}), {'trainable' if trainable else 'fixed'}, {megabytes:.2f} MB")


def _resolve(path: str, datadir: str | None) -> str:
    if datadir is not None and not os.path.isabs(path):
        return os.path.join(datadir, path)
    return path


def _open_binary(path: str):
    try:
        if path.endswith(".gz") or _starts_with(path, GZIP_MAGIC):
            # gzip's own buffer is small; a bigger one saves a fifth of the time
            return io.BufferedReader(gzip.open(path, "rb"), READ_BUFFER_BYTES)
        return open(path, "rb", buffering=READ_BUFFER_BYTES)
    except FileNotFoundError:
        raise DataError(f"{located(path)}: embeddings file not found") from None
    except OSError as error:
        raise DataError(f"{located(path)}: cannot open embeddings file: {error}") from None


def _starts_with(path: str, prefix: bytes) -> bool:
    with open(path, "rb") as stream:
        return stream.read(len(prefix)) == prefix


def _numbered_lines(stream, path: str):
    """Yield (line number, line without trailing whitespace) for each non-blank line."""
    number = 0
    try:
        for number, raw in enumerate(stream, start=1):
            line = raw.rstrip()
            if number == 1:
                line = line.removeprefix(UTF8_BOM)
            if line:
                yield number, line
    except (OSError, EOFError, zlib.error) as error:
        # reading is buffered, so the failure is somewhere after the last line returned
        after = f" after line {number}" if number else ""
        raise DataError(f"{located(path)}: cannot read the file{after}: {error}") from None


class _Wanted:
    """Which words of the file to keep, as UTF-8 bytes (file lines are never decoded whole)."""

    def __init__(self, itos, first_real, lowercase_fallback, add_file_words, max_extra):
        self.in_vocab = {word.encode("utf-8") for word in itos}
        real_words = itos[first_real:]
        self.looked_up = {word.encode("utf-8") for word in real_words}
        if lowercase_fallback:
            self.looked_up.update(word.lower().encode("utf-8") for word in real_words)
        self.add_file_words = add_file_words
        self.max_extra = max_extra

    def is_extra(self, word: bytes, extras_so_far: int) -> bool:
        return (self.add_file_words and word not in self.in_vocab
                and (self.max_extra is None or extras_so_far < self.max_extra))


class _Scan:
    """One pass over an embeddings file, keeping the wanted vectors."""

    def __init__(self, path: str, wanted: _Wanted):
        self.path = path
        self.wanted = wanted
        self.dims = 0
        self.dims_origin = ""
        self.kept: dict[bytes, np.ndarray] = {}
        self.extra_words: list[str] = []
        self.vectors_seen = 0
        self.lines_read = 0
        self.value_count = 0
        self.value_sum = 0.0
        self.value_sum_squares = 0.0

    def run(self, lines) -> None:
        for number, line in lines:
            self.lines_read = number
            if not self.dims and self._take_dims(line, number):
                continue
            word, values = self._split(line, number)
            self.vectors_seen += 1
            self._consider(word, values, number)
        if self.vectors_seen == 0:
            raise DataError(f"{located(self.path)}: no vectors in the embeddings file"
                            + ("" if self.lines_read else " (it is empty)"))

    def scale(self) -> float:
        mean = self.value_sum / self.value_count
        return math.sqrt(max(self.value_sum_squares / self.value_count - mean * mean, 0.0))

    def _take_dims(self, first_line: bytes, number: int) -> bool:
        """Set dims from a `count dims` header (then True) or from the first vector."""
        tokens = first_line.split(b" ")
        if len(tokens) == 2 and tokens[0].isdigit() and tokens[1].isdigit():
            self.dims = int(tokens[1])
            self.dims_origin = f"the header (line {number}) says"
            if self.dims == 0:
                raise DataError(f"{located(self.path, number)}: the header gives 0 dimensions")
            return True
        self.dims = len(tokens) - 1
        self.dims_origin = f"the first vector (line {number}) has"
        if self.dims == 0:
            raise DataError(f"{located(self.path, number)}: a word without a vector")
        return False

    def _split(self, line: bytes, number: int) -> tuple[bytes, bytes]:
        spaces = line.count(b" ")
        if spaces == self.dims:
            word, _, values = line.partition(b" ")
            return word, values
        if spaces < self.dims:
            raise self._dims_error(number, spaces)
        word = line.rsplit(b" ", self.dims)[0]
        extra_tokens = word.split(b" ")[1:]
        if all(_is_number(token) for token in extra_tokens):
            raise self._dims_error(number, self.dims + len(extra_tokens))
        return word, line[len(word) + 1:]

    def _dims_error(self, number: int, values: int) -> DataError:
        return DataError(f"{located(self.path, number)}: a vector with {values} values, "
                         f"but {self.dims_origin} {self.dims} dimensions")

    def _consider(self, word: bytes, values: bytes, number: int) -> None:
        if word in self.kept:
            return  # a repeated word: its first vector wins
        is_extra = self.wanted.is_extra(word, len(self.extra_words))
        if is_extra or word in self.wanted.looked_up:
            self.kept[word] = self._parse(values, number)
            if is_extra:
                self.extra_words.append(self._decode(word, number))
        elif self.vectors_seen <= SCALE_SAMPLE_VECTORS:
            self._parse(values, number)

    def _parse(self, values: bytes, number: int) -> np.ndarray:
        tokens = values.split(b" ")
        try:
            with np.errstate(over="ignore"):  # too big for float32: reported below
                vector = np.array(tokens, dtype=np.float32)
        except ValueError:
            bad = next(token for token in tokens if not _is_number(token))
            raise DataError(f"{located(self.path, number)}: {bad.decode('utf-8', 'replace')!r} "
                            "in the vector is not a number") from None
        if not np.isfinite(vector).all():
            raise DataError(f"{located(self.path, number)}: the vector has a value that is "
                            "not a finite float32 number")
        self._add_to_moments(vector)
        return vector

    def _add_to_moments(self, vector: np.ndarray) -> None:
        values = vector.astype(np.float64)
        self.value_count += values.size
        self.value_sum += float(values.sum())
        self.value_sum_squares += float(values @ values)

    def _decode(self, word: bytes, number: int) -> str:
        try:
            return word.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{located(self.path, number)}: the word is not valid UTF-8") from None


def _is_number(token: bytes) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _assemble(scan: _Scan, itos, counts, first_real, lowercase_fallback, rng) -> Pretrained:
    all_itos = list(itos) + scan.extra_words
    matrix = rng.standard_normal((len(all_itos), scan.dims), dtype=np.float32)
    matrix *= scan.scale()
    found = np.zeros(len(all_itos), dtype=bool)
    lowercase_matches = 0
    for index in range(first_real, len(itos)):
        vector, by_lowercase = _vector_for(itos[index], scan.kept, lowercase_fallback)
        if vector is not None:
            matrix[index] = vector
            found[index] = True
            lowercase_matches += by_lowercase
    for index, word in enumerate(scan.extra_words, start=len(itos)):
        matrix[index] = scan.kept[word.encode("utf-8")]
        found[index] = True
    if first_real > 0:
        matrix[0] = 0.0
    stats = _stats(scan, found, first_real, len(itos), counts, lowercase_matches)
    return Pretrained(matrix=matrix, itos=all_itos, found=found, dims=scan.dims, stats=stats)


def _vector_for(word: str, kept: dict, lowercase_fallback: bool):
    """(vector or None, whether it came from the lower-cased word)."""
    vector = kept.get(word.encode("utf-8"))
    if vector is not None or not lowercase_fallback:
        return vector, False
    vector = kept.get(word.lower().encode("utf-8"))
    return vector, vector is not None


def _stats(scan: _Scan, found: np.ndarray, first_real: int, input_size: int, counts,
           lowercase_matches: int) -> dict:
    """Coverage of the real (non-special) words of the input vocabulary."""
    real_found = found[first_real:input_size]
    weights = np.asarray(counts[first_real:input_size], dtype=np.float64)
    found_types = int(real_found.sum())
    total_tokens = weights.sum()
    return {
        "file": scan.path,
        "dims": scan.dims,
        "vocab": len(real_found),
        "found_types": found_types,
        "coverage_types": found_types / len(real_found) if len(real_found) else 0.0,
        "coverage_tokens": float(weights[real_found].sum() / total_tokens) if total_tokens else 0.0,
        "lowercase_matches": lowercase_matches,
        "extra_words": len(scan.extra_words),
        "lines_read": scan.lines_read,
        "rows": len(found),
    }
