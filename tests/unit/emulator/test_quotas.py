"""Provider quotas (emulator.quotas): which calls draw, the header on every answer, throttling when on."""

from __future__ import annotations

import pytest

from emulator.clock import ManualClock
from emulator.config import EmulatorConfig
from emulator.quotas import DATA_PROTECTION, POLICY_INSIGHTS, ProviderQuotas, default_quotas

PI_HEADER = "x-ms-ratelimit-remaining-policy-insights-requests"
DP_HEADER = "x-ms-ratelimit-remaining-subscription-resource-requests"


def quotas() -> tuple[ProviderQuotas, ManualClock]:
    clock = ManualClock()
    book = ProviderQuotas(default_quotas(), clock)
    book.attach(POLICY_INSIGHTS, operations=("Remediations_CreateOrUpdate",))
    book.attach(DATA_PROTECTION, namespaces=("Microsoft.DataProtection",), methods=("PUT", "GET", "DELETE"))
    return book, clock


def draw(book: ProviderQuotas, operation: str = "Remediations_CreateOrUpdate", **kw: str) -> object:
    args = {"namespace": "microsoft.policyinsights", "method": "PUT", "subscription": "s1", "principal": "p"}
    args.update(kw)
    return book.check(operation=operation, **args)  # type: ignore[arg-type]


def test_the_recorded_headers_and_sizes() -> None:
    specs = default_quotas()
    assert specs[POLICY_INSIGHTS].header == PI_HEADER and specs[POLICY_INSIGHTS].burst == 150
    assert specs[DATA_PROTECTION].header == DP_HEADER


def test_switched_off_the_header_is_sent_and_nothing_is_refused() -> None:
    book, _ = quotas()
    for _ in range(400):
        verdict = draw(book)
        assert verdict.allowed and verdict.headers == {PI_HEADER: "149"}  # the recorded figure


def test_calls_not_attached_draw_nothing() -> None:
    book, _ = quotas()
    assert draw(book, operation="Remediations_Get").headers == {}
    # by namespace, narrowed by method: validateForBackup-style POSTs of the namespace do not draw
    assert draw(book, operation="x", namespace="microsoft.dataprotection", method="POST").headers == {}
    assert draw(book, operation="x", namespace="microsoft.dataprotection", method="GET").headers == {
        DP_HEADER: "199"
    }


def test_switched_on_it_counts_down_refuses_with_retry_after_and_refills() -> None:
    book, clock = quotas()
    book.specs[POLICY_INSIGHTS].update({"enabled": True, "burst": 3, "perSecond": 0.5})
    assert [draw(book).headers[PI_HEADER] for _ in range(3)] == ["2", "1", "0"]
    refused = draw(book)
    assert not refused.allowed and refused.retry_after_s == 2 and refused.headers == {PI_HEADER: "0"}
    assert refused.error_code == "TooManyRequests" and refused.quota == POLICY_INSIGHTS
    assert draw(book, principal="other").allowed  # per principal
    assert draw(book, subscription="s2").allowed  # and per subscription
    clock.advance(2)
    assert draw(book).allowed


def test_reset_refills_and_bad_attachments_are_refused() -> None:
    book, _ = quotas()
    book.specs[POLICY_INSIGHTS].update({"enabled": True, "burst": 1})
    assert draw(book).allowed and not draw(book).allowed
    book.reset()
    assert draw(book).allowed
    with pytest.raises(KeyError):
        book.attach("nope", operations=("x",))
    with pytest.raises(ValueError):
        book.attach(POLICY_INSIGHTS)


def test_knobs_through_the_config() -> None:
    config = EmulatorConfig()
    config.update({"quotas": {"policyInsights": {"enabled": True, "burst": 10, "perSecond": 1}}})
    assert config.to_json()["quotas"]["policyInsights"] == {
        "header": PI_HEADER,
        "enabled": True,
        "burst": 10.0,
        "perSecond": 1.0,
        "errorCode": "TooManyRequests",
    }
    for bad in ({"nope": {}}, {"policyInsights": {"burst": 0}}, {"policyInsights": {"header": "x-other"}}):
        with pytest.raises(ValueError):
            config.update({"quotas": bad})
    config.update({"quotas": config.to_json()["quotas"]})  # its own JSON round-trips
