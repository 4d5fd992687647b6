"""A realistic, deterministic coverage report document, for the HTML report's browser test and its screenshot.

The demo estate (``make demo``) is the truth for ``docs/report.png`` once the service layer produces report
documents; until then, and for tests that need hundreds of clusters without an emulator, this builds a
seeded synthetic estate shaped like the one in issue 14 (about 300 clusters in 20 subscriptions, 4 regions,
3 management groups, include and exclude rules) with every state represented, real blocker codes from
:class:`remediator.core.decision.Blocker` and one-line remedies.

``python -m tools.sample_report [--clusters N] [--seed S] [--format json|table|csv|html] [-o FILE]``
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
from collections.abc import Sequence
from pathlib import Path

from remediator.core.decision import Blocker as BlockerCode
from remediator.core.report_document import (
    Blocker,
    ClusterRow,
    ClusterState,
    ConfigIdentity,
    MatchedRule,
    ReportDocument,
    RoleAssignmentHeadroom,
    build_document,
)
from remediator.core.report_render import FORMATS, render

SUBSCRIPTION_NAMES = (
    "Payments Production",
    "Payments Non-Production",
    "Retail Web Production",
    "Retail Web Staging",
    "Data Platform Production",
    "Data Platform Development",
    "Identity Services",
    "Shared Platform Services",
    "Logistics Production",
    "Logistics Test",
    "Marketing Analytics",
    "Customer Portal Production",
    "Customer Portal QA",
    "Finance Reporting",
    "HR Systems",
    "Search Production",
    "Search Sandbox",
    "IoT Ingestion",
    "Mobile Backend Production",
    "Research Sandbox",
)
REGIONS = ("eastus", "westeurope", "northeurope", "southeastasia")
MANAGEMENT_GROUPS = ("mg-corp-landing-zones", "mg-online-landing-zones", "mg-sandboxes")
WORKLOADS = ("api", "web", "jobs", "ingest", "search", "auth", "billing", "events", "ml", "gateway")

INCLUDE_BACKUP = MatchedRule(kind="include", tag="Backup", value="yes")
INCLUDE_PROD = MatchedRule(kind="include", tag="env", value="prod")
EXCLUDE_BACKUP = MatchedRule(kind="exclude", tag="Backup", value="no")

HUMAN_BLOCKERS: dict[str, str] = {
    BlockerCode.NO_MANAGED_IDENTITY: "Move the cluster to a managed identity (az aks update "
    "--enable-managed-identity)",
    BlockerCode.DISK_CSI_DRIVER_DISABLED: "Enable the Azure Disk CSI driver (az aks update "
    "--enable-disk-driver)",
    BlockerCode.SNAPSHOT_CONTROLLER_DISABLED: "Enable the snapshot controller (az aks update "
    "--enable-snapshot-controller)",
    BlockerCode.NO_LINUX_AMD64_POOL: "Add a Linux x86-64 node pool (az aks nodepool add --os-type Linux)",
}
GAVE_UP_CAUSES = (
    "403 AuthorizationFailed on Microsoft.KubernetesConfiguration/extensions/write: no role",
    "extension install Failed 3 times (last: helm install timed out)",
    "409 Conflict: another operation is in progress on the cluster (gave up after 10 attempts)",
    "ProviderNotRegistered: Microsoft.KubernetesConfiguration is not registered in the subscription",
)

STATE_WEIGHTS: dict[ClusterState, int] = {
    "protected": 62,
    "installing": 5,
    "waiting": 6,
    "blocked": 5,
    "gaveUp": 3,
    "notStarted": 7,
    "notSelected": 12,
}


def _subscription_id(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def _row(rng: random.Random, index: int, subscription: tuple[str, str, str], region: str) -> ClusterRow:
    sub_id, sub_name, group = subscription
    workload = rng.choice(WORKLOADS)
    production = sub_name.endswith("Production") and "Non-" not in sub_name
    env = "prod" if production else rng.choice(("dev", "test", "stg"))
    name = f"aks-{workload}-{env}-{region[:6]}-{index + 1}"
    resource_group = f"rg-{workload}-{env}-{region}"
    state = rng.choices(list(STATE_WEIGHTS), weights=list(STATE_WEIGHTS.values()))[0]
    cluster_id = (
        f"/subscriptions/{sub_id}/resourceGroups/{resource_group}/providers/"
        f"Microsoft.ContainerService/managedClusters/{name}"
    )
    common = {
        "id": cluster_id,
        "name": name,
        "subscription_id": sub_id,
        "subscription_name": sub_name,
        "resource_group": resource_group,
        "region": region,
        "management_groups": (group,),
    }
    if state == "notSelected":
        excluded = rng.random() < 0.5
        return ClusterRow(
            **common,
            selected=False,
            reason="excluded-by-tag" if excluded else "not-included",
            matched_rule=EXCLUDE_BACKUP if excluded else None,
            state=state,
            next_action="None: the tag rules do not select this cluster",
        )
    rule = INCLUDE_PROD if env == "prod" and rng.random() < 0.4 else INCLUDE_BACKUP
    selected = {**common, "selected": True, "reason": "selected", "matched_rule": rule, "state": state}
    if state == "protected":
        return ClusterRow(
            **selected,
            extension_state="Succeeded",
            protection_state="ProtectionConfigured",
            next_action="None: protected; the sweep re-checks it",
        )
    if state == "installing":
        if rng.random() < 0.3:  # extension ready (Policy 1), storage grant still missing (not yet Policy 2)
            return ClusterRow(
                **selected,
                extension_state="Succeeded",
                next_action="Grants the extension identity access to the backup storage account",
            )
        return ClusterRow(
            **selected,
            extension_state=rng.choice(("Creating", "Updating")),
            next_action="Wait for the extension install to finish; the next sweep re-checks it",
        )
    if state == "waiting":
        stopped = rng.random() < 0.6
        code = BlockerCode.CLUSTER_STOPPED if stopped else BlockerCode.CLUSTER_NOT_SUCCEEDED
        remedy = "Installs when the cluster is started" if stopped else "Installs when provisioning ends"
        return ClusterRow(
            **selected,
            blockers=(Blocker(code=code, kind="long-lived" if stopped else "transient", remedy=remedy),),
            next_action=remedy,
        )
    if state == "blocked":
        codes = rng.sample(sorted(HUMAN_BLOCKERS), k=1 if rng.random() < 0.8 else 2)
        blockers = tuple(Blocker(code=c, kind="human", remedy=HUMAN_BLOCKERS[c]) for c in codes)
        return ClusterRow(
            **selected, blockers=blockers, next_action="A person lifts the blocker, then it installs"
        )
    if state == "gaveUp":
        return ClusterRow(
            **selected,
            extension_state=rng.choice(("Failed", None)),
            cause=rng.choice(GAVE_UP_CAUSES),
            next_action="Fix the cause, then reconcile the cluster again",
        )
    return ClusterRow(**selected, next_action="The next sweep starts the install")


def sample_document(
    *, clusters: int = 312, subscriptions: int = 20, regions: int = 4, seed: int = 14
) -> ReportDocument:
    """A consistent document of ``clusters`` clusters in the given numbers of subscriptions and regions.

    Deterministic for given arguments. Subscriptions and regions get uneven shares (a few large subscriptions,
    many small ones), as real estates do; every state occurs once there are a few dozen clusters.
    """
    rng = random.Random(seed)
    subs = [
        (_subscription_id(rng), SUBSCRIPTION_NAMES[i % len(SUBSCRIPTION_NAMES)], MANAGEMENT_GROUPS[i % 3])
        for i in range(subscriptions)
    ]
    sub_weights = [1.0 / (1 + i * 0.35) for i in range(subscriptions)]
    used_regions = REGIONS[:regions]
    region_weights = [4, 3, 2, 1][:regions]
    rows = [
        _row(
            rng,
            i,
            rng.choices(subs, weights=sub_weights)[0],
            rng.choices(used_regions, weights=region_weights)[0],
        )
        for i in range(clusters)
    ]
    config_text = f"sample config seed={seed}".encode()
    # the storage subscription's role assignments: one per granted cluster plus the platform's own; the
    # second one is nearly full, so the page shows an overflow
    storage = [(subs[0][0], subs[0][1], 1200 + clusters), (_subscription_id(rng), "Backup Storage DR", 3990)]
    needed = sum(1 for row in rows if row.selected and row.state not in ("protected", "blocked"))
    headroom = [
        RoleAssignmentHeadroom(
            subscription_id=sub_id,
            subscription_name=name,
            existing=existing,
            needed=needed,
            limit=4000,
            headroom=4000 - existing,
            overflow=needed > 4000 - existing,
        )
        for sub_id, name, existing in storage
    ]
    return build_document(
        generated_at="2026-12-05T10:00:00Z",
        config=ConfigIdentity(
            source="remediator.yaml", sha256=hashlib.sha256(config_text).hexdigest(), mode="install"
        ),
        clusters=rows,
        role_assignment_headroom=headroom,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Write the sample document in the asked format to a file or stdout."""
    parser = argparse.ArgumentParser(prog="python -m tools.sample_report", description=__doc__.split("\n")[0])
    parser.add_argument("--clusters", type=int, default=312)
    parser.add_argument("--subscriptions", type=int, default=20)
    parser.add_argument("--regions", type=int, default=4, choices=range(1, len(REGIONS) + 1))
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--format", choices=FORMATS, default="json")
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    document = sample_document(
        clusters=args.clusters, subscriptions=args.subscriptions, regions=args.regions, seed=args.seed
    )
    text = render(document, args.format)
    if args.output:
        args.output.write_text(text, encoding="utf-8", newline="")
        print(args.output)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
