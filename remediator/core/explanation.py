"""What ``explain`` answers for one cluster, from a dry-run reconcile report: one shape for HTTP and the CLI.

An operator asks "why is this cluster (not) protected, and what do I change?". The dry-run report has the
decision, every link of the chain with its state, the writes that would be made and the preflight findings;
this module arranges them so the answer leads with what blocks the backup (each blocker's one-line remedy
names the policy assignment and the exact parameter change) and lists what only warns. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from remediator.core.blockers import FindingCode
from remediator.core.outcomes import ReconcileReport


def _brief(finding: Mapping[str, Any]) -> dict[str, Any]:
    evidence = finding.get("evidence") or {}
    return {
        "code": finding.get("code"),
        "kind": finding.get("kind"),
        "assignment": evidence.get("assignmentName"),
        "assignmentId": evidence.get("assignmentId"),
        "parameter": evidence.get("parameter"),
        "suggested": evidence.get("suggested"),
        "remedy": finding.get("remedy"),
    }


def policy_blockers(findings: Iterable[Mapping[str, Any]]) -> list[str]:
    """Names of the policy assignments (or ``deployment-safeguards``) that block, from findings as JSON (the
    form journaled reports carry): the report's "blocked by policy" group."""
    names: dict[str, None] = {}
    for finding in findings:
        if finding.get("severity") != "block":
            continue
        try:
            code = FindingCode(str(finding.get("code")))
        except ValueError:
            continue
        if not code.is_policy:
            continue
        evidence = finding.get("evidence") or {}
        name = evidence.get("assignmentName") or (
            "deployment-safeguards" if code is FindingCode.DEPLOYMENT_SAFEGUARDS else code.value
        )
        names[str(name)] = None
    return list(names)


def explanation(report: ReconcileReport) -> dict[str, Any]:
    """The ``explain`` answer: decision, decision blockers, what blocks (with remedies), warnings, the
    chain's links, what would be written and the outcome a real reconcile would have."""
    decision = dict(report.decision) if report.decision is not None else None
    findings = [dict(f) for f in report.findings]
    return {
        "clusterId": report.cluster_id,
        "decision": decision,
        "blockers": list((decision or {}).get("blockers", [])),
        "blockedBy": [_brief(f) for f in findings if f.get("severity") == "block"],
        "blockedByPolicy": policy_blockers(findings),
        "warnings": [_brief(f) for f in findings if f.get("severity") != "block"],
        "extensionState": report.extension_state,
        "mode": report.mode,
        "wouldDo": [a.to_json() for a in report.actions],
        "links": [dict(link) for link in report.links],
        "outcome": report.outcome.to_json(),
        "findings": findings,
    }
