"""The report as text: an aligned plain-text table for a terminal, and CSV for a spreadsheet.

The table reads like ``az -o table`` (headers, a dashed rule, columns two spaces apart), section by section:
totals, states, each grouping, the clusters that need a human, then every cluster. Values are made one-line
and free of control characters first (:func:`~remediator.core.report_render.common.one_line`).

The role-assignment headroom (when the mode assigns roles) is a section of the table; the CSV, one row per
cluster, leaves it out (it is in the JSON and the HTML).

The CSV has one row per cluster and the columns :data:`CSV_COLUMNS`, always in that order, so a spreadsheet
or a script can rely on them. Quoting follows RFC 4180 (fields with a comma, quote or line break are quoted,
quotes doubled, CRLF line ends). A cell whose first character a spreadsheet would evaluate (``= + - @``, tab,
CR, LF, NUL, or their full-width forms) gets a leading ``'`` (OWASP ASVS 5.0 requirement 1.2.10; CWE-1236),
so a tag value like ``=HYPERLINK(...)`` stays text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from typing import Final

from remediator.core.report_document import STATE_LABELS, STATES, ClusterRow, Group, ReportDocument
from remediator.core.report_render.common import (
    blocker_codes,
    blocker_remedies,
    cell_width,
    generated_at_text,
    needs_a_human_ordered,
    one_line,
    percent,
    rule_text,
    short_sha,
    subscription_text,
    why_text,
)

CSV_COLUMNS: Final[tuple[tuple[str, Callable[[ClusterRow], str]], ...]] = (
    ("name", lambda c: c.name),
    ("state", lambda c: c.state),
    ("subscriptionName", lambda c: c.subscription_name or ""),
    ("subscriptionId", lambda c: c.subscription_id),
    ("resourceGroup", lambda c: c.resource_group),
    ("region", lambda c: c.region),
    ("managementGroups", lambda c: "; ".join(c.management_groups)),
    ("selected", lambda c: "true" if c.selected else "false"),
    ("reason", lambda c: c.reason),
    ("matchedRuleKind", lambda c: c.matched_rule.kind if c.matched_rule else ""),
    ("matchedRuleTag", lambda c: c.matched_rule.tag if c.matched_rule else ""),
    ("matchedRuleValue", lambda c: c.matched_rule.value if c.matched_rule else ""),
    ("extensionState", lambda c: c.extension_state or ""),
    ("protectionState", lambda c: c.protection_state or ""),
    ("blockers", lambda c: blocker_codes(c.blockers)),
    ("remedies", lambda c: blocker_remedies(c.blockers)),
    ("cause", lambda c: c.cause or ""),
    ("nextAction", lambda c: c.next_action),
    ("id", lambda c: c.id),
    ("protectedBy", lambda c: c.protected_by or ""),
)
"""CSV header names (the document's own camelCase keys where one exists) and how each cell is read. New
columns are appended, so a column's position never changes."""

_FORMULA_STARTS: Final = frozenset("=+-@\t\r\n\0\uff1d\uff0b\uff0d\uff20")
"""First characters that make Excel, LibreOffice Calc or Google Sheets treat a cell as a formula."""


def neutralise_formula(cell: str) -> str:
    """``cell`` with a leading ``'`` when a spreadsheet would evaluate it (leading spaces included)."""
    stripped = cell.lstrip(" ")
    return f"'{cell}" if stripped and stripped[0] in _FORMULA_STARTS else cell


def render_csv(document: ReportDocument) -> str:
    """One header row and one row per cluster, in document order (RFC 4180, CRLF, formula-safe)."""
    out = io.StringIO()
    writer = csv.writer(out, dialect="excel", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([name for name, _ in CSV_COLUMNS])
    for cluster in document.clusters:
        writer.writerow([neutralise_formula(read(cluster)) for _, read in CSV_COLUMNS])
    return out.getvalue()


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[bool] = ()) -> list[str]:
    """``az -o table`` style: header, dashes, rows; columns two spaces apart; ``right`` aligns numbers."""
    cells = [[one_line(h) for h in headers]] + [[one_line(v) for v in row] for row in rows]
    widths = [max(cell_width(row[i]) for row in cells) for i in range(len(headers))]
    aligned_right = list(right) + [False] * (len(headers) - len(right))

    def line(row: Sequence[str]) -> str:
        parts = []
        for value, width, is_right in zip(row, widths, aligned_right, strict=True):
            pad = " " * (width - cell_width(value))
            parts.append(pad + value if is_right else value + pad)
        return "  ".join(parts).rstrip()

    return [line(cells[0]), "  ".join("-" * w for w in widths), *(line(row) for row in cells[1:])]


def _group_table(title: str, groups: Sequence[Group]) -> list[str]:
    if not groups:
        return [title, "(none)"]
    headers = ["Name", "Total", *(STATE_LABELS[s] for s in STATES)]
    rows = [[g.label, str(g.total), *(str(g.states[s]) for s in STATES)] for g in groups]
    return [title, *_table(headers, rows, right=[False] + [True] * (len(headers) - 1))]


def render_table(document: ReportDocument) -> str:
    """The report as aligned plain text, section by section (see the module docstring)."""
    totals = document.totals
    config = document.config
    lines = [
        f"AKS backup coverage, generated {generated_at_text(document)}",
        one_line(f"Config {config.source} (sha256 {short_sha(document)}), mode {config.mode}"),
        "",
    ]
    need_a_human = needs_a_human_ordered(document)
    lines += _table(
        ["Clusters", "Selected", "Extension ready", "Protected", "Need a human"],
        [
            [
                str(totals.clusters),
                str(totals.selected),
                f"{totals.extension_ready} ({percent(totals.extension_ready, totals.selected)})",
                f"{totals.protected} ({percent(totals.protected, totals.selected)})",
                str(len(need_a_human)),
            ]
        ],
        right=[True] * 5,
    )
    lines.append("")
    lines += _table(
        ["State", "Clusters", "Share"],
        [[STATE_LABELS[s], str(n), percent(n, totals.clusters)] for s, n in totals.states.items()],
        right=[False, True, True],
    )
    for title, groups in (
        ("By subscription", document.groups.by_subscription),
        ("By region", document.groups.by_region),
        ("By management group", document.groups.by_management_group),
        ("By matched rule", document.groups.by_rule),
    ):
        lines += ["", *_group_table(title, groups)]
    if document.role_assignment_headroom:
        lines += ["", "Role assignments per subscription"]
        lines += _table(
            ["Subscription", "Existing", "Still needed", "Limit", "Headroom", "Fits"],
            [
                [
                    h.subscription_name or h.subscription_id,
                    str(h.existing),
                    str(h.needed),
                    str(h.limit),
                    str(h.headroom),
                    "no: overflows" if h.overflow else "yes",
                ]
                for h in document.role_assignment_headroom
            ],
            right=[False, True, True, True, True, False],
        )
    lines += ["", f"Need a human first ({len(need_a_human)})"]
    if need_a_human:
        lines += _table(
            ["Name", "State", "Subscription", "Resource group", "Region", "Blocker or cause", "Remedy"],
            [
                [
                    c.name,
                    STATE_LABELS[c.state],
                    subscription_text(c),
                    c.resource_group,
                    c.region,
                    why_text(c),
                    blocker_remedies(c.blockers) or c.next_action,
                ]
                for c in need_a_human
            ],
        )
    else:
        lines.append("(none)")
    lines += ["", f"Clusters ({len(document.clusters)})"]
    if document.clusters:
        lines += _table(
            ["Name", "State", "Subscription", "Resource group", "Region", "Rule", "Extension", "Next action"],
            [
                [
                    c.name,
                    STATE_LABELS[c.state],
                    subscription_text(c),
                    c.resource_group,
                    c.region,
                    rule_text(c.matched_rule),
                    c.extension_state or "-",
                    c.next_action,
                ]
                for c in document.clusters
            ],
        )
    else:
        lines.append("(none)")
    return "\n".join(lines) + "\n"
