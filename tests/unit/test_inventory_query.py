"""The Resource Graph queries the sweep sends: scope, batching, and refusal of anything that injects KQL."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remediator.core.catalog import EXTENSION_TYPE
from remediator.core.config import RemediatorConfig, parse_config
from remediator.core.errors import UserInputError
from remediator.core.inventory_query import (
    build_inventory_query,
    build_policy_summary_query,
    kql_string,
    plan_inventory,
    subscription_batches,
)

SA = (
    "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/rg"
    "/providers/Microsoft.Storage/storageAccounts/sa1"
)


def sub(n: int) -> str:
    return str(uuid.UUID(int=n))


def config(**overrides: Any) -> RemediatorConfig:
    data: dict[str, Any] = {"scope": {"subscriptions": [sub(1)]}, "storage": {"eastus": SA}}
    data.update(overrides)
    return parse_config(data, source="test")


def unquote(literal: str) -> str:
    """Decode a single-quoted KQL literal the way a KQL lexer does."""
    assert literal.startswith("'") and literal.endswith("'")
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


def test_subscriptions_go_in_the_body_not_the_text() -> None:
    plan = plan_inventory(config(scope={"subscriptions": [sub(1), sub(2)]}))
    [request] = plan.requests
    assert request.subscriptions == (sub(1), sub(2))
    assert request.management_groups == ()
    assert sub(1) not in request.query
    assert "join kind=leftouter" in request.query
    assert kql_string(EXTENSION_TYPE) in request.query
    assert "| where extensionState !~ 'Succeeded'" in request.query
    assert request.query.splitlines()[-1].startswith("| project id,")


def test_subscriptions_are_batched_below_300() -> None:
    subs = [sub(n) for n in range(1, 601)]
    plan = plan_inventory(config(scope={"subscriptions": subs}), batch_size=250)
    assert [len(r.subscriptions) for r in plan.requests] == [250, 250, 100]
    assert [s for r in plan.requests for s in r.subscriptions] == subs
    with pytest.raises(ValueError):
        list(subscription_batches(subs, size=300))


def test_excluded_subscriptions_are_dropped_from_the_batches() -> None:
    plan = plan_inventory(config(scope={"subscriptions": [sub(1), sub(2)], "excludeSubscriptions": [sub(2)]}))
    assert plan.requests[0].subscriptions == (sub(1),)


def test_partly_listed_subscriptions_keep_only_their_resource_groups() -> None:
    rg = f"/subscriptions/{sub(2)}/resourceGroups/team-a"
    plan = plan_inventory(config(scope={"subscriptions": [sub(1)], "resourceGroups": [rg]}))
    [request] = plan.requests
    assert request.subscriptions == (sub(1), sub(2))
    assert f"subscriptionId in~ ('{sub(1)}')" in request.query
    assert f"(subscriptionId =~ '{sub(2)}' and resourceGroup =~ 'team-a')" in request.query


def test_management_groups_get_their_own_request_without_listed_or_excluded_subscriptions() -> None:
    plan = plan_inventory(
        config(
            scope={
                "managementGroups": ["Platform"],
                "subscriptions": [sub(1)],
                "excludeSubscriptions": [sub(9)],
            }
        )
    )
    assert len(plan.requests) == 2
    mg = plan.requests[1]
    assert mg.management_groups == ("platform",)
    assert mg.subscriptions == ()
    assert f"subscriptionId !in~ ('{sub(9)}', '{sub(1)}')" in mg.query
    assert plan.management_groups == ("platform",)


def test_regions_narrow_the_query() -> None:
    plan = plan_inventory(
        config(
            scope={"subscriptions": [sub(1)], "regions": ["East US", "westeurope"]},
            storage={"eastus": SA, "westeurope": SA},
        )
    )
    assert "| where location in~ ('eastus', 'westeurope')" in plan.requests[0].query


def test_plain_include_tags_prefilter_rows_case_insensitively() -> None:
    selection = {"include": [{"tag": "Backup", "values": ["yes"]}, {"tag": "tier-1"}, {"tag": "tier-1"}]}
    query = plan_inventory(config(selection=selection)).requests[0].query
    expected = (
        "| where (tostring(tags) contains 'Backup' and (tostring(tags) contains 'yes'))"
        " or tostring(tags) contains 'tier-1'\n"
    )
    assert expected in query
    unfiltered = plan_inventory(config(selection=selection), prefilter_tags=False).requests[0].query
    assert "tostring(tags)" not in unfiltered


def test_value_prefilter_uses_the_longest_literal_part_of_a_pattern() -> None:
    selection = {"include": [{"tag": "env", "values": ["prod-*", "*-eu-*", "Staging"]}]}
    query = plan_inventory(config(selection=selection)).requests[0].query
    values = " or ".join(f"tostring(tags) contains '{v}'" for v in ("-eu-", "prod-", "staging"))
    assert f"(tostring(tags) contains 'env' and ({values}))" in query


@pytest.mark.parametrize("values", [["*"], ["Bob's team"], ["ünïcode"], ["a", "x/y"]])
def test_values_that_are_not_plain_leave_only_the_name_test(values: list[str]) -> None:
    selection = {"include": [{"tag": "owner", "values": values}]}
    query = plan_inventory(config(selection=selection)).requests[0].query
    assert "| where tostring(tags) contains 'owner'\n" in query
    assert query.count("tostring(tags) contains") == 1


def test_non_ascii_include_tag_disables_the_prefilter() -> None:
    query = plan_inventory(config(selection={"include": [{"tag": "équipe"}]})).requests[0].query
    assert "tostring(tags)" not in query


def test_exclude_only_selection_does_not_prefilter() -> None:
    query = plan_inventory(config(selection={"exclude": [{"tag": "nobackup"}]})).requests[0].query
    assert "tostring(tags)" not in query


@pytest.mark.parametrize(
    "tag",
    [
        "env' or 1 == 1 or tags has 'x",
        "env'\n| take 1",
        'env" | project id',
        "env'",
        "env`",
    ],
)
def test_an_injection_attempt_in_a_tag_name_is_refused_naming_the_field(tag: str) -> None:
    cfg = config(selection={"include": [{"tag": "team"}, {"tag": tag}]})
    with pytest.raises(UserInputError) as caught:
        plan_inventory(cfg)
    assert caught.value.field == "selection.include[1].tag"
    assert "injection" in str(caught.value)


def test_region_and_group_values_outside_their_character_set_are_refused() -> None:
    from remediator.core.inventory_query import ResourceGroupRef

    with pytest.raises(UserInputError) as caught:
        build_inventory_query(regions=[("eastus') or true or location in~ ('x", "scope.regions[3]")])
    assert caught.value.field == "scope.regions[3]"
    with pytest.raises(UserInputError) as caught:
        build_inventory_query(
            resource_groups=[(ResourceGroupRef(sub(1), "rg' or true //"), "scope.resourceGroups[0]")]
        )
    assert caught.value.field == "scope.resourceGroups[0]"
    with pytest.raises(UserInputError) as caught:
        build_inventory_query(exclude_subscriptions=[("not-a-guid", "scope.excludeSubscriptions[0]")])
    assert caught.value.field == "scope.excludeSubscriptions[0]"


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=60))
def test_kql_string_round_trips_any_printable_text(value: str) -> None:
    literal = kql_string(value)
    assert unquote(literal) == value
    # No unescaped quote can end the literal early.
    assert re.fullmatch(r"'(?:[^'\\\n]|\\.)*'", literal)


def test_kql_string_refuses_control_characters() -> None:
    with pytest.raises(ValueError):
        kql_string("a\nb")


def test_policy_summary_is_one_small_aggregate() -> None:
    query = build_policy_summary_query()
    assert query.startswith("policyresources")
    assert "summarize clusters = count() by definition, complianceState" in query
    with pytest.raises(UserInputError):
        build_policy_summary_query(definitions=["x') | take 1 //"])
