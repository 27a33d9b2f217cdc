"""Vocabularies and embedding settings, one per embedding id.

Every nominal or list feature names an `emb_id` (features without one get their own);
features sharing an id share one vocabulary and one embedding matrix. Vocabularies come
from the meta file's value counts: id 0 is padding, id 1 out-of-vocabulary, then values
by descending count. Embedding settings come from the feature specification, overridden
by `--embs embid:embdims:embtrain:embminfreq:embfile,...`.
"""

from dataclasses import dataclass, field

import numpy as np

from .errors import UsageError

TRAIN_MODES = ("yes", "no", "mapping", "onehot")
SPECIALS = ["<pad>", "<oov>"]
OOV_ID = 1


@dataclass
class EmbeddingSettings:
    emb_id: str
    dims: int = 0
    train: str = ""
    minfreq: int = 1
    file: str = ""
    add_file_words: bool = None  # None: only for `mapping`

    def to_json(self):
        return dict(self.__dict__)


@dataclass
class Vocab:
    emb_id: str
    itos: list
    counts: list
    settings: EmbeddingSettings
    stoi: dict = field(default=None, repr=False)

    def __post_init__(self):
        if self.stoi is None:
            self.stoi = {s: i for i, s in enumerate(self.itos) if i >= len(SPECIALS)}

    def __len__(self):
        return len(self.itos)

    def extend(self, words):
        """Adds values not seen in training (e.g. from an embeddings file)."""
        for word in words:
            if word not in self.stoi:
                self.stoi[word] = len(self.itos)
                self.itos.append(word)
                self.counts.append(0)

    def pruned(self, keep, counts):
        """-> (Vocab of the kept entries, old id -> new id table, kept old ids); the
        special entries stay, dropped values map to out-of-vocabulary."""
        keep = np.array(keep, dtype=bool)
        keep[: len(SPECIALS)] = True
        kept = np.flatnonzero(keep)
        table = np.full(len(self.itos), OOV_ID, dtype=np.int64)
        table[kept] = np.arange(len(kept))
        new_counts = [int(counts[i]) for i in kept]
        return Vocab(self.emb_id, [self.itos[i] for i in kept], new_counts, self.settings), table, kept

    def to_json(self):
        return {"itos": self.itos, "counts": self.counts, "settings": self.settings.to_json()}

    @classmethod
    def from_json(cls, emb_id, d):
        return cls(emb_id, d["itos"], d["counts"], EmbeddingSettings(**d["settings"]))


def parse_embs(spec):
    """`--embs` -> {emb_id: {field: value}} holding only the elements given (not empty)."""
    overrides = {}
    for part in (p for p in (spec or "").split(",") if p.strip()):
        fields = part.split(":")
        if len(fields) > 5 or not fields[0]:
            raise UsageError(f"--embs: {part!r} is not embid:embdims:embtrain:embminfreq:embfile")
        emb_id, *rest = fields
        override = {}
        for name, text in zip(("dims", "train", "minfreq", "file"), rest):
            if text != "":
                override[name] = _embs_value(name, text, part)
        overrides[emb_id] = override
    return overrides


def _embs_value(name, text, part):
    if name in ("dims", "minfreq"):
        if not text.isdigit():
            raise UsageError(f"--embs: {name} must be a whole number >= 0 in {part!r}, got {text!r}")
        return int(text)
    if name == "train" and text not in TRAIN_MODES:
        raise UsageError(f"--embs: embtrain must be one of {', '.join(TRAIN_MODES)} in {part!r}, got {text!r}")
    return text


def embedding_settings(schema, attributes, overrides):
    """{emb_id: EmbeddingSettings} for the embedded features; --embs overrides win."""
    settings = {}
    for feature in schema.nominal + schema.lists:
        attr = attributes[feature.attrid] if feature.attrid < len(attributes) else {}
        current = settings.setdefault(feature.emb_id, EmbeddingSettings(feature.emb_id))
        _merge_attribute(current, attr)
    unknown = sorted(set(overrides) - set(settings))
    if unknown:
        raise UsageError(f"--embs: unknown embedding id {unknown[0]!r}; known ids: {', '.join(sorted(settings))}")
    for emb_id, override in overrides.items():
        for name, value in override.items():
            setattr(settings[emb_id], name, value)
    for s in settings.values():
        s.minfreq = max(1, s.minfreq)
        if s.train and s.train not in TRAIN_MODES:
            raise UsageError(f"embedding id {s.emb_id!r}: emb_train {s.train!r} is not one of {', '.join(TRAIN_MODES)}")
    return settings


def _merge_attribute(settings, attr):
    """The first attribute of an id that sets a value decides it."""
    if not settings.dims and attr.get("emb_dims"):
        settings.dims = int(attr["emb_dims"])
    if not settings.train and attr.get("emb_train"):
        settings.train = attr["emb_train"]
    if settings.minfreq <= 1 and attr.get("emb_minfreq"):
        settings.minfreq = int(attr["emb_minfreq"])
    if not settings.file and attr.get("emb_file"):
        settings.file = attr["emb_file"]


def build_vocabs(schema, feature_stats, settings):
    """One Vocab per embedding id from the meta's value counts."""
    totals = {emb_id: {} for emb_id in settings}
    for (emb_id, _), counts in occurrence_counts(schema, feature_stats).items():
        for value, n in counts.items():
            totals[emb_id][value] = totals[emb_id].get(value, 0) + n
    vocabs = {}
    for emb_id, counts in totals.items():
        minfreq = settings[emb_id].minfreq
        kept = sorted((v for v, n in counts.items() if n >= minfreq), key=lambda v: (-counts[v], v))
        itos = SPECIALS + kept
        vocabs[emb_id] = Vocab(emb_id, itos, [0, 0] + [counts[v] for v in kept], settings[emb_id])
    return vocabs


def occurrence_counts(schema, feature_stats):
    """{(emb_id, attribute): {value: count}}: how often each value occurs in the corpus.
    The positions of a window (L) attribute see every word once each, so the attribute's
    count of a value is its largest count at one position, not the sum over positions;
    different attributes that share an embedding id are different occurrences."""
    counts = {}
    for feature in schema.nominal + schema.lists:
        seen = counts.setdefault((feature.emb_id, feature.attrid), {})
        for value, n in (feature_stats.get(feature.name, {}).get("stringCounts") or {}).items():
            seen[value] = max(seen.get(value, 0), n)
    return counts


CHARS_EMB_ID = "chars"


def build_char_vocab(sources, feature_stats, dims=30):
    """Characters of the values of the word features in `sources`, by descending count."""
    counts = {}
    for feature in sources:
        for value, n in (feature_stats.get(feature.name, {}).get("stringCounts") or {}).items():
            for c in value:
                counts[c] = counts.get(c, 0) + n
    kept = sorted(counts, key=lambda c: (-counts[c], c))
    settings = EmbeddingSettings(CHARS_EMB_ID, dims=dims, train="yes")
    return Vocab(CHARS_EMB_ID, SPECIALS + kept, [0, 0] + [counts[c] for c in kept], settings)
