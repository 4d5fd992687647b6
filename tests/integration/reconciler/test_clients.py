"""How the SDK clients are built: no auto provider registration, bounded Retry-After, CA bundle,
credential."""

from __future__ import annotations

import base64
import json

import pytest
from azure.mgmt.core.policies import ARMAutoResourceProviderRegistrationPolicy

from remediator.adapters.clients import AzureClients, BoundedRetryAfterPolicy, ClientOptions
from remediator.adapters.credentials import EmulatorCredential, credential_from_settings
from remediator.core.settings import Settings

KINDS = ("container_service", "extensions", "storage", "authorization", "policy_insights")


def _policies(client):
    out = []
    for policy in client._client._pipeline._impl_policies:
        out.append(getattr(policy, "_policy", policy))
    return out


def settings(**env):
    base = {"REMEDIATOR_TENANT_ID": "t", "REMEDIATOR_CONFIG_JSON": "{}"}
    return Settings.from_env({**base, **env})


@pytest.mark.parametrize("kind", KINDS)
def test_arm_clients_never_auto_register_providers(kind):
    clients = AzureClients(EmulatorCredential(), arm_endpoint="https://127.0.0.1:1", ca_bundle="/ca.pem")
    found = _policies(getattr(clients, kind)("00000000-0000-0000-0000-000000000000"))
    assert not any(isinstance(p, ARMAutoResourceProviderRegistrationPolicy) for p in found)
    assert any(isinstance(p, BoundedRetryAfterPolicy) for p in found)


def test_generated_clients_would_auto_register_without_our_pipeline():
    """The thing we remove is really there by default (so the test above can fail)."""
    from azure.mgmt.kubernetesconfiguration import SourceControlConfigurationClient

    default = SourceControlConfigurationClient(EmulatorCredential(), "s", base_url="https://127.0.0.1:1")
    assert any(isinstance(p, ARMAutoResourceProviderRegistrationPolicy) for p in _policies(default))


def test_clients_are_cached_per_subscription_and_options_flow_through():
    options = ClientOptions(retry_total=1, max_retry_after_s=2.0)
    clients = AzureClients(EmulatorCredential(), arm_endpoint="https://127.0.0.1:1/", options=options)
    a = clients.extensions("a")
    assert clients.extensions("a") is a and clients.extensions("b") is not a
    retry = [p for p in _policies(a) if isinstance(p, BoundedRetryAfterPolicy)][0]
    assert retry.total_retries == 1 and retry.max_retry_after_s == 2.0
    assert clients.transport_kwargs().get("connection_verify") is None
    clients.close()


def test_settings_pick_the_credential_endpoint_and_ca_bundle():
    emu = settings(
        REMEDIATOR_CREDENTIAL="emulator",
        REMEDIATOR_ARM_ENDPOINT="https://127.0.0.1:9",
        REMEDIATOR_CA_BUNDLE="/x",
    )
    clients = AzureClients.from_settings(emu)
    assert isinstance(clients.credential, EmulatorCredential)
    assert clients.arm_endpoint == "https://127.0.0.1:9"
    assert clients.transport_kwargs()["connection_verify"] == "/x"
    assert clients.scope == "https://management.azure.com/.default"
    azure = settings()
    assert type(credential_from_settings(azure)).__name__ == "DefaultAzureCredential"


def test_emulator_token_is_an_unsigned_jwt_naming_the_principal():
    token = (
        EmulatorCredential("p-1", tenant_id="t-1").get_token("https://management.azure.com/.default").token
    )
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert signature == "" and claims["oid"] == "p-1" and claims["tid"] == "t-1"
    assert claims["aud"] == "https://management.azure.com"
