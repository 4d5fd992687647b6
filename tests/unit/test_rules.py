"""Tag rule semantics: table-driven cases for each rule, hypothesis properties for the invariants."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remediator.core.config import Selection
from remediator.core.rules import RuleMatch, fold_case, match_selection, value_matches


def selection(
    include: list[dict[str, Any]] | None = None, exclude: list[dict[str, Any]] | None = None
) -> Selection:
    data: dict[str, Any] = {}
    if include is not None:
        data["include"] = include
    if exclude is not None:
        data["exclude"] = exclude
    return Selection.model_validate(data)


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("prod", "prod", True),
        ("prod", "PROD", True),
        ("PrOd", "pRoD", True),
        ("prod", "prod1", False),
        ("prod", "1prod", False),
        ("prod*", "prod", True),
        ("prod*", "production", True),
        ("prod*", "PRODUCTION", True),
        ("prod*", "preprod", False),
        ("*prod", "preprod", True),
        ("*-ephemeral", "pr-1-ephemeral", True),
        ("a*b*c", "aXXbYYc", True),
        ("a*b*c", "acb", False),
        ("*", "", True),
        ("*", "anything at all", True),
        ("", "", True),
        ("", "x", False),
        ("a?c", "abc", False),  # ? is literal
        ("a?c", "a?c", True),
        ("[ab]", "a", False),  # [ is literal
        ("[ab]", "[AB]", True),
        ("a.c", "abc", False),  # regex metacharacters are literal
        ("a+", "aa", False),
        ("(x)|y", "y", False),
        ("\\d", "\\D", True),
        ("line*", "line1\nline2", True),  # * crosses newlines
        # Azure compares like .NET OrdinalIgnoreCase (one-to-one upper-casing), not Unicode casefold:
        ("straße", "STRASSE", False),  # ß -> SS is a one-to-many mapping: no match, as in Azure Policy
        ("straße", "STRAßE", True),
        ("ﬁle", "FILE", False),  # the ligature's uppercase is two characters
        ("café", "CAFÉ", True),
        ("ΣΊΣΥΦΟΣ", "σίσυφος", True),  # final sigma upper-cases to Σ too
        ("\u212a", "k", False),  # KELVIN SIGN is upper case; its lower-case mapping is not used
        ("\u212a", "K", False),
        ("ı", "I", False),  # Turkish dotless i: .NET ordinal casing leaves it alone
        ("ſ", "S", False),  # long s: likewise
        ("ǆ", "Ǆ", True),
    ],
)
def test_value_patterns(pattern: str, value: str, matches: bool) -> None:
    assert value_matches(pattern, value) is matches


@pytest.mark.parametrize(
    ("tags", "sel", "expected"),
    [
        # values omitted: tag present with any value (also empty)
        ({"backup": ""}, selection([{"tag": "backup"}]), RuleMatch(True, False, "include[0]")),
        ({"other": "x"}, selection([{"tag": "backup"}]), RuleMatch(False, False, None)),
        # tag keys case-insensitive
        (
            {"BackUp": "Yes"},
            selection([{"tag": "backup", "values": ["yes"]}]),
            RuleMatch(True, False, "include[0]"),
        ),
        # OR within an entry's values
        (
            {"env": "stg"},
            selection([{"tag": "env", "values": ["prod", "stg"]}]),
            RuleMatch(True, False, "include[0]"),
        ),
        # OR across entries: the first matching entry is named
        (
            {"env": "prod", "team": "a"},
            selection([{"tag": "team", "values": ["b"]}, {"tag": "env"}, {"tag": "team"}]),
            RuleMatch(True, False, "include[1]"),
        ),
        # exclude wins
        (
            {"env": "prod", "nobackup": "true"},
            selection([{"tag": "env"}], [{"tag": "x"}, {"tag": "NoBackup"}]),
            RuleMatch(True, True, "exclude[1]"),
        ),
        # no include: everything included (Policy 4 style), untagged too
        ({}, selection(None, [{"tag": "nobackup"}]), RuleMatch(True, False, None)),
        ({"nobackup": "1"}, selection(None, [{"tag": "nobackup"}]), RuleMatch(True, True, "exclude[0]")),
        ({}, selection(), RuleMatch(True, False, None)),
        # untagged cluster: matched by neither include nor exclude
        ({}, selection([{"tag": "env"}], [{"tag": "env", "values": ["*"]}]), RuleMatch(False, False, None)),
        # value mismatch
        ({"env": "dev"}, selection([{"tag": "env", "values": ["prod*"]}]), RuleMatch(False, False, None)),
        # an exclude that does not match leaves the include standing
        (
            {"env": "prod"},
            selection([{"tag": "env"}], [{"tag": "env", "values": ["*-ephemeral"]}]),
            RuleMatch(True, False, "include[0]"),
        ),
        # tag names compare like Azure (ordinal ignore-case), not by Unicode casefold
        (
            {"STRASSE": "x"},
            selection([{"tag": "straße"}]),
            RuleMatch(False, False, None),
        ),
        (
            {"STRAßE": "x"},
            selection([{"tag": "straße"}]),
            RuleMatch(True, False, "include[0]"),
        ),
        # two spellings of one key in a hand-written snapshot: every value counts
        (
            {"Env": "dev", "ENV": "prod"},
            selection([{"tag": "env", "values": ["prod"]}]),
            RuleMatch(True, False, "include[0]"),
        ),
    ],
)
def test_match_selection_table(tags: dict[str, str], sel: Selection, expected: RuleMatch) -> None:
    assert match_selection(tags, sel) == expected
    assert match_selection(tags, sel).selected is (expected.included and not expected.excluded)


# --- properties ---

_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_key = st.text(alphabet="abcXYZ-_.:é", min_size=1, max_size=6)
_tags = st.dictionaries(_key, st.text(alphabet="abAB*?[]-é ", max_size=6), max_size=5)
_rule = st.fixed_dictionaries(
    {"tag": _key},
    optional={"values": st.lists(st.text(alphabet="abAB*?[]-é ", max_size=5), min_size=1, max_size=3)},
)
_selections = st.builds(
    lambda include, exclude: selection(include, exclude),
    st.none() | st.lists(_rule, min_size=1, max_size=3),
    st.lists(_rule, max_size=3),
)


@given(tags=_tags, sel=_selections)
def test_exclude_always_wins(tags: dict[str, str], sel: Selection) -> None:
    result = match_selection(tags, sel)
    if result.excluded:
        assert not result.selected
        assert result.rule is not None and result.rule.startswith("exclude[")
    # adding a matching exclude entry for any present tag always deselects
    if tags:
        key = next(iter(tags))
        stricter = selection(
            None if sel.include is None else [r.model_dump(exclude_none=True) for r in sel.include],
            [*(r.model_dump(exclude_none=True) for r in sel.exclude), {"tag": key}],
        )
        assert not match_selection(tags, stricter).selected


@given(tags=_tags, sel=_selections, data=st.data())
def test_tag_key_case_never_changes_the_result(
    tags: dict[str, str], sel: Selection, data: st.DataObject
) -> None:
    recased = {
        "".join(data.draw(st.sampled_from([ch.lower(), ch.upper()])) for ch in key): value
        for key, value in tags.items()
    }
    if len({fold_case(key) for key in recased}) != len({fold_case(key) for key in tags}):
        return  # recasing merged two keys; not a pure casing change
    assert match_selection(recased, sel) == match_selection(tags, sel)
    rules_recased = selection(
        None
        if sel.include is None
        else [{**r.model_dump(exclude_none=True), "tag": r.tag.swapcase()} for r in sel.include],
        [{**r.model_dump(exclude_none=True), "tag": r.tag.swapcase()} for r in sel.exclude],
    )
    assert match_selection(tags, rules_recased) == match_selection(tags, sel)


@given(pattern=_text.filter(lambda p: "*" not in p), value=_text)
def test_a_value_without_star_matches_only_itself_case_insensitively(pattern: str, value: str) -> None:
    assert value_matches(pattern, value) is (fold_case(pattern) == fold_case(value))
    assert value_matches(pattern, pattern)
    assert value_matches(pattern, pattern.lower()) is (fold_case(pattern.lower()) == fold_case(pattern))


@given(prefix=_text.filter(lambda p: "*" not in p), rest=_text)
def test_trailing_star_is_a_prefix_match(prefix: str, rest: str) -> None:
    assert value_matches(prefix + "*", prefix + rest)


@settings(max_examples=50)
@given(tags=_tags, sel=_selections)
def test_same_input_same_result(tags: dict[str, str], sel: Selection) -> None:
    assert match_selection(dict(tags), sel) == match_selection(dict(tags), sel)


# --- the value matcher does bounded work (tag values are attacker-controlled) ---

_PATHOLOGICAL_PATTERN = "*a" * 12 + "*b"
"""With a backtracking regex (``.*a.*a...b``) this takes minutes against a run of ``a``: every ``.*`` tries
every split. A linear glob matcher answers at once."""


@pytest.mark.timeout(5)
def test_pathological_pattern_is_answered_without_backtracking() -> None:
    """Hang guard, not a speed target: the old regex matcher does not finish within the timeout."""
    assert value_matches(_PATHOLOGICAL_PATTERN, "a" * 256) is False
    assert value_matches(_PATHOLOGICAL_PATTERN, "a" * 255 + "b") is True
    assert value_matches("*" * 100 + "b", "a" * 256) is False


def _reference_matches(pattern: str, value: str) -> bool:
    """The obvious (backtracking) definition, fine for short inputs: ``*`` -> ``.*``, the rest literal."""
    regex = ".*".join(re.escape(part) for part in fold_case(pattern).split("*"))
    return re.fullmatch(regex, fold_case(value), re.DOTALL) is not None


_glob_alphabet = st.text(alphabet="ab*?.\n", max_size=8)


@settings(max_examples=300)
@given(pattern=_glob_alphabet, value=st.text(alphabet="abAB?.\n*", max_size=10))
def test_matcher_agrees_with_the_reference_regex(pattern: str, value: str) -> None:
    assert value_matches(pattern, value) is _reference_matches(pattern, value)


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("aKs-Backup", "AKS-BACKUP"),
        ("straße", "STRAßE"),
        ("ﬁ", "ﬁ"),
        ("ı", "ı"),
        ("ſ", "ſ"),
        ("ᾳ", "ᾼ"),
        ("", ""),
    ],
)
def test_fold_case_is_one_to_one_upper_casing(text: str, folded: str) -> None:
    assert fold_case(text) == folded


@given(text=_text)
def test_fold_case_keeps_the_length_and_is_idempotent(text: str) -> None:
    """One code point in, one out (no ß -> SS), and folding twice changes nothing."""
    assert len(fold_case(text)) == len(text)
    assert fold_case(fold_case(text)) == fold_case(text)
