"""Reading the LearningFramework export format (`X.meta.json` + `X.data.json`).

The meta file describes K features; each data line holds K values (per element, for
sequences) and a target. `FeatureSchema` is what we keep of the meta: how every value
position is read. `encode_instance`/`encode_sequence` turn parsed values into ids and
numbers; `read_dataset` parses a whole data file once into compact arrays (`Dataset`).
The same encoders serve training and the application server, so both read values alike.
"""

import json
import logging
import math
import os
from dataclasses import dataclass, field

import numpy as np

from .dataset import Columns
from .errors import DataError, located

log = logging.getLogger("filejsonpytorch")

PAD, OOV = 0, 1
MAX_WORD_CHARS = 30
FLOAT32_MAX = 3.4028234663852886e38
MISSING_EMB_ID = "attr{}"
#: how the LF (Jackson) writes a numeric feature's NaN and infinities: read as missing values
NOT_A_NUMBER = frozenset({"NaN", "Infinity", "-Infinity"})


@dataclass
class Feature:
    """One value position of an instance (one entry of the meta `features` list)."""

    index: int
    name: str
    kind: str  # A, L, N
    datatype: str  # nominal, numeric, boolean
    attrid: int
    role: str  # nominal, list, numeric, boolean; chars: the characters of feature `index`
    emb_id: str = ""
    mean: float = 0.0
    std: float = 1.0

    def to_json(self):
        return dict(self.__dict__)


@dataclass
class FeatureSchema:
    features: list
    is_sequence: bool
    target_kind: str  # nominal, numeric
    labels: list = field(default_factory=list)
    target_mean: float = 0.0
    target_std: float = 1.0
    maxlens: dict = field(default_factory=dict)  # feature index -> (maxlen, shorten)

    @property
    def nominal(self):
        return [f for f in self.features if f.role == "nominal"]

    @property
    def lists(self):
        """List inputs: n-gram/list features, then the character lists of word features."""
        return [f for f in self.features if f.role == "list"] + [f for f in self.features if f.role == "chars"]

    @property
    def n_values(self):
        """The number of values per instance (or element) in the data."""
        return sum(1 for f in self.features if f.role != "chars")

    @property
    def numeric(self):
        return [f for f in self.features if f.role in ("numeric", "boolean")]

    def to_json(self):
        return {
            "features": [f.to_json() for f in self.features],
            "is_sequence": self.is_sequence,
            "target_kind": self.target_kind,
            "labels": self.labels,
            "target_mean": self.target_mean,
            "target_std": self.target_std,
            "maxlens": {str(k): list(v) for k, v in self.maxlens.items()},
        }

    @classmethod
    def from_json(cls, d):
        return cls(
            features=[Feature(**f) for f in d["features"]],
            is_sequence=d["is_sequence"],
            target_kind=d["target_kind"],
            labels=d["labels"],
            target_mean=d["target_mean"],
            target_std=d["target_std"],
            maxlens={int(k): tuple(v) for k, v in d["maxlens"].items()},
        )


def data_file_for(meta_path):
    """`X.meta.json` -> `X.data.json` in the same directory."""
    meta_path = str(meta_path)
    if meta_path.endswith(".meta.json"):
        return meta_path[: -len(".meta.json")] + ".data.json"
    raise DataError(f"{meta_path}: a meta file name must end in .meta.json")


def read_meta(meta_path):
    try:
        with open(meta_path, encoding="utf-8-sig") as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise DataError(f"{meta_path}: meta file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{meta_path}: not a valid JSON meta file ({e})") from None
    for key in ("features", "featureInfo", "featureStats", "targetStats"):
        if key not in meta:
            raise DataError(f"{meta_path}: meta file lacks the key {key!r}")
    return meta


def schema_from_meta(meta):
    attributes = meta["featureInfo"]["attributes"]
    stats = meta["featureStats"]
    features = []
    for index, spec in enumerate(meta["features"]):
        attr = attributes[spec["attrid"]] if spec["attrid"] < len(attributes) else {}
        features.append(_feature(index, spec, attr, stats.get(spec["name"], {})))
    target = meta["targetStats"]
    labels = sorted(target.get("stringCounts") or {})
    schema = FeatureSchema(
        features=features,
        is_sequence=bool(meta.get("isSequence")),
        target_kind="nominal" if labels else "numeric",
        labels=labels,
    )
    if not labels:
        schema.target_mean = float(target.get("mean") or 0.0)
        schema.target_std = _std(target.get("variance"))
    return schema


def _feature(index, spec, attr, stats):
    datatype = spec.get("datatype", "nominal")
    kind = spec.get("kind", "A")
    if datatype == "nominal":
        role = "list" if kind == "N" or attr.get("listsep") else "nominal"
    else:
        role = datatype
    emb_id = attr.get("emb_id") or MISSING_EMB_ID.format(spec["attrid"])
    feature = Feature(index, spec["name"], kind, datatype, spec["attrid"], role, emb_id)
    if role == "numeric":
        feature.mean = float(stats.get("mean") or 0.0)
        feature.std = _std(stats.get("variance"))
    return feature


def _std(variance):
    variance = float(variance or 0.0)
    return math.sqrt(variance) if variance > 1e-12 else 1.0


def detect_list_features(schema, instances):
    """A nominal value that arrives as a list makes a list-valued feature (a list-valued
    GATE feature has no listsep in the meta); decided from the first instances' values."""
    for feature in schema.features:
        if feature.role == "nominal" and any(
                isinstance(values[feature.index], list) for values in instances if feature.index < len(values)):
            feature.role = "list"


class Encoder:
    """Turns one instance's (or element's) raw values into ids and numbers.

    Prepared once from the schema and vocabularies; `encode` is the per-instance hot path
    for both the data reader and the application server.
    """

    def __init__(self, schema, vocabs):
        self.schema = schema
        self.n_features = schema.n_values
        self.nominal = [(f.index, vocabs[f.emb_id].stoi, f) for f in schema.nominal]
        self.lists = [(f.index, vocabs[f.emb_id].stoi, f) for f in schema.lists]
        self.list_encoders = [self._chars if f.role == "chars" else self._list for f in schema.lists]
        self.numeric = [(f.index, f) for f in schema.numeric]
        self.maxlens = schema.maxlens

    def encode(self, values):
        """-> (nominal ids, numeric values, list of id lists); raises ValueError naming
        the feature when a value has the wrong type."""
        if not isinstance(values, list):
            raise ValueError(f"expected a list of {self.n_features} feature values, got {_type(values)}")
        if len(values) != self.n_features:
            raise ValueError(f"expected {self.n_features} feature values, got {len(values)}")
        # a string, the usual value, is looked up here: a call per value would cost more
        nominal = [stoi.get(values[i], OOV) if type(values[i]) is str else self._nominal(values[i], stoi, f)
                   for i, stoi, f in self.nominal]
        numeric = [self._number(values[i], f) for i, f in self.numeric]
        lists = [encode(values[i], stoi, f) for encode, (i, stoi, f) in zip(self.list_encoders, self.lists)]
        return nominal, numeric, lists

    @staticmethod
    def _nominal(value, stoi, feature):
        if isinstance(value, str):
            return stoi.get(value, OOV)
        if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
            raise ValueError(f"feature {feature.index} {feature.name!r}: expected a string, got {_type(value)}")
        if not math.isfinite(value):
            raise ValueError(f"feature {feature.index} {feature.name!r}: {value} is not a valid value")
        # the LF writes numbers for nominal features coded from numeric GATE features
        return stoi.get(_number_text(value), OOV)

    @staticmethod
    def _number(value, feature):
        # the usual value, a float in range, at once (NaN fails the comparison)
        if type(value) is float and -FLOAT32_MAX <= value <= FLOAT32_MAX and feature.role != "boolean":
            return (value - feature.mean) / feature.std
        if feature.role == "boolean":
            if isinstance(value, bool) or value == "":
                return 1.0 if value else 0.0
            raise ValueError(f"feature {feature.index} {feature.name!r}: expected true/false, got {_type(value)}")
        if isinstance(value, str) and (value == "" or value in NOT_A_NUMBER):
            return 0.0  # a missing value (or one outside a window) reads as the training mean
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"feature {feature.index} {feature.name!r}: expected a number, got {_type(value)}")
        problem = _number_problem(value)
        if problem:
            raise ValueError(f"feature {feature.index} {feature.name!r}: {problem}")
        return (value - feature.mean) / feature.std

    def _list(self, value, stoi, feature):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ValueError(f"feature {feature.index} {feature.name!r}: expected a list of strings, got {_type(value)}")
        ids = []
        for item in value:
            if not isinstance(item, str):
                raise ValueError(f"feature {feature.index} {feature.name!r}: list items must be strings, got {_type(item)}")
            ids.append(stoi.get(item, OOV))
        limit = self.maxlens.get(feature.index)
        return shorten(ids, *limit) if limit else ids


    @staticmethod
    def _chars(value, stoi, feature):
        text = value if isinstance(value, str) else _number_text(value)
        return [stoi.get(c, OOV) for c in text[:MAX_WORD_CHARS]]


def shorten(items, maxlen, where):
    """Cut a list to maxlen, dropping from the `where` side (left, right, both, middle)."""
    extra = len(items) - maxlen
    if extra <= 0:
        return items
    if where == "left":
        return items[extra:]
    if where == "both":
        left = extra // 2
        return items[left:left + maxlen]
    if where == "middle":
        head = (maxlen + 1) // 2
        return items[:head] + items[len(items) - (maxlen - head):]
    return items[:maxlen]


def _number_text(value):
    return str(value)


def _number_problem(value):
    """Why a number cannot go into the float32 tensors the networks use, or None."""
    try:
        if not math.isfinite(value):
            return f"{value} is not a finite number"
        if abs(float(value)) <= FLOAT32_MAX:
            return None
    except OverflowError:
        pass
    return f"{_short(value)} is too large (the limit is ±{FLOAT32_MAX:.1e})"


def _short(value, limit=40):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _type(value):
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", list: "a list", dict: "an object",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def iter_data_lines(path):
    """Yields (line number, parsed JSON) for every non-empty line; tolerates a BOM and CRLF."""
    try:
        f = open(path, encoding="utf-8-sig", newline=None)
    except FileNotFoundError:
        raise DataError(f"{path}: data file not found (expected next to the meta file)") from None
    with f:
        try:
            for number, line in enumerate(f, 1):
                if line.strip():
                    yield number, _parse_line(line, path, number)
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: not UTF-8 text ({e})") from None


def _parse_line(line, path, number):
    # NaN and Infinity are parsed as numbers, so that the encoder rejects them naming the feature
    try:
        return json.loads(line)
    except (json.JSONDecodeError, ValueError) as e:
        raise DataError(f"{located(path, number)}: malformed JSON ({e})") from None


def read_dataset(path, schema, encoder):
    """Parses a data file once into a Dataset; errors name the file, line and feature.
    Empty sequences (a span without elements) teach nothing and are left out."""
    columns = Columns(encoder)
    label_ids = {label: i for i, label in enumerate(schema.labels)}
    count = empty = 0
    for number, line in iter_data_lines(path):
        try:
            added = _add_line(columns, line, schema, encoder, label_ids)
        except ValueError as e:
            raise DataError(f"{located(path, number)}: {e}") from None
        count += added
        empty += not added
    if empty:
        log.info("%s: %d empty sequences (no elements) left out", path, empty)
    if count == 0:
        raise DataError(f"{path}: the data file holds no instances" if empty else f"{path}: the data file is empty")
    target_dtype = np.int64 if schema.target_kind == "nominal" else np.float32
    return columns.pack(len(schema.nominal), len(schema.numeric), target_dtype, schema.is_sequence)


def _add_line(columns, line, schema, encoder, label_ids):
    if not (isinstance(line, list) and len(line) == 2):
        raise ValueError("expected [features, target]")
    values, target = line
    if not schema.is_sequence:
        columns.add(encoder.encode(values), _target(target, schema, label_ids))
        return True
    if not isinstance(values, list) or not isinstance(target, list):
        raise ValueError("a sequence line must be [[element features, ...], [label, ...]]")
    if len(values) != len(target):
        raise ValueError(f"{len(values)} elements but {len(target)} labels")
    if not values:
        return False
    for position, (element, label) in enumerate(zip(values, target)):
        try:
            columns.add(encoder.encode(element), _target(label, schema, label_ids))
        except ValueError as e:
            raise ValueError(f"element {position}: {e}") from None
    columns.seq_lengths.append(len(values))
    return True


def _target(value, schema, label_ids):
    if schema.target_kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"target: expected a number, got {_short(value)}")
        problem = _number_problem(value)
        if problem:
            raise ValueError(f"target: {problem}")
        return (value - schema.target_mean) / schema.target_std
    if not isinstance(value, str):
        raise ValueError(f"target: expected a label string, got {value!r}")
    if value not in label_ids:
        raise ValueError(f"target label {value!r} is not among the labels of the meta file ({', '.join(schema.labels[:20])})")
    return label_ids[value]


def peek_first_values(path, is_sequence, limit=200):
    """The feature values of the first instances (elements, for sequences), at most `limit`."""
    peeked = []
    for number, line in iter_data_lines(path):
        if not (isinstance(line, list) and len(line) == 2 and isinstance(line[0], list)):
            raise DataError(f"{located(path, number)}: expected [features, target]")
        values = line[0]
        if is_sequence:
            if not all(isinstance(v, list) for v in values):
                raise DataError(f"{located(path, number)}: a sequence line must be [[element features, ...], [label, ...]]")
            peeked.extend(values)
        else:
            peeked.append(values)
        if len(peeked) >= limit:
            break
    if peeked:
        return peeked
    if not os.path.exists(path):
        raise DataError(f"{path}: data file not found")
    raise DataError(f"{path}: the data file is empty")
