"""``explain`` shows the matched tag and value, takes ``az aks list -o json`` (a list, or an ARM list body)
and stdin; the refusal words of the command line are the HTTP API's."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from remediator.cli import EXIT_BAD_INPUT, main
from remediator.core.config import parse_config
from remediator.core.decision import decide
from remediator.core.ids import parse_cluster_id
from remediator.core.refusals import out_of_scope_message
from remediator.core.settings import Settings
from remediator.core.snapshot import ClusterSnapshot
from remediator.service.ports import HandlerContext
from remediator.service.triggers.http import handle_http_explain, handle_http_remediate
from tests.unit.test_cli import CLUSTERS, EXAMPLES, MGS

MULTI_REGION = EXAMPLES / "multi-region.yaml"


def az_flattened(body: dict[str, Any]) -> dict[str, Any]:
    """What ``az aks show/list -o json`` prints for a cluster: no ``properties`` wrapper, ``osSku``."""
    flat = {**{k: v for k, v in body.items() if k != "properties"}, **body.get("properties", {})}
    for pool in flat.get("agentPoolProfiles", []):
        if "osSKU" in pool:
            pool["osSku"] = pool.pop("osSKU")
    return flat


def bodies() -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in CLUSTERS]


def run(args: list[str], capsys: pytest.CaptureFixture[str], stdin: str | None = None) -> tuple[int, Any]:
    if stdin is not None:
        import sys

        old = sys.stdin
        sys.stdin = io.StringIO(stdin)
        try:
            code = main(args)
        finally:
            sys.stdin = old
    else:
        code = main(args)
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip().startswith(("{", "[")) else captured)


def test_a_list_from_az_aks_list_gives_a_decision_per_cluster_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = tmp_path / "clusters.json"
    listing.write_text(json.dumps([az_flattened(body) for body in bodies()]))
    base = ["explain", "--config", str(MULTI_REGION), "--management-groups", str(MGS)]
    code, decisions = run([*base, "--cluster", str(listing)], capsys)
    assert code == 0
    assert [d["clusterId"] for d in decisions] == [parse_cluster_id(b["id"]).canonical for b in bodies()]
    for path, decision in zip(CLUSTERS, decisions, strict=True):
        code, single = run([*base, "--cluster", str(path)], capsys)
        assert code == 0 and single == decision  # the flattened az form decides like the ARM body


def test_stdin_and_an_arm_list_body(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["explain", "--config", str(MULTI_REGION), "--management-groups", str(MGS), "--cluster", "-"]
    code, decisions = run(base, capsys, stdin=json.dumps({"value": bodies(), "nextLink": None}))
    assert code == 0 and len(decisions) == len(CLUSTERS)
    code, one = run(base, capsys, stdin=(EXAMPLES / "clusters" / "tagged.json").read_text())
    assert code == 0 and one["reason"] == "selected"


def test_matched_tag_and_value_not_an_index(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["explain", "--config", str(MULTI_REGION), "--management-groups", str(MGS), "--cluster"]
    code, decision = run([*base, str(EXAMPLES / "clusters" / "csi-disabled.json")], capsys)
    assert code == 0
    assert decision["rule"] == "include[1]"
    assert decision["matchedRule"] == {
        "kind": "include",
        "tag": "environment",
        "value": "Production",
        "pattern": "prod*",
    }
    code, decision = run([*base, str(EXAMPLES / "clusters" / "excluded.json")], capsys)
    assert decision["reason"] == "excluded-by-tag"
    assert decision["matchedRule"]["kind"] == "exclude"
    code, decision = run([*base, str(EXAMPLES / "clusters" / "untagged.json")], capsys)
    assert decision["rule"] is None and decision["matchedRule"] is None


def test_matched_rule_for_an_entry_without_values_and_for_exclude_wins() -> None:
    config = parse_config(
        {
            "scope": {"subscriptions": ["3f2b8c1e-6d4a-4f7b-9c2e-8a1d5e7f0b24"]},
            "storage": {"eastus": "/subscriptions/3f2b8c1e-6d4a-4f7b-9c2e-8a1d5e7f0b24/resourceGroups/r"
                        "/providers/Microsoft.Storage/storageAccounts/stbackup01"},
            "selection": {"include": [{"tag": "team"}], "exclude": [{"tag": "backup", "values": ["n*"]}]},
        }
    )  # fmt: skip
    body = json.loads((EXAMPLES / "clusters" / "tagged.json").read_text())
    body["tags"] = {"Team": "payments"}
    hit = decide(ClusterSnapshot.from_arm(body), config).matched
    assert hit is not None and (hit.kind, hit.tag, hit.value, hit.pattern) == (
        "include",
        "Team",
        "payments",
        None,
    )
    assert str(hit) == "include Team=payments"
    body["tags"] = {"Team": "payments", "BACKUP": "No"}
    hit = decide(ClusterSnapshot.from_arm(body), config).matched
    assert hit is not None and (hit.kind, hit.tag, hit.value, hit.pattern) == (
        "exclude",
        "BACKUP",
        "No",
        "n*",
    )


def test_an_empty_list_and_a_bad_element_name_the_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = tmp_path / "clusters.json"
    listing.write_text("[]")
    args = ["explain", "--config", str(MULTI_REGION), "--cluster", str(listing)]
    assert main(args) == EXIT_BAD_INPUT
    assert "the list of clusters is empty" in capsys.readouterr().err
    good = bodies()[0]
    listing.write_text(json.dumps([good, {"id": "/subscriptions/nope", "location": "eastus"}]))
    assert main([*args, "--management-groups", str(MGS)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith(f"error: {listing}: [1]: id: ") and err.count("\n") == 1


def test_cluster_and_cluster_id_are_exclusive() -> None:
    with pytest.raises(SystemExit) as info:
        main(["explain", "--config", str(MULTI_REGION), "--cluster", "x.json", "--cluster-id", "/x"])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        main(["explain", "--config", str(MULTI_REGION)])


# --- the refusal words: the CLI's exit 9 says what the HTTP API's 403 says ---


class _Recorder:
    def __init__(self) -> None:
        self.reports: list[Any] = []

    def record(self, report: Any) -> None:
        self.reports.append(report)


def _context() -> HandlerContext:
    config = parse_config(
        {
            "scope": {"subscriptions": ["3f2b8c1e-6d4a-4f7b-9c2e-8a1d5e7f0b24"]},
            "storage": {"eastus": "/subscriptions/3f2b8c1e-6d4a-4f7b-9c2e-8a1d5e7f0b24/resourceGroups/r"
                        "/providers/Microsoft.Storage/storageAccounts/stbackup01"},
        }
    )  # fmt: skip
    settings = Settings.from_env({"REMEDIATOR_TENANT_ID": "t", "REMEDIATOR_CONFIG_JSON": "{}"})
    unused: Any = None
    return HandlerContext(
        settings=settings,
        config=config,
        reconciler=unused,
        work=unused,
        outcomes=_Recorder(),
        policy_order=unused,
        inventory=unused,
        sweeper=unused,
        make_sweeper=unused,
    )


OUTSIDE = (
    "/subscriptions/9a7e4d21-0c3b-4e8f-a6d5-2b1c9f8e7d60/resourceGroups/rg-x/providers/"
    "Microsoft.ContainerService/managedClusters/aks-x"
)


def test_out_of_scope_words_are_the_http_403s() -> None:
    body = json.dumps({"clusterId": OUTSIDE}).encode()
    for result in (
        handle_http_remediate(body, {}, ctx=_context()),
        handle_http_explain(body, ctx=_context()),
    ):
        assert result.status == 403
        assert result.body["message"] == out_of_scope_message(parse_cluster_id(OUTSIDE))
