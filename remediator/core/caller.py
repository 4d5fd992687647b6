"""Who called an HTTP route, and what they may do: the caller identity journaled with HTTP-triggered writes.

Two ways a request can be authorised in Azure, chosen by ``REMEDIATOR_HTTP_AUTH`` (``core.settings``):

* ``function-key`` (the default): the Functions host checks the function key (auth level FUNCTION) before the
  handler runs. The host knows the key's *name* (it sets the claim
  ``http://schemas.microsoft.com/2017/07/functions/claims/keyid`` on its ClaimsPrincipal; MicrosoftDocs/
  azure-docs#60198), but the Python worker does not receive the principal: it builds ``HttpRequest`` from the
  RPC message's method, url, headers, params, query and body only, and ``RpcHttp.identities`` is dropped
  (Azure/azure-functions-python-worker ``azure_functions_worker/bindings/datumdef.py``,
  ``Datum.from_typed_data``). So the closest real identity is the key itself, which arrives in
  ``x-functions-key`` or ``?code=``: the caller is ``function-key:<fingerprint>``, the first 12 hex of the
  key's sha256. The fingerprint names one key without disclosing it; ``docs/security.md`` shows how an
  operator maps it back to a key name. A key holder may call every route (a function key already opens
  ``/api/remediate``), so it counts as an operator.
* ``entra``: App Service authentication (Entra ID) sits in front of the routes and injects
  ``X-MS-CLIENT-PRINCIPAL`` (base64 JSON ``{auth_typ, claims: [{typ, val}], name_typ, role_typ}``),
  ``X-MS-CLIENT-PRINCIPAL-ID`` and ``-NAME``. "External requests aren't allowed to set these headers, so
  they're present only if set by App Service" (learn.microsoft.com/azure/app-service/
  configure-authentication-user-identities). The caller is ``entra:<object id>``; its app roles decide the
  routes: ``reader`` (explain, report) and ``operator`` (remediate, and everything a reader may do). Only in
  this mode are those headers believed: without App Service authentication anyone can send them.

Everything here is pure: the trigger passes the request's headers and query, and gets a :class:`Caller` or a
:class:`CallerError` (HTTP 401/403).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from remediator.core.errors import UserInputError
from remediator.core.text import ignore_case_key
from remediator.core.untrusted_json import UntrustedJsonError, parse_untrusted_json

logger = logging.getLogger(__name__)

PRINCIPAL_HEADER = "x-ms-client-principal"
PRINCIPAL_ID_HEADER = "x-ms-client-principal-id"
PRINCIPAL_NAME_HEADER = "x-ms-client-principal-name"
FUNCTION_KEY_HEADER = "x-functions-key"
FUNCTION_KEY_QUERY = "code"
MAX_PRINCIPAL_BYTES = 16 * 1024
"""The decoded principal header is small JSON (a few claims); anything larger is refused."""
ROLE_CLAIM_TYPES = frozenset({"roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"})
"""Claim types holding app roles when the principal names no ``role_typ`` (Entra ID sends ``roles``)."""
OBJECT_ID_CLAIM_TYPES = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")


class HttpAuth(StrEnum):
    """How HTTP callers are authenticated (``REMEDIATOR_HTTP_AUTH``)."""

    FUNCTION_KEY = "function-key"
    """The Functions host's function keys only; App Service authentication headers are ignored."""
    ENTRA = "entra"
    """App Service authentication (Entra ID) in front of the routes; app roles are enforced."""


class Role(StrEnum):
    """The app roles of the remediator's Entra application (``infra``: ``appRoles``)."""

    READER = "reader"
    """``POST /api/explain`` and ``GET /api/report``: read-only answers."""
    OPERATOR = "operator"
    """``POST /api/remediate`` (writes), and everything a reader may do; sees configuration in errors."""


class CallerError(UserInputError):
    """The request has no acceptable caller (``status`` 401) or the caller lacks the role (403)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message, field="caller", source="request headers")
        self.status = status


@dataclass(frozen=True)
class Caller:
    """Who called.

    :param kind: ``function-key``, ``entra`` or ``anonymous`` (no key seen: a local run without keys).
    :param id: the key fingerprint, the principal's object id, or ``""``.
    :param name: the principal's display name (Entra), else ``None``.
    :param roles: app roles (Entra); a function-key caller holds :attr:`Role.OPERATOR`.
    """

    kind: str
    id: str
    name: str | None = None
    roles: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        """The journaled form: ``function-key:<12 hex>``, ``entra:<object id> (<name>)`` or ``anonymous``."""
        if self.kind == "anonymous":
            return "anonymous"
        label = f"{self.kind}:{self.id}"
        return f"{label} ({self.name})" if self.name else label

    @property
    def rate_key(self) -> str:
        """The key the per-caller rate limit counts under (no display name: names change)."""
        return f"{self.kind}:{ignore_case_key(self.id)}"

    def has(self, role: Role) -> bool:
        """Whether the caller holds ``role`` (an operator holds every role)."""
        return role.value in self.roles or Role.OPERATOR.value in self.roles

    @property
    def is_operator(self) -> bool:
        return self.has(Role.OPERATOR)

    def require(self, role: Role, *, route: str) -> None:
        """:raises CallerError: 403 when the caller lacks ``role``."""
        if not self.has(role):
            raise CallerError(
                f"{route} needs the app role {role.value!r}; {self.label} holds"
                f" {sorted(self.roles) or 'none'}",
                status=403,
            )


ANONYMOUS = Caller("anonymous", "")


def key_fingerprint(key: str) -> str:
    """The first 12 hex of sha256(key): names one function key in the journal without disclosing it."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, any casing (frameworks present these headers in different casings)."""
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _decode_principal(raw: str) -> tuple[str | None, str | None, frozenset[str]]:
    """(object id, name, roles) from ``X-MS-CLIENT-PRINCIPAL``.

    :raises CallerError: 401 when the header is not base64 JSON of the documented shape.
    """
    try:
        decoded = base64.b64decode(raw.strip(), validate=True)
        principal = parse_untrusted_json(decoded, max_bytes=MAX_PRINCIPAL_BYTES, source=PRINCIPAL_HEADER)
    except (binascii.Error, ValueError, UntrustedJsonError) as exc:
        raise CallerError(f"{PRINCIPAL_HEADER} is not base64-encoded JSON", status=401) from exc
    if not isinstance(principal, dict) or not isinstance(principal.get("claims", []), list):
        raise CallerError(f"{PRINCIPAL_HEADER} is not a client principal", status=401)
    role_type = principal.get("role_typ")
    role_types = {role_type} if isinstance(role_type, str) and role_type else set(ROLE_CLAIM_TYPES)
    name_type = principal.get("name_typ")
    roles: set[str] = set()
    object_id: str | None = None
    name: str | None = None
    for claim in principal.get("claims", []):
        if not isinstance(claim, dict):
            continue
        typ, val = claim.get("typ"), claim.get("val")
        if not isinstance(typ, str) or not isinstance(val, str):
            continue
        if typ in role_types:
            roles.add(val)
        elif typ in OBJECT_ID_CLAIM_TYPES and object_id is None:
            object_id = val
        elif typ == name_type and name is None:
            name = val
    return object_id, name, frozenset(roles)


def caller_of(headers: Mapping[str, str], params: Mapping[str, str], *, auth: HttpAuth) -> Caller:
    """The caller of one HTTP request.

    :param headers: the request headers (any casing).
    :param params: the query parameters (``code`` holds a function key when given there).
    :keyword auth: the configured mode (``REMEDIATOR_HTTP_AUTH``).
    :raises CallerError: 401 in ``entra`` mode when App Service authentication sent no (readable) principal.
    """
    if auth is HttpAuth.ENTRA:
        raw = _header(headers, PRINCIPAL_HEADER)
        principal_id = _header(headers, PRINCIPAL_ID_HEADER)
        if not raw or not principal_id:
            raise CallerError(
                "no Entra principal on the request: App Service authentication must sign the caller in"
                " (REMEDIATOR_HTTP_AUTH=entra)",
                status=401,
            )
        object_id, name, roles = _decode_principal(raw)
        display = _header(headers, PRINCIPAL_NAME_HEADER) or name
        return Caller("entra", (object_id or principal_id).strip()[:128], (display or None), roles)
    key = _header(headers, FUNCTION_KEY_HEADER) or params.get(FUNCTION_KEY_QUERY)
    if not key:
        return ANONYMOUS
    return Caller("function-key", key_fingerprint(key), None, frozenset({Role.OPERATOR.value}))
