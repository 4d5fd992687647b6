"""parse_untrusted_json: size and depth limits checked before parsing, strict values, errors naming limits."""

from __future__ import annotations

import contextlib
import json
import math
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remediator.core.errors import UserInputError
from remediator.core.untrusted_json import (
    DEFAULT_MAX_DEPTH,
    InvalidJsonError,
    JsonTooDeepError,
    JsonTooLargeError,
    check_value_depth,
    nesting_depth,
    parse_untrusted_json,
    value_depth,
)

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=40,
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


@settings(max_examples=300)
@given(JSON_VALUES, st.booleans())
def test_valid_documents_round_trip_and_their_depth_is_measured(value: Any, as_bytes: bool) -> None:
    text = json.dumps(value, ensure_ascii=bool(as_bytes))
    assert nesting_depth(text) == _depth(value)
    parsed = parse_untrusted_json(text.encode("utf-8") if as_bytes else text)
    assert parsed == value


@pytest.mark.parametrize("opener", ["[", '{"a":'])
@pytest.mark.parametrize("levels", [DEFAULT_MAX_DEPTH + 1, 10**5, 10**6])
def test_deep_nesting_is_refused_before_parsing_and_fast(opener: str, levels: int) -> None:
    """10^5 and 10^6 levels: json.loads would raise RecursionError; here a JsonTooDeepError names the limit,
    in time linear in the input."""
    closer = "]" if opener == "[" else "}"
    text = opener * levels + "1" + closer * levels
    started = time.perf_counter()
    with pytest.raises(JsonTooDeepError, match="max_depth") as raised:
        parse_untrusted_json(text, max_bytes=len(text) + 1, source="request body")
    assert time.perf_counter() - started < 5.0  # generous: a broken guard recurses or goes quadratic instead
    assert isinstance(raised.value, UserInputError) and raised.value.limit == "max_depth"
    assert raised.value.source == "request body"


def test_the_hazard_is_real_for_plain_json_loads() -> None:
    with pytest.raises(RecursionError):
        json.loads("[" * 10**5 + "]" * 10**5)


def test_exactly_the_limit_parses() -> None:
    text = "[" * DEFAULT_MAX_DEPTH + "]" * DEFAULT_MAX_DEPTH
    value = parse_untrusted_json(text)
    assert _depth(value) == DEFAULT_MAX_DEPTH


def test_brackets_inside_strings_do_not_count() -> None:
    deep_looking = json.dumps({"a": "[" * 10_000 + '\\"{' * 100, "b": ["]" * 50]})
    assert nesting_depth(deep_looking) == 2
    assert parse_untrusted_json(deep_looking)["a"].startswith("[[[")


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0, max_value=2000), st.sampled_from(["[", "{"]))
def test_unbalanced_or_unterminated_input_never_escapes_as_anything_but_user_input_error(
    levels: int, opener: str
) -> None:
    for text in (opener * levels, '"' + opener * levels, "[" + '"\\"' + "[" * levels, "]" * levels + "[" * 3):
        with contextlib.suppress(UserInputError):  # anything else (RecursionError, ...) fails the test
            parse_untrusted_json(text)


def test_size_limit_is_bytes_and_checked_first() -> None:
    big = json.dumps({"s": "x" * 2000})
    with pytest.raises(JsonTooLargeError, match="max_bytes") as raised:
        parse_untrusted_json(big.encode(), max_bytes=1000)
    assert raised.value.limit == "max_bytes"
    # multibyte: 400 code points of 3 UTF-8 bytes each is 1200 bytes
    wide = json.dumps({"s": "\u20ac" * 400}, ensure_ascii=False)
    assert len(wide) < 1000
    with pytest.raises(JsonTooLargeError):
        parse_untrusted_json(wide, max_bytes=1000)
    with pytest.raises(JsonTooLargeError):
        parse_untrusted_json(wide.encode(), max_bytes=1000)
    # a too-large AND too-deep body is reported as too large (413 before 400)
    with pytest.raises(JsonTooLargeError):
        parse_untrusted_json("[" * 5000, max_bytes=1000)


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=1, max_value=4 * 1024 * 1024))
def test_huge_strings_parse_when_within_the_limit_and_are_refused_beyond_it(length: int) -> None:
    text = '{"s":"' + "a" * length + '"}'
    if len(text) <= 1024 * 1024:
        assert len(parse_untrusted_json(text)["s"]) == length
    else:
        with pytest.raises(JsonTooLargeError):
            parse_untrusted_json(text.encode())


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"", "line 1 column 1"),
        (b"{", "line 1"),
        (b'{"a": 1,}', "line 1"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"a": NaN}', "NaN"),
        (b"[Infinity]", "Infinity"),
        (b"[-Infinity]", "Infinity"),
        (b"[1e400]", "64-bit float"),
        (b"[" + b"9" * 5000 + b"]", "invalid JSON"),
        (b'{"a": 1, "a": 2}', "duplicate key"),
        (b'["\\ud800"]', "surrogate"),
        (b'{"\\udfff": 1}', "surrogate"),
        (b"\xef\xbb\xbf{}", "BOM"),
    ],
)
def test_refused_values_name_why(raw: bytes, why: str) -> None:
    with pytest.raises(InvalidJsonError, match=why) as raised:
        parse_untrusted_json(raw, source="event")
    assert raised.value.limit == "syntax" and raised.value.source == "event"


def test_surrogate_pairs_and_duplicate_keys_when_allowed() -> None:
    assert parse_untrusted_json(b'["\\ud83d\\ude00"]') == ["\U0001f600"]
    assert parse_untrusted_json(b'{"a": 1, "a": 2}', allow_duplicate_keys=True) == {"a": 2}


def test_scalars_and_finite_floats() -> None:
    assert parse_untrusted_json("1.5e3") == 1500.0
    assert math.isclose(parse_untrusted_json("[-0.1]")[0], -0.1)
    assert parse_untrusted_json(b"null") is None


@given(JSON_VALUES)
@settings(max_examples=200, deadline=None)
def test_value_depth_of_decoded_values_matches_the_text_depth(value: Any) -> None:
    """value_depth measures what another parser already decoded (the Functions worker's Event Grid payloads)
    exactly as nesting_depth measures the text."""
    assert value_depth(value) == _depth(value) == nesting_depth(json.dumps(value))


def test_value_depth_needs_no_recursion_and_stops_early() -> None:
    deep: Any = []
    for _ in range(50_000):  # far past the interpreter's recursion limit
        deep = [deep]
    assert value_depth(deep) == 50_001
    assert value_depth(deep, stop_above=DEFAULT_MAX_DEPTH) == DEFAULT_MAX_DEPTH + 1
    with pytest.raises(JsonTooDeepError, match="max_depth") as err:
        check_value_depth({"data": deep}, source="event", field="(event)")
    assert err.value.field == "(event)" and err.value.source == "event"
    check_value_depth({"a": [1, {"b": None}]}, max_depth=3)  # within the limit: no error
