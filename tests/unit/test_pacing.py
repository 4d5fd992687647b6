"""Write pacing against ARM's subscription write bucket, driven by a fake clock (no real time passes)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remediator.core.pacing import TokenBucket, WritePacer, write_bucket_bound_s


class FakeClock:
    """A clock that moves only when told to; ``sleep`` advances it, as a real sleep would."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_full_bucket_grants_the_burst_then_refuses() -> None:
    clock = FakeClock()
    bucket = TokenBucket(capacity=200, refill_per_s=10, clock=clock)
    assert all(bucket.try_take() for _ in range(200))
    assert not bucket.try_take()
    assert bucket.wait_time() == pytest.approx(0.1)


def test_refill_is_capped_at_capacity() -> None:
    clock = FakeClock()
    bucket = TokenBucket(capacity=5, refill_per_s=1, clock=clock)
    for _ in range(5):
        assert bucket.try_take()
    clock.now += 3
    assert bucket.tokens == pytest.approx(3)
    clock.now += 100
    assert bucket.tokens == pytest.approx(5)


def test_reservations_queue_up_at_the_refill_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(capacity=200, refill_per_s=10, clock=clock)
    delays = [bucket.reserve() for _ in range(230)]
    assert delays[:200] == [0.0] * 200
    assert delays[200] == pytest.approx(0.1)
    assert delays[229] == pytest.approx(3.0)


def test_server_figure_lowers_but_never_raises_the_balance() -> None:
    clock = FakeClock()
    bucket = TokenBucket(capacity=200, refill_per_s=10, clock=clock)
    bucket.observe_remaining(3)
    assert bucket.tokens == pytest.approx(3)
    bucket.observe_remaining(150)
    assert bucket.tokens == pytest.approx(3)


@pytest.mark.parametrize("n", [0, -1, 201])
def test_impossible_token_counts_are_refused(n: int) -> None:
    bucket = TokenBucket(capacity=200, refill_per_s=10, clock=FakeClock())
    with pytest.raises(ValueError):
        bucket.reserve(n)


def test_pacer_keeps_subscriptions_apart_and_ignores_id_case() -> None:
    clock = FakeClock()
    pacer = WritePacer(capacity=2, refill_per_s=1, headroom=0, clock=clock, sleep=clock.sleep)
    assert pacer.acquire("SUB-A") == 0
    assert pacer.acquire("sub-a") == 0
    assert pacer.acquire("sub-b") == 0
    assert pacer.acquire("sub-a") == pytest.approx(1.0)
    assert clock.slept == [pytest.approx(1.0)]
    assert pacer.available("sub-b") == pytest.approx(2.0)


def test_acquire_paces_a_long_run_to_the_refill_rate() -> None:
    clock = FakeClock()
    pacer = WritePacer(headroom=0, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(1200):
        pacer.acquire("sub")
    # 200 from the burst, then 1000 more at 10/s.
    assert clock.now - start == pytest.approx(100.0)


def test_default_headroom_keeps_one_second_of_refill_back() -> None:
    clock = FakeClock()
    pacer = WritePacer(clock=clock, sleep=clock.sleep)
    delays = [pacer.reserve("sub") for _ in range(191)]
    assert delays[189] == 0.0
    assert delays[190] == pytest.approx(0.1)
    with pytest.raises(ValueError):
        WritePacer(capacity=10, headroom=10)


def test_a_429_holds_later_writes_for_its_retry_after() -> None:
    clock = FakeClock()
    pacer = WritePacer(clock=clock, sleep=clock.sleep)
    pacer.throttled("sub", 2.0)
    assert pacer.reserve("sub") == pytest.approx(2.1)
    assert pacer.reserve("other") == 0.0


def test_observed_remaining_slows_the_pacer() -> None:
    clock = FakeClock()
    pacer = WritePacer(clock=clock, sleep=clock.sleep)
    pacer.observe_remaining("sub", 0)
    assert pacer.reserve("sub") == pytest.approx(0.1)


@given(st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=300))
def test_never_spends_more_than_the_bucket_allows(gaps: list[float]) -> None:
    """Whatever the arrival pattern, writes issued by time t never exceed burst + refill * elapsed."""
    clock = FakeClock()
    pacer = WritePacer(capacity=20, refill_per_s=2, headroom=0, clock=clock, sleep=clock.sleep)
    start = clock.now
    for issued, gap in enumerate(gaps, start=1):
        clock.now += gap
        pacer.acquire("sub")
        assert issued <= 20 + 2 * (clock.now - start) + 1e-6


def test_bound_is_set_by_the_busiest_subscription() -> None:
    assert write_bucket_bound_s([100, 150]) == 0.0
    assert write_bucket_bound_s([1000, 300]) == pytest.approx(80.0)
    assert write_bucket_bound_s([]) == 0.0


def test_try_acquire_sleeps_a_short_wait_and_takes_the_tokens() -> None:
    clock = FakeClock()
    pacer = WritePacer(capacity=2, refill_per_s=2, headroom=0, clock=clock, sleep=clock.sleep)
    assert pacer.try_acquire({"sub": 2}, max_wait_s=1.0).granted
    verdict = pacer.try_acquire({"SUB": 1}, max_wait_s=1.0)
    assert verdict.granted and verdict.wait_s == pytest.approx(0.5) and verdict.subscription_id == "sub"
    assert clock.slept == [pytest.approx(0.5)]
    assert pacer.available("sub") == pytest.approx(0.0)


def test_try_acquire_refuses_a_long_wait_without_taking_anything() -> None:
    clock = FakeClock()
    pacer = WritePacer(capacity=4, refill_per_s=1, headroom=0, clock=clock, sleep=clock.sleep)
    assert pacer.try_acquire({"a": 4}, max_wait_s=1.0).granted
    verdict = pacer.try_acquire({"a": 2}, max_wait_s=1.0)
    assert not verdict.granted and verdict.wait_s == pytest.approx(2.0) and verdict.subscription_id == "a"
    assert clock.slept == []
    assert pacer.available("a") == pytest.approx(0.0)  # nothing taken: the wait does not grow
    clock.now += 1.5
    assert pacer.try_acquire({"a": 2}, max_wait_s=1.0).wait_s == pytest.approx(0.5)


def test_try_acquire_is_all_or_nothing_across_subscriptions() -> None:
    clock = FakeClock()
    pacer = WritePacer(capacity=3, refill_per_s=1, headroom=0, clock=clock, sleep=clock.sleep)
    assert pacer.try_acquire({"storage-sub": 3}, max_wait_s=0).granted
    verdict = pacer.try_acquire({"cluster-sub": 1, "storage-sub": 1}, max_wait_s=0.5)
    assert not verdict.granted and verdict.subscription_id == "storage-sub"
    assert pacer.available("cluster-sub") == pytest.approx(3.0)  # the other subscription kept its tokens
    # the same subscription under two casings is one demand of two tokens
    pacer2 = WritePacer(capacity=3, refill_per_s=1, headroom=0, clock=clock, sleep=clock.sleep)
    assert pacer2.try_acquire({"Sub": 2, "sub": 1}, max_wait_s=0).granted
    assert pacer2.available("SUB") == pytest.approx(0.0)


def test_try_acquire_with_nothing_to_write_is_granted_at_once() -> None:
    clock = FakeClock()
    pacer = WritePacer(clock=clock, sleep=clock.sleep)
    assert pacer.try_acquire({}, max_wait_s=0) == pacer.try_acquire({}, max_wait_s=0)
    assert pacer.try_acquire({}, max_wait_s=0).granted and clock.slept == []


def test_a_throttled_subscription_defers_try_acquire_for_retry_after() -> None:
    clock = FakeClock()
    pacer = WritePacer(clock=clock, sleep=clock.sleep)
    pacer.throttled("sub", 12.0)
    verdict = pacer.try_acquire({"sub": 1}, max_wait_s=1.0)
    assert not verdict.granted and verdict.wait_s == pytest.approx(12.1)
    clock.now += 11.5
    assert pacer.try_acquire({"sub": 1}, max_wait_s=1.0).granted
    assert clock.slept == [pytest.approx(0.6)]


# --------------------------------------------------------------------------------------------- every header
# (issue 13: the pacer reads every rate-limit header these providers send and backs off by the lowest)

PI = "microsoft.policyinsights/remediations"
EXT = "microsoft.kubernetesconfiguration/extensions"
SUB = "sub-a"


def test_every_rate_limit_header_is_read_and_nothing_else() -> None:
    from remediator.core.pacing import rate_limit_remaining

    headers = {
        "x-ms-ratelimit-remaining-subscription-writes": "199",
        "X-MS-RateLimit-Remaining-Subscription-Global-Writes": "2999",
        "x-ms-ratelimit-remaining-policy-insights-requests": "149",
        "x-ms-ratelimit-remaining-subscription-resource-requests": "198",
        "x-ms-ratelimit-remaining-tenant-resource-requests": "14",
        "x-ms-ratelimit-remaining-subscription-reads": "not a number",
        "x-ms-request-id": "abc",
    }
    assert rate_limit_remaining(headers) == {
        "subscription-writes": 199,
        "subscription-global-writes": 2999,
        "policy-insights-requests": 149,
        "subscription-resource-requests": 198,
        "tenant-resource-requests": 14,
    }


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/subscriptions/s/resourceGroups/r/providers/Microsoft.ContainerService/managedClusters/c/providers/"
         "Microsoft.KubernetesConfiguration/extensions/azure-aks-backup?api-version=1", EXT),
        ("/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/a/blobServices/default/"
         "containers/x", "microsoft.storage/storageaccounts/blobservices/containers"),
        ("/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/g",
         "microsoft.authorization/roleassignments"),
        ("/subscriptions/s/resourceGroups/r", ""),
    ],
)  # fmt: skip
def test_the_resource_type_a_write_addresses(path: str, kind: str) -> None:
    from remediator.core.pacing import resource_type_of

    assert resource_type_of(path) == kind


def test_a_quota_reported_by_one_resource_type_paces_that_type_only() -> None:
    clock = FakeClock()
    pacer = WritePacer(clock=clock, sleep=clock.sleep)
    pacer.observe_headers(SUB, PI, {"x-ms-ratelimit-remaining-policy-insights-requests": "1"})
    # the remediation quota is down to its reserve: a remediation write waits, an extension write does not
    held = pacer.try_acquire({SUB: 1}, max_wait_s=1.0, resource_types={SUB: [PI]})
    assert not held.granted and held.wait_s > 1.0
    assert pacer.try_acquire({SUB: 1}, max_wait_s=1.0, resource_types={SUB: [EXT]}).granted
    # without the types it knows nothing more than the write bucket (the former behaviour)
    assert pacer.try_acquire({SUB: 1}, max_wait_s=1.0).granted


def test_the_lowest_quota_decides_the_wait() -> None:
    clock = FakeClock()
    pacer = WritePacer(clock=clock, sleep=clock.sleep)
    pacer.observe_headers(
        SUB,
        PI,
        {
            "x-ms-ratelimit-remaining-subscription-writes": "150",
            "x-ms-ratelimit-remaining-subscription-global-writes": "2900",
            "x-ms-ratelimit-remaining-policy-insights-requests": "0",
        },
    )
    verdict = pacer.try_acquire({SUB: 1}, max_wait_s=0.5, resource_types={SUB: [PI]})
    quota = pacer.quota(SUB, "policy-insights-requests")
    assert quota is not None and quota.spec.learned
    # policy-insights (learned, at 0 with a reserve of 1) is the lowest: it decides, not the write bucket
    assert not verdict.granted and verdict.wait_s == pytest.approx(quota.wait_time(1))
    assert verdict.wait_s > 0.5


def test_a_learned_quota_estimates_its_refill_from_its_own_reports() -> None:
    from remediator.core.pacing import ObservedQuota

    clock = FakeClock()
    quota = ObservedQuota.for_header("policy-insights-requests", 99, clock=clock)
    assert quota.spec.learned and quota.refill_per_s == pytest.approx(100 / 60)  # the first guess
    remaining = 50.0  # halfway down a burst of 100
    quota.observe(remaining)
    for _ in range(20):  # one call every 2 s; the server regains 0.5 a second
        clock.now += 2.0
        remaining = remaining + 2 * 0.5 - 1
        quota.observe(remaining)
    assert quota.refill_per_s == pytest.approx(0.5, rel=0.05)


def test_a_quota_that_refilled_to_the_top_raises_the_estimate_only() -> None:
    from remediator.core.pacing import ObservedQuota

    clock = FakeClock()
    quota = ObservedQuota.for_header("subscription-resource-requests", 9, clock=clock)  # burst 10
    quota.observe(9)
    quota.bucket.refill_per_s = 0.01
    for _ in range(9):
        quota.observe(quota.bucket.tokens - 1)
    clock.now += 5.0
    quota.observe(9)  # full again after 5 s: at least (9 - 0 + 1) / 5 = 2 per second
    assert quota.refill_per_s >= 1.9


def test_known_quotas_keep_their_documented_refill() -> None:
    from remediator.core.pacing import ObservedQuota

    quota = ObservedQuota.for_header("subscription-global-writes", 2990, clock=FakeClock())
    assert not quota.spec.learned and quota.refill_per_s == 150 and quota.reserve == 0


def test_arms_throttling_holds_the_subscription_a_providers_holds_its_resource_type() -> None:
    from remediator.core.pacing import RP_ESCALATE_AFTER, throttle_scope

    assert throttle_scope("SubscriptionRequestsThrottled", EXT) == ""
    assert throttle_scope("", EXT) == ""  # no code to tell: the conservative choice
    assert throttle_scope("TooManyRequests", PI) == PI
    clock = FakeClock()
    pacer = WritePacer(clock=clock, sleep=clock.sleep)
    for i in range(RP_ESCALATE_AFTER - 1):  # one resource refused (its reconcile waits): nothing else is held
        pacer.throttled(SUB, 20, resource_type=PI, code="TooManyRequests", target=f"/c{i}/remediations/t")
        assert pacer.try_acquire({SUB: 1}, max_wait_s=1.0, resource_types={SUB: [PI]}).granted
    # several resources of the type refused at once: the provider's quota ran out, the type is held
    pacer.throttled(SUB, 20, resource_type=PI, code="TooManyRequests", target="/c9/remediations/t")
    assert not pacer.try_acquire({SUB: 1}, max_wait_s=1.0, resource_types={SUB: [PI]}).granted
    assert pacer.try_acquire({SUB: 1}, max_wait_s=1.0, resource_types={SUB: [EXT]}).granted
    clock.now += 20
    assert pacer.try_acquire({SUB: 1}, max_wait_s=1.0, resource_types={SUB: [PI]}).granted
    # ARM's own throttling holds every write of the subscription
    pacer.throttled(SUB, 20, resource_type=EXT, code="SubscriptionRequestsThrottled")
    assert not pacer.try_acquire({SUB: 1}, max_wait_s=1.0, resource_types={SUB: [EXT]}).granted


def test_a_few_refusals_among_many_answers_hold_only_the_refused_resources() -> None:
    """A provider out of quota refuses nearly every write of the type; one that refused three of twenty had
    a hiccup (or three resources in a bad state): the type stays open, the three are held."""
    clock = FakeClock()
    pacer = WritePacer(clock=clock, sleep=clock.sleep)
    for i in range(20):
        refused = i % 7 == 0  # 0, 7, 14: three refusals among twenty answers
        pacer.observe_headers(SUB, PI, {}, refused=refused)
        if refused:
            pacer.throttled(SUB, 20, resource_type=PI, code="TooManyRequests", target=f"/c{i}/remediations/t")
    assert pacer.try_acquire({SUB: 1}, max_wait_s=1.0, resource_types={SUB: [PI]}).granted
    held = pacer.try_acquire({SUB: 1}, max_wait_s=1.0, resource_types={SUB: [PI, "/c7/remediations/t"]})
    assert not held.granted
