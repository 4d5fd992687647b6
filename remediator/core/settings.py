"""App settings (environment variables) as one typed object.

This is the only module that knows the names of the environment variables the product reads. The Functions
app, the CLI and the local runner all build ``Settings`` from their environment; the IaC drift test compares
``ENV_NAMES`` with the app settings the Bicep template sets. A missing or malformed setting raises
``UserInputError`` naming the variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from remediator.core.caller import HttpAuth
from remediator.core.errors import UserInputError, UserInputErrors, plain_validation_message


class CredentialKind(StrEnum):
    """How the product authenticates to ARM."""

    MANAGED_IDENTITY = "managed-identity"
    """``DefaultAzureCredential`` (managed identity in Azure; ``AZURE_CLIENT_ID`` picks a user-assigned
    one)."""
    EMULATOR = "emulator"
    """An unsigned test token accepted by the local ARM emulator. Never use against Azure."""


class WriteBudget(StrEnum):
    """Whose ARM write budget a process paces against."""

    SHARED = "shared"
    PROCESS = "process"


class Settings(BaseModel):
    """Everything the product reads from its environment. Field aliases are the environment variable names."""

    model_config = ConfigDict(
        frozen=True, populate_by_name=True, use_attribute_docstrings=True, extra="ignore"
    )

    config_file: str | None = Field(default=None, alias="REMEDIATOR_CONFIG_FILE")
    """Path to the remediator config (YAML or JSON). Exactly one of this and ``REMEDIATOR_CONFIG_JSON`` is
    set."""

    config_json: str | None = Field(default=None, alias="REMEDIATOR_CONFIG_JSON")
    """The remediator config inline, as JSON (how the Bicep template passes it)."""

    tenant_id: str = Field(alias="REMEDIATOR_TENANT_ID")
    """Entra tenant of the managed subscriptions; written to the extension as ``credentials.tenantId``."""

    arm_endpoint: str = Field(default="https://management.azure.com", alias="REMEDIATOR_ARM_ENDPOINT")
    """Base URL of Azure Resource Manager. The local emulator's URL in tests and the demo."""

    ca_bundle: str | None = Field(default=None, alias="REMEDIATOR_CA_BUNDLE")
    """Optional PEM file of CAs to trust for ARM (the emulator's generated CA). Unset in Azure."""

    credential: CredentialKind = Field(default=CredentialKind.MANAGED_IDENTITY, alias="REMEDIATOR_CREDENTIAL")
    """``managed-identity`` in Azure, ``emulator`` against the local emulator."""

    storage_connection_string: str | None = Field(default=None, alias="AzureWebJobsStorage")
    """Connection string of the host storage account (Azurite locally). In Azure the identity-based
    ``AzureWebJobsStorage__queueServiceUri`` / ``__tableServiceUri`` settings are used instead."""

    queue_service_uri: str | None = Field(default=None, alias="AzureWebJobsStorage__queueServiceUri")
    """Queue endpoint of the host storage account, for identity-based access (no shared keys)."""

    table_service_uri: str | None = Field(default=None, alias="AzureWebJobsStorage__tableServiceUri")
    """Table endpoint of the host storage account, for identity-based access (no shared keys)."""

    work_queue: str = Field(default="reconcile-work", alias="REMEDIATOR_WORK_QUEUE")
    """Queue of durable work items. Its poison queue is ``<name>-poison`` (the Functions host's
    convention)."""

    journal_table: str = Field(default="remediatorjournal", alias="REMEDIATOR_JOURNAL_TABLE")
    """Table Storage table holding every decision, action and outcome."""

    outcome_topic_endpoint: str | None = Field(default=None, alias="REMEDIATOR_OUTCOME_TOPIC_ENDPOINT")
    """Event Grid custom topic endpoint for outcome events. Unset: outcomes are journaled only."""

    outcome_topic_key: str | None = Field(default=None, alias="REMEDIATOR_OUTCOME_TOPIC_KEY")
    """Access key of the outcome topic. Unset: the managed identity is used (EventGrid Data Sender)."""

    inline_budget_seconds: float = Field(default=20.0, gt=0, le=25, alias="REMEDIATOR_INLINE_BUDGET_SECONDS")
    """Time an Event Grid invocation may spend reconciling inline before handing over to the queue. Seconds;
    capped at 25 to stay well under Event Grid's 30 s delivery timeout."""

    max_attempts: int = Field(default=30, ge=1, le=1000, alias="REMEDIATOR_MAX_ATTEMPTS")
    """How many queue hops **without progress** a chain of work items may take (a ``wait`` re-enqueues the
    item; a reconcile that finds a link newly satisfied starts the count again) before the give-up is
    journaled. The same default serves install and protect mode (docs/operations.md)."""

    max_wait_seconds: int = Field(default=600, ge=1, le=604800, alias="REMEDIATOR_MAX_WAIT_SECONDS")
    """Longest visibility delay for a re-enqueued work item (a queue message may be hidden up to 7 days)."""

    write_budget: WriteBudget = Field(default=WriteBudget.SHARED, alias="REMEDIATOR_WRITE_BUDGET")
    """``shared``: the ARM write bucket of each subscription is one budget for every instance (a row in the
    journal table, docs/operations.md); ``process``: each instance paces alone (N instances can send N
    times the bucket; kept for benchmarks that compare the two)."""

    event_max_age_seconds: int = Field(
        default=90000, ge=3600, le=604800, alias="REMEDIATOR_EVENT_MAX_AGE_SECONDS"
    )
    """The oldest Event Grid event acted on, by its ``eventTime``/``time``; older ones are dropped as replays.
    Seconds; default 25 h (Event Grid retries a delivery for up to 24 h, ``eventTimeToLiveInMinutes``)."""

    event_max_skew_seconds: int = Field(default=300, ge=0, le=3600, alias="REMEDIATOR_EVENT_MAX_SKEW_SECONDS")
    """How far in the future an event's time or a policy state's ``data.timestamp`` may lie (clock skew
    between Azure and this host). Seconds."""

    http_auth: HttpAuth = Field(default=HttpAuth.FUNCTION_KEY, alias="REMEDIATOR_HTTP_AUTH")
    """``function-key``: the Functions host's keys authorise HTTP callers (the caller journaled is the
    key's fingerprint). ``entra``: App Service authentication (Entra ID) is in front of the routes, and the
    app roles ``reader`` (explain, report) and ``operator`` (remediate) are enforced; set it only when App
    Service authentication is on, since only then are the ``X-MS-CLIENT-PRINCIPAL*`` headers
    trustworthy."""

    scope_remediations_per_hour: int = Field(
        default=6, ge=1, le=3600, alias="REMEDIATOR_SCOPE_REMEDIATIONS_PER_HOUR"
    )
    """``POST /api/remediate {scope}`` requests one caller may make per hour (a token bucket kept in the
    journal table, shared by every instance); over it: 429 with ``Retry-After``."""

    preflight_cache_seconds: float = Field(
        default=300.0, ge=0, le=3600, alias="REMEDIATOR_PREFLIGHT_CACHE_SECONDS"
    )
    """How long preflight serves the policy assignments of a subscription from its per-process cache. A new
    Deny assignment is seen by installs at most this late (Azure itself takes up to about 30 minutes to apply
    a new assignment); a fix that clears a blocker is seen at once (blocking data is re-read first)."""
    event_wiring: str | None = Field(default=None, alias="REMEDIATOR_EVENT_WIRING")
    """JSON ``{functionAppId, resourceGroup, location, resourcesTopic, policyTopic}`` (written by the
    deployment): the timer wires subscriptions that join ``scope.managementGroups`` to these functions,
    creating missing system topics under these names (``remediator/service/wiring.py``). Unset or empty: no
    wiring step (the deployment's grants for it are missing too)."""

    @model_validator(mode="after")
    def _exactly_one_config_source(self) -> Settings:
        if (self.config_file is None) == (self.config_json is None):
            raise ValueError("set exactly one of REMEDIATOR_CONFIG_FILE and REMEDIATOR_CONFIG_JSON")
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from an environment mapping (``os.environ`` in production).

        :raises UserInputError: a setting is missing or malformed; the message names the variable.
        """
        try:
            return cls.model_validate(dict(environ))
        except ValidationError as exc:
            errors = [
                UserInputError(
                    plain_validation_message(err),
                    field=".".join(str(part) for part in err["loc"]) or "REMEDIATOR_CONFIG_FILE",
                    source="app settings",
                )
                for err in exc.errors()
            ]
            raise (errors[0] if len(errors) == 1 else UserInputErrors(errors)) from None

    def storage_configured(self) -> bool:
        """Whether queues and the journal can be reached (a connection string or identity-based URIs)."""
        return bool(self.storage_connection_string or (self.queue_service_uri and self.table_service_uri))


HTTP_AUTH_SETTING = "REMEDIATOR_HTTP_AUTH"


def http_auth_from_env(environ: Mapping[str, str]) -> HttpAuth | None:
    """``REMEDIATOR_HTTP_AUTH`` alone (for an HTTP answer when the other settings are invalid): ``None`` when
    it is malformed."""
    try:
        return HttpAuth(environ.get(HTTP_AUTH_SETTING, HttpAuth.FUNCTION_KEY.value))
    except ValueError:
        return None


def _aliases() -> tuple[str, ...]:
    names: list[str] = []
    for field in Settings.model_fields.values():
        alias: Any = field.alias
        if isinstance(alias, str):
            names.append(alias)
    return tuple(names)


ENV_NAMES: tuple[str, ...] = _aliases()
"""Every environment variable ``Settings`` reads (used by the IaC settings-drift test)."""

SWEEP_SCHEDULE_SETTING = "SWEEP_SCHEDULE"
"""App setting holding the NCRONTAB schedule of the timer sweep (read by the Functions host,
``%SWEEP_SCHEDULE%``)."""

LOCAL_ONLY_ENV_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "REMEDIATOR_CONFIG_FILE": "Azure gets the config inline as REMEDIATOR_CONFIG_JSON;"
        " a file path is for the CLI and the local runner.",
        "REMEDIATOR_CA_BUNDLE": "Only the local ARM emulator has a private CA;"
        " Azure endpoints use public CAs.",
        "REMEDIATOR_CREDENTIAL": "Defaults to managed-identity, which is what Azure uses;"
        " 'emulator' is for local runs.",
        "AzureWebJobsStorage": "A connection string carries a shared key and shared keys are disabled in"
        " Azure; the identity-based AzureWebJobsStorage__* settings replace it.",
        "REMEDIATOR_OUTCOME_TOPIC_KEY": "Key auth is disabled on the outcome topic; the app publishes with"
        " its managed identity (EventGrid Data Sender).",
        "REMEDIATOR_WRITE_BUDGET": "Defaults to shared, which is what Azure uses; 'process' is for benchmarks"
        " that measure per-instance pacing against it.",
        "REMEDIATOR_PREFLIGHT_CACHE_SECONDS": "Azure keeps the default (5 minutes, shorter than Azure"
        " Policy's own delay in applying a new assignment); a shorter cache is for the local emulator,"
        " which applies assignments at once.",
    }
)
"""Settings the product reads that the Azure deployment deliberately leaves unset: name -> why.

``ENV_NAMES`` minus these is exactly what ``infra/`` must set (checked by tests/unit/infra)."""

PLATFORM_ENV_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "AzureWebJobsStorage__accountName": "Functions host: identity-based host storage account.",
        "AzureWebJobsStorage__credential": "Functions host: use a managed identity for host storage.",
        "AzureWebJobsStorage__clientId": "Functions host: the user-assigned identity for host storage.",
        "AZURE_CLIENT_ID": "azure-identity: DefaultAzureCredential picks the user-assigned identity.",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "Functions host: where telemetry goes.",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Functions host: Entra-authenticated telemetry.",
    }
)
"""App settings the Azure deployment sets for the Functions host or the Azure SDK, not for ``Settings``.

Name -> reader. Together with ``ENV_NAMES`` and the ``%NAME%`` binding expressions in function_app.py they
are everything ``infra/`` may set (checked by tests/unit/infra)."""
