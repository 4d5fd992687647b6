"""``make demo``: the remediator's whole story on one machine, narrated, with its claims checked.

Starts the ARM emulator with a generated estate (3 subscriptions, 2 regions, 42 clusters, a realistic tag mix,
some clusters still Creating, stopped, without managed identity or Linux pools, a few already protected),
Azurite, and function_app.py under the local Functions runner; registers Event Grid subscriptions in the
emulator that deliver to the runner's webhooks; then tells the story:

1. the timer sweep remediates the existing estate;
2. a new tagged cluster is created and its extension install starts within seconds of the write event;
3. a protected cluster is retagged to an excluded value and is left alone;
4. Azure Policy reports a cluster NonCompliant and the policy-state event gets it remediated;
5. an on-demand HTTP remediation, preceded by a dry run, fixes a cluster no event reported;
6. the compliance summary;
7. coexistence with Azure Policy for Kubernetes: a cluster behind a Deny "allowed images" assignment is not
   written to, explain names the assignment and the parameter fix, and once the operator applies it the next
   sweep installs.

Every step asserts what it claims against the emulator's state and the journal. The exit code is 0 only if all
of them held; all child processes are stopped on the way out, also on failure or Ctrl-C.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tools.services import ROOT, Child, start_azurite, start_emulator, start_runner, temp_dir

logger = logging.getLogger(__name__)

T = TypeVar("T")

SEED = 11
REGIONS = ("eastus", "westeurope")
SUBSCRIPTIONS = 3
CLUSTERS_PER_SUBSCRIPTION = 14
CLUSTER_TYPE = "Microsoft.ContainerService/managedClusters"
WRITE_SUCCESS = "Microsoft.Resources.ResourceWriteSuccess"
POLICY_EVENTS = ["Microsoft.PolicyInsights.PolicyStateCreated", "Microsoft.PolicyInsights.PolicyStateChanged"]
STEP_BUDGET_S = 60.0
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"

console = Console(highlight=False, width=None if sys.stdout.isatty() else 110)


class StoryFailed(Exception):
    """One of the story's claims did not hold."""


def expect(condition: object, claim: str) -> None:
    if not condition:
        raise StoryFailed(claim)
    console.print(f"    [green]✓[/green] {claim}")


def _done(journal: Any, cluster_id: str) -> bool:
    latest = journal.latest(cluster_id)
    return latest is not None and latest.outcome.kind.value == "done"


def wait_until(predicate: Callable[[], T | None], *, what: str, timeout_s: float = STEP_BUDGET_S) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise StoryFailed(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.25)


# --------------------------------------------------------------------------------------------- the estate


def build_estate() -> dict[str, Any]:
    from emulator.estate import generate_estate

    return generate_estate(
        subscriptions=SUBSCRIPTIONS,
        clusters_per_subscription=CLUSTERS_PER_SUBSCRIPTION,
        seed=SEED,
        regions=REGIONS,
        share_creating=0.05,
        share_stopped=0.05,
        share_service_principal=0.05,
        share_windows_only=0.04,
        share_with_backup_extension=0.1,
        creating_ready_in_s=6.0,
    )


def demo_config(estate: dict[str, Any]) -> dict[str, Any]:
    """Tag rules a platform team would write for this estate's tag mix (keys and values in mixed casing)."""
    storage = {account["location"]: account["id"] for account in estate["storageAccounts"]}
    return {
        "scope": {"subscriptions": [s["subscriptionId"] for s in estate["subscriptions"]]},
        "storage": storage,
        "selection": {
            "include": [
                {"tag": "backup", "values": ["yes", "true", "daily"]},
                {"tag": "env", "values": ["prod*", "staging"]},
                {"tag": "environment", "values": ["production"]},
            ],
            "exclude": [{"tag": "backup", "values": ["no"]}],
        },
    }


# --------------------------------------------------------------------------------------------- clients


class Http:
    """Calls to the local runner (the Functions app's front door)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.url = str(info["url"])
        self.function_key = str(info["functionKey"])
        self.master_key = str(info["masterKey"])

    def call(
        self, method: str, path: str, body: Any = None, *, key: str | None = None, **headers: str
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("x-functions-key", key or self.function_key)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for name, value in headers.items():
            req.add_header(name.replace("_", "-"), value)
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            return err.code, json.loads(raw) if raw else None

    def invocations(self, function: str) -> list[dict[str, Any]]:
        _, rows = self.call("GET", f"/admin/runner/invocations?functionName={function}", key=self.master_key)
        return list(rows)


class Story:
    """The demo: processes, clients and the six steps."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[Child] = []
        self.started = time.monotonic()
        self.deferred = 0
        """Selected clusters the sweep deferred (stopped); they stay pending in the report."""
        self.estate = build_estate()
        self.config = demo_config(self.estate)

    # ------------------------------------------------------------------ plumbing
    def say(self, text: str) -> None:
        console.print(f"[dim]{time.monotonic() - self.started:6.1f}s[/dim] {text}")

    def start(self) -> None:
        estate_file = self.workdir / "estate.json"
        estate_file.write_text(json.dumps(self.estate), encoding="utf-8")
        self.say("starting the ARM emulator, Azurite and the local Functions runner ...")
        emulator = start_emulator(estate_file)
        self.children.append(emulator)
        azurite = start_azurite(self.workdir)
        self.children.append(azurite)
        self.base_url = str(emulator.info["baseUrl"])
        self.ca_bundle = str(emulator.info["caBundle"])
        self.settings = {
            "AzureWebJobsStorage": azurite.info["connectionString"],
            "REMEDIATOR_TENANT_ID": str(self.estate["tenantId"]),
            "REMEDIATOR_CONFIG_JSON": json.dumps(self.config),
            "REMEDIATOR_ARM_ENDPOINT": self.base_url,
            "REMEDIATOR_CA_BUNDLE": self.ca_bundle,
            "REMEDIATOR_CREDENTIAL": "emulator",
            "REMEDIATOR_WORK_QUEUE": "reconcile-work",
            "REMEDIATOR_JOURNAL_TABLE": "remediatorjournal",
            "REMEDIATOR_INLINE_BUDGET_SECONDS": "20",
            "REMEDIATOR_MAX_WAIT_SECONDS": "2",
            "REMEDIATOR_MAX_ATTEMPTS": "60",
            # the emulator applies a policy assignment at once; Azure takes minutes (default cache: 5 min)
            "REMEDIATOR_PREFLIGHT_CACHE_SECONDS": "1",
            # the story sweeps each subscription on demand (a dry run, then for real) in one sitting; the
            # default per-caller limit (6 an hour) is for production callers
            "REMEDIATOR_SCOPE_REMEDIATIONS_PER_HOUR": "60",
            "SWEEP_SCHEDULE": "0 0 * * * *",
        }
        runner = start_runner(self.settings)
        self.children.append(runner)
        self.http = Http(runner.info)

        from emulator.admin_client import AdminClient

        self.admin = AdminClient(self.base_url, self.ca_bundle)
        self.admin.set_config(lroRetryAfterS=0, extensionCreateS=1.5, clusterCreateS=2.0, clusterUpdateS=1.0)
        functions = ", ".join(sorted(runner.info["functions"]))
        self.say(f"emulator {self.base_url}, runner {self.http.url} serving: {functions}")
        clusters = self.estate["clusters"]
        self.say(
            f"estate: {SUBSCRIPTIONS} subscriptions, {len(REGIONS)} regions ({', '.join(REGIONS)}), "
            f"{len(clusters)} clusters, {len(self.estate['extensions'])} already protected"
        )
        self.subscribe()

    def subscribe(self) -> None:
        """Event Grid subscriptions in the emulator that deliver to the runner's webhooks."""
        cluster_writes = [
            {"operatorType": "StringIn", "key": "data.operationName", "values": [f"{CLUSTER_TYPE}/write"]}
        ]
        for function, types, filters in (
            ("on_cluster_write", [WRITE_SUCCESS], cluster_writes),
            ("on_policy_state", POLICY_EVENTS, []),
        ):
            self.admin.request(
                "POST",
                "/eventgrid/subscriptions",
                {
                    "name": f"to-{function}",
                    "endpointUrl": f"{self.http.url}/runtime/webhooks/eventgrid?functionName={function}",
                    "filter": {"includedEventTypes": types, "advancedFilters": filters},
                    "validateEndpoint": True,
                },
            )
            expect(
                True, f"Event Grid subscription -> {function}: the webhook passed the validation handshake"
            )

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()

    # ------------------------------------------------------------------ views on the world
    def journal(self) -> Any:
        from remediator.adapters.journal import Journal
        from remediator.core.settings import Settings

        return Journal.from_settings(Settings.from_env(self.settings))

    def arm(self, subscription: str) -> Any:
        from azure.mgmt.containerservice import ContainerServiceClient

        from remediator.adapters.credentials import EmulatorCredential

        return ContainerServiceClient(
            EmulatorCredential(), subscription, base_url=self.base_url, connection_verify=self.ca_bundle
        )

    def extensions(self) -> dict[str, str]:
        """Cluster id (lower-cased) -> provisioningState of its backup extension."""
        state = self.admin.state(collections=["extensions"])
        out: dict[str, str] = {}
        for ext in state["extensions"]:
            if (
                str(ext["properties"].get("extensionType", "")).lower()
                != "microsoft.dataprotection.kubernetes"
            ):
                continue
            cluster = str(ext["id"]).lower().split("/providers/microsoft.kubernetesconfiguration/")[0]
            out[cluster] = str(ext["properties"]["provisioningState"])
        return out

    def extension_writes(self, cluster_id: str | None = None, *, since: int = 0) -> list[dict[str, Any]]:
        prefix = (cluster_id or "").lower()
        return [
            c
            for c in self.admin.calls(since=since)
            if c["method"] in ("PUT", "PATCH", "DELETE")
            and "/providers/microsoft.kubernetesconfiguration/extensions/" in c["path"].lower()
            and c["path"].lower().startswith(prefix)
        ]

    def granted(self, cluster_id: str) -> bool:
        """Whether the cluster's extension identity holds Storage Blob Data Contributor on storage."""
        state = self.admin.state(collections=["extensions", "role_assignments"])
        prefix = cluster_id.lower() + "/providers/microsoft.kubernetesconfiguration/extensions/"
        principals = {
            str((e["properties"].get("aksAssignedIdentity") or {}).get("principalId", "")).lower()
            for e in state["extensions"]
            if str(e["id"]).lower().startswith(prefix)
        }
        return any(
            str(r["properties"]["principalId"]).lower() in principals
            and str(r["properties"]["roleDefinitionId"]).lower().endswith(STORAGE_BLOB_DATA_CONTRIBUTOR)
            and "/providers/microsoft.storage/storageaccounts/" in str(r["properties"]["scope"]).lower()
            for r in state["role_assignments"]
        )

    def last_call_seq(self) -> int:
        calls = self.admin.calls(limit=1)
        return int(calls[-1]["seq"]) if calls else 0

    def remaining_work(self) -> int:
        """Clusters the sweep would still enqueue (dry run over every subscription)."""
        total = 0
        for sub in self.config["scope"]["subscriptions"]:
            status, body = self.http.call(
                "POST", "/api/remediate?dryRun=true", {"scope": f"/subscriptions/{sub}"}
            )
            if status != 200:
                raise StoryFailed(f"dry-run sweep of {sub} answered {status}: {body}")
            total += int(body["wouldEnqueue"])
        return total

    def new_cluster_id(self, subscription: str, group: str, name: str) -> str:
        return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{CLUSTER_TYPE}/{name}"

    # ------------------------------------------------------------------ the story
    def step_sweep(self) -> None:
        console.rule("1. The timer sweep remediates the existing estate")
        before = self.extensions()
        status, _ = self.http.call("POST", "/admin/functions/sweep", {}, key=self.http.master_key)
        expect(status == 202, "the sweep timer function ran (POST /admin/functions/sweep)")
        summary = wait_until(lambda: self.journal().latest_sweep(), what="the sweep summary in the journal")
        self.say(
            f"sweep: {summary['candidates']} candidates, {summary['enqueued']} enqueued, "
            f"{summary['blocked']} blocked (need a human), {summary['deferred']} deferred (stopped); "
            f"by reason {summary['byReason']}"
        )
        self.deferred = int(summary["deferred"])  # stopped clusters: still pending in the final report
        expect(
            summary["enqueued"] > 0,
            f"the sweep enqueued {summary['enqueued']} clusters needing the extension",
        )
        self.say("the queue worker installs; waiting until no in-scope cluster needs work ...")
        wait_until(lambda: self.remaining_work() == 0, what="the estate to be remediated", timeout_s=90)
        after = self.extensions()
        installed = [c for c, s in after.items() if s == "Succeeded" and before.get(c) != "Succeeded"]
        expect(
            len(installed) >= summary["enqueued"],
            f"{len(installed)} extensions reached Succeeded (was {len(before)} protected before the sweep)",
        )
        journal = self.journal()
        wait_until(
            lambda: all(self.granted(c) and _done(journal, c) for c in installed),
            what="storage grants and journaled 'done' outcomes",
            timeout_s=30,
        )
        expect(
            True,
            "each has Storage Blob Data Contributor on its region's account, and a 'done' in the journal",
        )
        worker = self.http.invocations("reconcile_worker")
        self.say(
            f"reconcile_worker ran {len(worker)} times ({sum(not w['succeeded'] for w in worker)} failed)"
        )

    def step_new_cluster(self) -> None:
        console.rule("2. A new tagged cluster: installed within seconds of its write event")
        sub = self.config["scope"]["subscriptions"][1]
        cluster = self.new_cluster_id(sub, "rg-aks-00", "aks-payments-new")
        since = self.last_call_seq()
        body = {
            "location": "eastus",
            "tags": {"Backup": "Yes", "team": "payments"},
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "dnsPrefix": "aks-payments-new",
                "agentPoolProfiles": [
                    {
                        "name": "system",
                        "count": 3,
                        "vmSize": "Standard_D4s_v5",
                        "osType": "Linux",
                        "mode": "System",
                    }
                ],
            },
        }
        self.say("PUT managedClusters/aks-payments-new (tags Backup=Yes, team=payments) ...")
        poller = self.arm(sub).managed_clusters.begin_create_or_update(
            "rg-aks-00", "aks-payments-new", body, polling_interval=0.2
        )
        poller.result()
        self.say(
            "cluster provisioning Succeeded; Event Grid delivers ResourceWriteSuccess to on_cluster_write"
        )
        puts = wait_until(
            lambda: [w for w in self.extension_writes(cluster, since=since) if w["method"] == "PUT"],
            what="the extension PUT",
            timeout_s=20,
        )
        created = [
            c
            for c in self.admin.calls(since=since)
            if c["method"] == "PUT" and c["path"].lower() == cluster.lower()
        ]
        provisioning_s = float(self.admin.config()["clusterCreateS"])
        started_after = float(puts[0]["time"]) - float(created[0]["time"]) - provisioning_s
        expect(
            started_after < 15,  # "within seconds" (typically under 1 s; margin for a loaded machine)
            f"extension install started {max(started_after, 0.0):.1f} s after the cluster was provisioned",
        )
        wait_until(
            lambda: self.extensions().get(cluster.lower()) == "Succeeded",
            what="extension Succeeded",
            timeout_s=30,
        )
        expect(True, "the backup extension on aks-payments-new is Succeeded")

    def step_retag(self) -> None:
        console.rule("3. A retag to an excluded value is left alone")
        protected = [c for c, s in self.extensions().items() if s == "Succeeded"]
        target = sorted(protected)[0]
        sub, group, name = target.split("/")[2], target.split("/")[4], target.split("/")[-1]
        since = self.last_call_seq()
        before = len(self.http.invocations("on_cluster_write"))
        self.say(f"PATCH tags of {name}: backup=no (the opt-out the config excludes)")
        poller = self.arm(sub).managed_clusters.begin_update_tags(
            group, name, {"tags": {"backup": "no"}}, polling_interval=0.2
        )
        poller.result()
        wait_until(
            lambda: len(self.http.invocations("on_cluster_write")) > before,
            what="the retag's write event",
            timeout_s=20,
        )
        latest = wait_until(
            lambda: (
                (r := self.journal().latest(target)) is not None and r.outcome.kind.value == "skipped" and r
            ),
            what="the journaled decision",
            timeout_s=20,
        )
        self.say(f"journal: {latest.outcome.kind.value}: {latest.outcome.why}")
        expect("excluded" in json.dumps(latest.decision or {}), "the decision says excluded by tag")
        expect(
            self.extension_writes(target, since=since) == [],
            "no write to its extension: nothing installed or removed",
        )

    def step_policy(self) -> None:
        console.rule("4. Azure Policy says NonCompliant: the policy-state event gets it remediated")
        sub = self.config["scope"]["subscriptions"][2]
        group = f"/subscriptions/{sub}/resourceGroups/rg-aks-02"
        self.admin.request(
            "POST",
            "/policy/assignments",
            {"name": "aks-backup-audit", "scope": group, "definition": "extension-audit"},
        )
        self.say(f"assigned built-in Policy 1 (extension should be installed) at {group}")
        cluster = self.new_cluster_id(sub, "rg-aks-02", "aks-ml-training")
        before = len(self.http.invocations("on_policy_state"))
        self.say("a cluster appears without a write event (say, the event was lost); Policy evaluates it ...")
        self.admin.put_resources(
            {
                "clusters": [
                    {
                        "id": cluster,
                        "location": "westeurope",
                        "tags": {"env": "production", "Environment": "Production"},
                    }
                ]
            }
        )
        wait_until(
            lambda: len(self.http.invocations("on_policy_state")) > before,
            what="a policy-state event at on_policy_state",
            timeout_s=20,
        )
        expect(True, "Event Grid delivered Microsoft.PolicyInsights.PolicyState* to on_policy_state")
        wait_until(
            lambda: self.extensions().get(cluster.lower()) == "Succeeded",
            what="extension Succeeded",
            timeout_s=40,
        )
        expect(True, "the NonCompliant cluster aks-ml-training now has the extension Succeeded")

    def step_http(self) -> None:
        console.rule("5. On-demand HTTP remediation, after a dry run")
        sub = self.config["scope"]["subscriptions"][0]
        cluster = self.new_cluster_id(sub, "rg-aks-01", "aks-search-missed")
        self.admin.put_resources(
            {"clusters": [{"id": cluster, "location": "westeurope", "tags": {"backup": "daily"}}]}
        )
        self.say("aks-search-missed exists, tagged backup=daily, and no event announced it")
        since = self.last_call_seq()
        status, body = self.http.call("POST", "/api/explain", {"clusterId": cluster})
        expect(
            status == 200 and body["decision"]["selected"],
            f"explain: selected by rule {body['decision']['rule']}",
        )
        status, body = self.http.call("POST", "/api/remediate?dryRun=true", {"clusterId": cluster})
        planned = [f"{a['kind']} ({a['status']})" for a in body["actions"]]
        expect(status == 200 and body["dryRun"], f"dry run plans: {', '.join(planned) or 'nothing'}")
        expect(self.extension_writes(cluster, since=since) == [], "the dry run wrote nothing")
        status, body = self.http.call(
            "POST",
            "/api/remediate",
            {
                "clusterId": "/subscriptions/"
                + "0" * 8
                + "-0000-0000-0000-000000000000/resourceGroups/x/providers/"
                + CLUSTER_TYPE
                + "/y"
            },
        )
        expect(
            status == 403,
            f"a cluster outside the configured scope is refused: {status} {body['message'][:60]}...",
        )
        status, body = self.http.call("POST", "/api/remediate", {"clusterId": cluster})
        expect(
            status in (200, 202),
            f"remediate: {status}, outcome {body['outcome']['kind']} ({body['outcome']['why']})",
        )
        wait_until(
            lambda: self.extensions().get(cluster.lower()) == "Succeeded",
            what="extension Succeeded",
            timeout_s=30,
        )
        expect(True, "aks-search-missed has the extension Succeeded")

    def step_report(self) -> None:
        console.rule("6. Compliance summary (GET /api/report)")
        status, body = self.http.call("GET", "/api/report")
        expect(status == 200, "the report answered")
        columns = ("clusters", "selected", "protected", "pending", "failed", "blocked")
        table = Table("subscription", "region", *columns)
        for row in body["summary"]:
            table.add_row(row["subscriptionId"][:8] + "…", row["region"], *(str(row[k]) for k in columns))
        totals = body["totals"]
        table.add_row("total", "", *(str(totals[k]) for k in columns))
        console.print(table)
        expect(totals["clusters"] == len(self.estate["clusters"]) + 3, "every cluster in scope is counted")
        expect(
            sum(totals[k] for k in ("protected", "pending", "failed", "blocked")) == totals["selected"],
            "protected + pending + failed + blocked = selected",
        )
        expect(
            totals["pending"] <= self.deferred,
            f"nothing left pending but the {self.deferred} stopped clusters ({totals['pending']} pending)",
        )
        status, health = self.http.call("GET", "/api/health")
        expect(status == 200, f"health: {health['status']}")

    def step_coexistence(self) -> None:
        console.rule("7. Coexistence: a Deny 'allowed images' assignment is named, not fought")
        from azure.mgmt.resource.policy import PolicyClient

        from remediator.adapters.credentials import EmulatorCredential

        sub = self.config["scope"]["subscriptions"][0]
        group = "rg-aks-00"
        scope = f"/subscriptions/{sub}/resourceGroups/{group}"
        policy = PolicyClient(
            EmulatorCredential(), sub, base_url=self.base_url, connection_verify=self.ca_bundle
        )
        images = "/providers/Microsoft.Authorization/policyDefinitions/febd0533-8e55-448f-b837-bd0e06f16469"

        def assign(regex: str) -> None:
            policy.policy_assignments.create(
                scope,
                "only-our-registry",
                {
                    "properties": {
                        "displayName": "Kubernetes: only images from our registry",
                        "policyDefinitionId": images,
                        "parameters": {"allowedContainerImagesRegex": {"value": regex}},
                    }
                },
            )

        assign(r"^contoso\.azurecr\.io/.+$")
        self.say(
            f"the platform team assigns built-in 'allowed images' (Deny) at {group}: only contoso.azurecr.io"
        )
        cluster = self.new_cluster_id(sub, group, "aks-gatekeeper")
        since = self.last_call_seq()
        body = {
            "location": "eastus",
            "tags": {"backup": "yes"},
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "dnsPrefix": "aks-gatekeeper",
                "addonProfiles": {"azurepolicy": {"enabled": True}},
                "agentPoolProfiles": [
                    {
                        "name": "system",
                        "count": 3,
                        "vmSize": "Standard_D4s_v5",
                        "osType": "Linux",
                        "mode": "System",
                    }
                ],
            },
        }
        self.say("PUT managedClusters/aks-gatekeeper (backup=yes, Azure Policy add-on on) ...")
        self.arm(sub).managed_clusters.begin_create_or_update(
            group, "aks-gatekeeper", body, polling_interval=0.2
        ).result()
        latest = wait_until(
            lambda: (
                (r := self.journal().latest(cluster)) is not None and r.outcome.kind.value == "gave_up" and r
            ),
            what="the reconcile of aks-gatekeeper to give up",
            timeout_s=40,
        )
        self.say(f"journal: gave_up: {escape(latest.outcome.why[:150])}...")
        expect(
            self.extension_writes(cluster, since=since) == [],
            "nothing was written to aks-gatekeeper: the install would end Failed behind the Deny",
        )
        expect(
            any(f["code"] == "gatekeeper-policy" for f in latest.findings),
            "the journal row carries the preflight finding",
        )
        status, answer = self.http.call("POST", "/api/explain", {"clusterId": cluster})
        blocked = answer["blockedBy"][0] if status == 200 and answer.get("blockedBy") else {}
        expect(
            blocked.get("assignment") == "only-our-registry"
            and blocked.get("parameter") == "allowedContainerImagesRegex",
            f"explain names assignment {blocked.get('assignment')} and parameter {blocked.get('parameter')}",
        )
        console.print(f"    [bold]remedy:[/bold] {escape(str(blocked['remedy']))}")
        self.say("the operator applies exactly that fix (through the emulator's ARM, as az would) ...")
        assign(str(blocked["suggested"]))
        from remediator.core.plan.preflight_check import CONFIRM_AGE_S

        # explain read the policy data a moment ago; a blocking verdict is re-checked against data at most
        # CONFIRM_AGE_S old, and the hourly sweep comes later than that (here: triggered a moment after)
        time.sleep(CONFIRM_AGE_S + 0.5)
        self.say(
            f"the next sweep (later than the {CONFIRM_AGE_S:g} s within which a blocking read is reused) ..."
        )
        status, _ = self.http.call("POST", "/admin/functions/sweep", {}, key=self.http.master_key)
        expect(status == 202, "the next sweep ran")
        wait_until(
            lambda: self.extensions().get(cluster.lower()) == "Succeeded",
            what="aks-gatekeeper's extension Succeeded",
            timeout_s=60,
        )
        expect(True, "after the fix, the sweep's work item installed the extension: Succeeded")

    def run(self) -> None:
        self.start()
        self.step_sweep()
        self.step_new_cluster()
        self.step_retag()
        self.step_policy()
        self.step_http()
        self.step_report()
        self.step_coexistence()


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    os.chdir(ROOT)

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)  # also when started with SIGINT ignored (a background job)
    with temp_dir("aks-remediator-demo-") as workdir:
        story = Story(Path(workdir))
        try:
            story.run()
        except StoryFailed as exc:
            console.print(f"[bold red]✗ the story did not hold: {exc}[/bold red]")
            for child in story.children:
                if child.log:
                    console.print(f"[dim]--- {child.name} (last lines) ---\n{child.tail(25)}[/dim]")
            return 1
        except KeyboardInterrupt:
            console.print("[yellow]interrupted; stopping the processes[/yellow]")
            return 130
        finally:
            story.stop()
    console.print(
        f"[bold green]✓ demo complete in {time.monotonic() - story.started:.1f} s: "
        "every claim held[/bold green]"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
