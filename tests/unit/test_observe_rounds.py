"""``Observer`` calls ``on_answer`` (the reconciler's early wave of settled writes) only while a read of the
round is still in flight: when the reconcile's own read comes back after the others have answered, the plan
has everything, and its writes leave from the reconcile's thread (the long-running one first) instead of
being handed to another thread behind the rest."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from typing import Any

from remediator.core.ids import parse_resource_id
from remediator.core.plan.observed import ContainerRead, ExtensionRead, Observed, Read
from remediator.service.reconcile.observe import Observer

CLUSTER = parse_resource_id(
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg/providers"
    "/Microsoft.ContainerService/managedClusters/aks"
)
ACCOUNT = parse_resource_id(
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg/providers"
    "/Microsoft.Storage/storageAccounts/st"
)
FIRST = ExtensionRead(CLUSTER)  # the round's first read runs on the caller's thread
OTHER = ContainerRead(ACCOUNT, "c")  # on the pool


class _Scripted(Observer):
    """Reads answer when the test says so: the first read waits for ``first_may_answer``, the other for
    ``other_may_answer``; ``other_answered`` is set once the other read returned."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        super().__init__(io=None, pool=lambda: pool)  # type: ignore[arg-type]
        self.first_may_answer = threading.Event()
        self.other_may_answer = threading.Event()
        self.other_answered = threading.Event()

    def read(self, read: Read[Any]) -> object:
        if read == FIRST:
            assert self.first_may_answer.wait(5)
            return None
        assert self.other_may_answer.wait(5)
        self.other_answered.set()
        return True


def _round(observer: _Scripted) -> list[set[str]]:
    """Run one round of both reads; what was recorded at each ``on_answer`` call."""
    seen: list[set[str]] = []

    def on_answer(observed: Observed) -> None:
        seen.append({type(r).__name__ for r in (FIRST, OTHER) if observed.knows(r)})
        observer.other_may_answer.set()  # the other read answers after the early wave left

    observed = Observed(None)  # type: ignore[arg-type]
    observer._round([FIRST, OTHER], observed, None, on_answer)
    assert observed.knows(FIRST) and observed.knows(OTHER)
    return seen


def test_an_answer_leaving_a_read_in_flight_sends_the_early_wave():
    with ThreadPoolExecutor(max_workers=2) as pool:
        observer = _Scripted(pool)
        observer.first_may_answer.set()  # the first read answers while the other is still out
        assert _round(observer) == [{"ExtensionRead"}]


class _TrackedPool(ThreadPoolExecutor):
    """A pool that keeps the futures it hands out."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.futures: list[Future[Any]] = []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        self.futures.append(future)
        return future


def test_no_early_wave_when_the_round_has_every_answer():
    with _TrackedPool() as pool:
        observer = _Scripted(pool)
        observer.other_may_answer.set()

        def answer_first_once_the_other_is_done() -> None:
            assert observer.other_answered.wait(5)
            wait_for_futures(pool.futures, timeout=5)  # the other read's future is done
            observer.first_may_answer.set()

        threading.Thread(target=answer_first_once_the_other_is_done).start()
        assert _round(observer) == []
