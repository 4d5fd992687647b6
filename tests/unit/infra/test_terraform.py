"""Offline checks of the Terraform module (infra/terraform): it parses, checkov's terraform framework reports
no failed check (every skip justified inline), it is formatted as ``terraform fmt`` wants (the binary where it
exists, a rule subset always), variables carry descriptions and validation that agree with the preflight, the
preconditions refuse what the preflight refuses, and azapi is used only where azurerm lacks a resource.

``terraform validate`` cannot run here: it needs the azurerm and azapi providers, which cannot be downloaded
(shared/reference/spike.md Q6). infra/terraform/README.md gives the commands for the first real run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.iac import TERRAFORM, parse_hcl
from tests.unit.infra import hcl_format, parity
from tools.deploy import preflight

ALL_TF = sorted(TERRAFORM.rglob("*.tf"))


def test_every_terraform_file_parses(iac_python: Path) -> None:
    parsed = parse_hcl(ALL_TF, python=iac_python)
    errors = {path: content["error"] for path, content in parsed.items() if "error" in content}
    assert not errors, errors
    resources = sum(len(block) for c in parsed.values() for block in c.get("resource") or ())
    assert resources >= 30, resources


def test_checkov_terraform_has_no_failed_checks(checkov_terraform_report: dict[str, Any]) -> None:
    summary = checkov_terraform_report["summary"]
    results = checkov_terraform_report["results"]
    assert summary["parsing_errors"] == 0, results.get("parsing_errors")
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in results["failed_checks"]]
    assert not failed, "\n".join(failed)
    assert summary["passed"] > 0 and summary["resource_count"] >= 30


def test_every_terraform_skip_is_justified_inline(checkov_terraform_report: dict[str, Any]) -> None:
    skipped = checkov_terraform_report["results"]["skipped_checks"]
    assert skipped, "expected the documented skips"
    for check in skipped:
        reason = (check.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason.strip()) >= 30, f"{check['check_id']} on {check['resource']}: skip without a reason"


def test_formatting_rules_hold_for_every_file() -> None:
    problems = {path: hcl_format.check(path.read_text()) for path in ALL_TF}
    assert not any(problems.values()), {str(p): [str(x) for x in v] for p, v in problems.items() if v}


MISFORMATTED = {
    "misaligned equals": ("  location            = var.location\n", "  location = var.location\n"),
    "tab indent": ("  location            = var.location\n", "\tlocation            = var.location\n"),
    "trailing space": ("  location            = var.location\n", "  location            = var.location \n"),
}


@pytest.mark.parametrize("defect", sorted(MISFORMATTED))
def test_formatting_rules_catch_a_misformatted_copy(defect: str, tmp_path: Path) -> None:
    original, broken = MISFORMATTED[defect]
    text = (TERRAFORM / "app.tf").read_text()
    assert original in text
    copy = text.replace(original, broken, 1)
    assert hcl_format.check(copy), f"{defect} not caught"
    terraform = shutil.which("terraform")
    if terraform:  # the real tool agrees that the copy is not formatted
        (tmp_path / "app.tf").write_text(copy)
        proc = subprocess.run([terraform, "fmt", "-check", str(tmp_path)], capture_output=True, text=True)
        assert proc.returncode != 0, proc.stdout


def test_terraform_fmt_check_where_the_binary_exists() -> None:
    """``terraform fmt -check -recursive infra/terraform`` where the binary is installed. Without it this test
    says so (a warning in the summary) and the rule subset above is the gate; it never skips silently."""
    terraform = shutil.which("terraform")
    if terraform is None:
        warnings.warn(
            "terraform is not installed: `terraform fmt -check -recursive infra/terraform` did not run;"
            " the formatting rule subset (tests/unit/infra/hcl_format.py) was checked instead",
            stacklevel=1,
        )
        assert not any(hcl_format.check(p.read_text()) for p in ALL_TF)
        return
    proc = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _variables(terraform_files: dict[Path, Any]) -> dict[str, Any]:
    return parity.tf_blocks({Path("variables.tf"): terraform_files[Path("variables.tf")]}, "variable")


def test_every_variable_has_a_description_and_inputs_are_validated(terraform_files: dict[Path, Any]) -> None:
    found: dict[str, Any] = {}
    for block in terraform_files[Path("variables.tf")]["variable"]:
        found.update(block)
    assert len(found) >= 15
    for name, body in found.items():
        assert len(str(parity._one(body.get("description", "")))) >= 20, (
            f"variable {name} lacks a description"
        )
    must_validate = {
        "deployment_file",
        "environment_name",
        "location",
        "sweep_schedule",
        "alert_emails",
        "outcome_topic_input_schema",
        "inline_budget_seconds",
        "max_attempts",
        "max_wait_seconds",
        "maximum_instance_count",
        "instance_memory_mb",
        "arm_endpoint",
    }
    unvalidated = {name for name in must_validate if "validation" not in found[name]}
    assert not unvalidated, unvalidated


def test_environment_name_rule_is_the_preflights(terraform_files: dict[Path, Any]) -> None:
    found: dict[str, Any] = {}
    for block in terraform_files[Path("variables.tf")]["variable"]:
        found.update(block)
    condition = str(parity._one(parity._one(found["environment_name"]["validation"])["condition"]))
    pattern = re.search(r'regex\("(.+)",\s*var\.environment_name\)', condition)
    assert pattern, condition
    terraform_rule = re.compile(pattern.group(1).replace("\\\\", "\\"))
    samples = [
        "aksbr-prod",
        "a1",
        "Prod-2",
        "my_env",
        "env.prod",
        "env(1)",
        "-x",
        "x-",
        "a" * 24,
        "a" * 25,
        "9ab",
    ]
    for sample in samples:
        assert bool(terraform_rule.match(sample)) == (not preflight.check_environment_name(sample)), sample


def test_preconditions_refuse_what_the_preflight_refuses(terraform_files: dict[Path, Any]) -> None:
    app = parity.tf_blocks({Path("app.tf"): terraform_files[Path("app.tf")]}, "resource")[
        "azurerm_resource_group.app"
    ]
    lifecycle = parity._one(app["lifecycle"])
    conditions = " ".join(str(parity._one(p["condition"])) for p in lifecycle["precondition"])
    assert "00000000-0000-0000-0000-000000000000" in conditions  # placeholder config
    assert "zrsRegions" in conditions  # storage SKU the region lacks (infra/regions.json)
    assert "containerWriterRoleId" in conditions  # the custom role an administrator creates once
    assert "sha256" in conditions and "local.token" in conditions  # the file was prepared for this deployment


def test_azapi_only_where_azurerm_lacks_a_resource(terraform_files: dict[Path, Any]) -> None:
    allowed = {
        # cross-subscription (one per managed subscription from the config; azurerm works in one subscription)
        "Microsoft.Resources/resourceGroups@2024-03-01",
        "Microsoft.EventGrid/systemTopics@2022-06-15",
        "Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15",
        # no azurerm argument for the ftp basic-publishing policy of a Flex app
        "Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01",
    }
    used = {
        str(parity._one(body["type"]))
        for address, body in parity.tf_blocks(terraform_files, "resource").items()
        if address.startswith("azapi_")
    }
    assert used and used <= allowed, used - allowed
    assert "Why azapi" in (TERRAFORM / "README.md").read_text()


def test_readme_says_validate_cannot_run_here_and_gives_the_first_run_commands() -> None:
    readme = (TERRAFORM / "README.md").read_text()
    for command in (
        "python -m tools.deploy prepare",
        "terraform init",
        "terraform validate",
        "terraform plan",
        "terraform fmt -check -recursive",
        "create_event_subscriptions=true",
    ):
        assert command in readme, command
    assert "cannot run" in readme


def test_example_root_module_uses_the_module(iac_python: Path) -> None:
    example = TERRAFORM / "examples" / "basic" / "main.tf"
    parsed = parse_hcl([example], python=iac_python)[example]
    (module,) = [m for block in parsed["module"] for m in block.values()]
    assert parity._one(module["source"]) == "../.."
    assert "generated/deployment.json" in str(parity._one(module["deployment_file"]))
