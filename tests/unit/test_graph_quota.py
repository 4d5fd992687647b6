"""The Resource Graph quota gate: waits before the quota runs out, from the headers alone (fake clock)."""

from __future__ import annotations

import pytest

from remediator.adapters.graph import QuotaGate, parse_resets_after, row_from_graph


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("00:00:03", 3.0), ("00:00:04.250", 4.25), ("01:02:03", 3723.0), (" 00:00:00 ", 0.0)],
)
def test_resets_after_is_hh_mm_ss(text: str, seconds: float) -> None:
    assert parse_resets_after(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["3", "00:03", "soon", ""])
def test_malformed_resets_after_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_resets_after(text)


def test_no_wait_while_quota_remains_then_wait_for_the_reset() -> None:
    clock = FakeClock()
    gate = QuotaGate(clock=clock, sleep=clock.sleep)
    assert gate.before_query() == 0  # nothing known yet
    gate.observe({"x-ms-user-quota-remaining": "2", "x-ms-user-quota-resets-after": "00:00:04"})
    assert gate.before_query() == 0
    assert gate.before_query() == 0
    clock.now += 1
    # Whole-second headers only bound the reset: at most 4 s + 1 s of rounding after the response.
    assert gate.before_query() == pytest.approx(4.0)
    assert clock.slept == [pytest.approx(4.0)]
    assert gate.waits == 1


def test_later_responses_in_a_window_tighten_the_reset_bound() -> None:
    clock = FakeClock()
    gate = QuotaGate(clock=clock, sleep=clock.sleep)
    gate.observe({"x-ms-user-quota-remaining": "3", "x-ms-user-quota-resets-after": "00:00:05"})  # <= 56
    clock.now += 1.6
    gate.observe({"x-ms-user-quota-remaining": "2", "x-ms-user-quota-resets-after": "00:00:03"})  # <= 55.6
    clock.now += 0.2
    gate.observe({"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": "00:00:03"})  # <= 55.8
    assert gate.resets_in() == pytest.approx(55.6 - 51.8)
    # A higher remaining count is a new window: its bound replaces the old one.
    gate.observe({"x-ms-user-quota-remaining": "14", "x-ms-user-quota-resets-after": "00:00:05"})
    assert gate.resets_in() == pytest.approx(6.0)


def test_fractional_resets_after_is_taken_as_precise() -> None:
    clock = FakeClock()
    gate = QuotaGate(clock=clock, sleep=clock.sleep)
    gate.observe({"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": "00:00:01.500"})
    assert gate.before_query() == pytest.approx(1.51)


def test_headers_are_case_insensitive_and_malformed_ones_are_ignored() -> None:
    clock = FakeClock()
    gate = QuotaGate(clock=clock, sleep=clock.sleep)
    gate.observe({"X-Ms-User-Quota-Remaining": "0", "X-Ms-User-Quota-Resets-After": "00:00:02"})
    assert gate.resets_in() == pytest.approx(3.0)
    gate.observe({"x-ms-user-quota-remaining": "lots", "x-ms-user-quota-resets-after": "00:00:09"})
    assert gate.resets_in() == pytest.approx(3.0)
    assert gate.before_query() == pytest.approx(3.0)


def test_reserve_leaves_queries_for_other_callers() -> None:
    clock = FakeClock()
    gate = QuotaGate(reserve=3, clock=clock, sleep=clock.sleep)
    gate.observe({"x-ms-user-quota-remaining": "3", "x-ms-user-quota-resets-after": "00:00:05"})
    assert gate.before_query() == pytest.approx(6.0)


def test_graph_row_becomes_an_arm_body() -> None:
    row = row_from_graph(
        {
            "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c",
            "name": "c",
            "subscriptionId": "s",
            "location": "eastus",
            "tags": None,
            "identity": {"type": "SystemAssigned"},
            "provisioningState": "Succeeded",
            "powerState": {"code": "Running"},
            "storageProfile": None,
            "agentPoolProfiles": [{"name": "np", "osType": "Linux"}],
            "extensionName": "",
            "extensionState": "",
        },
        management_groups=("mg",),
    )
    assert row.body["tags"] == {}
    assert row.body["type"] == "Microsoft.ContainerService/managedClusters"
    assert row.body["properties"]["powerState"] == {"code": "Running"}
    assert row.body["properties"]["agentPoolProfiles"] == [{"name": "np", "osType": "Linux"}]
    assert row.extension_name is None and row.extension_state is None
    assert row.management_groups == ("mg",)
