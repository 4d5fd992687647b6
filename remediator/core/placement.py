"""Where protect mode's resources may live relative to the clusters, checked on a config before any write.

Azure's placement rules, with their sources (docs/rules.md "Placement" repeats them):

- **Backup vault**: in the cluster's region; it "can reside in different subscriptions as long as they are
  within the same tenant" (MicrosoftDocs/azure-docs@articles/backup/
  azure-kubernetes-service-cluster-backup-support-matrix.md). A given vault's region is only known by reading
  it: the ``backup-vault-ready`` link blocks a cluster whose vault is in another region.
- **Storage account / blob container**: "in the same region and subscription as that of the AKS cluster"
  (same support matrix). The built-in DeployIfNotExists (Policy 3/4) nevertheless accepts an account in
  another subscription (aks_backup_facts.md §2.2), so this is a **warning** here, not an error.
- **Snapshot resource group**: disk snapshots live in the subscription of their disks ("Disks and disk
  snapshots are stored in the same subscription", ``UserErrorSnapshotRGSubscriptionMismatch``,
  MicrosoftDocs/azure-docs@articles/backup/disk-backup-troubleshoot.md), and a cluster's disks are in its node
  resource group, in its subscription; Microsoft's CLI refuses a backup resource group outside the cluster's
  subscription (Azure/azure-cli-extensions@src/dataprotection/azext_dataprotection/manual/aks/aks_helper.py
  ``_validate_request``). So a snapshot resource group given as an **id** can only serve clusters of its own
  subscription: a scope that can select clusters elsewhere is an **error** (give ``{name}`` instead: that
  group in each cluster's subscription). Its region is not constrained by any source found (the CLI creates
  it in the cluster's region, as the product does).
- **Vault tier**: a DisasterRecovery policy (vault-tier retention) in a region with the operational tier
  only is refused by Azure (``DppUserErrorVaultTierPolicyNotSupported``); a region where Azure Backup for AKS
  does not run at all cannot be protected (``core/backup_regions.py``, the support matrix's lists).
"""

from __future__ import annotations

from dataclasses import dataclass

from remediator.core.backup_regions import BACKUP_REGIONS, OPERATIONAL_ONLY_REGIONS
from remediator.core.config import RemediatorConfig
from remediator.core.ids import ResourceId


@dataclass(frozen=True)
class PlacementProblem:
    """One broken (``error``) or doubtful (``warning``) placement, naming the config field."""

    field: str
    message: str
    severity: str = "error"


def _other_subscriptions(config: RemediatorConfig, subscription: str) -> list[str]:
    """Subscriptions (or ``management group X``) the scope may select clusters from, other than
    ``subscription``."""
    scope = config.scope
    others = [f"management group {ref.name}" for ref in scope.management_groups]
    others += [str(ref.subscription_id) for ref in scope.subscriptions if ref.subscription_id != subscription]
    others += [
        str(ref.subscription_id) for ref in scope.resource_groups if ref.subscription_id != subscription
    ]
    return list(dict.fromkeys(others))


def protects(config: RemediatorConfig) -> bool:
    """Whether the config's chain is protect mode's (``protect``, or ``audit`` planning it)."""
    mode = config.remediation.mode
    return mode == "protect" or (mode == "audit" and config.remediation.audit_plans == "protect")


def placement_problems(config: RemediatorConfig) -> list[PlacementProblem]:
    """Every placement problem of a config (empty when it does not protect, or nothing is wrong)."""
    if not protects(config):
        return []
    problems: list[PlacementProblem] = []
    base = "regionTargets" if config.region_targets is not None else "storage"
    for region, targets in config.targets.items():
        where = f"regionTargets.{region}"
        if region not in BACKUP_REGIONS:
            problems.append(
                PlacementProblem(
                    f"{base}.{region}",
                    f"Azure Backup for AKS is not available in region {region} (support matrix,"
                    " core/backup_regions.py): its clusters cannot be protected",
                )
            )
        policy = targets.policy_preset
        if (
            policy is not None
            and policy.strategy == "DisasterRecovery"
            and region in OPERATIONAL_ONLY_REGIONS
        ):
            problems.append(
                PlacementProblem(
                    f"{where}.backupPolicy.strategy",
                    f"region {region} has the operational tier only: a DisasterRecovery policy (vault tier)"
                    " is"
                    " refused (DppUserErrorVaultTierPolicyNotSupported); use Week or Month",
                )
            )
        group = targets.snapshot_resource_group
        if isinstance(group, ResourceId):
            others = _other_subscriptions(config, str(group.subscription_id))
            if others:
                problems.append(
                    PlacementProblem(
                        f"{where}.snapshotResourceGroup",
                        f"{group} is in subscription {group.subscription_id}, but the scope can select"
                        " clusters"
                        f" in {', '.join(others)}: disk snapshots must stay in their cluster's"
                        " subscription; give"
                        " {name: <group name>} to use that group in each cluster's subscription",
                    )
                )
        account = targets.storage_account
        others = _other_subscriptions(config, str(account.subscription_id))
        if others:
            problems.append(
                PlacementProblem(
                    f"{base}.{region}" if base == "storage" else f"{where}.storageAccount",
                    f"the storage account is in subscription {account.subscription_id}, but the scope can"
                    " select"
                    f" clusters in {', '.join(others)}; Azure's support matrix asks for the cluster's own"
                    " subscription (the built-in policy accepts another one)",
                    severity="warning",
                )
            )
    return problems
