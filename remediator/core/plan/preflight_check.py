"""The head of every chain: nothing known blocks the backup extension, checked before anything is written.

Clusters behind an Azure Policy for Kubernetes Deny, Deployment Safeguards at Enforce, an Azure-side Deny on
``Microsoft.KubernetesConfiguration/extensions``, a storage account the extension cannot use or an
unregistered provider end with a Failed extension or a refused PUT (issue 16). The ``preflight`` link reads
what :func:`remediator.core.preflight.preflight` needs (the policy assignments covering the cluster, in bulk
and cached per process; Deployment Safeguards only when the Azure Policy add-on is on; the storage account's
access settings; provider registrations) and judges:

* a ``block`` finding whose kind (:mod:`remediator.core.blockers`) is human → :class:`Blocked` with the
  findings' one-line remedies (the assignment and the exact parameter change);
* a transient or long-lived one (a provider still registering) → :class:`Waiting`;
* otherwise :class:`Satisfied`, carrying the ``warn`` findings (Audit effects, ``DoNotEnforce``, Safeguards at
  ``Warn``) so reports show them without blocking.

The link ``gates`` the chain: every later link depends on it, so nothing is written while it is not
satisfied. A blocking verdict is always based on policy data at most :data:`CONFIRM_AGE_S` old: when the
cached data blocks and is older, the link asks for a fresh read first (an operator's fix is seen at once);
so does a Failed extension (a Deny assigned since the data was cached is found before a re-install). A Deny
assigned since then is otherwise seen when the cache expires (``REMEDIATOR_PREFLIGHT_CACHE_SECONDS``).

A Failed extension whose error matches a finding (``attribute_failure``: an admission-webhook denial, a
``RequestDisallowedByPolicy``, ...) is attributed to it and is not re-installed blindly; a warning the
failure proves right (an UNCONFIRMED-impact Deny configured to warn) becomes a blocker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from remediator.core.blockers import BlockerKind
from remediator.core.catalog import SETTING_USE_AAD
from remediator.core.ids import ResourceId
from remediator.core.plan.links import PREFLIGHT
from remediator.core.plan.observed import (
    ExtensionRead,
    ExtensionView,
    Observed,
    PolicyDataRead,
    PolicyView,
    ProvidersRead,
    Read,
    SafeguardsRead,
    StorageAccountRead,
)
from remediator.core.plan.requirement import (
    EXTENSION_POLL_SECONDS,
    Blocked,
    Mode,
    PlanContext,
    PlanningOptions,
    Requirement,
    Satisfied,
    Verdict,
    Waiting,
)
from remediator.core.preflight import (
    DATA_PROTECTION,
    KUBERNETES_CONFIGURATION,
    Finding,
    PreflightInput,
    Severity,
    attribute_failure,
    preflight,
    unread,
)

CONFIRM_AGE_S = 2.0
"""A blocking verdict rests on policy data at most this old: cached data that blocks is re-read first, so an
operator's fix is seen by the next reconcile. Concurrent reconciles share one re-read, so a storm of events
on blocked clusters costs at most one policy read per subscription per this many seconds."""

REQUIRED_PROVIDERS: tuple[str, ...] = (KUBERNETES_CONFIGURATION,)
"""Providers every chain needs registered in the cluster's subscription (cluster extensions)."""

PROTECT_MODE = "protect"
"""The mode value of protect mode (issue 12: vault, backup instance), whose chain also needs
Microsoft.DataProtection and a region where Azure Backup for AKS runs. Compared by value so this link needs
no change when that mode joins ``Mode``."""


def protecting(ctx: PlanContext) -> bool:
    """Does the planned chain also configure protection (Microsoft.DataProtection, region support matter)?
    Protect mode, or audit mode auditing the protect chain (``remediation.auditPlans: protect``)."""
    return _protecting(ctx.options)


def _protecting(options: PlanningOptions) -> bool:
    return str(options.chain_mode.value) == PROTECT_MODE


def providers_for(ctx: PlanContext) -> tuple[str, ...]:
    """The providers the mode's chain needs registered in the cluster's subscription."""
    return _providers_for(ctx.options)


def _providers_for(options: PlanningOptions) -> tuple[str, ...]:
    return (*REQUIRED_PROVIDERS, DATA_PROTECTION) if _protecting(options) else REQUIRED_PROVIDERS


def planned_settings(ctx: PlanContext, extension: ExtensionView | None) -> dict[str, str]:
    """The configurationSettings of the extension that will run: the existing one's (unless it is Failed:
    a re-install writes the product's body), else the body the product (or the DINE, in policy-task mode)
    writes: Entra ID storage access, plus the config's extras."""
    if extension is not None and not extension.failed and extension.settings:
        return dict(extension.settings)
    settings = {SETTING_USE_AAD: "true"}
    if ctx.options.mode is not Mode.POLICY_TASK:
        settings.update(dict(ctx.options.extra_settings))
    return settings


class PreflightClear(Requirement):
    """Nothing known blocks the backup extension (see the module docstring)."""

    key = PREFLIGHT
    title = "nothing known blocks the backup extension (policy, Safeguards, storage, providers)"
    gates = True

    # -- reads ------------------------------------------------------------------------------------------

    def _base_reads(self, ctx: PlanContext) -> list[Read[Any]]:
        subscription = ctx.cluster.subscription_id.lower()
        reads: list[Read[Any]] = [
            PolicyDataRead(subscription),
            ProvidersRead(subscription, providers_for(ctx)),
            ExtensionRead(ctx.cluster_id),
        ]
        if ctx.cluster.azure_policy_enabled:
            reads.append(SafeguardsRead(ctx.cluster_id))
        if ctx.storage_account is not None:
            reads.append(StorageAccountRead(ctx.storage_account))
        return reads

    def reads_ahead(self, cluster: ResourceId, options: PlanningOptions) -> Iterable[Read[Any]]:
        # the subscription's policy data (a chain of Resource Graph queries when the process has none cached)
        # and provider registrations need only the subscription, which the cluster's id names
        subscription = str(cluster.subscription_id).lower()
        return (PolicyDataRead(subscription), ProvidersRead(subscription, _providers_for(options)))

    def reads(self, ctx: PlanContext, observed: Observed) -> Iterable[Read[Any]]:
        reads = self._base_reads(ctx)
        cached = observed.peek(PolicyDataRead(ctx.cluster.subscription_id.lower()))
        if cached is not None and cached.age_s > CONFIRM_AGE_S and cached.data is not None:
            extension = observed.peek(ExtensionRead(ctx.cluster_id))
            policy_only = preflight(self._input(ctx, cached, extension, observed))
            # confirm before blocking (a fix is seen at once), and before a Failed extension is re-installed
            # (a Deny assigned since the data was cached is found and named, not re-installed into)
            failed = extension is not None and extension.failed
            if failed or any(f.blocks and f.code.is_policy for f in policy_only):
                reads.append(PolicyDataRead(ctx.cluster.subscription_id.lower(), fresh=True))
        return reads

    # -- judgement --------------------------------------------------------------------------------------

    @staticmethod
    def _input(
        ctx: PlanContext,
        policy: PolicyView,
        extension: ExtensionView | None,
        observed: Observed,
        *,
        complete: bool = False,
    ) -> PreflightInput:
        """What preflight looks at; with ``complete`` every read is consulted (``get``: a failed read
        surfaces), otherwise only the policy data (for deciding whether to confirm it)."""
        safeguards = storage = providers = None
        if complete:
            if ctx.cluster.azure_policy_enabled:
                safeguards = observed.get(SafeguardsRead(ctx.cluster_id)).safeguards
            if ctx.storage_account is not None:
                # a failed storage read is the storage-usable link's to report; preflight skips the check
                view = observed.peek(StorageAccountRead(ctx.storage_account))
                storage = None if view is None else view.access
            subscription = ctx.cluster.subscription_id.lower()
            providers = observed.get(ProvidersRead(subscription, providers_for(ctx))).states
        return PreflightInput(
            cluster=ctx.cluster,
            management_groups=policy.management_groups,
            policy=policy.data,
            safeguards=safeguards,
            storage=storage,
            extension_settings=planned_settings(ctx, extension),
            extension_name=extension.name if extension is not None else ctx.options.extension_name,
            providers=providers,
            protecting=protecting(ctx),
        )

    def findings(self, ctx: PlanContext, observed: Observed) -> tuple[Finding, ...]:
        """Every finding (blockers and warnings), the Failed extension attributed; raises ``ReadFailed``
        when a read it needs failed."""
        subscription = ctx.cluster.subscription_id.lower()
        fresh = PolicyDataRead(subscription, fresh=True)
        policy = observed.get(fresh if observed.knows(fresh) else PolicyDataRead(subscription))
        # a failed extension read is the other links' to report (an unregistered provider fails it too)
        extension = observed.peek(ExtensionRead(ctx.cluster_id))
        found = list(preflight(self._input(ctx, policy, extension, observed, complete=True)))
        if policy.error:
            found.append(unread("the policy assignments", policy.error))
        if ctx.cluster.azure_policy_enabled:
            safeguards = observed.get(SafeguardsRead(ctx.cluster_id))
            if safeguards.error:
                found.append(unread("Deployment Safeguards", safeguards.error))
        providers = observed.get(ProvidersRead(subscription, providers_for(ctx)))
        if providers.error:
            found.append(unread("the provider registrations", providers.error))
        if extension is not None and extension.failed and extension.error:
            found = _attribute(extension.error, found)
        return tuple(found)

    def evaluate(self, ctx: PlanContext, observed: Observed) -> Verdict:
        findings = self.findings(ctx, observed)
        blocks = [f for f in findings if f.blocks]
        extension = observed.peek(ExtensionRead(ctx.cluster_id))
        failed = ""
        if extension is not None and extension.failed and blocks:
            failed = f"extension {extension.name} is {extension.provisioning_state}, caused by: "
        human = [f for f in blocks if f.kind is BlockerKind.HUMAN]
        if human:
            return Blocked(failed + "; ".join(f.describe() for f in human), findings)
        if blocks:
            why = failed + "; ".join(f.describe() for f in blocks)
            return Waiting(EXTENSION_POLL_SECONDS, why, findings)
        warnings = [f for f in findings if not f.blocks]
        why = "no known blocker"
        if warnings:
            why += f" ({len(warnings)} warning(s): " + "; ".join(f.describe() for f in warnings) + ")"
        return Satisfied(why, findings)


def _attribute(error: str, findings: list[Finding]) -> list[Finding]:
    """``findings`` with the Failed extension's ``error`` attributed: a blocking finding that explains it is
    marked; a warning that explains it becomes a blocker (the failure proved it). An explanation that is
    not among the findings (the cause was fixed since, or preflight cannot see it) changes nothing: the
    bounded re-install decides."""
    blocks = [f for f in findings if f.blocks]
    cause = attribute_failure(error, blocks)
    if cause is not None and cause in blocks:
        return [_caused(f, error) if f is cause else f for f in findings]
    warnings = [f for f in findings if not f.blocks]
    escalated = [replace(f, severity=Severity.BLOCK) for f in warnings]
    cause = attribute_failure(error, escalated)
    if cause is None or cause not in escalated:
        return findings
    original = warnings[escalated.index(cause)]
    return [_caused(cause, error) if f is original else f for f in findings]


def _caused(finding: Finding, error: str) -> Finding:
    evidence: Mapping[str, Any] = MappingProxyType({**finding.evidence, "explainsFailure": error[:500]})
    return replace(finding, evidence=evidence)


PREFLIGHT_LINK = PreflightClear()
