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
