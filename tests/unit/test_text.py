"""Azure's case rule (.NET OrdinalIgnoreCase) for ids and names: the key, its equality, and scope membership.

The spoof the rule closes (issue 15, item 1): Python's ``str.lower()`` maps U+212A KELVIN SIGN to ASCII ``k``,
so a resource group ``rg-a\u212as-prod`` was judged in scope for ``rg-aks-prod``. Azure keeps them apart.
"""

from __future__ import annotations

import hashlib
import sys
import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remediator.core.config import parse_config
from remediator.core.decision import Reason, decide
from remediator.core.ids import parse_cluster_id, parse_resource_group_id
from remediator.core.naming import backup_container_name, cluster_key, remediation_task_name
from remediator.core.snapshot import ClusterSnapshot
from remediator.core.text import equal_ignoring_case, fold_case, ignore_case_key

SUB = "3f2b8c1e-6d4a-4f7b-9c2e-8a1d5e7f0b24"
SA = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.Storage/storageAccounts/stbackup"
CLUSTER_TYPE = "Microsoft.ContainerService/managedClusters"
KELVIN = "\u212a"

LOWER_CONFLATES = {
    "\u212a": "k",
    "\u212b": "\u00e5",
    "\u2126": "\u03c9",
    "\u1e9e": "\u00df",
    "\u03f4": "\u03b8",
}
"""The five code points Python's lower() maps into ANOTHER OrdinalIgnoreCase class (KELVIN, ANGSTROM and OHM
SIGN, CAPITAL SHARP S, CAPITAL THETA SYMBOL): each is a scope spoof under lower()."""

CONFUSABLE_ALPHABET = (
    "aAkK\u212asS\u017fiI\u0131\u0130\u00e5\u00c5\u212b\u03c9\u03a9\u2126\u00df\u1e9e\u03b8\u0398\u03f4\u03d1"
    "\u03c3\u03c2\u03a3\u00b5\u03bc\u039c\u01c4\u01c5\u01c6-_.()0"
)
"""Letters with several case variants, the five lower() conflations, the two code points .NET leaves alone
(DOTLESS I, LONG S), titlecase digraphs, and the punctuation a resource group name may hold."""


def _all_code_points() -> str:
    return "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)


def test_the_key_is_one_per_ordinal_ignore_case_class_over_every_code_point() -> None:
    """Exhaustive over Unicode: equal keys exactly when fold_case is equal; the key folds like the original;
    one code point per code point; and it parts from lower() only where lower() conflates or is not 1:1."""
    everything = _all_code_points()
    keys, folded = ignore_case_key(everything), fold_case(everything)
    assert len(keys) == len(folded) == len(everything)
    class_of_key: dict[str, str] = {}
    for key, fold in zip(keys, folded, strict=True):
        assert class_of_key.setdefault(key, fold) == fold
    assert fold_case(keys) == folded
    assert ignore_case_key(keys) == keys  # idempotent
    differs = {char for char, key in zip(everything, keys, strict=True) if key != char.lower()}
    assert set(LOWER_CONFLATES) <= differs
    assert len(differs) == 27, sorted(f"U+{ord(c):04X} {unicodedata.name(c, '?')}" for c in differs)


@pytest.mark.parametrize(("char", "lowered"), sorted(LOWER_CONFLATES.items()))
def test_lower_conflates_these_and_the_key_does_not(char: str, lowered: str) -> None:
    assert char.lower() == lowered  # the bug the rule fixes
    assert ignore_case_key(char) != ignore_case_key(lowered)
    assert not equal_ignoring_case(f"rg-{char}", f"rg-{lowered}")


@given(st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=40))
def test_the_key_of_ascii_text_is_its_lower_case(text: str) -> None:
    """Journal partitions, policy-order rows and deterministic names stored with lower() keep their keys."""
    assert ignore_case_key(text) == text.lower()


@st.composite
def _text_and_a_recasing(draw: st.DrawFn) -> tuple[str, str]:
    """A text over confusable letters and a copy where each character may be swapped for a case variant or a
    confusable (a spelling that is sometimes the same name to Azure, sometimes not)."""
    text = draw(st.text(alphabet=CONFUSABLE_ALPHABET + "xyz", min_size=1, max_size=12))
    variant = "".join(
        draw(
            st.sampled_from(
                [char, char.upper()[:1], char.lower()[:1], ignore_case_key(char), *CONFUSABLE_ALPHABET]
            )
        )
        for char in text
    )
    return text, variant


@given(_text_and_a_recasing(), st.text(max_size=6))
def test_equality_is_fold_case_equality(pair: tuple[str, str], noise: str) -> None:
    left, right = pair
    expected = fold_case(left + noise) == fold_case(right + noise)
    assert equal_ignoring_case(left + noise, right + noise) is expected
    assert (ignore_case_key(left + noise) == ignore_case_key(right + noise)) is expected


def _cluster_body(resource_group: str, *, name: str = "aks1", tags: dict[str, str] | None = None) -> Any:
    return {
        "id": f"/subscriptions/{SUB}/resourceGroups/{resource_group}/providers/{CLUSTER_TYPE}/{name}",
        "name": name,
        "location": "eastus",
        "identity": {"type": "SystemAssigned"},
        "tags": tags or {"backup": "on"},
        "properties": {
            "provisioningState": "Succeeded",
            "powerState": {"code": "Running"},
            "agentPoolProfiles": [{"name": "system", "osType": "Linux", "vmSize": "Standard_D4ds_v5"}],
            "storageProfile": {"diskCSIDriver": {"enabled": True}, "snapshotController": {"enabled": True}},
        },
    }


def _config(scope: dict[str, Any]) -> Any:
    return parse_config(
        {"scope": scope, "storage": {"eastus": SA}, "selection": {"include": [{"tag": "backup"}]}}
    )


def test_a_kelvin_sign_resource_group_is_out_of_scope_for_the_ascii_spelling() -> None:
    """The issue's case, at decision level: the config names rg-aks-prod; a cluster in rg-a\u212as-prod (a
    different resource group to Azure) is out of scope and gets no storage account; the ASCII spelling in any
    casing is in."""
    config = _config({"resourceGroups": [f"/subscriptions/{SUB}/resourceGroups/rg-aks-prod"]})
    spoof = decide(ClusterSnapshot.from_arm(_cluster_body(f"rg-a{KELVIN}s-prod")), config)
    assert spoof.reason is Reason.OUT_OF_SCOPE
    assert spoof.selected is False and spoof.storage_account_id is None
    for spelling in ("rg-aks-prod", "RG-AKS-PROD", "Rg-aKs-pRoD"):
        decision = decide(ClusterSnapshot.from_arm(_cluster_body(spelling)), config)
        assert decision.reason is Reason.SELECTED, spelling


def test_a_kelvin_sign_management_group_is_not_the_ascii_one() -> None:
    config = _config({"managementGroups": ["mg-kube"]})
    snapshot = ClusterSnapshot.from_arm(_cluster_body("rg-1"))
    assert decide(snapshot, config, management_groups_of=lambda s: [f"mg-{KELVIN}ube"]).reason is (
        Reason.OUT_OF_SCOPE
    )
    assert decide(snapshot, config, management_groups_of=lambda s: ["MG-KUBE"]).reason is Reason.SELECTED
    spoof_config = _config({"managementGroups": [f"mg-{KELVIN}ube"]})
    assert decide(snapshot, spoof_config, management_groups_of=lambda s: ["mg-kube"]).reason is (
        Reason.OUT_OF_SCOPE
    )


_RG_ALPHABET = "".join(c for c in CONFUSABLE_ALPHABET if c not in "()") + "xyz"


def _valid_rg(name: str) -> bool:
    try:
        parse_resource_group_id(f"/subscriptions/{SUB}/resourceGroups/{name}")
    except ValueError:
        return False
    return True


@settings(max_examples=400)
@given(_text_and_a_recasing())
def test_scope_membership_is_ordinal_ignore_case_equality(pair: tuple[str, str]) -> None:
    """Property over Unicode: a cluster in resource group B is in a scope listing resource group A exactly
    when A and B are equal under OrdinalIgnoreCase (fold_case); the same for management groups."""
    listed, actual = (f"rg{name}" for name in pair)
    if not (_valid_rg(listed) and _valid_rg(actual)):
        return
    same = fold_case(listed) == fold_case(actual)
    cluster = parse_cluster_id(f"/subscriptions/{SUB}/resourceGroups/{actual}/providers/{CLUSTER_TYPE}/aks1")
    by_group = _config({"resourceGroups": [f"/subscriptions/{SUB}/resourceGroups/{listed}"]})
    assert by_group.scope.contains(cluster) is same
    by_management_group = _config({"managementGroups": [listed]})
    assert by_management_group.scope.contains(cluster, management_groups_of=lambda s: [actual]) is same


def test_ids_compare_and_hash_by_the_rule() -> None:
    ascii_id = parse_cluster_id(f"/subscriptions/{SUB}/resourceGroups/rg-aks/providers/{CLUSTER_TYPE}/c1")
    recased = parse_cluster_id(
        f"/SUBSCRIPTIONS/{SUB.upper()}/resourcegroups/RG-AKS/providers/{CLUSTER_TYPE}/C1"
    )
    spoof = parse_cluster_id(f"/subscriptions/{SUB}/resourceGroups/rg-a{KELVIN}s/providers/{CLUSTER_TYPE}/c1")
    assert ascii_id == recased and hash(ascii_id) == hash(recased)
    assert ascii_id != spoof and len({ascii_id, recased, spoof}) == 2
    assert ascii_id.key == str(ascii_id).lower()  # unchanged for ASCII ids


def test_persisted_keys_are_unchanged_for_ascii_ids_and_split_for_the_spoof() -> None:
    """Journal PartitionKey (cluster_key), container names and remediation-task names of ASCII ids are what
    lower() gave before; the KELVIN spelling no longer shares the real group's journal or container."""
    real = f"/subscriptions/{SUB}/resourceGroups/RG-AKS-prod/providers/{CLUSTER_TYPE}/aks1"
    spoof = real.replace("AKS", f"A{KELVIN}S")
    assert cluster_key(real) == hashlib.sha256(real.lower().encode()).hexdigest()
    assert cluster_key(spoof) != cluster_key(real)
    assert backup_container_name("aks1", spoof) != backup_container_name("aks1", real)
    assignment = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyAssignments/a1"
    assert remediation_task_name(spoof, assignment) != remediation_task_name(real, assignment)
