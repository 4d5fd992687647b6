"""Facts only Azure can tell the preflight, asked through the Azure CLI (``az``) the deployer is logged in.

Read-only calls, one per subscription or resource: provider registration states, the backup storage accounts'
regions, the container-writer custom role's assignable scopes, and existing Event Grid system topics whose
source is a managed subscription. ``run`` is injectable, so tests feed canned ``az`` answers.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from remediator.core.config import RemediatorConfig
from tools.deploy.preflight import TOPIC_TYPES, LiveFacts, storage_accounts

logger = logging.getLogger(__name__)

AzRunner = Callable[[Sequence[str]], Any]
"""Runs ``az <args> -o json`` and returns the decoded JSON (``None`` when az answered with an error)."""


def run_az(args: Sequence[str]) -> Any:
    """The real runner: ``az ... -o json --only-show-errors``; an error answer becomes ``None``."""
    az = shutil.which("az")
    if az is None:
        raise SystemExit("preflight: az: the Azure CLI is not installed; install it and run `az login`")
    proc = subprocess.run(
        [az, *args, "-o", "json", "--only-show-errors"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        logger.debug("az %s failed: %s", " ".join(args), proc.stderr.strip())
        return None
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def gather(
    config: RemediatorConfig,
    *,
    subscriptions: Iterable[str],
    app_subscription: str,
    container_writer_role_id: str,
    run: AzRunner = run_az,
) -> LiveFacts:
    facts = LiveFacts()
    registered: dict[str, frozenset[str]] = {}
    topics: dict[str, list[dict[str, Any]]] = {}
    for sub in dict.fromkeys([*subscriptions, app_subscription.lower()]):
        providers = run(
            [
                "provider",
                "list",
                "--subscription",
                sub,
                "--query",
                "[?registrationState=='Registered'].namespace",
            ]
        )
        registered[sub] = frozenset(str(ns).lower() for ns in providers or ())
        if sub == app_subscription.lower() and sub not in set(subscriptions):
            continue
        found = run(["eventgrid", "system-topic", "list", "--subscription", sub]) or []
        topics[sub] = [
            {
                "name": t.get("name"),
                "resourceGroup": t.get("resourceGroup"),
                "topicType": t.get("topicType"),
                "principalId": (t.get("identity") or {}).get("principalId"),
            }
            for t in found
            if str(t.get("source", "")).lower().rstrip("/") == f"/subscriptions/{sub}"
            and t.get("topicType") in TOPIC_TYPES
        ]
    facts.registered_providers = registered
    facts.system_topics = topics
    locations: dict[str, str | None] = {}
    for ref in storage_accounts(config).values():
        account = run(["storage", "account", "show", "--ids", ref.canonical, "--query", "location"])
        locations[ref.key] = str(account) if account else None
    facts.storage_locations = locations
    if container_writer_role_id:
        roles = run(
            [
                "role",
                "definition",
                "list",
                "--name",
                container_writer_role_id,
                "--scope",
                f"/subscriptions/{app_subscription}",
                "--custom-role-only",
                "true",
            ]
        )
        facts.custom_role_scopes = list(roles[0].get("assignableScopes") or ()) if roles else None
    return facts
