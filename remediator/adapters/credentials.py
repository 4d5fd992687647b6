"""The credential the SDK clients use: managed identity in Azure, an unsigned test token with the emulator.

In Azure the product authenticates with ``DefaultAzureCredential`` (the Function app's managed identity;
``AZURE_CLIENT_ID`` picks a user-assigned one). Against the local ARM emulator it uses
:class:`EmulatorCredential`, which mints an unsigned JWT whose ``oid`` claim names the caller so that the
emulator's throttling buckets and call log can tell principals apart. The product never imports ``emulator/``;
this is its own, tiny implementation of the same idea.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenCredential

from remediator.core.settings import CredentialKind, Settings

logger = logging.getLogger(__name__)

EMULATOR_PRINCIPAL = "00000000-0000-0000-0000-0000000f5e4d"
"""The object id the emulator sees for this product (any GUID-shaped string is accepted)."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class EmulatorCredential:
    """A TokenCredential returning an unsigned (``alg: none``) JWT. Accepted by the local emulator only.

    :param principal: the ``oid`` claim.
    :keyword tenant_id: the ``tid`` claim.
    """

    def __init__(self, principal: str = EMULATOR_PRINCIPAL, *, tenant_id: str = "") -> None:
        self.principal = principal
        self.tenant_id = tenant_id

    def _token(self, scopes: tuple[str, ...]) -> tuple[str, int]:
        expires_on = int(time.time()) + 3600
        claims = {
            "oid": self.principal,
            "tid": self.tenant_id,
            "aud": scopes[0].removesuffix("/.default") if scopes else "",
            "exp": expires_on,
            "iss": "https://emulator.local/",
        }
        header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}, separators=(",", ":")).encode())
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        return f"{header}.{payload}.", expires_on

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        token, expires_on = self._token(scopes)
        return AccessToken(token, expires_on)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        token, expires_on = self._token(scopes)
        return AccessTokenInfo(token, expires_on)

    def close(self) -> None:
        """Nothing to release."""


def credential_from_settings(settings: Settings) -> TokenCredential:
    """``DefaultAzureCredential`` in Azure; :class:`EmulatorCredential` when settings say ``emulator``."""
    if settings.credential is CredentialKind.EMULATOR:
        logger.info("using the emulator test credential (never valid against Azure)")
        return EmulatorCredential(tenant_id=settings.tenant_id)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(exclude_interactive_browser_credential=True)
