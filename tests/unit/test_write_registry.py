"""Every write kind has a complete spec (pure facts in core, re-check and apply in the service), every read
kind a reader, and every blocker a policy; the completeness check is shown to catch what is missing."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import ClassVar

from remediator.core.blockers import Blocker, BlockerKind
from remediator.core.ids import parse_resource_id
from remediator.core.plan import observed as observed_module
from remediator.core.plan.observed import Read
from remediator.core.plan.writes import WRITE_TYPES, CreateContainer, Write
from remediator.service.reconcile.observe import READERS
from remediator.service.reconcile.writes import (
    REGISTRY,
    Applied,
    NoRecheck,
    Recheck,
    WriteSpec,
    registry_problems,
)


def test_the_registry_is_complete():
    assert registry_problems() == []


class Extra(StrEnum):
    NEW = "create-something"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Incomplete(Write):
    """A new kind that forgot its claim."""

    kind: ClassVar = Extra.NEW  # type: ignore[assignment]

    @property
    def target(self):
        return parse_resource_id("/subscriptions/00000000-0000-0000-0000-000000000001")

    @property
    def bucket_subscription(self) -> str:
        return "00000000-0000-0000-0000-000000000001"

    @property
    def detail(self) -> str:
        return "x"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Complete(Incomplete):
    @property
    def claim(self) -> str:
        return "something"


def _apply(io, write) -> Applied:  # pragma: no cover - never called
    raise AssertionError


def test_a_kind_without_a_write_type_or_spec_is_reported():
    problems = registry_problems(REGISTRY, WRITE_TYPES, (*REGISTRY, Extra.NEW))
    assert problems == [
        "create-something: no write type in core.plan.writes.WRITE_TYPES",
        "create-something: no WriteSpec in REGISTRY",
    ]


def test_a_write_type_leaving_a_pure_fact_undefined_is_reported():
    problems = registry_problems(
        {Extra.NEW: WriteSpec(Incomplete, "PUT x", NoRecheck("idempotent"), _apply)},
        {Extra.NEW: Incomplete},
        (Extra.NEW,),
    )
    assert problems == ["create-something: Incomplete leaves claim undefined"]


def test_a_spec_without_a_recheck_decision_or_apply_is_reported():
    write_types = {Extra.NEW: Complete}
    missing_recheck = WriteSpec(Complete, "PUT x", None, _apply)  # type: ignore[arg-type]
    assert registry_problems({Extra.NEW: missing_recheck}, write_types, (Extra.NEW,)) == [
        "create-something: the spec neither re-checks nor says why it need not (NoRecheck)"
    ]
    silent = WriteSpec(Complete, "PUT x", NoRecheck("  "), _apply)
    assert registry_problems({Extra.NEW: silent}, write_types, (Extra.NEW,)) == [
        "create-something: NoRecheck without a reason"
    ]
    no_apply = WriteSpec(Complete, "", Recheck(lambda io, w: None), None)  # type: ignore[arg-type]
    assert registry_problems({Extra.NEW: no_apply}, write_types, (Extra.NEW,)) == [
        "create-something: the spec names no operation",
        "create-something: the spec has no apply",
    ]
    wrong_type = WriteSpec(CreateContainer, "PUT x", NoRecheck("idempotent"), _apply)
    assert registry_problems({Extra.NEW: wrong_type}, write_types, (Extra.NEW,)) == [
        "create-something: the spec is for CreateContainer, not Complete"
    ]
    assert (
        registry_problems(
            {Extra.NEW: WriteSpec(Complete, "PUT x", NoRecheck("ok"), _apply)}, write_types, (Extra.NEW,)
        )
        == []
    )


def test_every_read_kind_has_a_reader():
    read_types = {
        value
        for value in vars(observed_module).values()
        if isinstance(value, type) and issubclass(value, Read) and value is not Read
    }
    assert read_types == set(READERS)


def test_every_blocker_states_its_policy_once():
    for blocker in Blocker:
        assert isinstance(blocker.kind, BlockerKind) and blocker.remedy
        assert blocker.describe().startswith(blocker.value + ": ")
    assert {b for b in Blocker if b.needs_human} == {
        Blocker.NO_MANAGED_IDENTITY,
        Blocker.DISK_CSI_DRIVER_DISABLED,
        Blocker.SNAPSHOT_CONTROLLER_DISABLED,
        Blocker.NO_LINUX_AMD64_POOL,
    }
    assert Blocker.CLUSTER_STOPPED.kind is BlockerKind.LONG_LIVED
    assert Blocker.CLUSTER_NOT_SUCCEEDED.kind is BlockerKind.TRANSIENT
