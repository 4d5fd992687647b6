"""Provisioning lifecycles on the state clock that both the HTTP handlers and the estate loader start.

A managed cluster created by a PUT or listed as ``Creating`` in an estate reaches its final state the same
way: :func:`schedule_cluster_completion` queues a transition on :class:`emulator.state.EmulatorState` that
``advance()`` applies once due. It lives below the handlers so the estate loader needs no handler module.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

from emulator.model.bodies import with_provisioned_fields
from emulator.state import EmulatorState, key_of

logger = logging.getLogger(__name__)

Transition = Callable[[], list[tuple[str, str, Any, Any]]]


def _finish_transition(
    state: EmulatorState, rid: str, *, final: str, principal: str | None, power: str | None = None
) -> Transition:
    def transition() -> list[tuple[str, str, Any, Any]]:
        body = state.clusters.get(key_of(rid))
        if body is None:
            return []
        new = copy.copy(body)
        props = dict(new["properties"])
        props["provisioningState"] = final
        if power is not None:
            props["powerState"] = {"code": power}
        props["agentPoolProfiles"] = [
            {**pool, "provisioningState": final, "powerState": props["powerState"]}
            for pool in props.get("agentPoolProfiles", [])
        ]
        new["properties"] = props
        if final == "Succeeded":
            new = with_provisioned_fields(new)
        state.clusters[key_of(rid)] = new
        return [("provisioned", rid, new, principal)]  # the id as the operation named it

    return transition


def schedule_cluster_completion(
    state: EmulatorState,
    rid: str,
    delay_s: float,
    *,
    final: str = "Succeeded",
    principal: str | None,
    power: str | None = None,
) -> None:
    """The cluster ``rid`` reaches ``final`` (and ``power``, if given) ``delay_s`` from now, unless a later
    operation replaces this lifecycle first."""
    token = state.new_lifecycle_token(rid)
    state.schedule(
        state.now() + delay_s,
        rid,
        token,
        _finish_transition(state, rid, final=final, principal=principal, power=power),
    )
