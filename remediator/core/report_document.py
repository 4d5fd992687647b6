"""The coverage report document, version 1: the one contract between the report's builder and its renderers.

The service layer turns the inventory, the decisions and the journal into a :class:`ReportDocument`; the
renderers (:mod:`remediator.core.report_render`) turn it into JSON, a table, CSV or a self-contained HTML
page.
Neither side reads the other's code, only this module, so the shape lives here and nowhere else:

- typed, frozen dataclasses (Python attributes snake_case, JSON keys camelCase);
- :func:`to_dict` / :func:`to_json` and :func:`from_dict` / :func:`from_json`, which validate;
- :func:`json_schema`, from which ``docs/report.schema.json`` is generated (``python -m tools.report_schema``;
  a unit test fails when the committed file is stale).

Validation reports every problem at once, each with its JSON path (``clusters[3].state``), as one
:class:`ReportDocumentError` (a :class:`UserInputError`, so a CLI exits 2 on a bad file). Beyond the types it
checks the arithmetic a reader relies on: the states partition the clusters, every total equals the
per-cluster tally, and ``notSelected`` is exactly the clusters that are not selected.

States (issue 14 item 2) never overlap; every cluster is in exactly one. ``extensionReady`` counts selected
clusters whose backup extension is Succeeded (built-in Policy 1 semantics); ``protected`` counts those whose
whole chain is satisfied (in protect mode: a backup instance ProtectionConfigured in the region's vault with
every prerequisite Resource Graph shows, or one in another vault that the product leaves alone,
``protectedBy``; in install mode, extension Succeeded and the storage grant present).
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin

from remediator.core.errors import UserInputError

REPORT_VERSION: Final = 1

ClusterState = Literal["protected", "installing", "waiting", "blocked", "gaveUp", "notStarted", "notSelected"]
STATES: Final[tuple[ClusterState, ...]] = get_args(ClusterState)
"""Every state, in reading order: done, moving, waiting, needs a human, never started, not wanted."""

STATE_LABELS: Final[Mapping[ClusterState, str]] = {
    "protected": "Protected",
    "installing": "Installing",
    "waiting": "Waiting",
    "blocked": "Blocked",
    "gaveUp": "Gave up",
    "notStarted": "Not started",
    "notSelected": "Not selected",
}
"""How a person reads each state (tables, CSV headers stay camelCase)."""

STATE_MEANINGS: Final[Mapping[ClusterState, str]] = {
    "protected": "selected, and the whole protection chain is in place",
    "installing": "selected; an install or protection step is running",
    "waiting": "selected; waiting for the cluster (stopped, provisioning) or for a transient condition",
    "blocked": "selected; a human must lift a blocker first",
    "gaveUp": "selected; the remediator stopped retrying (the journal has the cause)",
    "notStarted": "selected; nothing has been attempted yet",
    "notSelected": "in scope, but the tag rules do not select it",
}

NEEDS_A_HUMAN: Final[tuple[ClusterState, ...]] = ("blocked", "gaveUp")
"""States in which nothing moves until a person acts."""

Mode = Literal["install", "protect", "policy-task", "audit"]
RuleKind = Literal["include", "exclude"]
BlockerKind = Literal["human", "transient", "long-lived"]


class _Minimum:
    """``Annotated`` marker: an integer no smaller than ``value``."""

    def __init__(self, value: int) -> None:
        self.value = value


class _Pattern:
    """``Annotated`` marker: a string matching ``regex`` (also written into the JSON Schema)."""

    def __init__(self, regex: str, description: str) -> None:
        self.regex = regex
        self.compiled = re.compile(regex)
        self.description = description


class _Timestamp:
    """``Annotated`` marker: an ISO 8601 date-time with a UTC offset (``2026-12-05T10:00:00Z``)."""


class Doc:
    """``Annotated`` marker: what a field means, for readers of this module and of the JSON Schema."""

    def __init__(self, text: str) -> None:
        self.text = text


Count = Annotated[int, _Minimum(0)]
Sha256 = Annotated[str, _Pattern(r"^[0-9a-f]{64}$", "64 lower-case hex digits")]
Timestamp = Annotated[str, _Timestamp()]


class ReportDocumentError(UserInputError):
    """A report document is malformed. ``problems`` lists every problem found, each led by its JSON path."""

    def __init__(self, problems: Sequence[str], *, source: str | None = None) -> None:
        self.problems = tuple(problems)
        shown = "; ".join(self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(
            f"not a valid version {REPORT_VERSION} report document: {shown}{more}", field=None, source=source
        )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@dataclasses.dataclass(frozen=True)
class StateCounts:
    """How many clusters are in each state; the states never overlap."""

    protected: Annotated[Count, Doc(STATE_MEANINGS["protected"])] = 0
    installing: Annotated[Count, Doc(STATE_MEANINGS["installing"])] = 0
    waiting: Annotated[Count, Doc(STATE_MEANINGS["waiting"])] = 0
    blocked: Annotated[Count, Doc(STATE_MEANINGS["blocked"])] = 0
    gave_up: Annotated[Count, Doc(STATE_MEANINGS["gaveUp"])] = 0
    not_started: Annotated[Count, Doc(STATE_MEANINGS["notStarted"])] = 0
    not_selected: Annotated[Count, Doc(STATE_MEANINGS["notSelected"])] = 0

    def __getitem__(self, state: ClusterState) -> int:
        value: int = getattr(self, _STATE_FIELDS[state])
        return value

    def items(self) -> Iterator[tuple[ClusterState, int]]:
        """``(state, count)`` for every state, in :data:`STATES` order."""
        return ((state, self[state]) for state in STATES)

    @property
    def total(self) -> int:
        """The sum over all states."""
        return sum(count for _, count in self.items())

    @classmethod
    def tally(cls, states: Sequence[ClusterState]) -> StateCounts:
        """Counts of the given per-cluster states."""
        counts = Counter(states)
        return cls(**{_STATE_FIELDS[state]: counts.get(state, 0) for state in STATES})


_STATE_FIELDS: Final[Mapping[ClusterState, str]] = {
    state: next(f.name for f in dataclasses.fields(StateCounts) if _camel(f.name) == state)
    for state in STATES
}


@dataclasses.dataclass(frozen=True)
class ConfigIdentity:
    """Which config produced the report, so a reader can tell two reports of different configs apart."""

    source: Annotated[str, Doc("Where the config came from (a file name, an app setting).")]
    sha256: Annotated[Sha256, Doc("SHA-256 of the config's bytes.")]
    mode: Annotated[Mode, Doc("The config's remediation mode.")]


@dataclasses.dataclass(frozen=True)
class Totals:
    """The estate in numbers."""

    clusters: Annotated[Count, Doc("Every in-scope cluster, selected or not.")]
    selected: Annotated[Count, Doc("Clusters the tag rules select.")]
    extension_ready: Annotated[
        Count, Doc("Selected clusters whose backup extension is Succeeded (built-in Policy 1 semantics).")
    ]
    protected: Annotated[
        Count,
        Doc("Selected clusters whose whole protection chain is satisfied (built-in Policy 2 semantics)."),
    ]
    states: StateCounts


@dataclasses.dataclass(frozen=True)
class Group:
    """One slice of the estate (a subscription, region, management group or matched rule) and its states."""

    key: Annotated[
        str, Doc("Stable identifier: subscription id, region name, management group id, ``Tag=value``.")
    ]
    label: Annotated[
        str, Doc("What a person reads: subscription display name, region, management group name, rule.")
    ]
    total: Count
    states: StateCounts


@dataclasses.dataclass(frozen=True)
class Groups:
    """The estate sliced four ways. Subscription and region slices partition the clusters; others may not."""

    by_subscription: tuple[Group, ...] = ()
    by_region: tuple[Group, ...] = ()
    by_management_group: tuple[Group, ...] = ()
    by_rule: tuple[Group, ...] = ()


@dataclasses.dataclass(frozen=True)
class MatchedRule:
    """The tag rule that decided a cluster's selection: the tag and value, not an index into the config."""

    kind: RuleKind
    tag: str
    value: str


@dataclasses.dataclass(frozen=True)
class Blocker:
    """Why a selected cluster cannot be protected yet, and what lifts it."""

    code: Annotated[str, Doc("Stable code, e.g. ``cluster-stopped``, ``no-managed-identity``.")]
    kind: Annotated[
        BlockerKind,
        Doc("``human``: a person must act; ``transient``: clears by itself; ``long-lived``: clears slowly."),
    ]
    remedy: Annotated[str, Doc("One line telling a person what to do.")]


@dataclasses.dataclass(frozen=True)
class ClusterRow:
    """One cluster, named, with its decision, its state and what happens next."""

    id: str
    name: str
    subscription_id: str
    resource_group: str
    region: str
    selected: bool
    reason: Annotated[
        str,
        Doc("Why the cluster is (not) selected, e.g. ``selected``, ``excluded-by-tag``, ``not-included``."),
    ]
    state: ClusterState
    next_action: Annotated[str, Doc("One line: what the remediator (or a person) does next.")]
    subscription_name: str | None = None
    management_groups: tuple[str, ...] = ()
    matched_rule: MatchedRule | None = None
    extension_state: Annotated[
        str | None,
        Doc(
            "The backup extension's provisioning state (``Succeeded``, ``Failed``, ...), or null when absent."
        ),
    ] = None
    protection_state: Annotated[
        str | None,
        Doc("The backup instance's protection state (``ProtectionConfigured``, ...), or null when absent."),
    ] = None
    blockers: tuple[Blocker, ...] = ()
    cause: Annotated[str | None, Doc("For a cluster that gave up: the journaled cause, in one line.")] = None
    protected_by: Annotated[
        str | None,
        Doc(
            "Protect mode: the id of the backup instance in a vault other than the configured one that"
            " protects the cluster (protected elsewhere: left alone, never written). Its state is"
            " ``protectionState``; the cluster is ``protected`` when it is ProtectionConfigured, else"
            " ``blocked``. Optional (added to version 1 additively)."
        ),
    ] = None


@dataclasses.dataclass(frozen=True)
class RoleAssignmentHeadroom:
    """One subscription's role assignments against Azure's limit per subscription (4,000, counting
    subscription, resource-group and resource scopes: MicrosoftDocs/azure-docs@articles/
    role-based-access-control/troubleshoot-limits.md), and what the chain still has to assign there."""

    subscription_id: str
    subscription_name: str | None
    existing: Annotated[Count, Doc("Role assignments in the subscription now (Resource Graph).")]
    needed: Annotated[
        Count, Doc("Assignments the chain still has to create there for the selected clusters it can help.")
    ]
    limit: Annotated[Count, Doc("Azure's limit of role assignments per subscription.")]
    headroom: Annotated[int, Doc("limit - existing: how many more fit (negative when already over).")]
    overflow: Annotated[bool, Doc("needed > headroom: the chain cannot finish in this subscription.")]


@dataclasses.dataclass(frozen=True)
class ReportDocument:
    """The whole report: when, from which config, the totals, the groups and every cluster."""

    report_version: Literal[1]
    generated_at: Timestamp
    config: ConfigIdentity
    totals: Totals
    groups: Groups
    clusters: tuple[ClusterRow, ...]
    role_assignment_headroom: Annotated[
        tuple[RoleAssignmentHeadroom, ...],
        Doc(
            "Per subscription the chain assigns roles in: existing assignments, what is still needed, the"
            " limit. Empty when the mode assigns no roles. Optional (added to version 1 additively)."
        ),
    ] = ()

    @property
    def needs_a_human(self) -> tuple[ClusterRow, ...]:
        """Clusters that are blocked or gave up: nothing moves for them until a person acts."""
        return tuple(c for c in self.clusters if c.state in NEEDS_A_HUMAN)


def is_extension_ready(cluster: ClusterRow) -> bool:
    """The built-in Policy 1's test: the backup extension's provisioning state is Succeeded (any casing)."""
    return (cluster.extension_state or "").lower() == "succeeded"


def build_document(
    *,
    generated_at: str,
    config: ConfigIdentity,
    clusters: Sequence[ClusterRow],
    region_labels: Mapping[str, str] | None = None,
    role_assignment_headroom: Sequence[RoleAssignmentHeadroom] = (),
) -> ReportDocument:
    """A consistent document from the per-cluster rows: totals and all four groupings are derived here.

    Groups come sorted by label. Subscriptions are labelled with the first display name a row carries (else
    the id); management groups by their id; rules ``include Backup=yes`` under the key ``Backup=yes``; regions
    by ``region_labels`` (else the region name). The result passes :func:`consistency_problems`.
    """
    rows = tuple(clusters)
    by_subscription: dict[str, tuple[str, list[ClusterState]]] = {}
    by_region: dict[str, tuple[str, list[ClusterState]]] = {}
    by_group: dict[str, tuple[str, list[ClusterState]]] = {}
    by_rule: dict[str, tuple[str, list[ClusterState]]] = {}
    for row in rows:
        sub_key = row.subscription_id.lower()
        label, states = by_subscription.setdefault(
            sub_key, (row.subscription_name or row.subscription_id, [])
        )
        if row.subscription_name and label == row.subscription_id:
            by_subscription[sub_key] = (row.subscription_name, states)
        states.append(row.state)
        region = row.region.lower()
        by_region.setdefault(region, ((region_labels or {}).get(region, region), []))[1].append(row.state)
        for group in dict.fromkeys(row.management_groups):
            by_group.setdefault(group, (group, []))[1].append(row.state)
        if row.matched_rule is not None:
            rule = row.matched_rule
            key = f"{rule.tag}={rule.value}"
            by_rule.setdefault(key, (f"{rule.kind} {key}", []))[1].append(row.state)

    def groups(slices: Mapping[str, tuple[str, list[ClusterState]]]) -> tuple[Group, ...]:
        return tuple(
            Group(key=key, label=label, total=len(states), states=StateCounts.tally(states))
            for key, (label, states) in sorted(slices.items(), key=lambda item: (item[1][0].lower(), item[0]))
        )

    tally = StateCounts.tally([row.state for row in rows])
    return ReportDocument(
        report_version=REPORT_VERSION,
        generated_at=generated_at,
        config=config,
        totals=Totals(
            clusters=len(rows),
            selected=sum(1 for row in rows if row.selected),
            extension_ready=sum(1 for row in rows if row.selected and is_extension_ready(row)),
            protected=tally.protected,
            states=tally,
        ),
        groups=Groups(
            by_subscription=groups(by_subscription),
            by_region=groups(by_region),
            by_management_group=groups(by_group),
            by_rule=groups(by_rule),
        ),
        clusters=rows,
        role_assignment_headroom=tuple(
            sorted(role_assignment_headroom, key=lambda h: h.subscription_id.lower())
        ),
    )


# --- encoding ----------------------------------------------------------------------------------------------


def to_dict(document: ReportDocument) -> dict[str, Any]:
    """The document as JSON-ready data (camelCase keys, every field present, tuples as lists)."""
    encoded: dict[str, Any] = _encode(document)
    return encoded


def cluster_to_dict(cluster: ClusterRow) -> dict[str, Any]:
    """One cluster row as JSON-ready data (the shape of ``clusters[i]`` in the document)."""
    encoded: dict[str, Any] = _encode(cluster)
    return encoded


def to_json(document: ReportDocument, *, indent: int | None = 2) -> str:
    """The document as JSON text (UTF-8 safe, non-ASCII kept)."""
    return json.dumps(to_dict(document), indent=indent, ensure_ascii=False) + ("\n" if indent else "")


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {_camel(f.name): _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_encode(item) for item in value]
    return value


# --- decoding and validation -------------------------------------------------------------------------------


def from_json(text: str | bytes, *, source: str | None = None) -> ReportDocument:
    """Parse and validate a document; raises :class:`ReportDocumentError` naming every problem."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReportDocumentError([f"$: not JSON ({exc})"], source=source) from exc
    return from_dict(data, source=source)


def from_dict(data: object, *, source: str | None = None) -> ReportDocument:
    """Validate decoded JSON and build the document; raises :class:`ReportDocumentError` with all problems."""
    problems: list[str] = []
    document = _decode(data, ReportDocument, "$", problems)
    if not problems:
        assert isinstance(document, ReportDocument)
        problems.extend(consistency_problems(document))
    if problems:
        raise ReportDocumentError(problems, source=source)
    assert isinstance(document, ReportDocument)
    return document


def validate(data: object, *, source: str | None = None) -> None:
    """Raise :class:`ReportDocumentError` unless ``data`` is a valid version 1 document."""
    from_dict(data, source=source)


_INVALID = object()
"""Returned by :func:`_decode` for a value that failed; its problem is already recorded."""


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _decode(value: object, tp: Any, path: str, problems: list[str]) -> Any:  # noqa: C901 - one branch per type form
    origin = get_origin(tp)
    if origin is Annotated:
        base, *markers = get_args(tp)
        decoded = _decode(value, base, path, problems)
        if decoded is _INVALID:
            return _INVALID
        for marker in markers:
            if isinstance(marker, _Minimum) and decoded < marker.value:
                problems.append(f"{path}: {decoded} is below the minimum {marker.value}")
                return _INVALID
            if isinstance(marker, _Pattern) and not marker.compiled.fullmatch(decoded):
                problems.append(f"{path}: {decoded!r} is not {marker.description}")
                return _INVALID
            if isinstance(marker, _Timestamp) and not _is_timestamp(decoded):
                problems.append(
                    f"{path}: {decoded!r} is not an ISO 8601 date-time with an offset (2026-12-05T10:00:00Z)"
                )
                return _INVALID
        return decoded
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        (inner,) = [option for option in options if option is not type(None)]
        return _decode(value, inner, path, problems)
    if origin is Literal:
        allowed = get_args(tp)
        if value in allowed and type(value) is type(allowed[0]):
            return value
        problems.append(f"{path}: {value!r} is not one of {', '.join(map(repr, allowed))}")
        return _INVALID
    if origin is tuple:
        item_type = get_args(tp)[0]
        if not isinstance(value, list):
            problems.append(f"{path}: expected an array, got {_type_name(value)}")
            return _INVALID
        items = [_decode(item, item_type, f"{path}[{i}]", problems) for i, item in enumerate(value)]
        return _INVALID if any(item is _INVALID for item in items) else tuple(items)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _decode_object(value, tp, path, problems)
    if tp is bool:
        if isinstance(value, bool):
            return value
        problems.append(f"{path}: expected true or false, got {_type_name(value)}")
        return _INVALID
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        problems.append(f"{path}: expected an integer, got {_type_name(value)}")
        return _INVALID
    if tp is str:
        if isinstance(value, str):
            return value
        problems.append(f"{path}: expected a string, got {_type_name(value)}")
        return _INVALID
    raise TypeError(f"report_document cannot decode {tp!r}")  # a programming error in this module


def _decode_object(value: object, cls: type, path: str, problems: list[str]) -> Any:
    if not isinstance(value, dict):
        problems.append(f"{path}: expected an object, got {_type_name(value)}")
        return _INVALID
    hints = _hints(cls)
    fields = {_camel(f.name): f for f in dataclasses.fields(cls)}
    for key in value:
        if key not in fields:
            problems.append(f"{path}: unknown field {key!r} (allowed: {', '.join(fields)})")
    kwargs: dict[str, Any] = {}
    failed = False
    for key, f in fields.items():
        if key not in value:
            if _is_required(f):
                problems.append(f"{path}.{key}: missing")
                failed = True
            continue
        decoded = _decode(value[key], hints[f.name], f"{path}.{key}", problems)
        failed = failed or decoded is _INVALID
        kwargs[f.name] = decoded
    if failed or any(key not in fields for key in value):
        return _INVALID
    return cls(**kwargs)


def _is_required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _is_timestamp(text: str) -> bool:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return False
    return "T" in text and parsed.tzinfo is not None


def consistency_problems(document: ReportDocument) -> list[str]:
    """What does not add up in a well-typed document (empty when the numbers agree)."""
    problems: list[str] = []
    totals = document.totals
    clusters = document.clusters
    tally = StateCounts.tally([c.state for c in clusters])
    if totals.clusters != len(clusters):
        problems.append(
            f"$.totals.clusters: {totals.clusters}, but the document lists {len(clusters)} clusters"
        )
    if totals.states != tally:
        for state, count in totals.states.items():
            if count != tally[state]:
                problems.append(f"$.totals.states.{state}: {count}, but {tally[state]} clusters are {state}")
    selected = sum(1 for c in clusters if c.selected)
    if totals.selected != selected:
        problems.append(f"$.totals.selected: {totals.selected}, but {selected} clusters are selected")
    ready = sum(1 for c in clusters if c.selected and is_extension_ready(c))
    if totals.extension_ready != ready:
        problems.append(
            f"$.totals.extensionReady: {totals.extension_ready}, but {ready} selected clusters have the "
            "extension Succeeded"
        )
    if totals.protected != tally.protected:
        problems.append(
            f"$.totals.protected: {totals.protected}, but {tally.protected} clusters are protected"
        )
    for i, cluster in enumerate(clusters):
        if (cluster.state == "notSelected") == cluster.selected:
            problems.append(
                f"$.clusters[{i}]: selected is {str(cluster.selected).lower()} but state is "
                f"{cluster.state!r} (notSelected is exactly the clusters that are not selected)"
            )
    groups = document.groups
    for name, slices in (
        ("bySubscription", groups.by_subscription),
        ("byRegion", groups.by_region),
        ("byManagementGroup", groups.by_management_group),
        ("byRule", groups.by_rule),
    ):
        seen: set[str] = set()
        for j, group in enumerate(slices):
            where = f"$.groups.{name}[{j}]"
            if group.key in seen:
                problems.append(f"{where}.key: {group.key!r} appears twice")
            seen.add(group.key)
            if group.total != group.states.total:
                problems.append(
                    f"{where}.total: {group.total}, but its states add up to {group.states.total}"
                )
    seen_subscriptions: set[str] = set()
    for k, headroom in enumerate(document.role_assignment_headroom):
        where = f"$.roleAssignmentHeadroom[{k}]"
        if headroom.subscription_id.lower() in seen_subscriptions:
            problems.append(f"{where}.subscriptionId: {headroom.subscription_id!r} appears twice")
        seen_subscriptions.add(headroom.subscription_id.lower())
        if headroom.headroom != headroom.limit - headroom.existing:
            problems.append(
                f"{where}.headroom: {headroom.headroom}, but limit {headroom.limit} - existing"
                f" {headroom.existing} is {headroom.limit - headroom.existing}"
            )
        if headroom.overflow != (headroom.needed > headroom.headroom):
            problems.append(
                f"{where}.overflow: {str(headroom.overflow).lower()}, but {headroom.needed} needed against"
                f" {headroom.headroom} headroom"
            )
    problems.extend(_partition_problems("bySubscription", groups.by_subscription, clusters, "subscriptionId"))
    problems.extend(_partition_problems("byRegion", groups.by_region, clusters, "region"))
    return problems


def _partition_problems(
    name: str, slices: Sequence[Group], clusters: Sequence[ClusterRow], attribute: str
) -> list[str]:
    """A subscription or region slice holds exactly the clusters whose attribute is its key (any casing)."""
    if not slices and not clusters:
        return []
    python_attribute = {"subscriptionId": "subscription_id", "region": "region"}[attribute]
    expected: dict[str, list[ClusterState]] = {}
    for cluster in clusters:
        expected.setdefault(str(getattr(cluster, python_attribute)).lower(), []).append(cluster.state)
    problems: list[str] = []
    for j, group in enumerate(slices):
        states = expected.pop(group.key.lower(), [])
        if group.states != StateCounts.tally(states):
            problems.append(
                f"$.groups.{name}[{j}]: the counts of {group.key!r} differ from its {len(states)} clusters"
            )
    for key, states in sorted(expected.items()):
        problems.append(f"$.groups.{name}: no group for {attribute} {key!r} ({len(states)} clusters)")
    return problems


# --- JSON Schema -------------------------------------------------------------------------------------------


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a version 1 document, generated from the dataclasses above.

    It states the shape; the arithmetic checks of :func:`consistency_problems` are beyond a schema.
    """
    definitions: dict[str, Any] = {}
    root = _schema_of(ReportDocument, definitions)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "AKS backup coverage report, version 1",
        "description": _first_paragraph(ReportDocument.__doc__),
        **root,
        "$defs": dict(sorted(definitions.items())),
    }


def _first_paragraph(doc: str | None) -> str:
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def _schema_of(tp: Any, definitions: dict[str, Any]) -> dict[str, Any]:  # noqa: C901 - one branch per type form
    origin = get_origin(tp)
    if origin is Annotated:
        base, *markers = get_args(tp)
        schema = _schema_of(base, definitions)
        for marker in markers:
            if isinstance(marker, _Minimum):
                schema["minimum"] = marker.value
            elif isinstance(marker, _Pattern):
                schema["pattern"] = marker.regex
            elif isinstance(marker, _Timestamp):
                schema["format"] = "date-time"
            elif isinstance(marker, Doc):
                schema = {"description": marker.text, **schema}
        return schema
    if origin in (Union, types.UnionType):
        (inner,) = [option for option in get_args(tp) if option is not type(None)]
        return {"anyOf": [_schema_of(inner, definitions), {"type": "null"}]}
    if origin is Literal:
        values = list(get_args(tp))
        return {"const": values[0]} if len(values) == 1 else {"enum": values}
    if origin is tuple:
        return {"type": "array", "items": _schema_of(get_args(tp)[0], definitions)}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        name = tp.__name__
        if name not in definitions:
            definitions[name] = {}  # reserve the name first: no recursion today, but no infinite loop either
            hints = _hints(tp)
            properties = {
                _camel(f.name): _schema_of(hints[f.name], definitions) for f in dataclasses.fields(tp)
            }
            definitions[name] = {
                "type": "object",
                "description": _first_paragraph(tp.__doc__),
                "properties": properties,
                "required": [_camel(f.name) for f in dataclasses.fields(tp) if _is_required(f)],
                "additionalProperties": False,
            }
        if tp is ReportDocument:
            root: dict[str, Any] = definitions.pop(name)
            return root
        return {"$ref": f"#/$defs/{name}"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is str:
        return {"type": "string"}
    raise TypeError(f"report_document has no schema for {tp!r}")  # a programming error in this module
