"""The report as one self-contained HTML page a manager can open: charts, who needs a human, every cluster.

Everything the page shows is drawn here, on the server side, as HTML and inline SVG: the state donut, stacked
bars by region and by subscription, the need-a-human table, the management-group and rule tables and the full
cluster list. The inline script only sorts tables (click a header; numbers compare as numbers, text with a
numeric-aware collation, ties keep document order) and filters the cluster list; without it the page still
reads in full.

Nothing leaves the page: no CDN, font, image or script is fetched, and the Content-Security-Policy
(``default-src 'none'``, the stylesheet and script allowed only by hash) makes the browser refuse any fetch.
Every string from the document is escaped (:func:`html.escape`, quotes included) and stripped of control and
bidi characters, because cluster names, tags and subscription names are written by whoever controls a
subscription.

Stable hooks for tests and tools: ``data-metric`` on each headline number, ``data-chart`` on each chart,
``data-state`` and ``data-count`` on each drawn segment, ``data-group``/``data-key`` on each bar row, and the
table ids ``need-a-human-table``, ``cluster-table``, ``management-group-table`` and ``rule-table``.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable, Sequence
from typing import Final

from remediator.core.report_document import (
    STATE_LABELS,
    STATE_MEANINGS,
    STATES,
    ClusterRow,
    ClusterState,
    Group,
    ReportDocument,
    StateCounts,
)
from remediator.core.report_render.assets import CSS, JS
from remediator.core.report_render.common import (
    blocker_codes,
    generated_at_text,
    needs_a_human_ordered,
    one_line,
    percent,
    rule_text,
    short_sha,
    subscription_text,
    why_text,
)

_STATE_RANK: Final = {state: rank for rank, state in enumerate(STATES)}
_DONUT_RADIUS: Final = 15.91549430918954
"""A circle of circumference 100, so a segment's dash length is its percentage."""


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


CONTENT_SECURITY_POLICY: Final = (
    f"default-src 'none'; style-src {_csp_hash(CSS)}; script-src {_csp_hash(JS)}; img-src 'none'; "
    "font-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'"
)
"""Nothing may be fetched, and only this module's own stylesheet and script may apply or run."""


def esc(text: object) -> str:
    """``text`` safe in HTML text and quoted attributes: control/bidi characters replaced, markup escaped."""
    return html.escape(one_line(str(text)), quote=True)


def _num(value: float) -> str:
    """A number for an SVG attribute: short, no exponent."""
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"


def _badge(state: ClusterState) -> str:
    return f'<span class="badge s-{state}">{esc(STATE_LABELS[state])}</span>'


def _selected_in(states: StateCounts) -> int:
    return states.total - states.not_selected


# --- headline ----------------------------------------------------------------------------------------------


def _masthead(document: ReportDocument) -> str:
    totals = document.totals
    human = len(document.needs_a_human)
    headline = (
        f"{totals.protected} of {totals.selected} selected clusters are protected "
        f"({percent(totals.protected, totals.selected)}); "
        f"{human} {'needs' if human == 1 else 'need'} a human first."
        if totals.selected
        else "No cluster in scope is selected by the tag rules."
    )
    config = document.config
    return (
        '<header class="masthead"><div class="inner">'
        "<h1>AKS backup coverage</h1>"
        f'<p class="meta">Generated <time datetime="{esc(document.generated_at)}">'
        f"{esc(generated_at_text(document))}</time> · config <code>{esc(config.source)}</code> "
        f'· sha256 <code title="{esc(config.sha256)}">{esc(short_sha(document))}</code> '
        f"· mode <code>{esc(config.mode)}</code> · report version {document.report_version}</p>"
        f'<p class="headline" data-metric="headline">{esc(headline)}</p>'
        "</div></header>"
    )


def _kpi(css: str, metric: str, value: int, label: str, sub: str = "") -> str:
    sub_html = f'<span class="kpi-sub">{esc(sub)}</span>' if sub else ""
    return (
        f'<div class="kpi {css}"><span class="kpi-label">{esc(label)}</span>'
        f'<span class="kpi-value" data-metric="{metric}">{value}</span>{sub_html}</div>'
    )


def _kpis(document: ReportDocument) -> str:
    totals = document.totals
    human = len(document.needs_a_human)
    return (
        '<section class="kpis" aria-label="Totals">'
        + _kpi(
            "",
            "totals.clusters",
            totals.clusters,
            "Clusters in scope",
            f"{totals.states.not_selected} not selected",
        )
        + _kpi(
            "k-selected",
            "totals.selected",
            totals.selected,
            "Selected by the tag rules",
            f"{percent(totals.selected, totals.clusters)} of the estate",
        )
        + _kpi(
            "k-ready",
            "totals.extensionReady",
            totals.extension_ready,
            "Extension ready",
            f"{percent(totals.extension_ready, totals.selected)} of selected (Policy 1)",
        )
        + _kpi(
            "k-protected",
            "totals.protected",
            totals.protected,
            "Protected",
            f"{percent(totals.protected, totals.selected)} of selected (Policy 2)",
        )
        + _kpi(
            "k-human",
            "needAHuman",
            human,
            "Need a human",
            f"{totals.states.blocked} blocked · {totals.states.gave_up} gave up",
        )
        + "</section>"
    )


# --- charts ------------------------------------------------------------------------------------------------


def _donut(document: ReportDocument) -> str:
    states = document.totals.states
    total = states.total
    segments = []
    offset = 0.0
    for state, count in states.items():
        if count == 0:
            continue
        share = 100.0 * count / total
        segments.append(
            f'<circle class="donut-seg s-{state}" data-state="{state}" data-count="{count}" cx="21" cy="21" '
            f'r="{_DONUT_RADIUS}" fill="none" stroke-width="6" '
            f'stroke-dasharray="{_num(share)} {_num(100 - share)}" stroke-dashoffset="{_num(25 - offset)}">'
            f"<title>{esc(STATE_LABELS[state])}: {count} ({percent(count, total)})</title></circle>"
        )
        offset += share
    totals = document.totals
    legend = "".join(
        f'<li data-state="{state}"><span class="swatch s-{state}"></span>'
        f'<span title="{esc(STATE_MEANINGS[state])}">{esc(STATE_LABELS[state])}</span>'
        f'<b data-metric="states.{state}">{count}</b><span class="pct">{percent(count, total)}</span></li>'
        for state, count in states.items()
    )
    label = "Clusters by state: " + ", ".join(f"{STATE_LABELS[s]} {n}" for s, n in states.items())
    return (
        '<figure class="card" data-chart="byState"><h2>Clusters by state</h2>'
        '<div class="donut-wrap">'
        f'<svg class="donut" viewBox="0 0 42 42" role="img" aria-label="{esc(label)}">'
        f'<circle class="donut-ring" cx="21" cy="21" r="{_DONUT_RADIUS}" fill="none" stroke-width="6">'
        "</circle>"
        + "".join(segments)
        + f'<text class="donut-big" x="21" y="22" text-anchor="middle" data-metric="donut.protectedShare">'
        f"{esc(percent(totals.protected, totals.selected))}</text>"
        '<text class="donut-small" x="21" y="26.6" text-anchor="middle">of selected</text>'
        '<text class="donut-small" x="21" y="30.2" text-anchor="middle">protected</text>'
        f'</svg><ul class="legend">{legend}</ul></div></figure>'
    )


def _state_keys() -> str:
    return (
        '<ul class="keys" aria-hidden="true">'
        + "".join(f'<li><span class="swatch s-{s}"></span>{esc(STATE_LABELS[s])}</li>' for s in STATES)
        + "</ul>"
    )


def _ordered(groups: Sequence[Group]) -> list[Group]:
    """Largest first, then by label: the bars a manager reads first are the ones that matter most."""
    return sorted(groups, key=lambda g: (-g.total, g.label.lower(), g.key))


def _bar_rows(name: str, groups: Sequence[Group]) -> str:
    rows = []
    for group in _ordered(groups):
        x = 0.0
        rects = []
        for state, count in group.states.items():
            if count == 0:
                continue
            width = 100.0 * count / group.total
            rects.append(
                f'<rect class="s-{state}" data-state="{state}" data-count="{count}" x="{_num(x)}" y="0" '
                f'width="{_num(width)}" height="10"><title>{esc(group.label)}: {esc(STATE_LABELS[state])} '
                f"{count} ({percent(count, group.total)})</title></rect>"
            )
            x += width
        selected = _selected_in(group.states)
        aria = (
            group.label + ": " + (", ".join(f"{STATE_LABELS[s]} {n}" for s, n in group.states.items() if n))
        )
        title = group.label if group.label == group.key else f"{group.label} ({group.key})"
        rows.append(
            f'<div class="bar-label" data-group="{name}" data-key="{esc(group.key)}" title="{esc(title)}">'
            f"{esc(group.label)}</div>"
            f'<svg class="bar" data-group="{name}" data-key="{esc(group.key)}" viewBox="0 0 100 10" '
            f'preserveAspectRatio="none" role="img" aria-label="{esc(aria)}">' + "".join(rects) + "</svg>"
            f'<div class="bar-total" data-group="{name}" data-key="{esc(group.key)}">'
            f'<b data-metric="total">{group.total}</b> clusters · '
            f'<b data-metric="protected">{group.states.protected}</b> protected '
            f"({percent(group.states.protected, selected)} of {selected} selected)</div>"
        )
    return "".join(rows)


def _bar_chart(name: str, title: str, groups: Sequence[Group], *, keys: bool = True) -> str:
    body = (
        f'<div class="bars">{_bar_rows(name, groups)}</div>'
        if groups
        else '<p class="empty">None in this report.</p>'
    )
    return (
        f'<div class="chart" data-chart="{name}">'
        f'<h2>{esc(title)} <span class="count">({len(groups)})</span></h2>'
        f"{_state_keys() if keys else ''}{body}</div>"
    )


# --- tables ------------------------------------------------------------------------------------------------


def _th(label: str, *, numeric: bool = False, sortable: bool = True) -> str:
    css = ' class="num"' if numeric else ""
    if not sortable:
        return f'<th scope="col"{css}>{esc(label)}</th>'
    return f'<th scope="col"{css} aria-sort="none"><button type="button">{esc(label)}</button></th>'


def _td(text: str, *, css: str = "", sort: str | None = None, title: str | None = None) -> str:
    attrs = f' class="{css}"' if css else ""
    if sort is not None:
        attrs += f' data-sort="{esc(sort)}"'
    if title:
        attrs += f' title="{esc(title)}"'
    return f"<td{attrs}>{text}</td>"


def _state_td(state: ClusterState) -> str:
    return _td(_badge(state), sort=f"{_STATE_RANK[state]}")


def _table(table_id: str, css: str, headers: Iterable[str], rows: Iterable[str], caption: str) -> str:
    return (
        f'<div class="table-wrap"><table id="{table_id}" class="sortable {css}">'
        f'<caption class="muted" hidden>{esc(caption)}</caption>'
        f"<thead><tr>{''.join(headers)}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _cluster_td(cluster: ClusterRow) -> str:
    """The cluster's name, with its resource group underneath; sorts by name."""
    return _td(
        f'<span class="cluster-name">{esc(cluster.name)}</span>'
        f'<span class="rg">{esc(cluster.resource_group)}</span>',
        css="name",
        sort=cluster.name,
        title=cluster.id,
    )


def _lines(items: Sequence[str]) -> str:
    """Each item on its own line inside one cell."""
    return "".join(f"<div>{item}</div>" for item in items)


def _need_a_human(document: ReportDocument) -> str:
    clusters = needs_a_human_ordered(document)
    if clusters:
        rows = [
            f'<tr data-state="{c.state}" data-id="{esc(c.id)}">'
            + _cluster_td(c)
            + _state_td(c.state)
            + _td(esc(subscription_text(c)), title=c.subscription_id)
            + _td(esc(c.region))
            + _td(
                _lines(
                    [f"<code>{esc(b.code)}</code>" for b in c.blockers] + ([esc(c.cause)] if c.cause else [])
                ),
                css="why lines",
                sort=why_text(c),
            )
            + _td(_lines([esc(b.remedy) for b in c.blockers] or [esc(c.next_action)]), css="remedy lines")
            + "</tr>"
            for c in clusters
        ]
        headers = [
            _th(h)
            for h in (
                "Cluster",
                "State",
                "Subscription",
                "Region",
                "Blocker or cause",
                "Remedy",
            )
        ]
        body = _table("need-a-human-table", "human-table", headers, rows, "Clusters that need a human")
    else:
        body = '<p class="empty">None: no cluster is blocked or has given up.</p>'
    return (
        '<section id="need-a-human" class="card">'
        f'<h2>Need a human first <span class="count">({len(clusters)})</span></h2>'
        '<p class="note">Blocked clusters wait for a person to lift the blocker; clusters that gave up '
        "stopped retrying and show the journaled cause. Nothing moves for them until someone acts.</p>"
        f"{body}</section>"
    )


def _group_table(table_id: str, title: str, groups: Sequence[Group]) -> str:
    if groups:
        headers = [_th("Name"), _th("Total", numeric=True)] + [
            _th(STATE_LABELS[s], numeric=True) for s in STATES
        ]
        headers.append(_th("Protected %", numeric=True))
        rows = []
        for group in groups:
            selected = _selected_in(group.states)
            share = group.states.protected / selected if selected else -1.0
            rows.append(
                f'<tr data-key="{esc(group.key)}">'
                + _td(esc(group.label), title=group.key)
                + _td(str(group.total), css="num")
                + "".join(_td(str(group.states[s]), css="num") for s in STATES)
                + _td(percent(group.states.protected, selected), css="num", sort=format(share, ".6g"))
                + "</tr>"
            )
        body = _table(table_id, "group-table", headers, rows, title)
    else:
        body = '<p class="empty">None in this report.</p>'
    return f'<div class="card"><h2>{esc(title)} <span class="count">({len(groups)})</span></h2>{body}</div>'


def _cluster_rows(clusters: Sequence[ClusterRow]) -> list[str]:
    rows = []
    for c in clusters:
        why = blocker_codes(c.blockers) or (c.cause or "")
        rows.append(
            f'<tr data-state="{c.state}" data-id="{esc(c.id)}">'
            + _cluster_td(c)
            + _state_td(c.state)
            + _td(esc(subscription_text(c)), title=c.subscription_id)
            + _td(esc(c.region))
            + _td(
                esc(rule_text(c.matched_rule)) or f'<span class="muted">{esc(c.reason)}</span>',
                css="nowrap",
                sort=rule_text(c.matched_rule) or c.reason,
            )
            + _td(esc(c.extension_state or "–"), css="nowrap", sort=c.extension_state or "")
            + _td(
                esc(c.protection_state or "–") + (" (elsewhere)" if c.protected_by else ""),
                css="nowrap",
                sort=c.protection_state or "",
                title=c.protected_by,
            )
            + _td(esc(why), css="small-why")
            + _td(esc(c.next_action), css="next")
            + "</tr>"
        )
    return rows


def _cluster_list(document: ReportDocument) -> str:
    clusters = document.clusters
    options = "".join(
        f'<option value="{state}">{esc(STATE_LABELS[state])} ({count})</option>'
        for state, count in document.totals.states.items()
        if count
    )
    headers = [
        _th(h)
        for h in (
            "Cluster",
            "State",
            "Subscription",
            "Region",
            "Rule",
            "Extension",
            "Protection",
            "Blocker or cause",
            "Next action",
        )
    ]
    body = (
        _table("cluster-table", "cluster-table", headers, _cluster_rows(clusters), "Every cluster in scope")
        if clusters
        else '<p class="empty">No clusters in scope.</p>'
    )
    return (
        '<section id="clusters" class="card">'
        f'<h2>All clusters <span class="count">({len(clusters)})</span></h2>'
        '<div class="toolbar">'
        '<input id="cluster-filter" type="search" aria-label="Filter clusters" '
        'placeholder="Filter by name, subscription, region, blocker…">'
        '<select id="state-filter" aria-label="Filter by state">'
        f'<option value="">All states</option>{options}</select>'
        '<span id="cluster-shown" class="shown" aria-live="polite"></span></div>'
        f"{body}</section>"
    )


def _headroom(document: ReportDocument) -> str:
    """Role assignments per subscription against Azure's limit (only when the mode assigns roles)."""
    items = document.role_assignment_headroom
    if not items:
        return ""
    headers = [
        _th("Subscription"),
        _th("Existing", numeric=True),
        _th("Still needed", numeric=True),
        _th("Limit", numeric=True),
        _th("Headroom", numeric=True),
        _th("Fits"),
    ]
    rows = [
        f'<tr data-key="{esc(h.subscription_id)}" data-overflow="{str(h.overflow).lower()}">'
        + _td(esc(h.subscription_name or h.subscription_id), title=h.subscription_id)
        + _td(str(h.existing), css="num")
        + _td(str(h.needed), css="num")
        + _td(str(h.limit), css="num")
        + _td(str(h.headroom), css="num")
        + _td("no: overflows" if h.overflow else "yes")
        + "</tr>"
        for h in items
    ]
    table = _table(
        "headroom-table", "group-table", headers, rows, "Role assignments per subscription against the limit"
    )
    return (
        '<section id="headroom" class="card">'
        "<h2>Role assignments per subscription"
        f' <span class="count">({len(items)})</span></h2>{table}</section>'
    )


def _footer() -> str:
    meanings = "".join(f"<dt>{_badge(state)}</dt><dd>{esc(STATE_MEANINGS[state])}</dd>" for state in STATES)
    return (
        "<footer><p>Every cluster is in exactly one state. <b>Extension ready</b> counts selected clusters "
        "whose backup extension is Succeeded (the built-in Policy 1's test); <b>Protected</b> counts those "
        "whose whole protection chain is in place (the built-in Policy 2's test).</p>"
        f"<dl>{meanings}</dl><p>aks-backup-remediator coverage report · this file fetches nothing from the "
        "network.</p></footer>"
    )


def render_html(document: ReportDocument) -> str:
    """The whole page as one string (UTF-8 when written; declares its own charset)."""
    groups = document.groups
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>AKS backup coverage · {esc(generated_at_text(document))}</title>"
        f"<style>{CSS}</style></head><body>"
        + _masthead(document)
        + "<main>"
        + _kpis(document)
        + '<section class="charts" aria-label="Coverage charts">'
        + _donut(document)
        + '<figure class="card">'
        + _bar_chart("byRegion", "Coverage by region", groups.by_region)
        + '<div class="chart-sub">'
        + _bar_chart(
            "byManagementGroup", "Coverage by management group", groups.by_management_group, keys=False
        )
        + "</div></figure>"
        + '<figure class="card wide">'
        + _bar_chart("bySubscription", "Coverage by subscription", groups.by_subscription)
        + "</figure>"
        + "</section>"
        + _need_a_human(document)
        + '<section class="two" aria-label="Coverage by management group and rule">'
        + _group_table("management-group-table", "By management group", groups.by_management_group)
        + _group_table("rule-table", "By matched rule", groups.by_rule)
        + "</section>"
        + _headroom(document)
        + _cluster_list(document)
        + "</main>"
        + _footer()
        + f"<script>{JS}</script></body></html>\n"
    )
