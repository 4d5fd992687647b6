"""The event wiring as data (remediator/core/event_wiring.py): the setting the deployment writes, and which
system topic carries each event subscription (reuse the source's own, else create ours)."""

from __future__ import annotations

import json

import pytest

from remediator.core.errors import UserInputError
from remediator.core.event_wiring import (
    CLUSTER_WRITES,
    POLICY_STATES,
    POLICY_TOPIC_TYPE,
    RESOURCES_TOPIC_TYPE,
    SystemTopic,
    WiringTarget,
    plan_topics,
)

SUB = "44444444-4444-4444-4444-444444444444"
SITE = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Web/sites/func"
)
SETTING = {
    "functionAppId": SITE,
    "resourceGroup": "rg-aksbr-x-events",
    "location": "eastus",
    "resourcesTopic": "evgt-aksbr-x-arm",
    "policyTopic": "evgt-aksbr-x-policy",
}


def test_the_setting_parses_into_a_target() -> None:
    target = WiringTarget.parse(json.dumps(SETTING))
    assert target.function_id(CLUSTER_WRITES) == f"{SITE}/functions/on_cluster_write"
    assert target.topic_names == {
        RESOURCES_TOPIC_TYPE: "evgt-aksbr-x-arm",
        POLICY_TOPIC_TYPE: "evgt-aksbr-x-policy",
    }


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("{not json", "REMEDIATOR_EVENT_WIRING"),
        ("[]", "REMEDIATOR_EVENT_WIRING"),
        (json.dumps({**SETTING, "policyTopic": ""}), "REMEDIATOR_EVENT_WIRING.policyTopic"),
        (
            json.dumps({k: v for k, v in SETTING.items() if k != "location"}),
            "REMEDIATOR_EVENT_WIRING.location",
        ),
        (
            json.dumps({**SETTING, "functionAppId": SITE + "/functions/x"}),
            "REMEDIATOR_EVENT_WIRING.functionAppId",
        ),
        (
            json.dumps(
                {**SETTING, "functionAppId": SITE.replace("Microsoft.Web/sites", "Microsoft.Storage/x")}
            ),
            "REMEDIATOR_EVENT_WIRING.functionAppId",
        ),
    ],
)
def test_a_bad_setting_names_its_field(text: str, field: str) -> None:
    with pytest.raises(UserInputError) as error:
        WiringTarget.parse(text)
    assert error.value.field == field


def test_missing_topics_are_planned_in_the_events_group_and_existing_ones_reused() -> None:
    target = WiringTarget.parse(json.dumps(SETTING))
    assert [
        (p.spec, p.resource_group, p.topic_name, p.create_topic) for p in plan_topics(SUB, [], target)
    ] == [
        (CLUSTER_WRITES, "rg-aksbr-x-events", "evgt-aksbr-x-arm", True),
        (POLICY_STATES, "rg-aksbr-x-events", "evgt-aksbr-x-policy", True),
    ]
    theirs = SystemTopic(
        SUB, "rg-team", "team-topic", "microsoft.resources.subscriptions", f"/subscriptions/{SUB.upper()}"
    )
    elsewhere = SystemTopic(
        SUB, "rg-team", "other", POLICY_TOPIC_TYPE, f"/subscriptions/{SUB}/resourceGroups/rg-team"
    )
    storage = SystemTopic(
        SUB, "rg-st", "st-topic", "Microsoft.Storage.StorageAccounts", f"/subscriptions/{SUB}"
    )
    plans = plan_topics(SUB, [theirs, elsewhere, storage], target)
    # the source's Resources topic is reused whatever its name, group and casing (OrdinalIgnoreCase) ...
    assert (plans[0].resource_group, plans[0].topic_name, plans[0].create_topic) == (
        "rg-team",
        "team-topic",
        False,
    )
    # ... a topic of another source (a resource group) or another type is not the policy topic
    assert (plans[1].topic_name, plans[1].create_topic) == ("evgt-aksbr-x-policy", True)
