"""Before writing: what will stop the backup extension (or its backup) on this cluster, and the exact fix.

Clusters that run Azure Policy for Kubernetes (Gatekeeper) or AKS Deployment Safeguards often carry Deny
policies that break the extension after it is installed; an Azure-side Deny on
``Microsoft.KubernetesConfiguration/extensions``, a storage account without shared keys or behind a firewall,
an unregistered provider or a region without the vault tier break it elsewhere (issue 16;
``shared/reference/protection_facts.md`` §3 and §1.5). Each shows up today as a Failed extension, a protection
error or "wait an hour". :func:`preflight` names them from data the product reads with Reader and Resource
Graph, as :class:`Finding` s: a ``code``, a ``severity`` (``block`` stops the install; ``warn`` is reported
only: Audit effects, ``DoNotEnforce`` assignments, Safeguards at ``Warn``), a one-line ``remedy`` naming the
assignment and the exact parameter change, and the ``evidence`` behind it. :func:`attribute_failure` maps a
Failed extension's error text to the finding that explains it.

Pure and deterministic: no I/O, no clock; the same input gives the same findings in the same order
(providers, region, Azure-side Deny, Gatekeeper, Deployment Safeguards, storage; assignments by id).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from remediator.core import policy_catalog as catalog
from remediator.core.backup_regions import BACKUP_REGIONS, VAULT_TIER_REGIONS
from remediator.core.backup_regions import SOURCE as REGIONS_SOURCE
from remediator.core.blockers import BlockerKind, FindingCode, finding_kind
from remediator.core.catalog import (
    DEFAULT_EXTENSION_NAME,
    DEFAULT_RELEASE_TRAIN,
    EXTENSION_TYPE,
    SETTING_USE_AAD,
)
from remediator.core.policy_rule import (
    EXTENSION_TYPE_ARM,
    effective_parameters,
    evaluate,
    is_unset,
    resolve_binding,
    rule_effect,
)
from remediator.core.snapshot import ClusterSnapshot
from remediator.core.text import ignore_case_key

logger = logging.getLogger(__name__)

KUBERNETES_CONFIGURATION = "Microsoft.KubernetesConfiguration"
DATA_PROTECTION = "Microsoft.DataProtection"
LIMIT_SETTINGS = MappingProxyType({"cpu": "resources.limits.cpu", "memory": "resources.limits.memory"})


class Severity(StrEnum):
    BLOCK = "block"
    """Writing now would fail or leave a broken extension: do not install until fixed."""
    WARN = "warn"
    """Reported; the install goes ahead (Audit effect, DoNotEnforce, Warn level, or cannot tell)."""


@dataclass(frozen=True)
class Finding:
    """One thing preflight found."""

    code: FindingCode
    severity: Severity
    remedy: str
    """One line: what to change, where, to what."""
    evidence: Mapping[str, Any] = field(default_factory=dict)
    """Assignment id/name, definition, parameter, current and suggested value, ... (JSON-serializable)."""

    @property
    def blocks(self) -> bool:
        return self.severity is Severity.BLOCK

    @property
    def kind(self) -> BlockerKind:
        """How it clears, from the blockers' one policy (:mod:`remediator.core.blockers`)."""
        return finding_kind(self.code, self.evidence)

    @property
    def assignment_name(self) -> str | None:
        """The policy assignment the finding names, if any."""
        name = self.evidence.get("assignmentName")
        return str(name) if name else None

    def describe(self) -> str:
        """``<code>: <remedy>``, the form outcomes and reports use (as ``Blocker.describe``)."""
        return f"{self.code.value}: {self.remedy}"

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code.value,
            "severity": self.severity.value,
            "kind": self.kind.value,
            "remedy": self.remedy,
            "evidence": dict(self.evidence),
        }


# ---- inputs ---------------------------------------------------------------------------------------------


def _props(body: Mapping[str, Any]) -> Mapping[str, Any]:
    props = body.get("properties")
    return props if isinstance(props, Mapping) else body


def _values(parameters: Any) -> dict[str, Any]:
    if isinstance(parameters, str):
        parameters = json.loads(parameters) if parameters.strip() else {}
    if not isinstance(parameters, Mapping):
        return {}
    return {
        str(k): (v["value"] if isinstance(v, Mapping) and "value" in v else v) for k, v in parameters.items()
    }


@dataclass(frozen=True)
class PolicyAssignment:
    """A policy assignment as Resource Graph (``policyresources``) or the ARM GET returns it."""

    id: str
    name: str
    scope: str
    definition_id: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    """Plain values (``{"effect": "Deny"}``), unwrapped from ARM's ``{name: {value}}``."""
    not_scopes: tuple[str, ...] = ()
    enforcement_mode: str = "Default"
    display_name: str = ""

    @classmethod
    def from_arm(cls, body: Mapping[str, Any]) -> PolicyAssignment:
        """From an ARM body (``{id, name, properties: {...}}``) or a flat Resource Graph row."""
        props = _props(body)
        aid = str(body.get("id") or "")
        scope = str(props.get("scope") or aid.split("/providers/Microsoft.Authorization/", 1)[0])
        return cls(
            id=aid,
            name=str(body.get("name") or aid.rsplit("/", 1)[-1]),
            scope=scope,
            definition_id=str(props.get("policyDefinitionId") or ""),
            parameters=MappingProxyType(_values(props.get("parameters"))),
            not_scopes=tuple(str(s) for s in props.get("notScopes") or ()),
            enforcement_mode=str(props.get("enforcementMode") or "Default"),
            display_name=str(props.get("displayName") or ""),
        )

    @property
    def label(self) -> str:
        return f"'{self.name}' ({self.id})"


@dataclass(frozen=True)
class PolicyDefinition:
    """A policy definition (built-in or custom) as read from Azure."""

    id: str
    mode: str
    parameters: Mapping[str, Any]
    """The parameter specs (``{name: {type, defaultValue, ...}}``)."""
    rule: Mapping[str, Any]
    display_name: str = ""

    @classmethod
    def from_arm(cls, body: Mapping[str, Any]) -> PolicyDefinition:
        props = _props(body)
        return cls(
            id=str(body.get("id") or ""),
            mode=str(props.get("mode") or "Indexed"),
            parameters=MappingProxyType(dict(props.get("parameters") or {})),
            rule=MappingProxyType(dict(props.get("policyRule") or {})),
            display_name=str(props.get("displayName") or ""),
        )


@dataclass(frozen=True)
class SetMember:
    definition_id: str
    reference_id: str
    bindings: Mapping[str, Any]


@dataclass(frozen=True)
class PolicySetDefinition:
    """An initiative as read from Azure."""

    id: str
    parameters: Mapping[str, Any]
    members: tuple[SetMember, ...]
    display_name: str = ""

    @classmethod
    def from_arm(cls, body: Mapping[str, Any]) -> PolicySetDefinition:
        props = _props(body)
        return cls(
            id=str(body.get("id") or ""),
            parameters=MappingProxyType(dict(props.get("parameters") or {})),
            members=tuple(
                SetMember(
                    definition_id=str(m.get("policyDefinitionId") or ""),
                    reference_id=str(m.get("policyDefinitionReferenceId") or ""),
                    bindings=MappingProxyType(
                        {
                            k: (v.get("value") if isinstance(v, Mapping) else v)
                            for k, v in (m.get("parameters") or {}).items()
                        }
                    ),
                )
                for m in props.get("policyDefinitions") or ()
            ),
            display_name=str(props.get("displayName") or ""),
        )


@dataclass(frozen=True)
class PolicyData:
    """Assignments in the estate and the definitions they reference (keys: ids under Azure's case rule,
    ``ignore_case_key``)."""

    assignments: tuple[PolicyAssignment, ...] = ()
    definitions: Mapping[str, PolicyDefinition] = field(default_factory=dict)
    set_definitions: Mapping[str, PolicySetDefinition] = field(default_factory=dict)

    def referenced_ids(self) -> set[str]:
        """Definition / set-definition ids (``ignore_case_key``) the assignments and read sets reference but
        that are not read yet (and are not in the product's catalog)."""
        wanted = {ignore_case_key(a.definition_id) for a in self.assignments if a.definition_id}
        for s in self.set_definitions.values():
            wanted.update(ignore_case_key(m.definition_id) for m in s.members)
        known = set(self.definitions) | set(self.set_definitions)
        return {
            i
            for i in wanted
            if i not in known
            and catalog.definition_name(i) not in catalog.KUBERNETES_DEFINITIONS
            and catalog.definition_name(i) not in catalog.INITIATIVES
        }


@dataclass(frozen=True)
class Safeguards:
    """``Microsoft.ContainerService/deploymentSafeguards/default`` on the cluster."""

    level: str
    excluded_namespaces: tuple[str, ...] = ()
    system_excluded_namespaces: tuple[str, ...] = ()

    @classmethod
    def from_arm(cls, body: Mapping[str, Any]) -> Safeguards:
        props = _props(body)
        return cls(
            level=str(props.get("level") or ""),
            excluded_namespaces=tuple(str(n) for n in props.get("excludedNamespaces") or ()),
            system_excluded_namespaces=tuple(str(n) for n in props.get("systemExcludedNamespaces") or ()),
        )


@dataclass(frozen=True)
class StorageAccount:
    """The backup storage account, as much as preflight needs."""

    id: str
    allow_shared_key_access: bool = True
    """``properties.allowSharedKeyAccess``; absent means allowed (the Storage API's documented default)."""
    default_action: str = "Allow"
    """``properties.networkAcls.defaultAction``."""
    bypass: tuple[str, ...] = ()
    resource_access_rules: tuple[str, ...] = ()
    """``networkAcls.resourceAccessRules[].resourceId`` (resource-instance rules, e.g. a Backup vault)."""

    @classmethod
    def from_arm(cls, body: Mapping[str, Any]) -> StorageAccount:
        props = _props(body)
        acls = props.get("networkAcls") or {}
        shared = props.get("allowSharedKeyAccess")
        return cls(
            id=str(body.get("id") or ""),
            allow_shared_key_access=True if shared is None else bool(shared),
            default_action=str(acls.get("defaultAction") or "Allow"),
            bypass=tuple(p.strip() for p in str(acls.get("bypass") or "").split(",") if p.strip()),
            resource_access_rules=tuple(
                str(r.get("resourceId") or "")
                for r in acls.get("resourceAccessRules") or ()
                if isinstance(r, Mapping)
            ),
        )

    @property
    def name(self) -> str:
        return self.id.rstrip("/").rsplit("/", 1)[-1]

    @property
    def resource_group(self) -> str:
        parts = self.id.split("/")
        return parts[4] if len(parts) > 4 else ""


@dataclass(frozen=True)
class PreflightInput:
    """Everything preflight looks at for one cluster. ``None`` = not read (that check is skipped)."""

    cluster: ClusterSnapshot
    management_groups: tuple[str, ...] = ()
    """Names of the management groups above the cluster's subscription (any depth)."""
    policy: PolicyData | None = None
    safeguards: Safeguards | None = None
    """``None``: no Safeguards resource (or not read)."""
    storage: StorageAccount | None = None
    extension_settings: Mapping[str, str] | None = None
    """configurationSettings of the extension that will run (the existing one, or the planned body)."""
    extension_name: str = DEFAULT_EXTENSION_NAME
    extension_namespace: str = catalog.BACKUP_NAMESPACE
    providers: Mapping[str, str] | None = None
    """Provider namespace → ``registrationState`` in the cluster's subscription."""
    protecting: bool = False
    """The config also configures protection (vault, backup instance): Microsoft.DataProtection and the
    region's backup support matter."""
    vault_tier: bool = False
    """The config asks for the vault tier."""


# ---- helpers --------------------------------------------------------------------------------------------


def _under(scope: str, resource_id: str, management_groups: Iterable[str]) -> bool:
    """Whether ``resource_id`` is at or below ``scope`` (or below a listed management group), comparing names
    under Azure's case rule (``str.lower()`` would put ``rg-a\u212as-prod`` under ``rg-aks-prod``)."""
    scope_l = ignore_case_key(scope).rstrip("/")
    mg_prefix = "/providers/microsoft.management/managementgroups/"
    if scope_l.startswith(mg_prefix):
        name = scope_l[len(mg_prefix) :].split("/", 1)[0]
        return name in {ignore_case_key(m) for m in management_groups}
    rid = ignore_case_key(resource_id).rstrip("/")
    return rid == scope_l or rid.startswith(scope_l + "/")


def covers(assignment: PolicyAssignment, resource_id: str, management_groups: Iterable[str] = ()) -> bool:
    """Does the assignment apply to ``resource_id`` (its scope contains it and no notScope does)?"""
    groups = tuple(management_groups)
    if not _under(assignment.scope, resource_id, groups):
        return False
    return not any(_under(n, resource_id, groups) for n in assignment.not_scopes)


def namespace_matches(namespace: str, patterns: Iterable[Any]) -> bool:
    """Gatekeeper namespace match: exact, ``prefix*`` or ``*suffix`` (case-sensitive, like Kubernetes
    names)."""
    for pattern in patterns:
        p = str(pattern)
        if p == namespace or (p.endswith("*") and namespace.startswith(p[:-1])):
            return True
        if p.startswith("*") and namespace.endswith(p[1:]):
            return True
    return False


def images_excluded(patterns: Iterable[Any], images: Sequence[str] = catalog.BACKUP_IMAGE_PROBES) -> bool:
    """``excludedImages``: exact names, ``*`` = prefix match (definition parameter description)."""
    pats = [str(p) for p in patterns]
    return all(any(img == p or (p.endswith("*") and img.startswith(p[:-1])) for p in pats) for img in images)


def regex_allows(regex: Any, images: Sequence[str] = catalog.BACKUP_IMAGE_PROBES) -> bool | None:
    """Does ``allowedContainerImagesRegex`` match every backup image? ``None``: not a usable regex.

    Gatekeeper's template uses Rego ``re_match`` (unanchored search; Go RE2); Python's ``re.search`` agrees on
    the constructs such regexes use. A regex Python cannot compile is "can't tell"."""
    if not isinstance(regex, str) or not regex:
        return None
    try:
        pattern = re.compile(regex)
    except re.error:
        return None
    return all(pattern.search(img) for img in images)


_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEM = re.compile(r"^(\d+(?:\.\d+)?)([EPTGMK]i?|[eptgmk]|)$")
_MEM_FACTORS = {
    "": 1,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def cpu_millicores(quantity: Any) -> float | None:
    """Kubernetes CPU quantity (``1``, ``500m``, ``0.5``) → millicores; ``None`` if unparsable."""
    m = _CPU.match(str(quantity).strip())
    if m is None:
        return None
    value = float(m.group(1))
    return value if m.group(2) else value * 1000


def memory_bytes(quantity: Any) -> float | None:
    """Kubernetes memory quantity (``1280Mi``, ``1G``, ``2048``) → bytes; ``None`` if unparsable."""
    m = _MEM.match(str(quantity).strip())
    if m is None or m.group(2) not in _MEM_FACTORS:
        return None
    return float(m.group(1)) * _MEM_FACTORS[m.group(2)]


def _limits_fit(values: Mapping[str, Any], settings: Mapping[str, str]) -> bool | None:
    ext_cpu = cpu_millicores(settings.get(LIMIT_SETTINGS["cpu"], catalog.EXTENSION_DEFAULT_LIMITS["cpu"]))
    ext_mem = memory_bytes(settings.get(LIMIT_SETTINGS["memory"], catalog.EXTENSION_DEFAULT_LIMITS["memory"]))
    cap_cpu = cpu_millicores(values.get("cpuLimit"))
    cap_mem = memory_bytes(values.get("memoryLimit"))
    if None in (ext_cpu, ext_mem, cap_cpu, cap_mem):
        return None
    assert ext_cpu is not None and ext_mem is not None and cap_cpu is not None and cap_mem is not None
    return ext_cpu <= cap_cpu and ext_mem <= cap_mem


def _catalog_defaults(definition: catalog.KubernetesDefinition) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "effect": definition.default_effect,
        "excludedNamespaces": list(definition.excluded_namespaces_default),
    }
    if definition.has_namespaces:
        defaults["namespaces"] = []
    if definition.has_excluded_images:
        defaults["excludedImages"] = []
    if "excludedContainers" in definition.extra_parameters:
        defaults["excludedContainers"] = []
    return defaults


def _json_list(value: Any) -> str:
    return json.dumps(list(value) if isinstance(value, list | tuple) else value)


# ---- the checks -----------------------------------------------------------------------------------------


@dataclass
class _Run:
    inp: PreflightInput
    unconfirmed_deny: Severity
    findings: list[Finding] = field(default_factory=list)
    pending: dict[tuple[str, str], tuple[Severity, dict[str, Any]]] = field(default_factory=dict)
    """Gatekeeper findings being merged: one per (assignment, remedy), listing every member it covers."""

    @property
    def cluster(self) -> ClusterSnapshot:
        return self.inp.cluster

    @property
    def extension_id(self) -> str:
        return f"{self.cluster.id}/providers/{KUBERNETES_CONFIGURATION}/extensions/{self.inp.extension_name}"

    def add(self, code: FindingCode, severity: Severity, remedy: str, **evidence: Any) -> None:
        self.findings.append(Finding(code, severity, remedy, MappingProxyType(evidence)))

    # providers, region -------------------------------------------------------------------------------
    def providers(self) -> None:
        if self.inp.providers is None:
            return
        states = {k.lower(): v for k, v in self.inp.providers.items()}
        needed = [KUBERNETES_CONFIGURATION] + ([DATA_PROTECTION] if self.inp.protecting else [])
        for namespace in needed:
            state = states.get(namespace.lower(), "NotRegistered")
            if state.lower() == "registered":
                continue
            self.add(
                FindingCode.PROVIDER_NOT_REGISTERED,
                Severity.BLOCK,
                f"register {namespace} in subscription {self.cluster.subscription_id}: az provider register "
                f"--namespace {namespace} --subscription {self.cluster.subscription_id}"
                + (" (registration in progress: wait)" if state.lower() == "registering" else ""),
                provider=namespace,
                registrationState=state,
                subscriptionId=self.cluster.subscription_id,
                transient=state.lower() == "registering",
            )

    def region(self) -> None:
        location = self.cluster.location
        if self.inp.protecting and location not in BACKUP_REGIONS:
            self.add(
                FindingCode.REGION_NOT_SUPPORTED,
                Severity.BLOCK,
                f"Azure Backup for AKS is not available in {location}; leave clusters there out of the "
                "config's "
                "scope (scope.regions)",
                region=location,
                source=REGIONS_SOURCE,
            )
        elif self.inp.vault_tier and location not in VAULT_TIER_REGIONS:
            self.add(
                FindingCode.VAULT_TIER_NOT_IN_REGION,
                Severity.BLOCK,
                f"{location} has the operational tier only: use a backup policy without the vault tier for "
                f"clusters in {location}",
                region=location,
                source=REGIONS_SOURCE,
            )

    # Azure-side deny on the extension resource -------------------------------------------------------
    def synthetic_extension(self) -> dict[str, Any]:
        settings = dict(self.inp.extension_settings or {})
        return {
            "id": self.extension_id,
            "name": self.inp.extension_name,
            "type": EXTENSION_TYPE_ARM,
            "properties": {
                "extensionType": EXTENSION_TYPE,
                "autoUpgradeMinorVersion": True,
                "releaseTrain": DEFAULT_RELEASE_TRAIN,
                "configurationSettings": settings,
                "scope": {"cluster": {"releaseNamespace": self.inp.extension_namespace}},
            },
        }

    def arm_deny(self, policy: PolicyData) -> None:
        body = self.synthetic_extension()
        for assignment in sorted(policy.assignments, key=lambda a: ignore_case_key(a.id)):
            if not covers(assignment, self.extension_id, self.inp.management_groups):
                continue
            did = ignore_case_key(assignment.definition_id)
            name = catalog.definition_name(did)
            if name in catalog.KUBERNETES_DEFINITIONS or name in catalog.INITIATIVES:
                continue
            if catalog.is_set_definition(did):
                initiative = policy.set_definitions.get(did)
                if initiative is None:
                    self.not_read(assignment, did)
                    continue
                values, _ = effective_parameters(initiative.parameters, assignment.parameters)
                for member in initiative.members:
                    member_values = {}
                    for pname, binding in member.bindings.items():
                        value, _bound = resolve_binding(binding, values)
                        if not is_unset(value):
                            member_values[pname] = value
                    self.arm_member(
                        assignment, policy, member.definition_id, member_values, member.reference_id, body
                    )
            else:
                self.arm_member(
                    assignment, policy, assignment.definition_id, assignment.parameters, None, body
                )

    def not_read(self, assignment: PolicyAssignment, definition_id: str) -> None:
        self.add(
            FindingCode.POLICY_NOT_EVALUATED,
            Severity.WARN,
            f"could not read definition {definition_id} of policy assignment {assignment.label}; check "
            "whether it "
            f"denies {EXTENSION_TYPE_ARM}",
            assignmentId=assignment.id,
            assignmentName=assignment.name,
            definitionId=definition_id,
        )

    def arm_member(
        self,
        assignment: PolicyAssignment,
        policy: PolicyData,
        definition_id: str,
        given: Mapping[str, Any],
        reference_id: str | None,
        body: Mapping[str, Any],
    ) -> None:
        name = catalog.definition_name(definition_id)
        if name in catalog.KUBERNETES_DEFINITIONS:
            return
        definition = policy.definitions.get(ignore_case_key(definition_id))
        if definition is None:
            self.not_read(assignment, definition_id)
            return
        if definition.mode.lower() != "all":
            # Indexed: only types with tags and location (extensions have neither); RP modes: in-cluster
            return
        values, _missing = effective_parameters(definition.parameters, given)
        effect = (rule_effect(definition.rule, values) or "").lower()
        if effect not in ("deny", "audit"):
            return
        verdict = evaluate(definition.rule.get("if") or {}, body, values)
        if verdict is False:
            return
        enforced = assignment.enforcement_mode.lower() != "donotenforce"
        evidence: dict[str, Any] = {
            "assignmentId": assignment.id,
            "assignmentName": assignment.name,
            "definitionId": definition.id,
            "definitionName": definition.display_name,
            "referenceId": reference_id,
            "effect": effect,
            "enforcementMode": assignment.enforcement_mode,
            "resourceType": EXTENSION_TYPE_ARM,
        }
        if verdict is None:
            if effect == "deny" and enforced:
                self.add(
                    FindingCode.POLICY_NOT_EVALUATED,
                    Severity.WARN,
                    f"policy assignment {assignment.label} may deny the backup extension (its rule could "
                    "not be "
                    "evaluated here); confirm with checkPolicyRestrictions or exempt scope "
                    f"{self.cluster.id}",
                    **evidence,
                )
            return
        severity = Severity.BLOCK if effect == "deny" and enforced else Severity.WARN
        rule = catalog.RESOURCE_TYPE_RULES.get(name)
        if rule is not None and reference_id is None:
            current = values.get(rule.parameter) or []
            if rule.denies_listed:
                suggested = [t for t in current if str(t).lower() != EXTENSION_TYPE_ARM.lower()]
                change = f"remove {EXTENSION_TYPE_ARM} from"
            else:
                suggested = [*current, EXTENSION_TYPE_ARM]
                change = f"add {EXTENSION_TYPE_ARM} to"
            remedy = (
                f"{change} parameter {rule.parameter} of policy assignment {assignment.label}: "
                f"{rule.parameter} = {_json_list(suggested)}"
            )
            evidence.update(parameter=rule.parameter, current=list(current), suggested=suggested)
        else:
            remedy = (
                f"exempt the cluster from policy assignment {assignment.label}: az policy exemption create "
                "--name "
                f"allow-aks-backup-extension --scope {self.cluster.id} --policy-assignment {assignment.id} "
                + (f"--policy-definition-reference-ids {reference_id} " if reference_id else "")
                + "--exemption-category Waiver"
            )
        self.add(FindingCode.EXTENSION_DENIED_BY_POLICY, severity, remedy, **evidence)

    # Gatekeeper ----------------------------------------------------------------------------------------
    def gatekeeper(self, policy: PolicyData) -> None:
        for assignment in sorted(policy.assignments, key=lambda a: ignore_case_key(a.id)):
            if not covers(assignment, str(self.cluster.id), self.inp.management_groups):
                continue
            did = ignore_case_key(assignment.definition_id)
            name = catalog.definition_name(did)
            if name in catalog.KUBERNETES_DEFINITIONS and not catalog.is_set_definition(did):
                definition = catalog.KUBERNETES_DEFINITIONS[name]
                spec = policy.definitions.get(did)
                defaults = (
                    effective_parameters(spec.parameters, {})[0]
                    if spec is not None
                    else _catalog_defaults(definition)
                )
                values = {**defaults, **assignment.parameters}
                self.gatekeeper_member(assignment, definition, values, {p: p for p in values}, None)
            elif catalog.is_set_definition(did):
                read = policy.set_definitions.get(did)
                builtin = catalog.INITIATIVES.get(name)
                if read is not None:
                    spec_defaults = effective_parameters(read.parameters, {})[0]
                    members = [(m.definition_id, m.reference_id, m.bindings) for m in read.members]
                elif builtin is not None:
                    spec_defaults = dict(builtin.defaults)
                    members = [(m.definition, m.reference_id, m.bindings) for m in builtin.members]
                else:
                    continue
                initiative_values = {**spec_defaults, **assignment.parameters}
                for member_id, reference_id, bindings in members:
                    member_name = catalog.definition_name(member_id)
                    member_definition = catalog.KUBERNETES_DEFINITIONS.get(member_name)
                    if member_definition is None:
                        continue
                    values = _catalog_defaults(member_definition)
                    bound: dict[str, str | None] = {}
                    for pname, binding in bindings.items():
                        value, initiative_param = resolve_binding(binding, initiative_values)
                        bound[pname] = initiative_param
                        if not is_unset(value):
                            values[pname] = value
                    self.gatekeeper_member(assignment, member_definition, values, bound, reference_id)

    def gatekeeper_member(
        self,
        assignment: PolicyAssignment,
        definition: catalog.KubernetesDefinition,
        values: Mapping[str, Any],
        bound: Mapping[str, str | None],
        reference_id: str | None,
    ) -> None:
        effect = str(values.get("effect", definition.default_effect)).lower()
        if effect not in ("deny", "audit"):
            return  # disabled (or mutate: not a blocker candidate)
        namespace = self.inp.extension_namespace
        if namespace in catalog.ALWAYS_EXCLUDED_NAMESPACES:
            return
        if namespace_matches(namespace, values.get("excludedNamespaces") or ()):
            return
        included = values.get("namespaces") or []
        if included and not namespace_matches(namespace, included):
            return
        if definition.has_excluded_images and images_excluded(values.get("excludedImages") or []):
            return
        settings = self.inp.extension_settings or {}
        note: str | None = None
        if definition.check is catalog.Check.ALLOWED_IMAGES:
            allowed = regex_allows(values.get("allowedContainerImagesRegex"))
            if allowed is True:
                return
            if allowed is None:
                note = "allowedContainerImagesRegex is unset or not a regex preflight can evaluate"
        elif definition.check is catalog.Check.LIMITS:
            fits = _limits_fit(values, settings)
            if fits is True:
                return
            if fits is None:
                note = "cpuLimit/memoryLimit could not be compared with the extension's limits"
        elif definition.check is catalog.Check.LABELS and not values.get("labelsList"):
            return
        enforced = assignment.enforcement_mode.lower() != "donotenforce"
        if effect == "deny" and enforced and self.cluster.azure_policy_enabled:
            severity = (
                self.unconfirmed_deny if definition.impact is catalog.Impact.UNCONFIRMED else Severity.BLOCK
            )
        else:
            severity = Severity.WARN
        param = bound.get("excludedNamespaces", "excludedNamespaces" if reference_id is None else None)
        current_ns = list(values.get("excludedNamespaces") or [])
        suggested_ns = [*current_ns, namespace]
        evidence: dict[str, Any] = {
            "assignmentId": assignment.id,
            "assignmentName": assignment.name,
            "assignmentScope": assignment.scope,
            "definitionId": definition.id,
            "definitionName": definition.display_name,
            "referenceId": reference_id,
            "effect": effect,
            "enforcementMode": assignment.enforcement_mode,
            "azurePolicyAddon": self.cluster.azure_policy_enabled,
            "impact": definition.impact.value,
            "blocks": definition.blocks,
            "namespace": namespace,
        }
        if note:
            evidence["note"] = note
        regex_param = bound.get(
            "allowedContainerImagesRegex", "allowedContainerImagesRegex" if reference_id is None else None
        )
        if definition.check is catalog.Check.ALLOWED_IMAGES and regex_param:
            old = values.get("allowedContainerImagesRegex")
            new = (
                f"{old}|{catalog.SUGGESTED_IMAGE_REGEX}"
                if isinstance(old, str) and old
                else catalog.SUGGESTED_IMAGE_REGEX
            )
            remedy = (
                f"add {catalog.SUGGESTED_IMAGE_REGEX} to parameter {regex_param} of policy assignment "
                f"{assignment.label}: {regex_param} = {json.dumps(new)}"
                + (f" (or add {namespace} to {param})" if param else "")
            )
            evidence.update(parameter=regex_param, current=old, suggested=new)
            if param:
                evidence.update(alternativeParameter=param, alternativeSuggested=suggested_ns)
        elif param:
            remedy = (
                f"add {namespace} to parameter {param} of policy assignment {assignment.label}: "
                f"{param} = {_json_list(suggested_ns)}"
            )
            evidence.update(parameter=param, current=current_ns, suggested=suggested_ns)
        else:
            remedy = (
                f"exempt the cluster from member {reference_id} of policy assignment {assignment.label} (its "
                "namespace exclusions are fixed): az policy exemption create --name allow-aks-backup "
                "--scope "
                f"{self.cluster.id} --policy-assignment {assignment.id} --policy-definition-reference-ids "
                f"{reference_id} --exemption-category Waiver"
            )
            evidence.update(parameter=None, current=current_ns, suggested=None)
        if definition.check is catalog.Check.LIMITS:
            evidence["extensionLimits"] = {
                k: settings.get(v, catalog.EXTENSION_DEFAULT_LIMITS[k]) for k, v in LIMIT_SETTINGS.items()
            }
        member = {
            k: evidence.pop(k)
            for k in ("definitionId", "definitionName", "referenceId", "effect", "impact", "blocks")
        }
        key = (ignore_case_key(assignment.id), remedy)
        if key in self.pending:
            old_severity, merged = self.pending[key]
            merged["members"].append(member)
            worse = Severity.BLOCK if Severity.BLOCK in (old_severity, severity) else Severity.WARN
            self.pending[key] = (worse, merged)
        else:
            evidence["members"] = [member]
            self.pending[key] = (severity, evidence)

    def flush_gatekeeper(self) -> None:
        for (_assignment, remedy), (severity, evidence) in self.pending.items():
            first = evidence["members"][0]
            evidence.update(definitionId=first["definitionId"], referenceId=first["referenceId"])
            self.add(FindingCode.GATEKEEPER_POLICY, severity, remedy, **evidence)
        self.pending.clear()

    # Deployment Safeguards -----------------------------------------------------------------------------
    def safeguards(self, safeguards: Safeguards) -> None:
        level = safeguards.level.lower()
        if level not in ("enforce", "warn"):
            return
        namespace = self.inp.extension_namespace
        excluded = (*safeguards.excluded_namespaces, *safeguards.system_excluded_namespaces)
        if namespace_matches(namespace, excluded):
            return
        active = self.cluster.azure_policy_enabled
        severity = Severity.BLOCK if level == "enforce" and active else Severity.WARN
        suggested = [*safeguards.excluded_namespaces, namespace]
        self.add(
            FindingCode.DEPLOYMENT_SAFEGUARDS,
            severity,
            f"exclude {namespace} from Deployment Safeguards: az aks safeguards update --resource-group "
            f"{self.cluster.resource_group} --name {self.cluster.name} --excluded-ns {' '.join(suggested)}",
            level=safeguards.level,
            excludedNamespaces=list(safeguards.excluded_namespaces),
            systemExcludedNamespaces=list(safeguards.system_excluded_namespaces),
            suggested=suggested,
            azurePolicyAddon=active,
            namespace=namespace,
        )

    # storage -------------------------------------------------------------------------------------------
    def storage(self, account: StorageAccount) -> None:
        settings = self.inp.extension_settings or {}
        use_aad = str(settings.get(SETTING_USE_AAD, "")).strip().lower() == "true"
        if not account.allow_shared_key_access and not use_aad:
            self.add(
                FindingCode.STORAGE_SHARED_KEY_DISABLED,
                Severity.BLOCK,
                f"storage account {account.name} disallows shared keys and extension "
                f"{self.inp.extension_name} does "
                f"not use Entra ID: set configuration setting {SETTING_USE_AAD}=true (and "
                "storageAccountURI) on "
                f"the extension, or allow shared key access on {account.name}",
                storageAccountId=account.id,
                allowSharedKeyAccess=False,
                useAAD=settings.get(SETTING_USE_AAD),
            )
        trusted = any(b.lower() == "azureservices" for b in account.bypass) or any(
            "/providers/microsoft.dataprotection/backupvaults/" in r.lower()
            for r in account.resource_access_rules
        )
        if account.default_action.lower() == "deny" and not trusted:
            bypass = [*account.bypass, "AzureServices"] if account.bypass != ("None",) else ["AzureServices"]
            self.add(
                FindingCode.STORAGE_FIREWALL,
                Severity.BLOCK,
                f"storage account {account.name} denies public network access without trusting Azure "
                "services: "
                f"az storage account update --name {account.name} --resource-group {account.resource_group} "
                f"--bypass {' '.join(bypass)} (or add the Backup vault as a resource-instance rule)",
                storageAccountId=account.id,
                defaultAction=account.default_action,
                bypass=list(account.bypass),
                resourceAccessRules=list(account.resource_access_rules),
            )


def preflight(inp: PreflightInput, *, unconfirmed_deny: Severity = Severity.BLOCK) -> tuple[Finding, ...]:
    """Every finding for one cluster, blockers and warnings, in a fixed order.

    :param inp: what was read about the cluster and its surroundings.
    :keyword unconfirmed_deny: severity of an enforced Deny whose effect on the extension is UNCONFIRMED
        (privileged containers, host paths, ... — :class:`policy_catalog.Impact`); ``block`` (the default)
        favours not installing a broken extension, ``warn`` favours trying.
    """
    run = _Run(inp, unconfirmed_deny)
    run.providers()
    run.region()
    if inp.policy is not None:
        run.arm_deny(inp.policy)
        run.gatekeeper(inp.policy)
        run.flush_gatekeeper()
    if inp.safeguards is not None:
        run.safeguards(inp.safeguards)
    if inp.storage is not None:
        run.storage(inp.storage)
    return tuple(run.findings)


def blocking(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """The findings that stop the install."""
    return tuple(f for f in findings if f.blocks)


def unread(what: str, error: str, *, code: FindingCode = FindingCode.POLICY_NOT_EVALUATED) -> Finding:
    """A warning that ``what`` could not be read (a permission gap): preflight goes on without that check."""
    return Finding(
        code,
        Severity.WARN,
        f"could not read {what} ({error}); the install goes ahead without that check: grant the "
        "remediator's identity Reader where it is missing",
        MappingProxyType({"unread": what, "error": error}),
    )


def blocked_by_policy(findings: Iterable[Finding]) -> tuple[str, ...]:
    """The names of the policy assignments (or ``deployment-safeguards``) whose blocking findings stop the
    install, in order, once each: the report's "blocked by policy" group lists a cluster under these."""
    names: dict[str, None] = {}
    for finding in findings:
        if not finding.blocks or not finding.code.is_policy:
            continue
        name = finding.assignment_name
        if name is None and finding.code is FindingCode.DEPLOYMENT_SAFEGUARDS:
            name = "deployment-safeguards"
        names[name or finding.code.value] = None
    return tuple(names)


# ---- failed-extension attribution -----------------------------------------------------------------------

_GATEKEEPER_DENIAL = re.compile(
    r'admission webhook "validation\.gatekeeper\.sh" denied the request: \[(azurepolicy-[a-z0-9-]+)\]',
    re.IGNORECASE,
)
_POLICY_CODES = (FindingCode.GATEKEEPER_POLICY, FindingCode.DEPLOYMENT_SAFEGUARDS)


def _definition_ids(finding: Finding) -> set[str]:
    members = finding.evidence.get("members") or ()
    ids = {ignore_case_key(str(m.get("definitionId", ""))) for m in members if isinstance(m, Mapping)}
    ids.add(ignore_case_key(str(finding.evidence.get("definitionId", ""))))
    return ids - {""}


def attribute_failure(message: str | None, findings: Iterable[Finding]) -> Finding | None:
    """The finding that explains a Failed extension (or a failed write), given its error text.

    * a Gatekeeper denial (``admission webhook "validation.gatekeeper.sh" denied the request:
      [azurepolicy-<kind>-<hash>]``): the blocking Gatekeeper finding whose definition has that constraint
      kind, else the first blocking Gatekeeper/Safeguards finding, else a new ``gatekeeper-policy`` finding
      naming the constraint;
    * ``BackoffLimitExceeded`` (the pre-install CRD job; troubleshoot doc: "check that there are no policies
      blocking the resource creation"): the first blocking Gatekeeper/Safeguards finding, else ``None``;
    * ``RequestDisallowedByPolicy``: the ``extension-denied-by-policy`` finding (by assignment id if the text
      names one);
    * ``KeyBasedAuthenticationNotPermitted`` / ``UserErrorStorageAccountKeyAccessDisallowed``: the shared-key
      finding; ``MissingSubscriptionRegistration``: the provider finding;
    * ``UserErrorPVSnapshotDisallowedByPolicy``: a new ``snapshot-disallowed-by-policy`` finding.
    ``None`` when nothing matches (the caller handles the failure as it does today).
    """
    if not message:
        return None
    found = list(findings)
    block = [f for f in found if f.blocks]

    def first(codes: Iterable[FindingCode]) -> Finding | None:
        wanted = set(codes)
        return next((f for f in block if f.code in wanted), None)

    denial = _GATEKEEPER_DENIAL.search(message)
    if denial:
        constraint = denial.group(1).lower()
        ids = {ignore_case_key(d.id) for d in catalog.definitions_for_constraint(constraint)}
        for f in block:
            if f.code is FindingCode.GATEKEEPER_POLICY and bool(_definition_ids(f) & ids):
                return f
        match = first(_POLICY_CODES)
        if match is not None:
            return match
        names = ", ".join(d.display_name for d in catalog.definitions_for_constraint(constraint)) or "unknown"
        return Finding(
            FindingCode.GATEKEEPER_POLICY,
            Severity.BLOCK,
            f"a Kubernetes policy (constraint {constraint}; definition: {names}) denies the backup "
            "extension's pods: "
            f"add {catalog.BACKUP_NAMESPACE} to the excludedNamespaces of the assignment that created it",
            MappingProxyType({"constraint": constraint, "definitions": sorted(ids)}),
        )
    lowered = message.lower()
    if "backofflimitexceeded" in lowered:
        return first(_POLICY_CODES)
    if "requestdisallowedbypolicy" in lowered:
        denied = [f for f in block if f.code is FindingCode.EXTENSION_DENIED_BY_POLICY]
        named = [f for f in denied if str(f.evidence.get("assignmentId", "")).lower() in lowered]
        return (named or denied)[0] if (named or denied) else None
    if "keybasedauthenticationnotpermitted" in lowered or "storageaccountkeyaccessdisallowed" in lowered:
        return first([FindingCode.STORAGE_SHARED_KEY_DISABLED])
    if "missingsubscriptionregistration" in lowered:
        return first([FindingCode.PROVIDER_NOT_REGISTERED])
    if "usererrorpvsnapshotdisallowedbypolicy" in lowered:
        return Finding(
            FindingCode.SNAPSHOT_DISALLOWED_BY_POLICY,
            Severity.BLOCK,
            "an Azure Policy blocks CSI volume snapshots in the cluster: exclude the snapshot resources or "
            "the "
            "workload namespaces from that policy",
            MappingProxyType({"errorCode": "UserErrorPVSnapshotDisallowedByPolicy"}),
        )
    return None
