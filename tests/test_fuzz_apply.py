"""Fuzzing the application program: whatever line arrives, exactly one JSON object line
answers it, and the program stays alive and in step — a canary request sent after every
line must get the very answer it got at the start.

One long-lived program per test (not per example). The number of lines tried is written
to the terminal at the end of the module and recorded as the `cases` property of each test.
"""

import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_apply import say, trained_models

KINDS = ["ionosphere", "ngram", "sequence", "multi", "regression"]
SEQUENCE_KINDS = {"sequence", "multi"}
MB = 1 << 20


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return trained_models(tmp_path_factory)


@pytest.fixture(scope="module")
def tally(request):
    counts = Counter()
    yield counts
    say(request.config, f"\n{__name__}: {sum(counts.values())} lines tried: {dict(counts)}")


class Fuzzed:
    """A running program, its canary request and the canary's first answer."""

    def __init__(self, model):
        self.model = model
        self.template = model.instances(1)[0]
        self.canary = json.dumps(self.template).encode()
        self.backend = model.start()
        self.expected = self.backend.ask(self.canary)
        assert self.expected["status"] == "ok", self.expected
        self.tried = 0

    def check(self, line, expect=None):
        """Sends a line; one JSON object answers it, then the canary gets its answer."""
        answer = self.backend.ask(line)
        assert answer.get("status") in ("ok", "error"), answer
        if answer["status"] == "error":
            assert set(answer) == {"status", "error"}
            assert isinstance(answer["error"], str) and answer["error"], answer
        if expect is not None:
            assert answer["status"] == expect, (line[:200], answer)
        assert self.backend.ask(self.canary) == self.expected, "out of step after " + repr(line[:200])
        self.tried += 1
        return answer

    def finish(self, tally, name, record_property, at_least):
        tally[name] += self.tried
        record_property("cases", self.tried)
        assert self.backend.close() == 0
        assert self.tried >= at_least


@pytest.fixture
def fuzzed(models):
    started = []

    def start(kind):
        started.append(Fuzzed(models(kind)))
        return started[-1]

    yield start
    for f in started:
        f.backend.kill()


# ---- a corpus of nasty lines ----


def _with_first_value(template, kind, value):
    if kind in SEQUENCE_KINDS:
        return [[value] + template[0][1:]] + template[1:]
    return [value] + template[1:]


def _all_values(template, kind, value):
    if kind in SEQUENCE_KINDS:
        return [[value] * len(element) for element in template]
    return [value] * len(template)


def _first_value_text(template, kind, text):
    """The canary's JSON with its first value replaced by raw JSON text."""
    marker = "\u0000marker\u0000"
    return json.dumps(_with_first_value(template, kind, marker)).replace(json.dumps(marker), text).encode()


def nasty_lines(kind, template, canary):
    """(name, line, expected status or None for either)."""
    sequence = kind in SEQUENCE_KINDS
    one_string = "ok" if kind == "ngram" else "error"
    ten_mb_string = "abcdefghij" * MB
    yield from [
        ("deep_open_brackets", b"[" * 100_000, "error"),
        ("deep_balanced_brackets", b"[" * 100_000 + b"]" * 100_000, "error"),
        ("deep_objects", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "error"),
        ("moderately_deep", b"[" * 500 + b"]" * 500, "error"),
        ("ten_mb_padded_valid", b"[" + b" " * (10 * MB) + canary[1:], "ok"),
        ("ten_mb_string_value", json.dumps(_with_first_value(template, kind, ten_mb_string)).encode(), None),
        ("ten_mb_of_numbers", b"[" + b"0.5," * (10 * MB // 4) + b"0.5]", None),
        ("nan", b"NaN", "error"),
        ("nan_value", _first_value_text(template, kind, "NaN"), "error"),
        ("infinity_value", _first_value_text(template, kind, "Infinity"), "error"),
        ("minus_infinity_value", _first_value_text(template, kind, "-Infinity"), "error"),
        ("overflowing_float", _first_value_text(template, kind, "1e400"), None),
        ("underflowing_float", _first_value_text(template, kind, "1e-400"), None),
        ("huge_integer", _first_value_text(template, kind, "1" + "0" * 5000), "error"),
        ("big_integer", _first_value_text(template, kind, "1" + "0" * 400), None),
        ("invalid_utf8", b"\xff\xfe\xfd", "error"),
        # not UTF-8, so read as windows-1252: a one-string instance fits the n-gram model only
        ("invalid_utf8_in_string", b'["\xc3\x28"]', one_string),
        ("overlong_utf8", b'["\xc0\xaf"]', one_string),
        ("encoded_surrogate", b'["\xed\xa0\x80"]', one_string),
        ("beyond_unicode", b'["\xf4\x90\x80\x80"]', one_string),
        ("invalid_utf8_in_valid_request", canary[:-1] + b', "\xff"]', "error"),
        ("lone_surrogate_escape", json.dumps(_with_first_value(template, kind, "\ud800")).encode(), None),
        ("crlf", canary + b"\r", "ok"),
        ("bom", b"\xef\xbb\xbf" + canary, "ok"),
        ("bom_and_crlf", b"\xef\xbb\xbf" + canary + b"\r", "ok"),
        ("bom_only", b"\xef\xbb\xbf", "error"),
        ("whitespace_only", b" \t\r\x0b\x0c", "error"),
        ("nul_byte", b"\x00", "error"),
        ("nul_after_request", canary + b"\x00", "error"),
        ("record_separator", b"\x1e" + canary, "error"),
        ("trailing_garbage", canary + b" x", "error"),
        ("two_requests_on_one_line", canary + canary, "error"),
        ("unicode_line_separators", _first_value_text(template, kind, '"a\u2028b\u0085c\u2029"'), None),
        ("numbers_where_strings_belong", json.dumps(_all_values(template, kind, 12345.0)).encode(), None),
        ("strings_where_numbers_belong", json.dumps(_all_values(template, kind, "1.5")).encode(), None),
        ("booleans_everywhere", json.dumps(_all_values(template, kind, True)).encode(), None),
        ("objects_everywhere", json.dumps(_all_values(template, kind, {"a": 1})).encode(), "error"),
        ("huge_sequence", json.dumps((template * 5000)[:5000] if sequence else [template] * 5000).encode(),
         "ok" if sequence else "error"),
        ("lowercase_stop", b"stop", "error"),
        ("stop_with_more", b"STOPP", "error"),
        ("json_null", b"null", "error"),
        ("json_true", b"true", "error"),
        ("json_number", b"0", "error"),
        ("json_string", b'"STOP"', "error"),
        ("empty_object", b"{}", "error"),
        ("duplicate_keys", b'{"a": 1, "a": 2}', "error"),
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_nasty_lines_get_one_answer_each(fuzzed, kind, tally, record_property):
    f = fuzzed(kind)
    for name, line, expect in nasty_lines(kind, f.template, f.canary):
        answer = f.check(line)
        assert expect is None or answer["status"] == expect, (name, answer)
        if name == "huge_sequence" and expect == "ok":
            assert len(answer["output"]) == 5000
    f.finish(tally, "nasty", record_property, at_least=40)


# ---- generated lines ----

SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=20))
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=40,
)
EXAMPLES = 200


@pytest.mark.parametrize("kind", ["ionosphere", "multi"])
def test_random_json_values(fuzzed, kind, tally, record_property):
    f = fuzzed(kind)

    @settings(max_examples=EXAMPLES, deadline=None, database=None)
    @given(JSON_VALUES, st.booleans())
    def check(value, ascii_only):
        f.check(json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass"))

    check()
    f.finish(tally, "random_json", record_property, at_least=EXAMPLES // 2)


def _mutated(template, kind, data):
    """The canary with one value replaced, dropped or repeated (in one element, for sequences)."""
    instance = json.loads(json.dumps(template))
    values = instance
    if kind in SEQUENCE_KINDS:
        values = instance[data.draw(st.integers(0, len(instance) - 1))]
    position = data.draw(st.integers(0, len(values) - 1))
    action = data.draw(st.sampled_from(["replace", "replace", "drop", "repeat"]))
    if action == "replace":
        values[position] = data.draw(JSON_VALUES)
    elif action == "drop":
        del values[position]
    else:
        values.insert(position, values[position])
    return instance


@pytest.mark.parametrize("kind", KINDS)
def test_requests_with_one_value_changed(fuzzed, kind, tally, record_property):
    f = fuzzed(kind)

    @settings(max_examples=EXAMPLES, deadline=None, database=None)
    @given(st.data())
    def check(data):
        f.check(json.dumps(_mutated(f.template, kind, data)).encode("utf-8", "surrogatepass"))

    check()
    f.finish(tally, "one_value_changed", record_property, at_least=EXAMPLES // 2)


def _no_stop(line):
    return b"STOP" not in line


@pytest.mark.parametrize("kind", ["sequence", "regression"])
def test_random_bytes_and_text(fuzzed, kind, tally, record_property):
    f = fuzzed(kind)
    lines = (st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"")).filter(_no_stop)
             | st.text(max_size=200).map(lambda t: t.replace("\n", "").encode("utf-8", "surrogatepass")).filter(_no_stop))

    @settings(max_examples=EXAMPLES, deadline=None, database=None)
    @given(lines)
    def check(line):
        f.check(line)

    check()
    f.finish(tally, "random_bytes", record_property, at_least=EXAMPLES // 2)


# ---- memory ----


def _rss_mb(f):
    return f.backend.rss_kb() / 1024


@pytest.mark.parametrize("kind", ["sequence", "ngram"])
def test_memory_stays_bounded_over_hundreds_of_large_requests(fuzzed, kind, tally, record_property):
    f = fuzzed(kind)
    if kind == "sequence":
        large = [json.dumps(_with_first_value(f.template, kind, "x" * MB)).encode(),
                 json.dumps((f.template * 2000)[:2000]).encode()]
    else:
        large = [json.dumps([[f"token{i}" for i in range(10_000)]]).encode(),
                 json.dumps([["y" * MB]]).encode()]

    def burst(n):
        for i in range(n):
            f.check(large[i % 2], expect="ok")

    burst(40)
    before = _rss_mb(f)
    burst(300)
    after = _rss_mb(f)

    record_property("rss_mb", (round(before), round(after)))
    assert after - before < 150, (before, after)
    f.finish(tally, "large", record_property, at_least=340)
