"""Which reports repeat a state the journal already holds, so they are journaled (and alerted) once per
change.

Issue 17 item 4: a stopped cluster was retried to the attempt bound on every event and sweep, and a cluster a
human must fix raised a give-up alert on every delivery. Two kinds of report are now recorded once per change
of the cluster's state:

- **parked**: a ``wait`` whose decision carries a long-lived blocker (``core.blockers``: a stopped cluster).
  Nothing comes of retrying it: the chain of work items ends, and the cluster comes back when its state
  changes (a cluster write event) or at the sweep. It is journaled when the blocker first appears; repeats
  only bump the latest row's counter.
- **gave up**: a ``gave_up`` report. Its :func:`give_up_cause` (the human blockers, the blocked link, or the
  reason with its numbers blanked) keys the alert: the alert log line (``infra/app/alerts.bicep`` and its
  Terraform twin match "gave up" in the message) and the ``GaveUp`` outcome event fire when the cause first
  appears for the cluster, not on every later delivery or sweep. A different cause, or any other outcome in
  between, arms the alert again.

Pure: the journal adapter asks :func:`state_key` and compares it with the key it stored on the latest row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from remediator.core.blockers import Blocker, BlockerKind
from remediator.core.outcomes import OutcomeKind, ReconcileReport

_NUMBERS = re.compile(r"\d+(\.\d+)?")
_HEAD_END = re.compile(r"[:;]")
CAUSE_MAX_LEN = 200


def _blockers(codes: Iterable[object]) -> list[Blocker]:
    found = []
    for code in codes:
        try:
            found.append(Blocker(str(code)))
        except ValueError:  # a code this version does not know: not ours to judge
            continue
    return found


def decision_blockers(report: ReconcileReport) -> list[Blocker]:
    """The blockers the report's decision names (unknown codes skipped)."""
    decision = report.decision or {}
    codes = decision.get("blockers") if isinstance(decision, dict) else None
    return _blockers(codes if isinstance(codes, list | tuple) else ())


def parks(report: ReconcileReport) -> bool:
    """A ``wait`` that only a change of the cluster's state ends (a long-lived blocker): not worth
    retrying."""
    if report.outcome.kind is not OutcomeKind.WAIT:
        return False
    return any(b.kind is BlockerKind.LONG_LIVED for b in decision_blockers(report))


def give_up_cause(report: ReconcileReport) -> str:
    """What a ``gave_up`` report gave up on, stable across repeats: ``blockers:<codes>`` for human blockers,
    ``link:<key>`` for a blocked link of the chain, else the reason's head (up to its first ``:`` or ``;``)
    with numbers blanked (attempt counts, wait times, request ids and the inner error's wording do not make a
    new cause)."""
    human = sorted(b.value for b in decision_blockers(report) if b.kind is BlockerKind.HUMAN)
    if human:
        return "blockers:" + ",".join(human)
    blocked = sorted(str(link.get("link")) for link in report.links if link.get("state") == "blocked")
    if blocked:
        return "link:" + ",".join(blocked)
    head = _HEAD_END.split(report.outcome.why.strip(), maxsplit=1)[0]
    return "why:" + _NUMBERS.sub("#", head.lower())[:CAUSE_MAX_LEN]


def state_key(report: ReconcileReport) -> str | None:
    """The key of a state that is journaled once per change (``None``: every such report is journaled)."""
    if report.dry_run:
        return None
    if report.outcome.kind is OutcomeKind.GAVE_UP:
        return "gave_up|" + give_up_cause(report)
    if parks(report):
        codes = sorted(b.value for b in decision_blockers(report) if b.kind is BlockerKind.LONG_LIVED)
        return "parked|" + ",".join(codes)
    return None


def describe(kind: OutcomeKind) -> str:
    """An outcome kind for log lines other than the give-up alert: ``gave_up`` reads "needs a human", so only
    the alert line (once per cluster and cause) matches the alert rule's "gave up" / "gave_up"."""
    return "needs a human" if kind is OutcomeKind.GAVE_UP else kind.value


def alert_line(report: ReconcileReport) -> str:
    """The give-up alert's log line (WARNING; the alert rule matches "gave up"): once per cluster and
    cause."""
    return f"gave up on {report.cluster_id} ({give_up_cause(report)}): {report.outcome.why}"


def repeat_line(report: ReconcileReport) -> str:
    """The log line of a repeated give-up or parked wait (INFO; never matches the alert rule)."""
    what = "still needs a human" if report.outcome.kind is OutcomeKind.GAVE_UP else "still parked"
    return f"{report.cluster_id} {what}, already journaled and alerted: {report.outcome.why}"
