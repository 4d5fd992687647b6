"""The event path's hand-offs (issue 11 item 3): a long-running write leaves on the reconcile's own thread
while the others go to the pool, results stay in chain order; write tokens drawn ahead are spent by the
writes and every unspent one is given back, whatever the pacing verdict."""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor

import pytest

from remediator.core.ids import parse_cluster_id, parse_storage_account_id
from remediator.core.outcomes import ActionStatus, WriteKind
from remediator.core.pacing import PaceVerdict, WritePacer
from remediator.core.plan.writes import CreateContainer, InstallExtension, Write
from remediator.service.reconcile.execute import DrawsAhead, Executor, HeldClaims, TokensAhead
from remediator.service.reconcile.writes import Applied, NoRecheck, WriteSpec

SUB = "00000000-0000-0000-0000-000000000001"
SA_SUB = "00000000-0000-0000-0000-0000000000aa"
CLUSTER = parse_cluster_id(
    f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks"
)
ACCOUNT = parse_storage_account_id(
    f"/subscriptions/{SA_SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/stbackup"
)
CONTAINER = CreateContainer(link="backup-container", account=ACCOUNT, name="c")
EXTENSION = InstallExtension(
    link="extension-installed",
    cluster=CLUSTER,
    name="azure-aks-backup",
    account=ACCOUNT,
    container="c",
    blob_endpoint="https://stbackup.blob.core.windows.net/",
    tenant_id="t",
    release_train="stable",
    auto_upgrade_minor_version=True,
)


def _executor(threads: dict[str, str], *, pacer=None) -> Executor:
    def apply(label: str):
        def run(_io, write: Write) -> Applied:
            threads[label] = threading.current_thread().name
            return Applied(ActionStatus.DONE, label)

        return run

    registry = {
        WriteKind.CREATE_CONTAINER: WriteSpec(
            CreateContainer, "PUT container", NoRecheck("test"), apply("c")
        ),
        WriteKind.CREATE_EXTENSION: WriteSpec(
            InstallExtension, "PUT extension", NoRecheck("test"), apply("e"), long_running=True
        ),
    }
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pool")
    return Executor(object(), lambda: pool, pacer=pacer, registry=registry)  # type: ignore[arg-type]


def test_the_long_running_write_leaves_on_the_reconciles_own_thread_and_actions_keep_chain_order():
    threads: dict[str, str] = {}
    execution = _executor(threads).execute([CONTAINER, EXTENSION], HeldClaims(None, CLUSTER, ttl_s=30))
    assert threads["e"] == threading.current_thread().name  # no hand-off before the extension PUT
    assert threads["c"].startswith("pool")
    assert [a.detail for a in execution.actions] == ["c", "e"]  # chain order, whatever order they left in
    assert [a.kind for a in execution.actions] == [WriteKind.CREATE_CONTAINER, WriteKind.CREATE_EXTENSION]


class _Budget:
    """A pacer that :class:`DrawsAhead`: a token count per subscription, no I/O."""

    def __init__(self, tokens: float, *, grant: bool = True) -> None:
        self.tokens = {SUB: tokens, SA_SUB: tokens}
        self.grant = grant
        self.given_back: dict[str, float] = {}
        self.drawn_at_write: dict[str, float] = {}

    def draw_ahead(self, demand: Mapping[str, float]) -> dict[str, float]:
        drawn = {}
        for sub, n in demand.items():
            if self.tokens[sub] >= n:
                self.tokens[sub] -= n
                drawn[sub] = n
        return drawn

    def give_back(self, drawn: Mapping[str, float]) -> None:
        for sub, n in drawn.items():
            self.tokens[sub] += n
            self.given_back[sub] = self.given_back.get(sub, 0.0) + n

    def try_acquire_prepaid(
        self,
        demand: Mapping[str, float],
        prepaid: Mapping[str, float],
        *,
        max_wait_s: float,
        resource_types: Mapping[str, Collection[str]] | None = None,
    ) -> tuple[PaceVerdict, dict[str, float]]:
        left = dict(prepaid)
        if not self.grant:
            return PaceVerdict(granted=False, wait_s=5.0, subscription_id=SUB), left
        for sub, n in demand.items():
            covered = min(n, left.get(sub, 0.0))
            left[sub] = left.get(sub, 0.0) - covered
            if n > covered:
                self.tokens[sub] -= n - covered
                self.drawn_at_write[sub] = self.drawn_at_write.get(sub, 0.0) + n - covered
        return PaceVerdict(granted=True, wait_s=0.0), {k: v for k, v in left.items() if v > 0}

    def try_acquire(self, demand, *, max_wait_s, resource_types=None):  # pragma: no cover - not used here
        raise AssertionError("the executor spends the tokens drawn ahead through try_acquire_prepaid")

    def throttled(self, *args, **kwargs) -> None:  # pragma: no cover
        pass

    def observe_headers(self, *args, **kwargs) -> None:  # pragma: no cover
        pass


def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=2)


def test_tokens_drawn_ahead_are_spent_by_the_writes_and_nothing_is_given_back():
    budget = _Budget(10)
    assert isinstance(budget, DrawsAhead)
    tokens = TokensAhead(budget)
    tokens.take_ahead({SUB: 1.0, SA_SUB: 1.0}, _pool())
    execution = _executor({}, pacer=budget).execute(
        [CONTAINER, EXTENSION], HeldClaims(None, CLUSTER, ttl_s=30), tokens
    )
    tokens.give_back_unspent()
    assert [a.status for a in execution.actions] == [ActionStatus.DONE, ActionStatus.DONE]
    assert budget.tokens == {SUB: 9, SA_SUB: 9}  # one token per write, each drawn once
    assert budget.drawn_at_write == {} and budget.given_back == {}


def test_a_token_no_write_spent_is_given_back():
    budget = _Budget(10)
    tokens = TokensAhead(budget)
    tokens.take_ahead({SUB: 1.0, SA_SUB: 1.0}, _pool())
    _executor({}, pacer=budget).execute([EXTENSION], HeldClaims(None, CLUSTER, ttl_s=30), tokens)
    tokens.give_back_unspent()
    assert budget.tokens == {SUB: 9, SA_SUB: 10}  # the container was not needed: its token came back
    assert budget.given_back == {SA_SUB: 1.0}


def test_every_token_comes_back_when_pacing_defers_the_writes():
    budget = _Budget(10, grant=False)
    tokens = TokensAhead(budget)
    tokens.take_ahead({SUB: 1.0, SA_SUB: 1.0}, _pool())
    execution = _executor({}, pacer=budget).execute(
        [CONTAINER, EXTENSION], HeldClaims(None, CLUSTER, ttl_s=30), tokens
    )
    tokens.give_back_unspent()
    assert {a.status for a in execution.actions} == {ActionStatus.DEFERRED}
    assert budget.tokens == {SUB: 10, SA_SUB: 10}


def test_a_shortfall_is_drawn_when_the_writes_are_sent():
    budget = _Budget(10)
    tokens = TokensAhead(budget)
    tokens.take_ahead({SUB: 1.0}, _pool())  # the container's bucket was not known ahead
    _executor({}, pacer=budget).execute([CONTAINER, EXTENSION], HeldClaims(None, CLUSTER, ttl_s=30), tokens)
    tokens.give_back_unspent()
    assert budget.drawn_at_write == {SA_SUB: 1.0} and budget.tokens == {SUB: 9, SA_SUB: 9}


@pytest.mark.parametrize("pacer", [None, WritePacer()])
def test_a_pacer_without_io_takes_nothing_ahead(pacer):
    tokens = TokensAhead(pacer)
    tokens.take_ahead({SUB: 1.0}, _pool())
    tokens.give_back_unspent()  # nothing to give back, nothing raised
    assert not isinstance(pacer, DrawsAhead)
