"""The HTML coverage report in a real browser: Debian's headless Chromium, offline, opened from a file.

A generated estate of a few hundred clusters (20 subscriptions, 4 regions, every state) is rendered to a file
and opened; the tests read what the browser drew and compare it with the JSON document: no request leaves the
page, nothing logs an error, the donut and the bars are drawn with the right number of segments, sizes and
colours, every number on the page equals the document's, the need-a-human list is exactly the blocked and
gave-up clusters, sorting works on text (numeric-aware) and on numbers, and hostile strings stay text.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Page

from remediator.core.report_document import (
    NEEDS_A_HUMAN,
    STATES,
    ClusterRow,
    ConfigIdentity,
    MatchedRule,
    ReportDocument,
    build_document,
    to_dict,
)
from remediator.core.report_render import render_html
from remediator.core.report_render.assets import STATE_COLOURS
from tools.browser import PageLog, open_page
from tools.sample_report import sample_document

pytestmark = pytest.mark.browser

DOCUMENT = sample_document(clusters=312, subscriptions=20, regions=4, seed=14)
JSON = to_dict(DOCUMENT)


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_html(DOCUMENT), encoding="utf-8")
    return path


@pytest.fixture
def opened(report_file: Path) -> Iterator[tuple[Page, PageLog]]:
    with open_page(report_file) as (page, log):
        yield page, log
        # Whatever a test did, the page must never have reached past its own file or failed.
        assert log.foreign_requests == [] and log.blocked == [], log.requests
        assert log.page_errors == []
        assert log.console_errors == []


def texts(page: Page, selector: str) -> list[str]:
    result: list[str] = page.eval_on_selector_all(selector, "els => els.map(e => e.textContent.trim())")
    return result


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)


def natural(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def test_page_loads_offline_without_errors_or_requests(opened: tuple[Page, PageLog]) -> None:
    page, log = opened
    assert log.requests == [log.url]
    assert page.title() == "AKS backup coverage · 2026-12-05 10:00 UTC"
    assert page.eval_on_selector_all("img, iframe, link, object, embed", "els => els.length") == 0


def test_the_policy_itself_refuses_any_fetch(opened: tuple[Page, PageLog]) -> None:
    page, log = opened
    outcome = page.evaluate(
        """() => fetch("http://127.0.0.1:9/leak").then(() => "fetched", e => "refused: " + e.name)"""
    )
    assert outcome == "refused: TypeError"
    assert log.requests == [log.url]  # refused by the page's CSP before any request was made
    log.console.clear()  # the CSP violation this test provoked on purpose


def test_headline_numbers_equal_the_document(opened: tuple[Page, PageLog]) -> None:
    page, _ = opened
    totals = JSON["totals"]

    def metric(name: str) -> int:
        return int(page.text_content(f'[data-metric="{name}"]') or "")

    assert metric("totals.clusters") == totals["clusters"] == 312
    assert metric("totals.selected") == totals["selected"]
    assert metric("totals.extensionReady") == totals["extensionReady"]
    assert metric("totals.protected") == totals["protected"]
    assert metric("needAHuman") == totals["states"]["blocked"] + totals["states"]["gaveUp"]
    for state in STATES:
        assert metric(f"states.{state}") == totals["states"][state], state
    headline = page.text_content('[data-metric="headline"]') or ""
    assert headline.startswith(
        f"{totals['protected']} of {totals['selected']} selected clusters are protected"
    )


def test_donut_has_one_segment_per_state_sized_and_coloured(opened: tuple[Page, PageLog]) -> None:
    page, _ = opened
    states = JSON["totals"]["states"]
    segments = page.eval_on_selector_all(
        "svg.donut circle.donut-seg",
        """els => els.map(e => ({state: e.dataset.state, count: +e.dataset.count,
            dash: parseFloat(e.getAttribute('stroke-dasharray')), stroke: getComputedStyle(e).stroke,
            box: e.getBoundingClientRect().width}))""",
    )
    assert [s["state"] for s in segments] == [s for s in STATES if states[s]]
    assert len(segments) == sum(1 for s in STATES if states[s]) == 7
    total = JSON["totals"]["clusters"]
    for segment in segments:
        assert segment["count"] == states[segment["state"]]
        assert segment["dash"] == pytest.approx(100 * segment["count"] / total, abs=0.001)
        assert segment["stroke"] == "rgb({}, {}, {})".format(*rgb(STATE_COLOURS[segment["state"]]))
        assert segment["box"] > 0


def test_charts_are_drawn_in_pixels(opened: tuple[Page, PageLog]) -> None:
    page, _ = opened
    for selector in ("svg.donut", '[data-chart="bySubscription"] .bars'):
        picture = Image.open(io.BytesIO(page.locator(selector).screenshot())).convert("RGB")
        raw = picture.tobytes()
        pixels = list(zip(raw[0::3], raw[1::3], raw[2::3], strict=True))
        for state, colour in STATE_COLOURS.items():
            if not JSON["totals"]["states"][state]:
                continue
            target = rgb(colour)
            painted = sum(1 for p in pixels if max(abs(a - b) for a, b in zip(p, target, strict=True)) <= 6)
            assert painted > 20, (selector, state, painted)


@pytest.mark.parametrize("grouping", ["bySubscription", "byRegion", "byManagementGroup"])
def test_bars_match_each_group(opened: tuple[Page, PageLog], grouping: str) -> None:
    page, _ = opened
    groups = {g["key"]: g for g in JSON["groups"][grouping]}
    bars = page.eval_on_selector_all(
        f'svg.bar[data-group="{grouping}"]',
        """els => els.map(svg => ({key: svg.dataset.key, width: svg.getBoundingClientRect().width,
            rects: [...svg.querySelectorAll('rect')].map(r => ({state: r.dataset.state,
                count: +r.dataset.count, width: r.getBoundingClientRect().width,
                fill: getComputedStyle(r).fill}))}))""",
    )
    assert len(bars) == len(groups) and {b["key"] for b in bars} == set(groups)
    expected_count = {"bySubscription": 20, "byRegion": 4, "byManagementGroup": 3}[grouping]
    assert len(bars) == expected_count
    for bar in bars:
        group = groups[bar["key"]]
        nonzero = [s for s in STATES if group["states"][s]]
        assert [r["state"] for r in bar["rects"]] == nonzero
        assert sum(r["count"] for r in bar["rects"]) == group["total"]
        for rect in bar["rects"]:
            assert rect["count"] == group["states"][rect["state"]]
            assert rect["width"] == pytest.approx(bar["width"] * rect["count"] / group["total"], abs=1.0)
            assert rect["fill"] == "rgb({}, {}, {})".format(*rgb(STATE_COLOURS[rect["state"]]))
    shown = page.eval_on_selector_all(
        f'.bar-total[data-group="{grouping}"]',
        """els => els.map(e => [e.dataset.key, +e.querySelector('[data-metric=total]').textContent,
            +e.querySelector('[data-metric=protected]').textContent])""",
    )
    assert sorted(shown) == sorted([k, g["total"], g["states"]["protected"]] for k, g in groups.items())


def test_group_tables_show_the_documents_numbers(opened: tuple[Page, PageLog]) -> None:
    page, _ = opened
    for table, grouping in (("management-group-table", "byManagementGroup"), ("rule-table", "byRule")):
        rows = page.eval_on_selector_all(
            f"#{table} tbody tr",
            "rows => rows.map(r => [r.dataset.key, ...[...r.cells].slice(1, 9).map(c => +c.textContent)])",
        )
        expected = [
            [g["key"], g["total"], *(g["states"][s] for s in STATES)] for g in JSON["groups"][grouping]
        ]
        assert sorted(rows) == sorted(expected)


def test_role_assignment_headroom_shows_the_documents_numbers(opened: tuple[Page, PageLog]) -> None:
    page, _ = opened
    rows = page.eval_on_selector_all(
        "#headroom-table tbody tr",
        "rows => rows.map(r => [r.dataset.key, r.dataset.overflow, ...[...r.cells].slice(1, 5)"
        ".map(c => +c.textContent)])",
    )
    expected = [
        [
            h["subscriptionId"],
            str(h["overflow"]).lower(),
            h["existing"],
            h["needed"],
            h["limit"],
            h["headroom"],
        ]
        for h in JSON["roleAssignmentHeadroom"]
    ]
    assert rows and sorted(rows) == sorted(expected)
    assert "true" in {row[1] for row in rows}  # the sample's nearly full subscription overflows


def test_need_a_human_list_is_exactly_the_blocked_and_gave_up_clusters(opened: tuple[Page, PageLog]) -> None:
    page, _ = opened
    expected = {c["id"]: c for c in JSON["clusters"] if c["state"] in NEEDS_A_HUMAN}
    assert len(expected) == JSON["totals"]["states"]["blocked"] + JSON["totals"]["states"]["gaveUp"] > 10
    rows = page.eval_on_selector_all(
        "#need-a-human-table tbody tr",
        """rows => rows.map(r => ({id: r.dataset.id, state: r.dataset.state,
            name: r.querySelector('.cluster-name').textContent, why: r.cells[4].innerText,
            remedy: r.cells[5].innerText}))""",
    )
    assert len(rows) == len(expected) and {r["id"] for r in rows} == set(expected)
    for row in rows:
        cluster = expected[row["id"]]
        assert row["name"] == cluster["name"] and row["state"] == cluster["state"]
        if cluster["state"] == "blocked":
            assert row["why"].split("\n") == [b["code"] for b in cluster["blockers"]]
            assert row["remedy"].split("\n") == [b["remedy"] for b in cluster["blockers"]]
        else:
            assert row["why"] == cluster["cause"]
            assert row["remedy"] == cluster["nextAction"]
    states = [r["state"] for r in rows]
    assert states == sorted(states, key=STATES.index)  # blocked first, then gave up


def test_full_list_has_every_cluster(opened: tuple[Page, PageLog]) -> None:
    page, _ = opened
    rows = page.eval_on_selector_all(
        "#cluster-table tbody tr", "rows => rows.map(r => [r.dataset.id, r.dataset.state])"
    )
    assert sorted(rows) == sorted([c["id"], c["state"]] for c in JSON["clusters"])
    assert page.text_content("#cluster-shown") == "Showing all 312"


def header_button(page: Page, table: str, label: str) -> Any:
    return page.locator(f"#{table} thead th button", has_text=re.compile(f"^{re.escape(label)}$"))


def test_sorting_by_name_is_numeric_aware_both_ways(opened: tuple[Page, PageLog]) -> None:
    page, _ = opened
    names = [c["name"] for c in JSON["clusters"]]
    header_button(page, "cluster-table", "Cluster").click()
    ascending = texts(page, "#cluster-table tbody tr .cluster-name")
    assert ascending == sorted(names, key=natural)
    assert ascending != sorted(names)  # "…-98" before "…-100": plain string order would differ
    assert page.get_attribute("#cluster-table thead th:nth-child(1)", "aria-sort") == "ascending"
    header_button(page, "cluster-table", "Cluster").click()
    assert texts(page, "#cluster-table tbody tr .cluster-name") == ascending[::-1]
    assert page.get_attribute("#cluster-table thead th:nth-child(1)", "aria-sort") == "descending"


def test_sorting_by_state_follows_the_state_order(opened: tuple[Page, PageLog]) -> None:
    page, _ = opened
    header_button(page, "cluster-table", "State").click()
    states = page.eval_on_selector_all("#cluster-table tbody tr", "rows => rows.map(r => r.dataset.state)")
    assert states == sorted(states, key=STATES.index)
    assert page.get_attribute("#cluster-table thead th:nth-child(1)", "aria-sort") == "none"


def rule_document() -> ReportDocument:
    """Rules whose protected shares (7/10, 13/20, 1/3, 1/1, none selected) sort differently as text."""
    sub = "00000000-0000-0000-0000-0000000000bb"
    rows = []
    for tag, protected, other in (("A", 7, 3), ("B", 13, 7), ("C", 1, 2), ("D", 1, 0), ("E", 0, 2)):
        for i in range(protected + other):
            excluded = tag == "E"
            rows.append(
                ClusterRow(
                    id=f"/subscriptions/{sub}/resourceGroups/rg/providers/x/{tag}{i}",
                    name=f"aks-{tag}{i}",
                    subscription_id=sub,
                    resource_group="rg",
                    region="eastus",
                    selected=not excluded,
                    reason="excluded-by-tag" if excluded else "selected",
                    matched_rule=MatchedRule(kind="exclude" if excluded else "include", tag=tag, value="1"),
                    state="notSelected" if excluded else ("protected" if i < protected else "notStarted"),
                    extension_state="Succeeded" if i < protected and not excluded else None,
                    next_action="-",
                )
            )
    config = ConfigIdentity(source="rules.yaml", sha256="ef" * 32, mode="install")
    return build_document(generated_at="2026-12-05T10:00:00Z", config=config, clusters=rows)


def test_sorting_numbers_compares_them_as_numbers(tmp_path: Path) -> None:
    path = tmp_path / "rules.html"
    path.write_text(render_html(rule_document()), encoding="utf-8")
    with open_page(path) as (page, log):
        header_button(page, "rule-table", "Total").click()
        assert [int(t) for t in texts(page, "#rule-table tbody tr td:nth-child(2)")] == [1, 2, 3, 10, 20]
        header_button(page, "rule-table", "Protected %").click()
        shares = texts(page, "#rule-table tbody tr td:nth-child(10)")
        assert shares == ["-", "33%", "65%", "70%", "100%"]  # as text, "0.7" would sort before "0.65"
        header_button(page, "rule-table", "Protected %").click()
        assert texts(page, "#rule-table tbody tr td:nth-child(10)") == shares[::-1]
        assert log.console_errors == [] and log.page_errors == [] and log.foreign_requests == []


def test_filtering_by_state_and_text(opened: tuple[Page, PageLog]) -> None:
    page, _ = opened
    page.select_option("#state-filter", "blocked")
    visible = page.eval_on_selector_all(
        "#cluster-table tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.state)"
    )
    assert visible == ["blocked"] * JSON["totals"]["states"]["blocked"]
    assert page.text_content("#cluster-shown") == f"Showing {len(visible)} of 312"
    page.select_option("#state-filter", "")
    name = JSON["clusters"][7]["name"]
    page.fill("#cluster-filter", name.upper())
    assert texts(page, "#cluster-table tbody tr:not([hidden]) .cluster-name") == [name]


HOSTILE_VALUE = '</script><img src=x onerror="window.__pwned=1;alert(1)">'


def hostile_document() -> ReportDocument:
    sub = "00000000-0000-0000-0000-0000000000aa"
    rows = [
        ClusterRow(
            id=f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks-{i}",
            name=f"aks-{i}",
            subscription_id=sub,
            subscription_name='<script>window.__pwned=2</script>"><svg onload=alert(2)>',
            resource_group="rg",
            region="eastus",
            management_groups=('"><img src=x onerror=alert(3)>',),
            selected=True,
            reason="selected",
            matched_rule=MatchedRule(kind="include", tag="Backup", value=HOSTILE_VALUE),
            state=state,
            extension_state=None,
            cause=HOSTILE_VALUE if state == "gaveUp" else None,
            next_action="<a href=javascript:alert(4)>fix</a>",
        )
        for i, state in enumerate(("gaveUp", "notStarted"))
    ]
    config = ConfigIdentity(source=f"x{HOSTILE_VALUE}.yaml", sha256="cd" * 32, mode="audit")
    return build_document(generated_at="2026-12-05T10:00:00Z", config=config, clusters=rows)


def test_hostile_tag_values_render_as_text(tmp_path: Path) -> None:
    path = tmp_path / "hostile.html"
    path.write_text(render_html(hostile_document()), encoding="utf-8")
    with open_page(path) as (page, log):
        assert page.evaluate("() => window.__pwned") is None
        assert (
            page.eval_on_selector_all("img, a, body svg[onload], script", "els => els.length") == 1
        )  # our script
        rule_cells = texts(page, "#cluster-table tbody tr td:nth-child(5)")
        assert rule_cells == [f"include Backup={HOSTILE_VALUE}"] * 2
        cause = texts(page, "#need-a-human-table tbody tr td:nth-child(5)")
        assert cause == [HOSTILE_VALUE]
        assert (
            texts(page, "#cluster-table tbody tr td:nth-child(9)")
            == ["<a href=javascript:alert(4)>fix</a>"] * 2
        )
        assert log.page_errors == []  # no alert() dialog opened
        assert log.console_errors == []  # and the CSP had nothing to refuse: nothing tried to run
        assert log.foreign_requests == [] and log.blocked == []
