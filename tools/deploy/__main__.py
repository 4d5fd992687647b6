"""``python -m tools.deploy prepare``: validate the deployment's inputs; write what Bicep and Terraform read.

Run by the azd ``preprovision`` hook (``infra/hooks/preprovision.sh``) before ``azd provision`` compiles a
single template, and by hand before ``terraform plan``. In order, stopping at the first group that finds a
problem (exit 2, one line per problem, nothing created, nothing written):

1. the config (``infra/remediator.config.yaml`` by default) through the product's own parser, exactly as
   ``python -m remediator config check`` does: one YAML file for the CLI, ``config check`` and the deployment;
2. offline rules: environment name, placeholder ids, storage SKU for the region, the custom role id;
3. live facts from ``az`` (skipped with ``--offline``): providers registered in every subscription touched,
   storage accounts exist in their regions, the custom role is assignable there, existing system topics.

Then it writes ``infra/generated/deployment.json`` (git-ignored): the config as JSON (the app's
``REMEDIATOR_CONFIG_JSON``), the scope and storage lists the role assignments loop over, the event
subscriptions, the system topics to reuse, and the validated deployment options.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import sys
import uuid
from pathlib import Path
from typing import Any

from remediator.core.config import RemediatorConfig, decode_document, load_config
from remediator.core.errors import UserInputError
from tools.deploy import azure
from tools.deploy.preflight import (
    INFRA,
    LiveFacts,
    Problem,
    check_custom_role_given,
    check_entra_client_id,
    check_environment_name,
    check_live,
    check_placeholders,
    check_storage_sku,
    control_plane_resource_groups,
    host_storage_sku,
    managed_subscriptions,
    reusable_topics,
    storage_accounts,
)

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = INFRA / "remediator.config.yaml"
DEFAULT_OUTPUT = INFRA / "generated" / "deployment.json"


def _truthy(value: str) -> bool:
    return value.strip().lower() not in ("0", "false", "no", "off")


def name_token(subscription: str, environment_name: str, location: str) -> str:
    """13 hex characters that make global names unique per subscription, environment and region (the same
    formula as ``substr(sha256("<sub>/<env>/<location>"), 0, 13)`` in infra/terraform)."""
    return hashlib.sha256(
        f"{subscription.lower()}/{environment_name}/{location.lower()}".encode()
    ).hexdigest()[:13]


def deployment_document(
    config: RemediatorConfig,
    raw: Any,
    *,
    environment_name: str,
    location: str,
    event_subscriptions: list[str],
    facts: LiveFacts,
    sku: str,
    container_writer_role_id: str,
    assign_audit_policies: bool,
    app_subscription: str,
    entra_client_id: str = "",
    control_plane_groups: list[dict[str, str]] | None = None,
    event_wiring_role_id: str = "",
) -> dict[str, Any]:
    """What the templates read (``infra/generated/deployment.json``)."""
    subscription = app_subscription.lower()
    return {
        "generatedBy": "python -m tools.deploy prepare (do not edit; edit infra/remediator.config.yaml)",
        "environmentName": environment_name,
        "location": location.lower(),
        "appSubscriptionId": subscription,
        # Names both templates use, derived here once (Bicep's uniqueString/guid cannot be reproduced in
        # Terraform; sha256 and uuid5 can: infra/terraform checks the token against this formula).
        "nameToken": name_token(subscription, environment_name, location),
        "workbookName": str(
            uuid.uuid5(
                uuid.NAMESPACE_URL,
                f"/subscriptions/{subscription}/{environment_name}/aks-backup-remediator-workbook",
            )
        ),
        "config": raw,
        "mode": config.remediation.mode,
        "grantStorageAccess": config.remediation.grant_storage_access,
        "grantScope": config.remediation.grant_scope,
        "subscriptions": [
            ref.subscription_id.lower() for ref in config.scope.subscriptions if ref.subscription_id
        ],
        "resourceGroups": [
            {"subscriptionId": (ref.subscription_id or "").lower(), "name": ref.resource_group}
            for ref in config.scope.resource_groups
        ],
        "managementGroups": [str(ref.name) for ref in config.scope.management_groups],
        "storageAccounts": [
            {
                "region": region,
                "id": ref.canonical,
                "subscriptionId": (ref.subscription_id or "").lower(),
                "resourceGroup": ref.resource_group,
                "name": ref.name,
            }
            for region, ref in sorted(storage_accounts(config).items())
        ],
        "eventSubscriptionIds": event_subscriptions,
        "existingSystemTopics": reusable_topics(facts),
        "hostStorageSku": host_storage_sku(location, sku),
        "containerWriterRoleId": container_writer_role_id,
        "assignAuditPolicies": assign_audit_policies,
        # issue 15 options (docs/deploy.md): App Service authentication (Entra ID) for this app
        # registration ("" = function keys only); write roles per resource group of listed subscriptions
        # ([] = per subscription)
        "entraClientId": entra_client_id.lower(),
        "controlPlaneResourceGroups": list(control_plane_groups or []),
        # wiring that follows the scope: on when managementGroups is non-empty and this is set (main.bicep,
        # infra/terraform/locals.tf); the management-group grants use it (management-group-access.bicep)
        "eventWiringRoleId": event_wiring_role_id,
    }


def prepare(args: argparse.Namespace) -> int:
    source = str(args.config)
    try:
        config = load_config(args.config)
        raw = decode_document(Path(args.config).read_text(encoding="utf-8"), source=source)
    except UserInputError as exc:
        print(f"preflight: {exc}", file=sys.stderr)
        return 2
    extra = [s.strip().lower() for s in args.event_subscription if s.strip()]
    problems: list[Problem] = [
        *check_environment_name(args.env_name),
        *check_placeholders(config),
        *check_storage_sku(args.location, args.host_storage_sku),
        *check_custom_role_given(config, args.container_writer_role_id),
        *check_entra_client_id(args.entra_client_id),
    ]
    groups, group_problems = control_plane_resource_groups(config, args.control_plane_resource_group)
    problems += group_problems
    facts = LiveFacts()
    subscriptions = managed_subscriptions(config, extra)
    if not re.fullmatch(r"[0-9a-fA-F-]{36}", args.subscription):
        problems.append(
            Problem(
                "subscription",
                "the app subscription GUID is unknown; pass --subscription (azd: AZURE_SUBSCRIPTION_ID)",
            )
        )
    if not problems and not args.offline:
        facts = azure.gather(
            config,
            subscriptions=subscriptions,
            app_subscription=args.subscription,
            container_writer_role_id=args.container_writer_role_id,
        )
        problems += check_live(
            config, facts, app_subscription=args.subscription, extra_event_subscriptions=extra
        )
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"preflight: {len(problems)} problem(s); nothing was created", file=sys.stderr)
        return 2
    document = deployment_document(
        config,
        raw,
        environment_name=args.env_name,
        location=args.location,
        event_subscriptions=subscriptions,
        facts=facts,
        sku=args.host_storage_sku,
        container_writer_role_id=args.container_writer_role_id,
        assign_audit_policies=args.audit_policies,
        app_subscription=args.subscription,
        entra_client_id=args.entra_client_id,
        control_plane_groups=groups,
        event_wiring_role_id=args.event_wiring_role_id,
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    if groups:
        covered = {g["subscriptionId"] for g in groups}
        for ref in config.scope.subscriptions:
            if ref.subscription_id and ref.subscription_id.lower() not in covered:
                print(
                    f"preflight: note: subscription {ref.subscription_id} keeps Reader only (no control-plane"
                    " resource group of it is listed): the app reports on it but cannot write there"
                )
    if document["managementGroups"] and not args.event_wiring_role_id:
        print(
            "preflight: note: scope.managementGroups without REMEDIATOR_EVENT_WIRING_ROLE_ID: subscriptions"
            " that join those groups get no Event Grid wiring (the sweep still covers them); docs/deploy.md,"
            " 'Wiring that follows the scope'"
        )
    reused = sum(len(v) for v in document["existingSystemTopics"].values())
    print(
        f"preflight: ok ({'offline' if args.offline else 'live'} checks); wrote {args.output}"
        f" for {len(subscriptions)} event subscription(s), {reused} existing system topic(s) reused"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m tools.deploy", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("prepare", help="preflight + write infra/generated/deployment.json")
    p.add_argument("--config", type=Path, default=Path(env.get("REMEDIATOR_DEPLOY_CONFIG", DEFAULT_CONFIG)))
    p.add_argument("--env-name", default=env.get("AZURE_ENV_NAME", ""), help="azd environment name")
    p.add_argument("--location", default=env.get("AZURE_LOCATION", ""), help="region of the app")
    p.add_argument("--subscription", default=env.get("AZURE_SUBSCRIPTION_ID", ""), help="app subscription")
    p.add_argument(
        "--host-storage-sku",
        default=env.get("REMEDIATOR_HOST_STORAGE_SKU", ""),
        help="host storage SKU; empty: ZRS where the region has it, LRS elsewhere",
    )
    p.add_argument(
        "--container-writer-role-id",
        default=env.get("REMEDIATOR_CONTAINER_WRITER_ROLE_ID", ""),
        help="GUID of the container-writer custom role (install mode)",
    )
    p.add_argument(
        "--event-wiring-role-id",
        default=env.get("REMEDIATOR_EVENT_WIRING_ROLE_ID", ""),
        help="GUID of the Event Wiring custom role: subscriptions joining scope.managementGroups get wired",
    )
    p.add_argument(
        "--event-subscription",
        action="append",
        default=[s for s in env.get("REMEDIATOR_EVENT_SUBSCRIPTION_IDS", "").split(",") if s.strip()],
        help="extra subscription GUID to wire to Event Grid (repeatable), e.g. below a managed group",
    )
    p.add_argument(
        "--no-audit-policies",
        dest="audit_policies",
        action="store_false",
        default=_truthy(env.get("REMEDIATOR_ASSIGN_AUDIT_POLICIES", "true")),
        help="do not assign the built-in Policy 1/2 audits at the managed scopes",
    )
    p.add_argument(
        "--entra-client-id",
        default=env.get("REMEDIATOR_ENTRA_CLIENT_ID", ""),
        help="client id of the Entra app registration with the app roles of infra/auth/app-roles.json:"
        " turns on App Service authentication in front of the HTTP routes (REMEDIATOR_HTTP_AUTH=entra)",
    )
    p.add_argument(
        "--control-plane-resource-group",
        action="append",
        default=[g for g in env.get("REMEDIATOR_CONTROL_PLANE_RESOURCE_GROUPS", "").split(",") if g.strip()],
        help="<subscription>/<resource group> (repeatable): assign the write role of the mode there instead"
        " of on the whole listed subscription (the per-resource-group variant; docs/deploy.md)",
    )
    p.add_argument("--offline", action="store_true", help="skip the checks that ask Azure (az)")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    p.set_defaults(handler=prepare)
    args = parser.parse_args(argv)
    if not args.env_name or not args.location:
        print(
            "preflight: environment name and location are required (--env-name, --location)", file=sys.stderr
        )
        return 2
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
