"""A test credential for emulator mode: an unsigned JWT whose ``oid`` claim names the caller.

The emulator accepts any bearer token and takes the principal from the token's ``oid`` claim (or the raw
token),
so throttling buckets and the call log can tell principals apart. No secret is involved.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo

logger = logging.getLogger(__name__)

DEFAULT_PRINCIPAL = "00000000-0000-0000-0000-00000000c0de"
DEFAULT_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unsigned_jwt(claims: dict[str, Any]) -> str:
    """An RFC 7519 JWT with ``alg: none`` (header.payload. with an empty signature)."""
    header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    return f"{header}.{payload}."


def principal_from_authorization(header: str | None) -> str | None:
    """The caller's principal id: the JWT ``oid`` claim, else the raw bearer token; None without a bearer
    token."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    token = token.strip()
    parts = token.split(".")
    if len(parts) == 3:
        try:
            padded = parts[1] + "=" * (-len(parts[1]) % 4)
            claims = json.loads(base64.urlsafe_b64decode(padded))
            if isinstance(claims, dict) and isinstance(claims.get("oid"), str):
                return claims["oid"]
        except (ValueError, json.JSONDecodeError):
            pass
    return token


class EmulatorCredential:
    """azure-core TokenCredential (and SupportsTokenInfo) returning an unsigned JWT with ``oid=principal``."""

    def __init__(self, principal: str = DEFAULT_PRINCIPAL, *, tenant_id: str = DEFAULT_TENANT) -> None:
        self.principal = principal
        self.tenant_id = tenant_id
        self.scopes_requested: list[tuple[str, ...]] = []

    def _token(self, scopes: tuple[str, ...]) -> tuple[str, int]:
        self.scopes_requested.append(scopes)
        expires_on = int(time.time()) + 3600
        claims = {
            "oid": self.principal,
            "tid": self.tenant_id,
            "aud": scopes[0].removesuffix("/.default") if scopes else "https://management.azure.com",
            "exp": expires_on,
            "iss": "https://emulator.local/",
        }
        return unsigned_jwt(claims), expires_on

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        token, expires_on = self._token(scopes)
        return AccessToken(token, expires_on)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        token, expires_on = self._token(scopes)
        return AccessTokenInfo(token, expires_on)

    def close(self) -> None:
        """Nothing to release; present so clients can close their credential."""

    def __enter__(self) -> EmulatorCredential:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
