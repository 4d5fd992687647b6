"""What Azure Policy does to a backup-extension install: ARM-side Deny on the PUT, Gatekeeper denial after.

Two places enforce policy on the extension, and the emulator models both so the product's preflight can be
tested against something that actually refuses:

* **ARM** evaluates Deny assignments (mode ``All``) on the ``Microsoft.KubernetesConfiguration/extensions``
  PUT and answers **403 ``RequestDisallowedByPolicy``** (D: the code and the ``Policy identifiers`` message
  are ARM's; the ``additionalInfo`` PolicyViolation entry follows public error reports, A for its details).
  Rules are interpreted by ``emulator.policy.rules`` (a rule it cannot read denies nothing, logged).
* **Gatekeeper** (the Azure Policy add-on, only when ``addonProfiles.azurepolicy.enabled``): the PUT is
  accepted and the install ends **Failed**, its error carrying the real admission text
  ``admission webhook "validation.gatekeeper.sh" denied the request: [azurepolicy-<kind>-<hash>] ...``
  (D: MicrosoftDocs/azure-docs#121332 and the AKS Deployment Safeguards doc). A Deny assignment
  (``enforcementMode`` Default) of a vendored Kubernetes definition or initiative, or Deployment Safeguards
  at ``Enforce``, blocks it unless the extension's namespace is excluded.

The extension's pods, as modelled (A unless marked): namespace = ``scope.cluster.releaseNamespace`` or
``dataprotection-microsoft``; images under ``mcr.microsoft.com/azurebackup/k8s/`` (D: the denial event);
container limits 1000m CPU / 1280Mi memory unless ``resources.limits.*`` settings say otherwise (D: backup
docs' defaults); requests defined; service-account token mounted (D: Azure/azure-policy#1410 reports it);
no custom labels; not privileged, no host paths/network/namespaces, no added capabilities (A). So these
definitions deny it: allowed images (regex not matching), automount token, resource limits (caps below the
extension's), required labels (a non-empty list), restrict resource types (``kind`` naming Job, Deployment,
Pod, CustomResourceDefinition or ServiceAccount). The others never do here. Deployment Safeguards at
``Enforce`` deny it through the probes safeguard (A: which safeguard trips first is not documented).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from emulator.errors import ArmError
from emulator.policy.catalog import PolicySetDefinition, mode_of
from emulator.policy.engine import Assignment, PolicyEngine, cluster_key_of
from emulator.policy.rules import (
    PolicyDefinition,
    UnsupportedPolicyError,
    evaluate_condition,
    evaluate_template,
)

logger = logging.getLogger(__name__)

BACKUP_NAMESPACE = "dataprotection-microsoft"
EXTENSION_IMAGES = (
    "mcr.microsoft.com/azurebackup/k8s/dataprotection-agent:1.0.0",
    "mcr.microsoft.com/azurebackup/k8s/velero:1.0.0",
)
DEFAULT_LIMITS = {"cpu": "1000m", "memory": "1280Mi"}
ALWAYS_EXCLUDED = {"kube-system", "gatekeeper-system", "azure-arc"}
CRD_JOB = "dataprotection-microsoft-kubernetes-agent-upgrade-crds"
EXTENSION_KINDS = {"job", "deployment", "pod", "customresourcedefinition", "serviceaccount"}

CONSTRAINT_KINDS = {
    "febd0533-8e55-448f-b837-bd0e06f16469": "k8sazurev2containerallowedimages",
    "423dd1ba-798e-40e4-9c4d-b6902674b423": "k8sazurev2blockautomounttoken",
    "e345eecc-fa47-480f-9e88-67dcc122b164": "k8sazurev3containerlimits",
    "46592696-4c7b-4bf3-9e45-6c2763bdc0a6": "k8sazurev1enforcelabels",
    "b81f454c-eebb-4e4f-9dfe-dca060e8a8fd": "k8sazurev1blockresource",
}
"""Gatekeeper template kinds of the definitions whose denial is modelled; a unit test checks they agree with
the product's catalog (the emulator must not import the product)."""
SAFEGUARDS_KIND = "k8sazurev2containerenforceprobes"


def _constraint(kind: str, seed: str) -> str:
    return f"azurepolicy-{kind[:30]}-{hashlib.sha1(seed.lower().encode()).hexdigest()[:20]}"


def _ns_match(namespace: str, patterns: Any) -> bool:
    for p in patterns or []:
        p = str(p)
        if p == namespace or (p.endswith("*") and namespace.startswith(p[:-1])):
            return True
        if p.startswith("*") and namespace.endswith(p[1:]):
            return True
    return False


def _images_excluded(patterns: Any) -> bool:
    pats = [str(p) for p in patterns or []]
    return all(
        any(i == p or (p.endswith("*") and i.startswith(p[:-1])) for p in pats) for i in EXTENSION_IMAGES
    )


def _cpu(value: Any) -> float | None:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(m?)", str(value).strip())
    return None if m is None else float(m.group(1)) * (1 if m.group(2) else 1000)


def _mem(value: Any) -> float | None:
    factors = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|)", str(value).strip())
    return None if m is None else float(m.group(1)) * factors[m.group(2)]


def _violation(name: str, values: Mapping[str, Any], settings: Mapping[str, str]) -> str | None:
    """The denial message of definition ``name`` for the extension's pods, or None (no violation)."""
    if name == "febd0533-8e55-448f-b837-bd0e06f16469":
        regex = values.get("allowedContainerImagesRegex")
        try:
            if isinstance(regex, str) and all(re.search(regex, i) for i in EXTENSION_IMAGES):
                return None
        except re.error:
            pass
        return f"Container image {EXTENSION_IMAGES[0]} for container upgrade-crds has not been allowed."
    if name == "423dd1ba-798e-40e4-9c4d-b6902674b423":
        return f"Automounting service account token is disallowed, pod: {CRD_JOB}"
    if name == "e345eecc-fa47-480f-9e88-67dcc122b164":
        cpu = _cpu(settings.get("resources.limits.cpu", DEFAULT_LIMITS["cpu"]))
        mem = _mem(settings.get("resources.limits.memory", DEFAULT_LIMITS["memory"]))
        cap_cpu, cap_mem = _cpu(values.get("cpuLimit")), _mem(values.get("memoryLimit"))
        if None not in (cpu, mem, cap_cpu, cap_mem) and cpu <= cap_cpu and mem <= cap_mem:  # type: ignore[operator]
            return None
        return (
            "container <dataprotection-microsoft-kubernetes-agent> memory limit "
            f"<{DEFAULT_LIMITS['memory']}> is "
            f"higher than the maximum allowed of <{values.get('memoryLimit')}>"
        )
    if name == "46592696-4c7b-4bf3-9e45-6c2763bdc0a6":
        labels = values.get("labelsList") or []
        return f"you must provide labels: {sorted(labels)}" if labels else None
    if name == "b81f454c-eebb-4e4f-9dfe-dca060e8a8fd":
        kinds = values.get("kind") or []
        hit = [k for k in kinds if str(k).lower() in EXTENSION_KINDS]
        return f"Creation of resource kind {hit[0]} is not allowed" if hit else None
    return None


def _member_values(
    assignment: Assignment, binding: Mapping[str, Any], definition: PolicyDefinition
) -> dict[str, Any]:
    values: dict[str, Any] = {
        k: v["defaultValue"] for k, v in definition.parameters.items() if "defaultValue" in v
    }
    for pname, spec in binding.items():
        raw = spec.get("value") if isinstance(spec, Mapping) else spec
        try:
            values[pname] = evaluate_template(raw, assignment.parameters, None)
        except (KeyError, UnsupportedPolicyError):
            continue
    return values


def gatekeeper_denial(
    engine: PolicyEngine, cluster: Mapping[str, Any], extension: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The ``errorInfo`` an install ends with because Gatekeeper denies the extension's pods, or None."""
    props = cluster.get("properties") or {}
    addons = props.get("addonProfiles") or {}
    addon = next((v for k, v in addons.items() if k.lower() == "azurepolicy"), {}) or {}
    if not addon.get("enabled"):
        return None
    ext_props = extension.get("properties") or {}
    scope = (ext_props.get("scope") or {}).get("cluster") or {}
    namespace = str(scope.get("releaseNamespace") or BACKUP_NAMESPACE)
    settings = ext_props.get("configurationSettings") or {}
    cluster_id = str(cluster.get("id", ""))
    ckey = cluster_key_of(cluster_id) or cluster_id.lower()
    denial: tuple[str, str] | None = None
    # No engine.lock here: callers hold the state lock, and the engine takes the state lock under its own.
    # list() of a dict is atomic under the GIL; the engine replaces or extends these dicts, never edits them.
    assignments = sorted(list(engine.assignments.values()), key=lambda a: a.key)
    safeguards = engine.safeguards.get(ckey)
    for assignment in assignments:
        if not assignment.enforced or not assignment.covers(cluster_id, engine.groups_of):
            continue
        members: list[tuple[PolicyDefinition, dict[str, Any]]] = []
        if isinstance(assignment.definition, PolicySetDefinition):
            for member in assignment.definition.members:
                definition = engine.definitions.get(member.definition)
                if definition is not None and member.definition in CONSTRAINT_KINDS:
                    members.append((definition, _member_values(assignment, member.parameters, definition)))
        elif assignment.definition.name.lower() in CONSTRAINT_KINDS:
            members.append((assignment.definition, dict(assignment.parameters)))
        for definition, values in members:
            if str(values.get("effect", "")).lower() != "deny":
                continue
            if namespace in ALWAYS_EXCLUDED or _ns_match(namespace, values.get("excludedNamespaces")):
                continue
            if values.get("namespaces") and not _ns_match(namespace, values.get("namespaces")):
                continue
            images = values.get("excludedImages")
            if "excludedImages" in definition.parameters and images and _images_excluded(images):
                continue
            message = _violation(definition.name.lower(), values, settings)
            if message is not None:
                kind = CONSTRAINT_KINDS[definition.name.lower()]
                denial = (_constraint(kind, assignment.id + definition.name), message)
                break
        if denial:
            break
    if denial is None and safeguards is not None:
        sg = safeguards.get("properties") or {}
        excluded = [*(sg.get("excludedNamespaces") or []), *(sg.get("systemExcludedNamespaces") or [])]
        if str(sg.get("level", "")).lower() == "enforce" and not _ns_match(namespace, excluded):
            denial = (
                _constraint(SAFEGUARDS_KIND, ckey),
                f"Container <upgrade-crds> in your Pod <{CRD_JOB}> has no <livenessProbe>. Required probes: "
                '["readinessProbe", "livenessProbe"]',
            )
    if denial is None:
        return None
    constraint, text = denial
    release = str(extension.get("name") or "azure-aks-backup")
    return {
        "code": "ExtensionOperationFailed",
        "message": (
            f"Error: {{failed to install chart from path [] for release [{release}]: err [release {release} "
            "failed, and has been uninstalled due to atomic being set: pre-install: job failed: "
            "BackoffLimitExceeded]} occurred while doing the operation : {Installing the extension} on the "
            f"config. Events: {namespace} Warning FailedCreate job/{CRD_JOB} Error creating: admission "
            "webhook "
            f'"validation.gatekeeper.sh" denied the request: [{constraint}] {text}'
        ),
    }


class PolicyDenied(ArmError):
    """403 RequestDisallowedByPolicy with ARM's ``additionalInfo`` PolicyViolation entries."""

    def __init__(self, resource_name: str, violations: list[dict[str, Any]]) -> None:
        identifiers = json.dumps(
            [
                {"policyAssignment": v["policyAssignment"], "policyDefinition": v["policyDefinition"]}
                for v in violations
            ],
            separators=(",", ":"),
        )
        super().__init__(
            403,
            "RequestDisallowedByPolicy",
            f"Resource '{resource_name}' was disallowed by policy. Policy identifiers: '{identifiers}'.",
            target=resource_name,
        )
        self.violations = violations

    def body(self) -> dict[str, Any]:
        out = super().body()
        out["error"]["additionalInfo"] = [{"type": "PolicyViolation", "info": v} for v in self.violations]
        return out


def request_denial(engine: PolicyEngine, extension: Mapping[str, Any]) -> PolicyDenied | None:
    """ARM's Deny evaluation of an extension PUT (mode-All definitions; enforced assignments only)."""
    ext_id = str(extension.get("id", ""))
    violations: list[dict[str, Any]] = []
    assignments = sorted(list(engine.assignments.values()), key=lambda a: a.key)  # no engine.lock: see above
    for assignment in assignments:
        if not assignment.enforced or not assignment.covers(ext_id, engine.groups_of):
            continue
        members: list[tuple[PolicyDefinition, dict[str, Any], str]] = []
        if isinstance(assignment.definition, PolicySetDefinition):
            for member in assignment.definition.members:
                definition = engine.lookup(member.definition)
                if isinstance(definition, PolicyDefinition):
                    members.append(
                        (
                            definition,
                            _member_values(assignment, member.parameters, definition),
                            member.reference_id,
                        )
                    )
        else:
            members.append((assignment.definition, dict(assignment.parameters), ""))
        for definition, values, reference in members:
            if mode_of(definition).lower() != "all":
                continue
            try:
                effect = str(definition.effect(values)).lower()
                if effect != "deny" or not evaluate_condition(definition.rule["if"], extension, values):
                    continue
            except (UnsupportedPolicyError, KeyError) as exc:
                logger.info("assignment %s: rule not evaluated (%s); not denying", assignment.id, exc)
                continue
            violations.append(
                {
                    "policyAssignment": {"name": assignment.name, "id": assignment.id},
                    "policyDefinition": {"name": definition.name, "id": definition.id},
                    "policyDefinitionReferenceId": reference,
                    "evaluationDetails": {"evaluatedExpressions": [{"path": "type", "result": "True"}]},
                }
            )
    if not violations:
        return None
    return PolicyDenied(str(extension.get("name", "")), violations)
