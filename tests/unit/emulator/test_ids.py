"""The emulator's id key function is Azure's OrdinalIgnoreCase, the same rule the product models.

The emulator must not import the product (an import-linter contract), so it has its own implementation in
``emulator.model.ids``; this test is where the two meet: over every Unicode code point, and over generated
strings, ``fold`` (emulator) and ``remediator.core.rules.fold_case`` (product) make exactly the same strings
equal.
"""

from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.model.ids import fold, is_under, key_of, same_id, seed_of
from emulator.state import EmulatorState
from remediator.core.rules import fold_case

KELVIN = "\u212a"
ALL_CODE_POINTS = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]


def test_every_code_point_is_equal_to_the_same_others_under_both_rules() -> None:
    """Both rules map one code point to one code point, so strings are equal under a rule iff they are
    equal character by character; it is therefore enough that the two per-character rules induce the same
    partition of all code points (each emulator key matches exactly one product key and back)."""
    product_of: dict[str, str] = {}
    emulator_of: dict[str, str] = {}
    for char in ALL_CODE_POINTS:
        ours, theirs = fold(char), fold_case(char)
        assert len(ours) == 1 and len(theirs) == 1, repr(char)
        assert product_of.setdefault(ours, theirs) == theirs, f"{char!r} joins another product class"
        assert emulator_of.setdefault(theirs, ours) == ours, f"{char!r} joins another emulator class"


alphabet = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from("kKsSiIå\u212a\u212b\u2126\u0130\u0131\u017f\u00df\u1e9e\u01c5\u1fb3"),
)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet, max_size=12), st.text(alphabet, max_size=12))
def test_string_equality_agrees_with_the_product(left: str, right: str) -> None:
    assert (fold(left) == fold(right)) is (fold_case(left) == fold_case(right))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet, max_size=12))
def test_a_string_equals_its_recased_forms_under_both_rules(text: str) -> None:
    for variant in (text.upper(), text.lower(), text.swapcase()):
        if len(variant) == len(text):
            assert (fold(text) == fold(variant)) is (fold_case(text) == fold_case(variant))


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        ("rg-aks-prod", "RG-AKS-PROD", True),
        (f"rg-a{KELVIN}s-prod", "rg-aks-prod", False),  # str.lower() would call these equal
        ("\u212b", "\u00e5", False),  # ANGSTROM SIGN vs å
        ("\u2126", "\u03c9", False),  # OHM SIGN vs ω
        ("\u0130", "i", False),  # İ
        ("\u1e9e", "\u00df", False),  # ẞ vs ß (ß has no simple uppercase)
        ("\u017f", "s", False),  # ſ: .NET's ordinal casing leaves it alone
        ("\u0131", "i", False),  # ı likewise
        ("\u00e9", "\u00c9", True),  # é É
        ("stra\u00dfe", "STRASSE", False),  # one-to-one: ß never becomes SS
    ],
)
def test_known_pairs(left: str, right: str, equal: bool) -> None:
    assert (fold(left) == fold(right)) is equal
    assert (fold_case(left) == fold_case(right)) is equal


def test_ascii_keys_are_the_lower_cased_id() -> None:
    rid = "/subscriptions/S/resourceGroups/RG/providers/Microsoft.ContainerService/managedClusters/Aks/"
    assert key_of(rid) == rid.rstrip("/").lower()
    assert seed_of("Aks|X") == "aks|x"


def test_id_helpers() -> None:
    rg = "/subscriptions/s/resourceGroups/rg-aks-prod"
    kelvin_rg = f"/subscriptions/s/resourceGroups/rg-a{KELVIN}s-prod"
    assert same_id(rg, rg.upper() + "/")
    assert not same_id(rg, kelvin_rg)
    assert is_under(rg + "/providers/x/y/z", rg.upper())
    assert is_under(rg, rg)
    assert not is_under(kelvin_rg + "/providers/x/y/z", rg)
    assert not is_under(rg + "-2/providers/x/y/z", rg)


def test_state_keeps_the_kelvin_and_ascii_groups_apart() -> None:
    state = EmulatorState()
    ascii_id = "/subscriptions/s/resourceGroups/rg-aks-prod/providers/Microsoft.ContainerService/x/a"
    kelvin_id = ascii_id.replace("rg-aks-prod", f"rg-a{KELVIN}s-prod")
    state.put("clusters", ascii_id, {"id": ascii_id}, notify=False)
    state.put("clusters", kelvin_id, {"id": kelvin_id}, notify=False)
    assert len(state.clusters) == 2
    assert state.get("clusters", ascii_id.upper()) == {"id": ascii_id}
    assert state.get("clusters", kelvin_id) == {"id": kelvin_id}
    assert [b["id"] for b in state.children("clusters", "/subscriptions/s/resourceGroups/RG-AKS-PROD")] == [
        ascii_id
    ]
