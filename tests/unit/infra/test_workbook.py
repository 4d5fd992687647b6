"""The workbook's queries (infra/workbook/*.kql) read exactly the telemetry the code emits: every metric name,
span name and ``customDimensions`` key a query names is declared in remediator/core/telemetry_names.py (which
the adapter emits, tests/unit/test_telemetry.py), and every query file is deployed by Bicep and Terraform. A
query naming an undeclared metric or dimension fails here, so the two cannot drift."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from remediator.core import telemetry_names as names
from tests.fixtures.iac import INFRA

WORKBOOK = INFRA / "workbook"
QUERIES = sorted(WORKBOOK.glob("*.kql"))
TELEMETRY_STRING = re.compile(r"[\"'](remediator\.[a-z_.]+)[\"']")
DIMENSION = re.compile(r"customDimensions\[[\"']([^\"']+)[\"']\]")
TABLES = {"customMetrics": "metric", "dependencies": "span", "requests": "span"}


def telemetry_references(kql: str) -> dict[str, set[str]]:
    """Names a query reads: metric/span names in string literals and customDimensions keys."""
    body = "\n".join(line for line in kql.splitlines() if not line.strip().startswith("//"))
    table = body.strip().split("\n", 1)[0].strip()
    literals = set(TELEMETRY_STRING.findall(body))
    dimensions = set(DIMENSION.findall(body))
    return {"table": {table}, "literals": literals - dimensions, "dimensions": dimensions}


def drift(kql: str) -> list[str]:
    refs = telemetry_references(kql)
    (table,) = refs["table"]
    problems = []
    if table not in TABLES:
        problems.append(f"reads table {table!r}, not one the exporter writes ({sorted(TABLES)})")
    declared = names.METRIC_NAMES if TABLES.get(table) == "metric" else names.SPAN_NAMES
    problems += [f"{n!r} is not a declared {TABLES.get(table)} name" for n in refs["literals"] - declared]
    problems += [
        f"dimension {d!r} is not a declared attribute" for d in refs["dimensions"] - names.ATTRIBUTE_NAMES
    ]
    if not refs["literals"]:
        problems.append("names no metric or span")
    return problems


@pytest.mark.parametrize("query", QUERIES, ids=lambda p: p.name)
def test_every_query_reads_only_declared_telemetry(query: Path) -> None:
    assert drift(query.read_text()) == []


def test_the_workbook_covers_what_a_manager_asks_for() -> None:
    read = {name for q in QUERIES for name in telemetry_references(q.read_text())["literals"]}
    assert {names.METRIC_SWEEP_PROTECTED, names.METRIC_SWEEP_SELECTED} <= read  # protected share over time
    assert names.SPAN_RECONCILE in read  # clusters needing a human, gave-ups with causes
    assert names.METRIC_EVENT_TO_WRITE in read  # event -> write latency
    dims = {d for q in QUERIES for d in telemetry_references(q.read_text())["dimensions"]}
    assert {names.ATTR_OUTCOME, names.ATTR_WHY, names.ATTR_LINK, names.ATTR_CLUSTER_ID} <= dims


def test_the_drift_check_catches_a_renamed_metric_and_an_unknown_dimension() -> None:
    text = (WORKBOOK / "protected-share.kql").read_text()
    renamed = text.replace(names.METRIC_SWEEP_PROTECTED, "remediator.sweep.protected_clusters")
    assert drift(renamed) == ["'remediator.sweep.protected_clusters' is not a declared metric name"]
    text = (WORKBOOK / "gave-ups-by-cause.kql").read_text()
    assert drift(text.replace(names.ATTR_WHY, "remediator.reason")) == [
        "dimension 'remediator.reason' is not a declared attribute"
    ]


def test_layout_names_every_query_once_and_both_templates_embed_them(
    infra_templates: dict[Path, Any],
) -> None:
    layout = json.loads((WORKBOOK / "items.json").read_text())["items"]
    assert sorted(item["query"] for item in layout) == [q.name for q in QUERIES]
    bicep = infra_templates[Path("app/workbook.bicep")]["variables"]["queries"]["value"]
    assert {k.strip("'") for k in bicep} == {q.name for q in QUERIES}
    for key, value in bicep.items():
        call = value["function"]
        assert call["type"] == "load_text_content"
        assert call["parameters"]["file_path"] == f"../workbook/{key.strip(chr(39))}"
    terraform = (INFRA / "terraform" / "app.tf").read_text()
    assert 'file("${path.module}/../workbook/${item.query}")' in terraform
    assert "for item in local.workbook.items" in terraform
