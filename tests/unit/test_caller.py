"""The HTTP caller (core.caller): function-key fingerprints, Entra principals and their app roles, and the
headers that must not be believed without App Service authentication; and the work-item parser's limits."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remediator.core.caller import (
    ANONYMOUS,
    CallerError,
    HttpAuth,
    Role,
    caller_of,
    key_fingerprint,
)
from remediator.core.errors import UserInputError
from remediator.core.settings import http_auth_from_env
from remediator.core.work_item import MAX_MESSAGE_BYTES, WorkItem

OID = "0c2b6f10-5d1e-4f3a-9b8c-7d6e5f4a3b21"
CLUSTER = (
    "/subscriptions/3f2b8c1e-6d4a-4f7b-9c2e-8a1d5e7f0b24/resourceGroups/rg/providers/"
    "Microsoft.ContainerService/managedClusters/aks1"
)


def _principal(claims: list[dict[str, Any]], **extra: Any) -> str:
    doc = {"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": "roles", **extra}
    return base64.b64encode(json.dumps(doc).encode()).decode()


def _entra_headers(*roles: str, casing: str = "upper") -> dict[str, str]:
    claims = [{"typ": "roles", "val": r} for r in roles]
    claims += [
        {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": OID},
        {"typ": "name", "val": "Ops Team"},
    ]
    names = ("X-MS-CLIENT-PRINCIPAL", "X-MS-CLIENT-PRINCIPAL-ID")
    if casing == "lower":
        names = tuple(n.lower() for n in names)  # type: ignore[assignment]
    return {names[0]: _principal(claims), names[1]: OID}


def test_a_function_key_caller_is_its_fingerprint_and_an_operator() -> None:
    key = "s3cret-function-key=="
    by_header = caller_of({"X-Functions-Key": key}, {}, auth=HttpAuth.FUNCTION_KEY)
    by_query = caller_of({}, {"code": key}, auth=HttpAuth.FUNCTION_KEY)
    assert by_header == by_query
    assert by_header.label == f"function-key:{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    assert key not in by_header.label and by_header.is_operator
    assert caller_of({}, {}, auth=HttpAuth.FUNCTION_KEY) is ANONYMOUS and not ANONYMOUS.is_operator


def test_entra_roles_decide_and_the_name_is_journaled() -> None:
    for casing in ("upper", "lower"):
        reader = caller_of(_entra_headers("reader", casing=casing), {}, auth=HttpAuth.ENTRA)
        assert reader.label == f"entra:{OID} (Ops Team)" and reader.has(Role.READER)
        assert not reader.is_operator
        with pytest.raises(CallerError) as err:
            reader.require(Role.OPERATOR, route="POST /api/remediate")
        assert err.value.status == 403 and "operator" in err.value.message
    operator = caller_of(_entra_headers("operator"), {}, auth=HttpAuth.ENTRA)
    assert operator.has(Role.READER) and operator.is_operator  # an operator may do what a reader may
    assert caller_of(_entra_headers(), {}, auth=HttpAuth.ENTRA).roles == frozenset()


def test_roles_come_from_the_role_type_the_principal_names() -> None:
    claims = [
        {"typ": "roles", "val": "operator"},  # not the role type this principal names
        {"typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role", "val": "reader"},
    ]
    raw = _principal(claims, role_typ="http://schemas.microsoft.com/ws/2008/06/identity/claims/role")
    caller = caller_of(
        {"x-ms-client-principal": raw, "x-ms-client-principal-id": OID}, {}, auth=HttpAuth.ENTRA
    )
    assert caller.roles == frozenset({"reader"})


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-MS-CLIENT-PRINCIPAL-ID": OID},  # an id without the principal
        {"X-MS-CLIENT-PRINCIPAL": "!!!", "X-MS-CLIENT-PRINCIPAL-ID": OID},
        {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(b"[1,2]").decode(), "X-MS-CLIENT-PRINCIPAL-ID": OID},
        {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(b"[" * 5000).decode(), "X-MS-CLIENT-PRINCIPAL-ID": OID},
        {
            "X-MS-CLIENT-PRINCIPAL": base64.b64encode(b'{"claims": 3}').decode(),
            "X-MS-CLIENT-PRINCIPAL-ID": OID,
        },
    ],
)
def test_entra_mode_refuses_a_missing_or_unreadable_principal_with_401(headers: dict[str, str]) -> None:
    with pytest.raises(CallerError) as err:
        caller_of(headers, {"code": "a-key"}, auth=HttpAuth.ENTRA)
    assert err.value.status == 401


def test_principal_headers_count_for_nothing_in_function_key_mode() -> None:
    caller = caller_of(_entra_headers("operator"), {}, auth=HttpAuth.FUNCTION_KEY)
    assert caller is ANONYMOUS and not caller.is_operator


@given(st.dictionaries(st.text(max_size=40), st.text(max_size=200), max_size=6))
@settings(max_examples=300, deadline=None)
def test_any_headers_give_a_caller_or_a_caller_error(headers: dict[str, str]) -> None:
    for auth in HttpAuth:
        try:
            caller = caller_of(headers, {}, auth=auth)
        except CallerError as exc:
            assert auth is HttpAuth.ENTRA and exc.status == 401
        else:
            assert caller.label


def test_the_auth_setting_alone_is_readable() -> None:
    assert http_auth_from_env({}) is HttpAuth.FUNCTION_KEY
    assert http_auth_from_env({"REMEDIATOR_HTTP_AUTH": "entra"}) is HttpAuth.ENTRA
    assert http_auth_from_env({"REMEDIATOR_HTTP_AUTH": "bogus"}) is None
    assert key_fingerprint("k") == hashlib.sha256(b"k").hexdigest()[:12]


# --------------------------------------------------------------------------------------------- work items


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 200_000,  # json.loads would raise RecursionError
        b'{"clusterId": ' + b"[" * 20 + b"]" * 20 + b"}",
        b'{"clusterId": "x", "attempt": 1e999}',
        b'{"clusterId": "%s", "clusterId": "%s"}' % (CLUSTER.encode(), CLUSTER.encode()),
        b"\xff\xfe",
        b"x" * (MAX_MESSAGE_BYTES + 1),
        '{"clusterId": "\\ud800"}',
    ],
)
def test_a_malformed_work_item_is_a_user_input_error_naming_the_body(body: bytes | str) -> None:
    with pytest.raises(UserInputError) as err:
        WorkItem.from_message(body)
    assert err.value.field == "body" and err.value.source == "work item"


def test_a_work_item_still_round_trips() -> None:
    item = WorkItem.from_message(json.dumps({"clusterId": CLUSTER, "attempt": 2, "source": "http"}))
    assert WorkItem.from_message(item.to_message()) == item


def test_a_work_item_source_of_the_wrong_type_is_a_user_input_error() -> None:
    """Found by the fuzz test: ``["event"] in frozenset(...)`` raised TypeError (unhashable) instead."""
    for source in (["event"], {"a": 1}, 5):
        with pytest.raises(UserInputError) as err:
            WorkItem.from_json({"clusterId": CLUSTER, "source": source})
        assert err.value.field == "source"
