"""Every Azure SDK client is built here, from settings: endpoint, CA bundle, credential, retry knobs.

One place decides how the product talks to ARM, so that the emulator and Azure differ only in ``base_url``,
the CA bundle and the credential, and so that one pipeline rule holds for every client: azure-mgmt-core's
``ARMAutoResourceProviderRegistrationPolicy`` is left out. On a 409 ``MissingSubscriptionRegistration`` that
policy registers the provider and then polls every 10 s with no timeout (platform_facts.md §4.2), which
would block a Function invocation indefinitely; without it the 409 reaches the gateway, which reports
``ProviderNotRegistered`` naming the namespace. The pipeline is otherwise the generated clients' standard
one.

Connections are sized for the concurrency one host process runs (issue 17 item 5): every ARM client of the
process shares one ``requests`` session whose pool holds :data:`ARM_POOL_SIZE` connections per host, and every
storage client (queue, tables) shares one of :data:`STORAGE_POOL_SIZE`. azure-core's default transport gives
each client its own pool of 10, so more than 10 concurrent calls through one client (the queue host runs up
to 24 invocations, each reconcile reads on a pool of 16) made urllib3 discard connections ("Connection pool is
full") and open new TLS connections under load.

Those sessions also skip what ``requests`` repeats on every request for nothing (issue 11: the event path's
overhead): with ``trust_env`` on, each request scans the whole environment for proxy variables and stats
``~/.netrc`` twice, and with a CA bundle path each request stats it to tell a file from a directory. A
session here reads the environment once, when it is built: unless a proxy variable is set, it does not trust
the environment per request, which also keeps a stray ``~/.netrc`` from replacing the bearer token with basic
auth; a CA-bundle variable (``REQUESTS_CA_BUNDLE``, else ``CURL_CA_BUNDLE``) is read then and used where
requests would use it (a request that asks to verify against the default CAs); with a proxy variable it
keeps requests' per-request behaviour (``no_proxy`` is matched per host). Whether the CA bundle path is a
directory is looked up once per path.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from azure.core.credentials import AzureKeyCredential, TokenCredential
from azure.core.pipeline import policies
from azure.core.pipeline.transport import HttpRequest, HttpResponse, RequestsTransport
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy, ARMHttpLoggingPolicy
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from remediator.adapters.credentials import EmulatorCredential, credential_from_settings
from remediator.core.settings import CredentialKind, Settings

logger = logging.getLogger(__name__)

PUBLIC_ARM_SCOPE = "https://management.azure.com/.default"
USER_AGENT = "aks-backup-remediator/0.1"

T = TypeVar("T")

HOST_QUEUE_CONCURRENCY = 16 + 8
"""Queue invocations one host process runs at once: host.json ``extensions.queues`` ``batchSize`` +
``newBatchThreshold`` (platform_facts §2.5; a unit test keeps this equal to host.json)."""
INLINE_CONCURRENCY = 4
"""Event Grid / HTTP reconciles one process runs inline at once (``service.inline.INLINE_WORKERS``; a unit
test keeps them equal)."""
RECONCILE_IO_CONCURRENCY = 16
"""The reconciles' shared pool for concurrent reads, claims and writes (``service.reconcile.reconciler.
READ_WORKERS``; a unit test keeps them equal)."""
SWEEP_CONCURRENCY = 8
"""The sweep's enqueue batches in flight (``Sweeper(max_concurrency=)`` default)."""
EARLY_WAVE_CONCURRENCY = 8
"""Reconciles' early waves of writes in flight (``service.reconcile.reconciler.EARLY_WAVE_WORKERS``; a unit
test keeps them equal): their PUTs, claims and write tokens."""

RECONCILE_THREADS = (
    HOST_QUEUE_CONCURRENCY + INLINE_CONCURRENCY + RECONCILE_IO_CONCURRENCY + EARLY_WAVE_CONCURRENCY
)
"""Every thread of the process's reconciles that can be in an ARM or storage call at once."""
ARM_POOL_SIZE = RECONCILE_THREADS + 8
"""Connections kept per ARM host: every thread that can call ARM at once, plus the sweep's inventory and the
health probe (8 spare)."""
STORAGE_POOL_SIZE = RECONCILE_THREADS + SWEEP_CONCURRENCY + 8
"""Connections kept per storage endpoint: the same threads (journal, claims, chain marks, work items), the
sweep's enqueuers, the lease renewer (8 spare)."""


SDK_REQUEST_LOGGER = "azure.core.pipeline.policies.http_logging_policy"
"""azure-core's ``HttpLoggingPolicy`` logger: every ARM and table request and response, URL and headers, at
INFO (the mgmt clients' ``ARMHttpLoggingPolicy`` and the tables client's ``HttpLoggingPolicy`` use it)."""


def quiet_sdk_request_logs() -> None:
    """Log the SDK's per-request lines only at WARNING and above, unless a level was set for that logger.

    The Functions Python worker forwards function code's records at INFO ("Function": "Information" in
    host.json), so without this every ARM and table call of every reconcile becomes several log lines (known
    in Function apps: Azure/azure-sdk-for-python#19925) — at thousands of clusters, most of the log volume
    and its ingestion cost, and CPU on the event path. The product's own lines (one per reconcile) say what
    was done; the journal keeps every decision.
    """
    request_logger = logging.getLogger(SDK_REQUEST_LOGGER)
    if request_logger.level == logging.NOTSET:
        request_logger.setLevel(logging.WARNING)


CA_BUNDLE_SETTINGS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
"""The CA-bundle variables ``requests`` reads per request when trusting the environment, first one set wins
(``Session.merge_environment_settings``)."""


def proxies_in_environment(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment (``os.environ`` by default) sets a proxy variable (``HTTPS_PROXY``,
    ``no_proxy``, ...: a name ending in ``_proxy``, as ``urllib.request.getproxies_environment`` reads
    them)."""
    env = os.environ if environ is None else environ
    return any(value and name.lower().endswith("_proxy") for name, value in env.items())


def ca_bundle_in_environment(environ: Mapping[str, str] | None = None) -> str | None:
    """The CA bundle path the environment names for ``requests`` (see :data:`CA_BUNDLE_SETTINGS`), if any."""
    env = os.environ if environ is None else environ
    return next((env[name] for name in CA_BUNDLE_SETTINGS if env.get(name)), None)


@functools.lru_cache(maxsize=8)
def _is_directory(path: str) -> bool:
    return os.path.isdir(path)


class PooledAdapter(HTTPAdapter):
    """``requests``' adapter, with whether a CA bundle path is a directory looked up once per path (requests
    stats it on every request).

    :keyword ca_bundle: the CA bundle a request asking to verify against the default CAs (``verify=True``)
        verifies against instead, as requests does with a CA-bundle variable when it trusts the environment
        (read once by :func:`pooled_session` instead of on every request).
    """

    def __init__(self, *args: Any, ca_bundle: str | None = None, **kwargs: Any) -> None:
        self.ca_bundle = ca_bundle
        super().__init__(*args, **kwargs)

    def verify_for(self, verify: Any) -> Any:
        """What the request verifies against: ``ca_bundle`` for ``True``, else ``verify`` unchanged."""
        return self.ca_bundle if verify is True and self.ca_bundle else verify

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        verify = self.verify_for(verify)
        return super().send(
            request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
        )

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if not isinstance(verify, str):
            return super().build_connection_pool_key_attributes(request, verify, cert)
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, True, cert)
        pool_kwargs["ca_cert_dir" if _is_directory(verify) else "ca_certs"] = verify
        return host_params, pool_kwargs


def pooled_session(pool_maxsize: int) -> requests.Session:
    """A ``requests`` session whose pools keep ``pool_maxsize`` connections per host, with urllib3's own
    retries off (azure-core's retry policy retries), as azure-core's transport mounts its adapter; it trusts
    the environment per request only when it sets a proxy, and otherwise reads its CA bundle once (see the
    module docstring)."""
    session = requests.Session()
    session.trust_env = proxies_in_environment()
    adapter = PooledAdapter(
        pool_connections=8,
        pool_maxsize=pool_maxsize,
        max_retries=Retry(total=False, redirect=False, raise_on_status=False),
        ca_bundle=None if session.trust_env else ca_bundle_in_environment(),
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


_STORAGE_SESSION: requests.Session | None = None
_STORAGE_SESSION_LOCK = threading.Lock()


def storage_transport() -> RequestsTransport:
    """A transport over the process's one pooled storage session (queue and table clients)."""
    global _STORAGE_SESSION
    with _STORAGE_SESSION_LOCK:
        if _STORAGE_SESSION is None:
            _STORAGE_SESSION = pooled_session(STORAGE_POOL_SIZE)
        session = _STORAGE_SESSION
    return RequestsTransport(session=session, session_owner=False)


__all__ = [
    "AzureClients",
    "BoundedRetryAfterPolicy",
    "ClientOptions",
    "STORAGE_OPTIONS",
    "EmulatorCredential",
    "StorageClientOptions",
    "TopicSender",
    "arm_pipeline_policies",
    "pooled_session",
    "storage_transport",
]


@dataclass(frozen=True)
class ClientOptions:
    """Transport and retry knobs shared by every client (azure-core names).

    Production defaults retry a little inside the SDK (the reconciler itself turns what is left into a
    ``wait`` outcome and comes back later); tests shrink the backoff.
    """

    retry_total: int = 3
    """Retries per request inside azure-core (429 with Retry-After, 408, 5xx, connection errors)."""
    retry_backoff_factor: float = 0.8
    """Exponential backoff factor in seconds (azure-core default 0.8)."""
    retry_backoff_max: float = 30.0
    """Longest single backoff sleep, seconds."""
    connection_timeout: float = 10.0
    """TCP connect timeout, seconds."""
    read_timeout: float = 60.0
    """Socket read timeout, seconds."""
    max_retry_after_s: float = 5.0
    """Longest ``Retry-After`` the SDK may sleep through inside one call. A longer one (an ARM throttling
    window) is not slept in-process: it surfaces as ``Throttled`` and becomes a ``wait`` outcome, so a
    Function invocation never blocks for minutes."""

    def kwargs(self) -> dict[str, Any]:
        return {
            "retry_total": self.retry_total,
            "retry_backoff_factor": self.retry_backoff_factor,
            "retry_backoff_max": self.retry_backoff_max,
            "connection_timeout": self.connection_timeout,
            "read_timeout": self.read_timeout,
        }


@dataclass(frozen=True)
class StorageClientOptions:
    """Retry and timeout knobs of the host storage account's clients (work queue, journal and policy-order
    tables), shared so each is bounded the same way.

    The storage SDKs' defaults (queue: 15 s exponential backoff, 20 s connect and 60 s read timeouts; tables:
    10 retries, backoff up to 120 s) let one enqueue to unreachable storage take minutes. Inside an Event Grid
    invocation (30 s delivery timeout) the hand-over enqueue must fail fast so the trigger's own retry takes
    over, so these are a few seconds each. Worst case of one call without a budget:
    ``(retry_total + 1) * (connection_timeout + read_timeout) + retry_total * (backoff_s + jitter_s)``.
    """

    retry_total: int = 2
    """Retries per request (connection errors, read errors, 408/5xx)."""
    backoff_s: float = 0.5
    """Sleep between retries (linear), seconds."""
    jitter_s: float = 0.25
    """Random +/- added to each backoff, seconds."""
    connection_timeout: float = 3.0
    """TCP connect timeout, seconds."""
    read_timeout: float = 5.0
    """Socket read timeout, seconds."""

    def queue_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``QueueClient`` (azure-storage-queue's own retry policy)."""
        from azure.storage.queue import LinearRetry

        retry = LinearRetry(
            backoff=self.backoff_s,  # type: ignore[arg-type]  # floats are fine (random.uniform)
            retry_total=self.retry_total,
            random_jitter_range=self.jitter_s,  # type: ignore[arg-type]
            retry_connect=self.retry_total,
            retry_read=self.retry_total,
            retry_status=self.retry_total,
        )
        return {
            "retry_policy": retry,
            "connection_timeout": self.connection_timeout,
            "read_timeout": self.read_timeout,
            "transport": storage_transport(),
        }

    def table_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``TableClient`` (azure-data-tables' ``TablesRetryPolicy``)."""
        return {
            "retry_total": self.retry_total,
            "retry_connect": self.retry_total,
            "retry_read": self.retry_total,
            "retry_status": self.retry_total,
            "retry_backoff_factor": self.backoff_s,
            "retry_backoff_max": self.backoff_s + self.jitter_s,
            "connection_timeout": self.connection_timeout,
            "read_timeout": self.read_timeout,
            "transport": storage_transport(),
        }

    def within(self, budget_s: float) -> dict[str, Any]:
        """Per-call keyword arguments that keep one call (with its retries) within about ``budget_s``.

        Retries are kept while every attempt can still get at least a second; otherwise one attempt gets the
        whole budget. Connect and read timeouts share an attempt's slice.
        """
        budget = max(float(budget_s), 0.2)
        retries = self.retry_total
        while retries > 0:
            per_attempt = (budget - retries * (self.backoff_s + self.jitter_s)) / (retries + 1)
            if per_attempt >= 1.0:
                break
            retries -= 1
        else:
            per_attempt = budget
        return {
            "retry_total": retries,
            "connection_timeout": min(self.connection_timeout, per_attempt / 2),
            "read_timeout": min(self.read_timeout, per_attempt / 2),
        }


STORAGE_OPTIONS = StorageClientOptions()
"""The bounded defaults every storage client is built with."""


class BoundedRetryAfterPolicy(policies.RetryPolicy[HttpRequest, HttpResponse]):
    """azure-core's RetryPolicy, except that a response whose ``Retry-After`` exceeds ``max_retry_after_s`` is
    returned to the caller instead of being slept through (azure-core sleeps any Retry-After, uncapped).

    :keyword max_retry_after_s: the longest Retry-After slept in-process.
    """

    def __init__(self, *, max_retry_after_s: float = 5.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_retry_after_s = max_retry_after_s

    def is_retry(self, settings: dict[str, Any], response: Any) -> bool:
        retry_after = self.get_retry_after(response)
        if retry_after is not None and retry_after > self.max_retry_after_s:
            return False
        return bool(super().is_retry(settings, response))


def arm_pipeline_policies(
    credential: TokenCredential, *, scope: str, max_retry_after_s: float = 5.0, **kwargs: Any
) -> list[Any]:
    """The generated mgmt clients' policy list, minus ``ARMAutoResourceProviderRegistrationPolicy``.

    Order as in the generated clients (platform_facts.md §4.2): RequestId, Headers, UserAgent, Proxy,
    ContentDecode, Redirect, Retry, ARM challenge auth, CustomHook, NetworkTraceLogging, DistributedTracing,
    SensitiveHeaderCleanup, ARMHttpLogging. Retry is :class:`BoundedRetryAfterPolicy`.
    """
    return [
        policies.RequestIdPolicy(**kwargs),
        policies.HeadersPolicy(**kwargs),
        policies.UserAgentPolicy(sdk_moniker=USER_AGENT, **kwargs),
        policies.ProxyPolicy(**kwargs),
        policies.ContentDecodePolicy(**kwargs),
        policies.RedirectPolicy(**kwargs),
        BoundedRetryAfterPolicy(max_retry_after_s=max_retry_after_s, **kwargs),
        ARMChallengeAuthenticationPolicy(credential, scope, **kwargs),
        policies.CustomHookPolicy(**kwargs),
        policies.NetworkTraceLoggingPolicy(**kwargs),
        policies.DistributedTracingPolicy(**kwargs),
        policies.SensitiveHeaderCleanupPolicy(**kwargs),
        ARMHttpLoggingPolicy(**kwargs),
    ]


class TopicSender:
    """The public ``azure.eventgrid.EventGridPublisherClient`` and the transport knobs it takes per call.

    For a Basic topic (no ``namespace_topic``), azure-eventgrid 4.22.1's public client builds its inner client
    from the endpoint, credential and api_version only (``azure/eventgrid/_patch.py``,
    ``EventGridPublisherClient.__init__``): every other constructor keyword (``transport``,
    ``connection_verify``, timeouts, retry knobs) is dropped, so the emulator's CA bundle would be ignored.
    ``send(**kwargs)`` does forward its keywords to the pipeline (``_operations/_patch.py`` -> the Basic
    client's ``send`` -> ``send_request(request, **kwargs)``), where azure-core reads them per request:
    ``connection_verify``, ``connection_timeout`` and ``read_timeout`` in ``RequestsTransport.send``,
    ``retry_*`` in ``RetryPolicy.configure_retries``. So the knobs ride on every send, through public API
    only (tests/integration/reconciler/test_outcome_topic_client.py shows both arrive).

    :param client: the public publisher client.
    :param send_options: azure-core per-operation keywords (``AzureClients.transport_kwargs``).
    """

    def __init__(self, client: Any, send_options: dict[str, Any]) -> None:
        self.client = client
        self.send_options = dict(send_options)

    def send(self, events: list[Any]) -> None:
        """Publish ``events`` (one request; raises azure-core errors as the client does)."""
        self.client.send(events, **self.send_options)

    def close(self) -> None:
        self.client.close()


class AzureClients:
    """Lazily built, cached SDK clients (one per subscription and kind), thread-safe.

    :param credential: the token credential.
    :keyword arm_endpoint: ARM base URL (the emulator's URL in tests).
    :keyword ca_bundle: PEM file of CAs to trust, or ``None`` for the system store.
    :keyword scope: the token audience.
    :keyword options: retry and timeout knobs.
    """

    def __init__(
        self,
        credential: TokenCredential,
        *,
        arm_endpoint: str,
        ca_bundle: str | None = None,
        scope: str = PUBLIC_ARM_SCOPE,
        options: ClientOptions | None = None,
    ) -> None:
        self.credential = credential
        self.arm_endpoint = arm_endpoint.rstrip("/")
        self.ca_bundle = ca_bundle
        self.scope = scope
        self.options = options or ClientOptions()
        self._cache: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._session: requests.Session | None = None
        self._session_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        options: ClientOptions | None = None,
        credential: TokenCredential | None = None,
    ) -> AzureClients:
        """Clients for the ARM endpoint, CA bundle and credential the settings name."""
        scope = PUBLIC_ARM_SCOPE
        if settings.credential is not CredentialKind.EMULATOR:
            scope = settings.arm_endpoint.rstrip("/") + "/.default"
        return cls(
            credential or credential_from_settings(settings),
            arm_endpoint=settings.arm_endpoint,
            ca_bundle=settings.ca_bundle,
            scope=scope,
            options=options,
        )

    def transport_kwargs(self) -> dict[str, Any]:
        """Retry/timeout knobs plus ``connection_verify`` when a CA bundle is configured."""
        kwargs = self.options.kwargs()
        if self.ca_bundle:
            kwargs["connection_verify"] = self.ca_bundle
        return kwargs

    def _transport(self) -> RequestsTransport:
        """A transport over this object's one pooled ARM session (built on first use; every ARM client
        shares it). Timeouts and the CA bundle ride on the transport's connection configuration."""
        with self._session_lock:
            if self._session is None:
                self._session = pooled_session(ARM_POOL_SIZE)
            session = self._session
        options = {k: v for k, v in self.transport_kwargs().items() if not k.startswith("retry_")}
        return RequestsTransport(session=session, session_owner=False, **options)

    def _arm_kwargs(self) -> dict[str, Any]:
        kwargs = self.transport_kwargs()
        kwargs["policies"] = arm_pipeline_policies(
            self.credential, scope=self.scope, max_retry_after_s=self.options.max_retry_after_s, **kwargs
        )
        kwargs["transport"] = self._transport()
        kwargs["credential_scopes"] = [self.scope]
        return kwargs

    def _cached(self, kind: str, key: str, build: Callable[[], T]) -> T:
        with self._lock:
            client = self._cache.get((kind, key))
            if client is None:
                client = build()
                self._cache[(kind, key)] = client
            return client

    def container_service(self, subscription_id: str) -> Any:
        """``ContainerServiceClient`` (managed clusters)."""
        from azure.mgmt.containerservice import ContainerServiceClient

        return self._cached(
            "aks",
            subscription_id,
            lambda: ContainerServiceClient(
                self.credential, subscription_id, base_url=self.arm_endpoint, **self._arm_kwargs()
            ),
        )

    def extensions(self, subscription_id: str) -> Any:
        """``SourceControlConfigurationClient`` (``.extensions``: cluster extensions)."""
        from azure.mgmt.kubernetesconfiguration import SourceControlConfigurationClient

        return self._cached(
            "k8sconfig",
            subscription_id,
            lambda: SourceControlConfigurationClient(
                self.credential, subscription_id, base_url=self.arm_endpoint, **self._arm_kwargs()
            ),
        )

    def storage(self, subscription_id: str) -> Any:
        """``StorageManagementClient`` (storage accounts, blob containers)."""
        from azure.mgmt.storage import StorageManagementClient

        return self._cached(
            "storage",
            subscription_id,
            lambda: StorageManagementClient(
                self.credential, subscription_id, base_url=self.arm_endpoint, **self._arm_kwargs()
            ),
        )

    def authorization(self, subscription_id: str) -> Any:
        """``AuthorizationManagementClient`` (role assignments)."""
        from azure.mgmt.authorization import AuthorizationManagementClient

        return self._cached(
            "authorization",
            subscription_id,
            lambda: AuthorizationManagementClient(
                self.credential, subscription_id, base_url=self.arm_endpoint, **self._arm_kwargs()
            ),
        )

    def data_protection(self, subscription_id: str) -> Any:
        """``DataProtectionMgmtClient`` (backup vaults, policies, instances; protect mode)."""
        from azure.mgmt.dataprotection import DataProtectionMgmtClient

        return self._cached(
            "dataprotection",
            subscription_id,
            lambda: DataProtectionMgmtClient(
                self.credential, subscription_id, base_url=self.arm_endpoint, **self._arm_kwargs()
            ),
        )

    def policy_insights(self, subscription_id: str) -> Any:
        """``PolicyInsightsClient`` (remediation tasks)."""
        from azure.mgmt.policyinsights import PolicyInsightsClient

        return self._cached(
            "policyinsights",
            subscription_id,
            lambda: PolicyInsightsClient(
                self.credential, subscription_id, base_url=self.arm_endpoint, **self._arm_kwargs()
            ),
        )

    def policy(self, subscription_id: str) -> Any:
        """``PolicyClient`` (azure-mgmt-resource-policy: policy assignments and definitions; built-in
        definitions are tenant-level, any subscription reads them)."""
        from azure.mgmt.resource.policy import PolicyClient

        return self._cached(
            "policy",
            subscription_id,
            lambda: PolicyClient(
                self.credential, subscription_id, base_url=self.arm_endpoint, **self._arm_kwargs()
            ),
        )

    def event_grid(self, subscription_id: str) -> Any:
        """``EventGridManagementClient`` (system topics and their event subscriptions; the wiring step)."""
        from azure.mgmt.eventgrid import EventGridManagementClient

        return self._cached(
            "eventgridmgmt",
            subscription_id,
            lambda: EventGridManagementClient(
                self.credential, subscription_id, base_url=self.arm_endpoint, **self._arm_kwargs()
            ),
        )

    def resource_graph(self) -> Any:
        """``ResourceGraphClient`` (tenant-level; no subscription)."""
        from azure.mgmt.resourcegraph import ResourceGraphClient

        return self._cached(
            "resourcegraph",
            "",
            lambda: ResourceGraphClient(self.credential, base_url=self.arm_endpoint, **self._arm_kwargs()),
        )

    def resource_graph_pipeline(self) -> Any:
        """An ``azure.core`` pipeline client on the ARM endpoint with the same policies, credential, CA bundle
        and knobs as :meth:`resource_graph`, for reading Resource Graph pages as raw JSON
        (``adapters.graph``: the SDK's model deserialization of ``data`` costs several times the decode)."""
        from azure.mgmt.core import ARMPipelineClient

        def build() -> Any:
            kwargs = self._arm_kwargs()
            kwargs.pop("credential_scopes", None)
            return ARMPipelineClient(self.arm_endpoint, **kwargs)

        return self._cached("resourcegraph-pipeline", "", build)

    def event_grid_publisher(self, endpoint: str, *, key: str | None = None) -> TopicSender:
        """A sender to an Event Grid custom (Basic) topic: access key when given, else the credential
        (EventGrid Data Sender role), with the same CA bundle, timeouts and retry knobs as every other
        client."""
        from azure.eventgrid import EventGridPublisherClient

        credential: Any = AzureKeyCredential(key) if key else self.credential
        return self._cached(
            "eventgrid",
            endpoint,
            lambda: TopicSender(EventGridPublisherClient(endpoint, credential), self.transport_kwargs()),
        )

    def close(self) -> None:
        """Close every client built so far (their HTTP sessions)."""
        with self._lock:
            clients = list(self._cache.values())
            self._cache.clear()
        with self._session_lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()
        for client in clients:
            close = getattr(client, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:  # pragma: no cover - best effort on shutdown
                    logger.debug("closing %r failed", client, exc_info=True)
