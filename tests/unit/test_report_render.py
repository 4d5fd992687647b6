"""The report renderers on edge cases: an empty estate, one cluster, unicode and hostile names, missing
optional fields, CSV quoting and formula injection, terminal control characters, and a self-contained page."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest

from remediator.core.errors import UserInputError
from remediator.core.report_document import (
    STATES,
    Blocker,
    ClusterRow,
    ConfigIdentity,
    MatchedRule,
    ReportDocument,
    build_document,
    from_json,
)
from remediator.core.report_render import (
    CSV_COLUMNS,
    FILE_SUFFIXES,
    FORMATS,
    MEDIA_TYPES,
    parse_format,
    render,
    render_csv,
    render_html,
    render_table,
)
from remediator.core.report_render.assets import CSS, JS
from remediator.core.report_render.common import cell_width, one_line, percent
from remediator.core.report_render.html import CONTENT_SECURITY_POLICY, esc
from remediator.core.report_render.text import neutralise_formula
from tools.sample_report import sample_document

CONFIG = ConfigIdentity(source="remediator.yaml", sha256="0123456789abcdef" * 4, mode="install")
SUB = "00000000-0000-0000-0000-000000000001"
CLUSTER_TYPE = "Microsoft.ContainerService/managedClusters"
HOSTILE = '</script><img src=x onerror="alert(1)">'


def row(name: str, **overrides: Any) -> ClusterRow:
    fields: dict[str, Any] = {
        "id": f"/subscriptions/{SUB}/resourceGroups/rg/providers/{CLUSTER_TYPE}/{name}",
        "name": name,
        "subscription_id": SUB,
        "resource_group": "rg",
        "region": "eastus",
        "selected": True,
        "reason": "selected",
        "state": "protected",
        "next_action": "None: protected",
        "extension_state": "Succeeded",
    }
    fields.update(overrides)
    return ClusterRow(**fields)


def doc(*rows: ClusterRow, source: str = "remediator.yaml") -> ReportDocument:
    config = ConfigIdentity(source=source, sha256=CONFIG.sha256, mode="install")
    return build_document(generated_at="2026-12-05T11:00:00+01:00", config=config, clusters=rows)


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


# --- every format -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_estate_renders_in_every_format(fmt: str) -> None:
    text = render(doc(), fmt)
    assert text
    if fmt == "json":
        assert from_json(text) == doc()
    if fmt == "csv":
        assert csv_rows(text) == [[name for name, _ in CSV_COLUMNS]]
    if fmt == "table":
        assert "Need a human first (0)\n(none)" in text and "Clusters (0)\n(none)" in text
    if fmt == "html":
        assert "No clusters in scope." in text and 'id="cluster-table"' not in text


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_cluster_renders_in_every_format(fmt: str) -> None:
    text = render(doc(row("aks-solo")), fmt)
    assert "aks-solo" in text


def test_format_names_and_media_types() -> None:
    assert FORMATS == ("json", "table", "csv", "html")
    assert set(MEDIA_TYPES) == set(FILE_SUFFIXES) == set(FORMATS)
    assert parse_format(" HTML ") == "html"
    with pytest.raises(UserInputError) as caught:
        parse_format("pdf", field="query.format")
    assert caught.value.field == "query.format"
    assert "use one of json, table, csv, html" in str(caught.value)


def test_renderers_are_deterministic() -> None:
    document = sample_document(clusters=80)
    for fmt in FORMATS:
        assert render(document, fmt) == render(document, fmt)


def test_generated_at_is_shown_in_utc() -> None:
    document = doc(row("a"))
    assert "generated 2026-12-05 10:00 UTC" in render_table(document)
    assert "2026-12-05 10:00 UTC" in render_html(document)


def test_percentages_round_down_and_never_claim_full_coverage_early() -> None:
    assert percent(299, 300) == "99%"
    assert percent(300, 300) == "100%"
    assert percent(1, 1000) == "<1%"
    assert percent(0, 5) == "0%"
    assert percent(0, 0) == "-"


# --- missing optional fields --------------------------------------------------------------------------------


def test_missing_optional_fields_render_as_blanks() -> None:
    bare = row("aks-bare", state="notStarted", extension_state=None, next_action="The next sweep starts it")
    document = doc(bare)
    table = render_table(document)
    assert "aks-bare" in table and "Not started" in table
    records = list(csv.DictReader(io.StringIO(render_csv(document), newline="")))
    assert records[0]["subscriptionName"] == ""
    assert records[0]["matchedRuleKind"] == records[0]["extensionState"] == records[0]["cause"] == ""
    page = render_html(document)
    cells = page[page.index('id="cluster-table"') :]
    cells = re.sub(r"<[^>]+>", "|", cells[cells.index("<tbody>") : cells.index("</tbody>")])
    assert "None" not in cells and "null" not in cells
    assert "|–|" in cells  # an en dash stands for the missing extension state
    assert SUB in page  # the subscription id stands in for the missing display name


# --- CSV ----------------------------------------------------------------------------------------------------


def test_csv_columns_are_stable_and_documented() -> None:
    header = csv_rows(render_csv(sample_document(clusters=5)))[0]
    assert header == [
        "name",
        "state",
        "subscriptionName",
        "subscriptionId",
        "resourceGroup",
        "region",
        "managementGroups",
        "selected",
        "reason",
        "matchedRuleKind",
        "matchedRuleTag",
        "matchedRuleValue",
        "extensionState",
        "protectionState",
        "blockers",
        "remedies",
        "cause",
        "nextAction",
        "id",
        "protectedBy",  # appended (protect mode's protected elsewhere): no column moved
    ]


def test_csv_has_one_row_per_cluster_in_document_order() -> None:
    document = sample_document(clusters=50)
    rows = csv_rows(render_csv(document))[1:]
    assert [r[0] for r in rows] == [c.name for c in document.clusters]
    assert {r[1] for r in rows} <= set(STATES)


def test_csv_quotes_per_rfc_4180_with_crlf() -> None:
    tricky = row(
        "aks-1",
        subscription_name='Payments, "Prod"',
        cause=None,
        next_action="line one\nline two",
        management_groups=("mg-a", "mg-b"),
        blockers=(Blocker(code="cluster-stopped", kind="long-lived", remedy="Start it; then wait"),),
        state="waiting",
    )
    text = render_csv(doc(tricky))
    assert text.endswith("\r\n")
    assert text.count("\r\n") == 2 + 0  # header, one record; the embedded line break stays inside quotes
    assert '"Payments, ""Prod"""' in text
    assert '"line one\nline two"' in text
    record = list(csv.DictReader(io.StringIO(text, newline="")))[0]
    assert record["subscriptionName"] == 'Payments, "Prod"'
    assert record["nextAction"] == "line one\nline two"
    assert record["managementGroups"] == "mg-a; mg-b"
    assert record["blockers"] == "cluster-stopped"
    assert record["remedies"] == "Start it; then wait"
    assert record["selected"] == "true"


@pytest.mark.parametrize(
    "value",
    [
        '=HYPERLINK("http://evil.example","x")',
        "+1+1",
        "-2+3",
        "@SUM(A1:A2)",
        "\t=1",
        "\r=1",
        "  =cmd|' /C calc'!A0",
        "\uff1d1+1",
    ],
)
def test_csv_neutralises_formulas_in_every_cell(value: str) -> None:
    hostile = row(
        "aks-1",
        subscription_name=value,
        matched_rule=MatchedRule(kind="include", tag="Backup", value=value),
        next_action=value,
    )
    record = list(csv.DictReader(io.StringIO(render_csv(doc(hostile)), newline="")))[0]
    for column in ("subscriptionName", "matchedRuleValue", "nextAction"):
        assert record[column] == "'" + value, column


def test_csv_leaves_ordinary_cells_alone() -> None:
    for value in ("aks-1", "", "a=b", "1-2", "'quoted", "eastus"):
        assert neutralise_formula(value) == value


def test_csv_keeps_unicode() -> None:
    text = render_csv(doc(row("aks-ünïcødé", subscription_name="財務 本番")))
    record = list(csv.DictReader(io.StringIO(text, newline="")))[0]
    assert record["name"] == "aks-ünïcødé" and record["subscriptionName"] == "財務 本番"


# --- table --------------------------------------------------------------------------------------------------


def test_table_aligns_columns_like_az() -> None:
    document = doc(row("aks-a"), row("aks-much-longer-name", state="blocked", extension_state=None))
    lines = render_table(document).splitlines()
    start = lines.index("Clusters (2)")
    header, rule, first, second = lines[start + 1 : start + 5]
    assert header.startswith("Name                  State")
    assert rule.startswith("--------------------  ---------  ")
    assert first.startswith("aks-a                 Protected  ")
    assert second.startswith("aks-much-longer-name  Blocked    ")


def test_table_counts_wide_characters_as_two_columns() -> None:
    document = doc(row("クラスタ", subscription_name="本番"), row("aks-b"))
    lines = render_table(document).splitlines()
    start = lines.index("Clusters (2)")
    header, _, first, second = lines[start + 1 : start + 5]
    state_column = cell_width(header[: header.index("State")])
    assert cell_width(first[: first.index("Protected")]) == state_column
    assert cell_width(second[: second.index("Protected")]) == state_column


def test_table_neutralises_terminal_control_sequences() -> None:
    evil = row(
        "aks-1",
        subscription_name="\x1b[2J\x1b[31mPWNED",
        next_action="ok\rREWRITTEN",
        matched_rule=MatchedRule(kind="include", tag="Backup", value="\u202eoy"),
    )
    text = render_table(doc(evil))
    assert "\x1b" not in text and "\r" not in text and "\u202e" not in text
    assert "\ufffd[2J" in text and "ok\ufffdREWRITTEN" in text
    assert one_line("a\nb\tc") == "a\ufffdb\ufffdc"


def test_table_totals_and_states_match_the_document() -> None:
    document = sample_document(clusters=150)
    text = render_table(document)
    totals = document.totals
    summary = text.splitlines()[5]
    assert summary.split()[:2] == [str(totals.clusters), str(totals.selected)]
    for state, count in totals.states.items():
        label = {"gaveUp": "Gave up", "notStarted": "Not started", "notSelected": "Not selected"}.get(
            state, state.capitalize()
        )
        assert re.search(rf"^{label} +{count} ", text, re.M), state


# --- HTML ---------------------------------------------------------------------------------------------------


def test_html_escapes_everything_from_the_document() -> None:
    evil = row(
        "aks-evil",
        subscription_name=f"<script>alert('sub')</script>{HOSTILE}",
        resource_group='rg"><svg onload=alert(1)>',
        matched_rule=MatchedRule(kind="include", tag="Backup", value=HOSTILE),
        management_groups=("mg-<b>bold</b>",),
        state="gaveUp",
        extension_state="Failed",
        cause=f"boom {HOSTILE}",
        next_action="<a href=javascript:alert(1)>click</a>",
    )
    page = render_html(doc(evil, source=f"evil{HOSTILE}.yaml"))
    for raw in (HOSTILE, "<script>alert", "<svg onload", "<b>bold</b>", "<a href=javascript", 'onerror="'):
        assert raw not in page, raw
    assert esc(HOSTILE) in page
    assert page.count("<script>") == 1  # the page's own script, nothing else
    assert "&lt;/script&gt;&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page


def test_html_is_self_contained() -> None:
    page = render_html(sample_document(clusters=60))
    assert not re.search(r"\b(src|href|srcset|action|poster|data)\s*=", page, re.I)
    assert "http://" not in page and "https://" not in page
    assert "@import" not in page and "url(" not in page
    assert page.count("<style>") == 1 and page.count("<script>") == 1


def test_html_csp_forbids_every_fetch_and_allows_only_its_own_style_and_script() -> None:
    page = render_html(doc(row("a")))
    assert f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">' in page
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["connect-src"] == directives["img-src"] == directives["font-src"] == "'none'"
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert f"<style>{CSS}</style>" in page and f"<script>{JS}</script>" in page


def test_html_shows_unicode_names_as_they_are() -> None:
    page = render_html(doc(row("aks-ünïcødé", subscription_name="財務 本番 🚀")))
    assert "aks-ünïcødé" in page and "財務 本番 🚀" in page
    assert '<meta charset="utf-8">' in page


def test_html_draws_one_segment_per_nonzero_state_and_one_bar_per_group() -> None:
    document = sample_document(clusters=200)
    page = render_html(document)
    nonzero = sum(1 for _, n in document.totals.states.items() if n)
    assert page.count('class="donut-seg ') == nonzero
    for name, groups in (
        ("bySubscription", document.groups.by_subscription),
        ("byRegion", document.groups.by_region),
    ):
        assert page.count(f'<svg class="bar" data-group="{name}"') == len(groups)
    rects = re.findall(r'<rect class="s-(\w+)" data-state="\1" data-count="(\d+)"', page)
    expected = sum(
        1
        for groups in (
            document.groups.by_subscription,
            document.groups.by_region,
            document.groups.by_management_group,
        )
        for g in groups
        for _, n in g.states.items()
        if n
    )
    assert len(rects) == expected


def test_html_lists_every_cluster_and_who_needs_a_human() -> None:
    document = sample_document(clusters=120)
    page = render_html(document)
    cluster_table = page[page.index('id="cluster-table"') :]
    assert cluster_table.count("<tr data-state=") == len(document.clusters)
    human = page[page.index('id="need-a-human-table"') : page.index('id="cluster-table"')]
    assert human.count("<tr data-state=") == len(document.needs_a_human) > 0


def test_role_assignment_headroom_shows_in_the_table_and_the_page_not_the_csv() -> None:
    document = sample_document(clusters=60)
    [room, full] = sorted(document.role_assignment_headroom, key=lambda h: h.existing)
    assert not room.overflow and full.overflow
    table = render(document, "table")
    assert "Role assignments per subscription" in table and "no: overflows" in table
    page = render(document, "html")
    rows = re.findall(r'<tr data-key="([^"]+)" data-overflow="(true|false)">', page)
    assert sorted(rows) == sorted((h.subscription_id, str(h.overflow).lower()) for h in (room, full))
    assert 'id="headroom-table"' in page
    assert "Role assignments" not in render(document, "csv")
    bare = build_document(generated_at="2026-12-05T10:00:00Z", config=document.config, clusters=[])
    assert "Role assignments per subscription" not in render(bare, "table")
    assert 'id="headroom"' not in render(bare, "html")
