"""Presentation facts every renderer shares: labels, percentages, the time stamp, rule and blocker wording.

One home, so the table, the CSV and the HTML page never word or round the same number two ways.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime

from remediator.core.report_document import STATES, Blocker, ClusterRow, MatchedRule, ReportDocument

_BIDI_AND_CONTROL = {"Cc", "Cf", "Zl", "Zp"}
"""Unicode categories that can move a terminal's cursor, reorder text (bidi overrides) or hide characters."""


def percent(part: int, whole: int) -> str:
    """``part`` of ``whole`` as a whole percentage, rounded down so that 299 of 300 never reads 100%.

    ``"-"`` when ``whole`` is 0; ``"<1%"`` for a share that is more than none but under one percent.
    """
    if whole <= 0:
        return "-"
    if part == whole:
        return "100%"
    if 0 < part * 100 < whole:
        return "<1%"
    return f"{part * 100 // whole}%"


def generated_at_text(document: ReportDocument) -> str:
    """``2026-12-05 10:00 UTC``: the document's time stamp in UTC, to the minute."""
    moment = datetime.fromisoformat(document.generated_at).astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def short_sha(document: ReportDocument) -> str:
    """The first 12 hex digits of the config's SHA-256: enough to tell two configs apart by eye."""
    return document.config.sha256[:12]


def rule_text(rule: MatchedRule | None) -> str:
    """``include Backup=yes``, or ``""`` when no rule matched."""
    return f"{rule.kind} {rule.tag}={rule.value}" if rule else ""


def blocker_codes(blockers: Iterable[Blocker]) -> str:
    """``cluster-stopped; no-managed-identity``."""
    return "; ".join(b.code for b in blockers)


def blocker_remedies(blockers: Iterable[Blocker]) -> str:
    """Each blocker's one-line remedy, ``; ``-separated."""
    return "; ".join(b.remedy for b in blockers)


def why_text(cluster: ClusterRow) -> str:
    """What holds the cluster: its blockers' codes, else its gave-up cause, else ``""``."""
    return blocker_codes(cluster.blockers) or (cluster.cause or "")


def subscription_text(cluster: ClusterRow) -> str:
    """The subscription's display name, or its id when the name is unknown."""
    return cluster.subscription_name or cluster.subscription_id


def one_line(text: str) -> str:
    """``text`` with every control, format and line-separator character replaced by U+FFFD.

    Tag values and display names come from whoever can write to a subscription: in a terminal an escape
    sequence could repaint the screen, and a bidi override could make ``yes`` read as ``sey``.
    """
    return "".join("\ufffd" if unicodedata.category(ch) in _BIDI_AND_CONTROL else ch for ch in text)


def cell_width(text: str) -> int:
    """Terminal columns ``text`` takes: wide East Asian characters count 2, combining marks 0."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def needs_a_human_ordered(document: ReportDocument) -> list[ClusterRow]:
    """The blocked and gave-up clusters, blocked first, then by subscription and name: the to-do list."""
    rank = {state: i for i, state in enumerate(STATES)}
    return sorted(
        document.needs_a_human,
        key=lambda c: (rank[c.state], subscription_text(c).lower(), c.name.lower(), c.id.lower()),
    )
