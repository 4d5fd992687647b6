"""The CLI: explain prints the decision JSON; bad input exits 2 with one line naming file and field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from remediator.cli import EXIT_BAD_INPUT, SUBCOMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CONFIGS = sorted(EXAMPLES.glob("*.yaml"))
CLUSTERS = sorted((EXAMPLES / "clusters").glob("*.json"))
MGS = EXAMPLES / "management-groups.json"
KEYS = ["clusterId", "selected", "reason", "rule", "storageAccountId", "blockers", "matchedRule"]


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "remediator", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_explain_prints_decision_json(config: Path) -> None:
    for cluster in (EXAMPLES / "clusters" / "tagged.json",):
        done = cli("explain", "--config", config, "--cluster", cluster, "--management-groups", MGS)
        assert done.returncode == 0, done.stderr
        decision = json.loads(done.stdout)
        assert list(decision) == KEYS
        assert decision["clusterId"].endswith("/managedClusters/aks-payments-eus-01")
        assert decision["selected"] is True


def test_explain_table_output() -> None:
    done = cli(
        "explain",
        "--config",
        CONFIGS[0],
        "--cluster",
        CLUSTERS[0],
        "--management-groups",
        MGS,
        "--output",
        "table",
    )
    assert done.returncode == 0, done.stderr
    header, rule, row = done.stdout.splitlines()
    assert header.split() == [
        "Cluster", "ResourceGroup", "Selected", "Reason", "MatchedRule", "Storage", "Blockers"
    ]  # fmt: skip
    assert set(rule.replace(" ", "")) == {"-"}
    assert row.split()[:7] == [
        "aks-edge-weu-01", "rg-aks-edge", "True", "selected", "include", "environment=prod-edge", "(prod*)"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"config": "scope: {subscriptions: [3f2b8c1e-6d4a-4f7b-9c2e-8a1d5e7f0b24]}\nstorage: {}\n"},
            "c.yaml: storage: empty",
        ),
        ({"cluster": '{"id": "/subscriptions/nope", "location": "eastus"}'}, "cluster.json: id: "),
    ],
)
def test_bad_input_exits_2_naming_file_and_field(
    tmp_path: Path, files: dict[str, str], expected: str
) -> None:
    config = EXAMPLES / "policy3-include-tag.yaml"
    cluster = EXAMPLES / "clusters" / "tagged.json"
    if "config" in files:
        config = tmp_path / "c.yaml"
        config.write_text(files["config"])
    if "cluster" in files:
        cluster = tmp_path / "cluster.json"
        cluster.write_text(files["cluster"])
    done = cli("explain", "--config", config, "--cluster", cluster)
    assert done.returncode == EXIT_BAD_INPUT
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert expected in done.stderr


def test_config_check_subprocess(tmp_path: Path) -> None:
    ok = cli("config", "check", EXAMPLES / "multi-region.yaml")
    assert ok.returncode == 0, ok.stderr
    summary = json.loads(ok.stdout)
    assert summary["valid"] is True and summary["storageRegions"] == ["eastus", "southeastasia", "westeurope"]
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "scope": {"subscriptions": ["3f2b8c1e-6d4a-4f7b-9c2e-8a1d5e7f0b24"]},
                "storage": {"eastus": "/x"},
                "selection": {"include": [{"tag": "a", "values": []}]},
            }
        )
    )
    done = cli("config", "check", bad)
    assert done.returncode == EXIT_BAD_INPUT
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    # was: the first error and "(and 1 more error)"; now every error, one line each, naming its field
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2, done.stderr
    assert lines[0].startswith(f"error: {bad}: storage.eastus: ")
    assert lines[1].startswith(f"error: {bad}: selection.include[0].values: values is an empty list")


# --- in-process, for breadth ---


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_every_example_cluster_explains(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for cluster in CLUSTERS:
        code = main(
            ["explain", "--config", str(config), "--cluster", str(cluster), "--management-groups", str(MGS)]
        )
        assert code == 0
        assert list(json.loads(capsys.readouterr().out)) == KEYS


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["config", "check", str(ROOT / "tests")], "cannot read the config file"),
        (["explain", "--config", str(CONFIGS[0]), "--cluster", str(CONFIGS[0])], "invalid JSON at line 1"),
        (["config", "check", "missing.yaml"], "missing.yaml: cannot read the config file"),
        (["explain", "--config", str(CONFIGS[0]), "--cluster", "missing.json"], "missing.json: cannot read"),
        (
            [
                "explain",
                "--config",
                str(CONFIGS[0]),
                "--cluster",
                str(CLUSTERS[0]),
                "--management-groups",
                "x.yaml",
            ],
            "x.yaml: cannot read the management group file",
        ),
    ],
)
def test_main_returns_2_for_bad_files(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: ")


def test_rest_example_files_get_a_hint(azure_examples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = azure_examples / "containerservice" / "ManagedClustersGet.json"
    assert main(["explain", "--config", str(CONFIGS[0]), "--cluster", str(example)]) == EXIT_BAD_INPUT
    assert (
        "ManagedClustersGet.json: responses: this is an Azure REST API example file"
        in capsys.readouterr().err
    )


def test_management_group_file_must_map_to_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mgs = tmp_path / "mgs.json"
    mgs.write_text('{"9a7e4d21-0c3b-4e8f-a6d5-2b1c9f8e7d60": "mg-platform-prod"}')
    args = ["explain", "--config", str(EXAMPLES / "multi-region.yaml"), "--cluster", str(CLUSTERS[0])]
    assert main([*args, "--management-groups", str(mgs)]) == EXIT_BAD_INPUT
    assert "mgs.json: 9a7e4d21-0c3b-4e8f-a6d5-2b1c9f8e7d60: expected a list" in capsys.readouterr().err


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["explain", "--config", "x.yaml"])
    assert info.value.code == 2


def test_subcommand_registry() -> None:
    assert all(callable(getattr(module, "register", None)) for module in SUBCOMMANDS)
    help_text = build_parser().format_help()
    assert "explain" in help_text and "config" in help_text


def test_config_schema_command_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema == json.loads((ROOT / "docs" / "config.schema.json").read_text())


# --- a bare YAML key (null) is bad input, never "everything" ---

_SUB = "3f2b8c1e-6d4a-4f7b-9c2e-8a1d5e7f0b24"
_SA = f"/subscriptions/{_SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/stbackup01"
_SCOPE = f"scope:\n  subscriptions: [{_SUB}]\n"
_STORAGE = f"storage:\n  eastus: {_SA}\n"
BARE_KEYS: list[tuple[str, str]] = [
    (
        "selection.include",
        _SCOPE + _STORAGE + "selection:\n  include:\n    # - tag: aks-backup\n    #   values: [enabled]\n",
    ),
    (
        "selection.include[0].values",
        _SCOPE + _STORAGE + "selection:\n  include:\n    - tag: aks-backup\n      values:\n",
    ),
    ("scope.regions", _SCOPE + "  regions:\n    # - East US\n" + _STORAGE),
    ("selection.exclude", _SCOPE + _STORAGE + "selection:\n  exclude:\n"),
    ("selection", _SCOPE + _STORAGE + "selection:\n"),
    ("scope.managementGroups", _SCOPE + "  managementGroups:\n" + _STORAGE),
    ("scope.excludeSubscriptions", _SCOPE + "  excludeSubscriptions:\n" + _STORAGE),
    ("scope.resourceGroups", _SCOPE + "  resourceGroups:\n" + _STORAGE),
    ("storage", _SCOPE + "storage:\n"),
    ("extension.configurationSettings", _SCOPE + _STORAGE + "extension:\n  configurationSettings:\n"),
    (
        "remediation.policyAssignmentIds",
        _SCOPE + _STORAGE + "remediation:\n  mode: audit\n  policyAssignmentIds:\n",
    ),
]


@pytest.mark.parametrize(("field", "text"), BARE_KEYS, ids=[row[0] for row in BARE_KEYS])
def test_config_check_rejects_a_bare_key(
    tmp_path: Path, field: str, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(text)
    assert main(["config", "check", str(config)]) == EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"error: {config}: {field}: empty (null"), captured.err
    assert len(captured.err.strip().splitlines()) == 1


def test_config_check_bare_include_subprocess(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(BARE_KEYS[0][1])
    done = cli("config", "check", config)
    assert done.returncode == EXIT_BAD_INPUT
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert f"{config}: selection.include: empty (null" in done.stderr
    assert "remove the key to include every in-scope cluster" in done.stderr


# --- management groups decide, but explain cannot know the ancestry: bad input, never a silent answer ---

MULTI_REGION = EXAMPLES / "multi-region.yaml"
ARM64_ONLY = (
    EXAMPLES / "clusters" / "arm64-only.json"
)  # subscription 9a7e4d21-..., in scope only via mg-platform-prod


def test_explain_without_management_group_file_names_the_field() -> None:
    """The audit case: this used to print reason out-of-scope; with the file the answer is selected."""
    done = cli("explain", "--config", MULTI_REGION, "--cluster", ARM64_ONLY)
    assert done.returncode == EXIT_BAD_INPUT, done.stdout
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert f"{MULTI_REGION}: scope.managementGroups: " in done.stderr
    assert "--management-groups FILE" in done.stderr
    assert "9a7e4d21-0c3b-4e8f-a6d5-2b1c9f8e7d60" in done.stderr
    with_file = cli("explain", "--config", MULTI_REGION, "--cluster", ARM64_ONLY, "--management-groups", MGS)
    assert with_file.returncode == 0, with_file.stderr
    assert json.loads(with_file.stdout)["reason"] == "selected"


@pytest.mark.parametrize(
    ("cluster", "reason"),
    [
        ("tagged.json", "selected"),  # in scope through scope.subscriptions: no ancestry needed
        ("sandbox.json", "out-of-scope"),  # excludeSubscriptions decides before any management group
    ],
)
def test_explain_without_management_group_file_when_groups_do_not_decide(
    cluster: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["explain", "--config", str(MULTI_REGION), "--cluster", str(EXAMPLES / "clusters" / cluster)])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["reason"] == reason


def test_explain_with_a_management_group_file_missing_the_subscription(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mgs = tmp_path / "mgs.json"
    mgs.write_text('{"c4d5e6f7-1a2b-4c3d-8e9f-0a1b2c3d4e5f": ["mg-platform-prod"]}')
    args = [
        "explain",
        "--config",
        str(MULTI_REGION),
        "--cluster",
        str(ARM64_ONLY),
        "--management-groups",
        str(mgs),
    ]
    assert main(args) == EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"error: {mgs}: 9a7e4d21-0c3b-4e8f-a6d5-2b1c9f8e7d60: "), captured.err
    assert "not in the management group file" in captured.err
    # listed with no groups: a real answer, out of scope
    mgs.write_text('{"9A7E4D21-0C3B-4E8F-A6D5-2B1C9F8E7D60": []}')
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["reason"] == "out-of-scope"


def test_explain_with_policy_assignments_names_the_blocking_assignment_and_the_fix(tmp_path: Path) -> None:
    body = json.loads((EXAMPLES / "clusters" / "tagged.json").read_text())
    body["properties"]["addonProfiles"] = {"azurepolicy": {"enabled": True}}
    cluster = tmp_path / "gatekeeper.json"
    cluster.write_text(json.dumps(body))
    sub = body["id"].split("/")[2]
    assignment_id = f"/subscriptions/{sub}/providers/Microsoft.Authorization/policyAssignments/only-acr"
    assignments = tmp_path / "assignments.json"
    assignments.write_text(
        json.dumps(
            [
                {
                    "id": assignment_id,
                    "name": "only-acr",
                    "properties": {
                        "scope": f"/subscriptions/{sub}",
                        "policyDefinitionId": "/providers/Microsoft.Authorization/policyDefinitions/"
                        "febd0533-8e55-448f-b837-bd0e06f16469",
                        "parameters": {"allowedContainerImagesRegex": {"value": "^myacr/.+$"}},
                    },
                }
            ]
        )
    )
    args = ["explain", "--config", CONFIGS[0], "--cluster", cluster, "--management-groups", MGS]
    done = cli(*args, "--policy-assignments", assignments)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert list(answer) == [*KEYS, "findings"]
    (finding,) = answer["findings"]
    assert finding["severity"] == "block" and finding["evidence"]["assignmentName"] == "only-acr"
    assert "allowedContainerImagesRegex" in finding["remedy"]
    table = cli(*args, "--policy-assignments", assignments, "--output", "table")
    assert table.returncode == 0 and "only-acr" in table.stdout
    # offline answers without --policy-assignments keep their shape; --cluster-id reads Azure, not the file
    assert list(json.loads(cli(*args).stdout)) == KEYS
    live = ["explain", "--config", CONFIGS[0], "--cluster-id", body["id"]]
    refused = cli(*live, "--policy-assignments", assignments)
    assert refused.returncode == EXIT_BAD_INPUT and "--policy-assignments" in refused.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"name": "no-id"}]))
    invalid = cli(*args, "--policy-assignments", bad)
    assert invalid.returncode == EXIT_BAD_INPUT and "bad.json: [0]" in invalid.stderr
