"""The files around the templates: azure.yaml, the postdeploy hook, .funcignore, the example config and the
deploy guide, each checked against what it must agree with (templates, product code, measured numbers)."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from remediator.core.alerts import alert_line, describe, repeat_line
from remediator.core.config import load_config
from remediator.core.outcomes import Outcome, OutcomeKind, ReconcileReport
from tests.fixtures.iac import INFRA, ROOT
from tests.unit.infra.model import resources

PRODUCT = {"function_app.py", "host.json", "requirements.txt", "remediator"}
"""What the Functions app needs at runtime; everything else at the top level stays out of the package."""

LOCAL_ONLY_DIRS = {".venv", ".venv-iac", "node_modules", ".azure", "local.settings.json", "__pycache__"}
AZD_BUILT_INS = {"AZURE_ENV_NAME", "AZURE_SUBSCRIPTION_ID", "AZURE_LOCATION"}
HOOK = INFRA / "hooks" / "postdeploy.sh"


def test_azure_yaml_deploys_the_root_as_a_python_function_app(infra_templates: dict[Path, Any]) -> None:
    spec = yaml.safe_load((ROOT / "azure.yaml").read_text())
    assert spec["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    services = spec["services"]
    assert list(services) == ["remediator"]
    service = services["remediator"]
    assert service == {"project": ".", "language": "python", "host": "function"}
    # azd finds the app to deploy to by the azd-service-name tag on the site.
    (site,) = resources(infra_templates, "Microsoft.Web/sites")
    tags = site.config["tags"]["function"]["parameters"]["arg_2"]  # union(tags, {...})
    assert {key.strip("'"): value for key, value in tags.items()} == {"azd-service-name": "remediator"}
    hook = spec["hooks"]["postdeploy"]["posix"]
    assert (ROOT / hook["run"]).resolve() == HOOK.resolve()


def _hook_variables(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))


def test_postdeploy_hook_passes_every_required_events_parameter(infra_templates: dict[Path, Any]) -> None:
    text = HOOK.read_text()
    params = infra_templates[Path("events.bicep")]["parameters"]
    required = {name for name, spec in params.items() if "default" not in spec}
    passed = set(re.findall(r"^\s+([A-Za-z]+)=\"\$\{", text, flags=re.MULTILINE))
    assert required <= passed, f"not passed by the hook: {sorted(required - passed)}"
    assert passed <= set(params), f"unknown events.bicep parameters: {sorted(passed - set(params))}"


def test_postdeploy_hook_reads_only_main_outputs_and_azd_variables(infra_templates: dict[Path, Any]) -> None:
    outputs = set(infra_templates[Path("main.bicep")]["outputs"])
    used = _hook_variables(HOOK.read_text()) - {"REMEDIATOR_INDEX_WAIT_ATTEMPTS"}
    unknown = used - outputs - AZD_BUILT_INS
    assert not unknown, f"hook reads variables nothing sets: {sorted(unknown)}"


def test_postdeploy_hook_is_valid_posix_shell() -> None:
    proc = subprocess.run(["sh", "-n", str(HOOK)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert HOOK.stat().st_mode & 0o111, "hook must be executable"


def _ignored(name: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        stripped = pattern.rstrip("/")
        if "/" in stripped:  # a deeper path (e.g. remediator/cli/) never hides a top-level entry
            continue
        if fnmatch.fnmatch(name, stripped):
            return True
    return False


def test_funcignore_ships_only_the_product() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".funcignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    top_level = {path.split("/", 1)[0] for path in tracked} | LOCAL_ONLY_DIRS
    shipped = {name for name in top_level if not _ignored(name, patterns)}
    assert shipped == PRODUCT, (
        f"would deploy {sorted(shipped - PRODUCT)}; would drop {sorted(PRODUCT - shipped)}"
    )


def test_deployment_config_is_yaml_and_valid_for_the_product() -> None:
    # One config format: the deployment reads the same YAML the CLI and `config check` read.
    assert not (INFRA / "remediator.config.json").exists(), "one config file: infra/remediator.config.yaml"
    config = load_config(INFRA / "remediator.config.yaml")
    assert config.storage, "the template grants storage roles from config.storage"


DEPLOY_DOC = ROOT / "docs" / "deploy.md"


def test_deploy_doc_names_every_role_guid() -> None:
    text = DEPLOY_DOC.read_text()
    roles = json.loads((INFRA / "roles.json").read_text())
    missing = {name: guid for name, guid in roles.items() if f"`{guid}`" not in text}
    assert not missing, f"docs/deploy.md role tables lack {missing}"


def test_deploy_doc_checkov_summary_is_the_measured_one(checkov_report: dict[str, Any]) -> None:
    text = DEPLOY_DOC.read_text()
    block = text.split("<!-- checkov-summary:begin", 1)[1].split("<!-- checkov-summary:end -->", 1)[0]
    numbers = dict(re.findall(r"(passed|failed|skipped|parsing errors|resource count) (\d+)", block))
    summary = checkov_report["summary"]
    assert numbers == {
        "passed": str(summary["passed"]),
        "failed": str(summary["failed"]),
        "skipped": str(summary["skipped"]),
        "parsing errors": str(summary["parsing_errors"]),
        "resource count": str(summary["resource_count"]),
    }, "update the checkov summary in docs/deploy.md"
    assert f"checkov {summary['checkov_version']}" in block
    skipped = {c["check_id"] for c in checkov_report["results"]["skipped_checks"]}
    documented = set(
        re.findall(r"CKV_AZURE_\d+", text.split(" skips, each justified inline", 1)[1].split("## ", 1)[0])
    )
    assert documented == skipped


def test_alerts_cover_poison_gave_up_and_failures(infra_templates: dict[Path, Any]) -> None:
    alerts = infra_templates[Path("app/alerts.bicep")]
    rules = {rule["name"]: rule for rule in alerts["variables"]["rules"]["value"]}
    assert set(rules) == {
        "poison-queue-not-empty",
        "poison-poison-queue-not-empty",
        "gave-up-outcomes",
        "function-failures",
    }
    assert "${poisonFunctionName}" in rules["poison-queue-not-empty"]["query"]
    # The product logs a give-up (a reconcile's, attempts exhausted, the poison path) with one line,
    # core.alerts.alert_line, once per cluster and cause; it must match one of the query's terms, and the
    # lines for repeats and every other outcome must not (issue 17 item 4: the alert fires once).
    terms = re.findall(r"message contains \\'([^\\]+)\\'", rules["gave-up-outcomes"]["query"])
    give_up = ReconcileReport(
        cluster_id="/subscriptions/s/resourceGroups/r/providers/Microsoft.ContainerService/managedClusters/c",
        decision=None,
        outcome=Outcome.gave_up("work item failed on every delivery and was moved to the poison queue"),
    )
    line = alert_line(give_up)
    assert any(term in line for term in terms), f"gave-up alert misses the log line {line!r} ({terms})"
    quiet = [repeat_line(give_up), *(describe(kind) for kind in OutcomeKind)]
    for text in quiet:
        assert not any(term in text for term in terms), f"{text!r} would fire the gave-up alert again"
    for module in ("service/triggers/queue.py", "service/reconcile/reconciler.py"):
        source = (ROOT / "remediator" / module).read_text()
        assert "logger.warning(alert_line(" in source, f"{module} does not log the alert line"
        assert not re.search(r"logger\.\w+\(\s*f?\"[^\"]*gave[ _]up", source), (
            f"{module} logs gave up directly"
        )
    assert rules["function-failures"]["query"] == "requests | where success == false"
    (rule_resource,) = resources(infra_templates, "Microsoft.Insights/scheduledQueryRules")
    props = rule_resource.properties
    assert props["scopes"] == ["applicationInsightsId"]
    assert props["actions"]["actionGroups"] == [
        {
            "operator": {
                "type": "property_accessor",
                "operands": {"operand_1": "actionGroup", "operand_2": "id"},
            }
        }
    ]


def test_poison_function_failures_are_not_dropped_silently(infra_templates: dict[Path, Any]) -> None:
    """After 5 failed ``reconcile_poison`` runs the host moves the item to ``<queue>-poison-poison``, which no
    function drains: the template creates that queue and an alert watches it."""
    main = infra_templates[Path("main.bicep")]
    work_queue = main["variables"]["workQueueName"]["value"]
    names = [
        q.config["name"]
        for q in resources(infra_templates, "Microsoft.Storage/storageAccounts/queueServices/queues")
    ]
    queues = {n.replace("${workQueueName}", work_queue) for n in names if n != "workQueueName"}
    queues |= {work_queue} if "workQueueName" in names else set()
    assert {work_queue, f"{work_queue}-poison", f"{work_queue}-poison-poison"} <= queues, queues

    alerts = infra_templates[Path("app/alerts.bicep")]
    assert "workQueueName" in alerts["parameters"]
    rules = {rule["name"]: rule for rule in alerts["variables"]["rules"]["value"]}
    rule = rules["poison-poison-queue-not-empty"]
    # the host's move is a trace naming the queue; the failed poison-function runs that cause it are requests
    assert "traces | where message contains \\'${workQueueName}-poison-poison\\'" in rule["query"]
    assert "${poisonFunctionName}" in rule["query"] and "success == false" in rule["query"]
    assert rule["severity"] <= rules["poison-queue-not-empty"]["severity"]
    # main.bicep hands the real queue name to the alerts module
    (alerts_module,) = [m for m in main["modules"].values() if m["detail"]["path"] == "app/alerts.bicep"]
    assert alerts_module["config"]["params"]["workQueueName"] == "workQueueName"

    runbook = (ROOT / "docs" / "operations.md").read_text()
    assert "poison-poison" in runbook.split("## Runbook", 1)[-1]
    assert "poison-poison-queue-not-empty" in (ROOT / "docs" / "deploy.md").read_text()
