"""What the product knows about the built-in Azure Policy definitions that can stop the backup extension.

Preflight must name the assignment and the exact parameter to change before anything is written, without
reading every built-in definition from Azure on every run. This module is that knowledge, as plain data:
for each Kubernetes (Gatekeeper) definition that can deny the extension's pods, its id, default effect, the
parameters that exclude a namespace or an image (with their defaults), what it blocks and how sure we are;
for the four Kubernetes initiatives that contain them, which member takes which initiative parameter; and
the two built-in ARM-side definitions that deny resource types (``Not allowed resource types``, ``Allowed
resource types``), which is how organisations usually deny ``Microsoft.KubernetesConfiguration/extensions``.

Source of every value: ``Azure/azure-policy`` snapshot ``f4a50bac`` (2026-04-29), the same JSON files the
emulator vendors byte-exact under ``emulator/policy/definitions/`` (MANIFEST.json there); a unit test keeps
this catalog equal to them (parameter names, defaults, default effects, initiative members and bindings).
Why each definition is here: ``shared/reference/protection_facts.md`` §3.2 (evidence / inference per row).

Pure data and small helpers; no I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from remediator.core.catalog import EXTENSION_NAMESPACE
from remediator.core.text import ignore_case_key

logger = logging.getLogger(__name__)

SNAPSHOT_COMMIT = "f4a50bacae07ddb096943c597669bcae494a6e29"
"""``Azure/azure-policy`` commit the catalog was read from (2026-04-29)."""

DEFINITION_PREFIX = "/providers/Microsoft.Authorization/policyDefinitions/"
SET_DEFINITION_PREFIX = "/providers/Microsoft.Authorization/policySetDefinitions/"

BACKUP_NAMESPACE = EXTENSION_NAMESPACE
"""Release namespace of the backup extension (ASO's backup test installs it there; the emulator and the
Kubernetes definitions' reports name it) [Azure/azure-service-operator#3736; Azure/azure-policy#1410]."""

BACKUP_IMAGE_PREFIX = "mcr.microsoft.com/azurebackup/k8s/"
"""Registry path of the backup extension's images, as the denial event of MicrosoftDocs/azure-docs#121332
shows
(``Container image mcr.microsoft.com/azurebackup/k8s/...``)."""

BACKUP_IMAGE_PROBES: tuple[str, ...] = (
    BACKUP_IMAGE_PREFIX + "dataprotection-agent:1.0.0",
    BACKUP_IMAGE_PREFIX + "velero:1.0.0",
)
"""Image names an ``allowedContainerImagesRegex`` must match for the extension to be allowed. The exact image
names and tags are UNCONFIRMED (no public chart); the prefix is evidence. A regex that allows only some
images under the prefix is treated as blocking (it may be)."""

SUGGESTED_IMAGE_REGEX = r"^mcr\.microsoft\.com/azurebackup/.*"
"""The alternative the remedy proposes for ``allowedContainerImagesRegex`` (protection_facts.md §3.3)."""

EXTENSION_DEFAULT_LIMITS = MappingProxyType({"cpu": "1000m", "memory": "1280Mi"})
"""The extension's default container limits (aks_backup_facts.md §2.2 [DMAN][DCON]); the config may override
them with ``resources.limits.cpu`` / ``resources.limits.memory``."""

ALWAYS_EXCLUDED_NAMESPACES = frozenset({"kube-system", "gatekeeper-system", "azure-arc"})
"""Namespaces the Azure Policy add-on never evaluates, "by design" (excludedNamespaces description in the
definitions)."""


class Impact(StrEnum):
    """How sure we are that a Deny of this definition stops the backup extension."""

    EVIDENCE = "evidence"
    """Seen breaking the extension (a public report)."""
    INFERRED = "inferred"
    """Follows from documented facts about the extension and the parameter values (checked per assignment)."""
    UNCONFIRMED = "unconfirmed"
    """Possible; nothing public says whether the extension's pods violate it."""


class Check(StrEnum):
    """How preflight decides whether an assignment's parameters let the extension through."""

    NAMESPACE = "namespace"
    """Only namespace/image exclusions help (the extension is assumed to violate it otherwise)."""
    ALLOWED_IMAGES = "allowed-images"
    """``allowedContainerImagesRegex`` must match the backup images."""
    LIMITS = "limits"
    """``cpuLimit``/``memoryLimit`` must be at least the extension's limits."""
    LABELS = "labels"
    """A non-empty ``labelsList`` requires labels the extension's pods do not carry."""


@dataclass(frozen=True)
class KubernetesDefinition:
    """One built-in ``Microsoft.Kubernetes.Data`` definition that can deny the extension's pods."""

    name: str
    """The definition GUID."""
    display_name: str
    version: str
    default_effect: str
    excluded_namespaces_default: tuple[str, ...]
    has_namespaces: bool
    """Has the ``namespaces`` inclusion list (empty = every namespace)."""
    has_excluded_images: bool
    check: Check
    impact: Impact
    blocks: str
    """What it does to the extension, one line."""
    constraint_kinds: tuple[str, ...]
    """Gatekeeper constraint-template kinds (lower case) its constraints are named after
    (``azurepolicy-<kind, cut to 30 characters>-<20 hex>``); see :func:`constraint_kind_of`."""
    extra_parameters: tuple[str, ...] = ()
    """Other parameters preflight reads (``allowedContainerImagesRegex``, ``cpuLimit``, ...)."""

    @property
    def id(self) -> str:
        return DEFINITION_PREFIX + self.name


_DEFAULT_EXCLUDED = ("kube-system", "gatekeeper-system", "azure-arc", "azure-extensions-usage-system")


def _k8s(
    name: str,
    display_name: str,
    version: str,
    default_effect: str,
    check: Check,
    impact: Impact,
    blocks: str,
    kinds: tuple[str, ...],
    *,
    excluded_images: bool = True,
    namespaces: bool = True,
    extra: tuple[str, ...] = (),
) -> KubernetesDefinition:
    return KubernetesDefinition(
        name=name,
        display_name=display_name,
        version=version,
        default_effect=default_effect,
        excluded_namespaces_default=_DEFAULT_EXCLUDED,
        has_namespaces=namespaces,
        has_excluded_images=excluded_images,
        check=check,
        impact=impact,
        blocks=blocks,
        constraint_kinds=kinds,
        extra_parameters=extra,
    )


KUBERNETES_DEFINITIONS: Mapping[str, KubernetesDefinition] = MappingProxyType(
    {
        d.name: d
        for d in (
            _k8s(
                "febd0533-8e55-448f-b837-bd0e06f16469",
                "Kubernetes cluster containers should only use allowed images",
                "9.3.0",
                "Deny",
                Check.ALLOWED_IMAGES,
                Impact.EVIDENCE,
                "denies the extension's pods when mcr.microsoft.com/azurebackup/ images do not match the "
                "regex",
                ("k8sazurev2containerallowedimages",),
                excluded_images=False,
                extra=("allowedContainerImagesRegex", "excludedContainers"),
            ),
            _k8s(
                "423dd1ba-798e-40e4-9c4d-b6902674b423",
                "Kubernetes clusters should disable automounting API credentials",
                "4.2.0",
                "Audit",
                Check.NAMESPACE,
                Impact.EVIDENCE,
                "reports the extension's pods (they mount the service-account token); Deny would stop them",
                ("k8sazurev2blockautomounttoken",),
            ),
            _k8s(
                "e345eecc-fa47-480f-9e88-67dcc122b164",
                "Kubernetes cluster containers CPU and memory resource limits should not exceed the "
                "specified "
                "limits",
                "9.3.0",
                "Deny",
                Check.LIMITS,
                Impact.INFERRED,
                "denies the extension's pods when cpuLimit/memoryLimit are below the extension's limits",
                ("k8sazurev3containerlimits",),
                extra=("cpuLimit", "memoryLimit", "excludedContainers"),
            ),
            _k8s(
                "03a4ecdb-0684-4039-be91-2762979e1bc8",
                "Kubernetes cluster containers CPU and memory resource requests must be defined",
                "1.0.0-preview",
                "Deny",
                Check.NAMESPACE,
                Impact.UNCONFIRMED,
                "denies any extension container (jobs included) without CPU and memory requests",
                ("k8sazurev1containerrequests",),
            ),
            _k8s(
                "95edb821-ddaf-4404-9732-666045e056b4",
                "Kubernetes cluster should not allow privileged containers",
                "9.2.0",
                "Deny",
                Check.NAMESPACE,
                Impact.UNCONFIRMED,
                "denies the extension's pods if any of its containers is privileged",
                ("k8sazurev2noprivilege",),
                extra=("excludedContainers",),
            ),
            _k8s(
                "46592696-4c7b-4bf3-9e45-6c2763bdc0a6",
                "Kubernetes cluster pods should use specified labels",
                "7.2.0",
                "Deny",
                Check.LABELS,
                Impact.INFERRED,
                "denies the extension's pods, which do not carry the organisation's required labels",
                ("k8sazurev1enforcelabels", "k8sazurev2enforcelabels"),
                excluded_images=False,
                extra=("labelsList",),
            ),
            _k8s(
                "098fc59e-46c7-4d99-9b16-64990e543d75",
                "Kubernetes cluster pod hostPath volumes should only use allowed host paths",
                "6.3.0",
                "Audit",
                Check.NAMESPACE,
                Impact.UNCONFIRMED,
                "denies the extension's pods if they mount a host path outside the allowed list",
                ("k8sazurev4hostfilesystem",),
            ),
            _k8s(
                "f06ddb64-5fa3-4b77-b166-acb36f7f6042",
                "Kubernetes cluster pods and containers should only run with approved user and group IDs",
                "6.2.0",
                "Audit",
                Check.NAMESPACE,
                Impact.UNCONFIRMED,
                "denies the extension's pods if they run as root or outside the allowed IDs",
                ("k8sazurev3allowedusersgroups",),
            ),
            _k8s(
                "df49d893-a74c-421d-bc95-c663042e5b80",
                "Kubernetes cluster containers should run with a read only root file system",
                "6.3.0",
                "Audit",
                Check.NAMESPACE,
                Impact.UNCONFIRMED,
                "denies the extension's pods if a container has a writable root file system",
                ("k8sazurev3readonlyrootfilesystem",),
            ),
            _k8s(
                "c26596ff-4d70-4e6a-9a30-c2506bd2f80c",
                "Kubernetes cluster containers should only use allowed capabilities",
                "6.2.0",
                "Audit",
                Check.NAMESPACE,
                Impact.UNCONFIRMED,
                "denies the extension's pods if they add capabilities outside the allowed list",
                ("k8sazurev3allowedcapabilities",),
            ),
            _k8s(
                "1c6e92c9-99f0-4e55-9cf2-0c234dc48f99",
                "Kubernetes clusters should not allow container privilege escalation",
                "8.0.0",
                "Audit",
                Check.NAMESPACE,
                Impact.UNCONFIRMED,
                "denies the extension's pods unless allowPrivilegeEscalation is false",
                ("k8sazurev3noprivilegeescalation", "k8sazurev4noprivilegeescalation"),
            ),
            _k8s(
                "47a1ee2f-2a2a-4576-bf2a-e0e36709c2b8",
                "Kubernetes cluster containers should not share host namespaces",
                "6.0.0",
                "Audit",
                Check.NAMESPACE,
                Impact.UNCONFIRMED,
                "denies the extension's pods if they use the host PID or IPC namespace",
                ("k8sazurev2blockhostnamespace", "k8sazurev3blockhostnamespace"),
            ),
            _k8s(
                "82985f06-dc18-4a48-bc1c-b9f4f0098cfe",
                "Kubernetes cluster pods should only use approved host network and port list",
                "7.0.0",
                "Audit",
                Check.NAMESPACE,
                Impact.UNCONFIRMED,
                "denies the extension's pods if they use the host network or host ports",
                ("k8sazurev3hostnetworkingports", "k8sazurev4hostnetworkingports"),
            ),
            _k8s(
                "16697877-1118-4fb1-9b65-9898ec2509ec",
                "Kubernetes cluster pods should only use allowed volume types",
                "5.2.0",
                "Audit",
                Check.NAMESPACE,
                Impact.UNCONFIRMED,
                "denies the extension's pods if they mount a volume type outside the allowed list",
                ("k8sazurev2allowedvolumetypes", "k8sazurev2volumetypes"),
            ),
            _k8s(
                "b81f454c-eebb-4e4f-9dfe-dca060e8a8fd",
                "[Preview]: Kubernetes clusters should restrict creation of given resource type",
                "2.3.0-preview",
                "Audit",
                Check.NAMESPACE,
                Impact.UNCONFIRMED,
                "denies the extension's objects if `kind` names one it creates (Job, Deployment, CRD, ...)",
                ("k8sazurev1blockresource",),
                excluded_images=False,
                extra=("kind", "apiGroups"),
            ),
        )
    }
)
"""The blocker candidates of protection_facts.md §3.2, by definition GUID."""


@dataclass(frozen=True)
class Member:
    """One member of an initiative: which definition, its reference id, and how its parameters are bound."""

    definition: str
    """Definition GUID."""
    reference_id: str
    bindings: Mapping[str, object] = field(default_factory=dict)
    """Member parameter → ``"[parameters('x')]"`` (an initiative parameter) or a literal value. A member
    parameter not listed takes the member definition's default."""


@dataclass(frozen=True)
class Initiative:
    """A built-in Kubernetes initiative (only its members that are in :data:`KUBERNETES_DEFINITIONS`)."""

    name: str
    display_name: str
    version: str
    defaults: Mapping[str, object]
    """Initiative parameter defaults (only the parameters the listed members are bound to)."""
    members: tuple[Member, ...]

    @property
    def id(self) -> str:
        return SET_DEFINITION_PREFIX + self.name


def _p(name: str) -> str:
    return f"[parameters('{name}')]"


def _bind(*names: str, **literal: object) -> Mapping[str, object]:
    out: dict[str, object] = {n: _p(n) for n in names}
    out.update(literal)
    return MappingProxyType(out)


_NS = ("effect", "excludedNamespaces", "namespaces")

INITIATIVES: Mapping[str, Initiative] = MappingProxyType(
    {
        i.name: i
        for i in (
            Initiative(
                name="a8640138-9b0a-4a28-b8cb-1666c838647d",
                display_name="Kubernetes cluster pod security baseline standards for Linux-based workloads",
                version="1.4.0",
                defaults=MappingProxyType(
                    {"effect": "Audit", "excludedNamespaces": list(_DEFAULT_EXCLUDED), "namespaces": []}
                ),
                members=(
                    Member("95edb821-ddaf-4404-9732-666045e056b4", "NoPrivilegedContainers", _bind(*_NS)),
                    Member("82985f06-dc18-4a48-bc1c-b9f4f0098cfe", "BlockUsingHostNetwork", _bind(*_NS)),
                    Member(
                        "47a1ee2f-2a2a-4576-bf2a-e0e36709c2b8", "BlockUsingHostProcessIDAndIPC", _bind(*_NS)
                    ),
                    Member("c26596ff-4d70-4e6a-9a30-c2506bd2f80c", "ContainerCapabilities", _bind(*_NS)),
                    Member("098fc59e-46c7-4d99-9b16-64990e543d75", "NoHostPathVolume", _bind(*_NS)),
                ),
            ),
            Initiative(
                name="42b8ef37-b724-4e24-bbc8-7a7708edfe00",
                display_name="Kubernetes cluster pod security restricted standards for Linux-based workloads",
                version="2.5.0",
                defaults=MappingProxyType(
                    {"effect": "Audit", "excludedNamespaces": list(_DEFAULT_EXCLUDED), "namespaces": []}
                ),
                members=(
                    Member("95edb821-ddaf-4404-9732-666045e056b4", "NoPrivilegedContainers", _bind(*_NS)),
                    Member("1c6e92c9-99f0-4e55-9cf2-0c234dc48f99", "NoPrivilegeEscalation", _bind(*_NS)),
                    Member("82985f06-dc18-4a48-bc1c-b9f4f0098cfe", "BlockUsingHostNetwork", _bind(*_NS)),
                    Member(
                        "47a1ee2f-2a2a-4576-bf2a-e0e36709c2b8", "BlockUsingHostProcessIDAndIPC", _bind(*_NS)
                    ),
                    Member("c26596ff-4d70-4e6a-9a30-c2506bd2f80c", "ContainerCapabilities", _bind(*_NS)),
                    Member("16697877-1118-4fb1-9b65-9898ec2509ec", "AllowedVolumeTypes", _bind(*_NS)),
                    Member("f06ddb64-5fa3-4b77-b166-acb36f7f6042", "AllowedUsersGroups", _bind(*_NS)),
                ),
            ),
            Initiative(
                name="c047ea8e-9c78-49b2-958b-37e56d291a44",
                display_name=(
                    "Deployment safeguards should help guide developers towards AKS recommended best "
                    "practices"
                ),
                version="3.0.0",
                defaults=MappingProxyType(
                    {
                        "effect": "Audit",
                        "excludedNamespaces": ["kube-system", "gatekeeper-system", "azure-arc"],
                        "excludedImages": [],
                        "excludedContainers": [],
                    }
                ),
                members=(
                    Member(
                        "03a4ecdb-0684-4039-be91-2762979e1bc8",
                        "containerResourceRequests",
                        _bind("effect", "excludedNamespaces", "excludedImages"),
                    ),
                    Member(
                        "febd0533-8e55-448f-b837-bd0e06f16469",
                        "ensureAllowedContainerImagesInKubernetesCluster",
                        _bind(
                            "effect",
                            "excludedNamespaces",
                            "allowedContainerImagesRegex",
                            "excludedContainers",
                        ),
                    ),
                    Member(
                        "47a1ee2f-2a2a-4576-bf2a-e0e36709c2b8",
                        "blockHostNamespaces",
                        _bind("effect", "excludedNamespaces"),
                    ),
                    Member(
                        "82985f06-dc18-4a48-bc1c-b9f4f0098cfe",
                        "hostNetworkPorts",
                        _bind("effect", "excludedNamespaces"),
                    ),
                    Member(
                        "f06ddb64-5fa3-4b77-b166-acb36f7f6042",
                        "allowedUsersGroups",
                        _bind("effect", "excludedNamespaces", "excludedImages", "excludedContainers"),
                    ),
                    Member(
                        "1c6e92c9-99f0-4e55-9cf2-0c234dc48f99",
                        "containerNoPrivilegeEscalation",
                        _bind("effect", "excludedNamespaces", "excludedImages", "excludedContainers"),
                    ),
                    Member(
                        "098fc59e-46c7-4d99-9b16-64990e543d75",
                        "allowedHostPaths",
                        _bind("effect", "excludedNamespaces", "excludedImages", "excludedContainers"),
                    ),
                    Member(
                        "95edb821-ddaf-4404-9732-666045e056b4",
                        "privilegedContainers",
                        _bind("effect", "excludedNamespaces", "excludedImages", "excludedContainers"),
                    ),
                    Member(
                        "c26596ff-4d70-4e6a-9a30-c2506bd2f80c",
                        "containerAllowedCapabilities",
                        _bind("effect", "excludedNamespaces", "excludedImages", "excludedContainers"),
                    ),
                    Member(
                        "16697877-1118-4fb1-9b65-9898ec2509ec",
                        "allowedVolumeTypes",
                        _bind("effect", "excludedNamespaces", "excludedImages"),
                    ),
                ),
            ),
            Initiative(
                name="4fd005fd-51be-478f-a8fb-149d48b20d48",
                display_name=(
                    "[Preview]: Kubernetes cluster should follow the security control recommendations of "
                    "Center for Internet Security (CIS) Kubernetes benchmark"
                ),
                version="1.0.0-preview",
                defaults=MappingProxyType(
                    {
                        "effect": "Audit",
                        "excludedNamespaces": list(_DEFAULT_EXCLUDED),
                        "namespaces": [],
                        "excludedImages": [],
                    }
                ),
                members=tuple(
                    Member(definition, reference, _bind(*_NS, "excludedImages"))
                    for definition, reference in (
                        ("95edb821-ddaf-4404-9732-666045e056b4", "CIS5.2.2-NoPrivilegedContainers"),
                        (
                            "47a1ee2f-2a2a-4576-bf2a-e0e36709c2b8",
                            "CIS5.2.3-5.2.4-BlockUsingHostProcessIDAndIPC",
                        ),
                        ("82985f06-dc18-4a48-bc1c-b9f4f0098cfe", "CIS5.2.5-BlockUsingHostNetwork"),
                        ("1c6e92c9-99f0-4e55-9cf2-0c234dc48f99", "CIS5.2.6-NoPrivilegeEscalation"),
                        ("098fc59e-46c7-4d99-9b16-64990e543d75", "CIS5.2.12-NoHostPathVolume"),
                    )
                ),
            ),
        )
    }
)
"""The four initiatives of protection_facts.md §3.2, reduced to their blocker members."""


@dataclass(frozen=True)
class ResourceTypeRule:
    """A built-in ARM-side definition that denies resource types by a list parameter."""

    name: str
    display_name: str
    parameter: str
    denies_listed: bool
    """True: types in the list are denied (Not allowed); False: types not in the list are denied (Allowed)."""

    @property
    def id(self) -> str:
        return DEFINITION_PREFIX + self.name


RESOURCE_TYPE_RULES: Mapping[str, ResourceTypeRule] = MappingProxyType(
    {
        r.name: r
        for r in (
            ResourceTypeRule(
                "6c112d4e-5bc7-47ae-a041-ea2d9dccd749",
                "Not allowed resource types",
                "listOfResourceTypesNotAllowed",
                denies_listed=True,
            ),
            ResourceTypeRule(
                "a08ec900-254a-4555-9bf5-e42af04b5c5c",
                "Allowed resource types",
                "listOfResourceTypesAllowed",
                denies_listed=False,
            ),
        )
    }
)
"""Built-in type-list definitions: when one denies extensions, the remedy names the exact list change.
``Allowed resource types`` has mode ``Indexed`` — "Only resource types that support 'tags' and 'location' will
be affected by this policy. To restrict all resources please duplicate this policy and change the 'mode' to
'All'" (its description) — so the built-in never reaches extensions; a mode-All copy is a custom definition
and is evaluated from its rule (the remedy is then an exemption)."""


def definition_name(definition_id: str) -> str:
    """The last segment (GUID or custom name) of a definition or set-definition id, as its key under Azure's
    case rule (``ignore_case_key``: lower case for ASCII names)."""
    return ignore_case_key(definition_id.rstrip("/").rsplit("/", 1)[-1])


def is_set_definition(definition_id: str) -> bool:
    return "/policysetdefinitions/" in ignore_case_key(definition_id)


def constraint_kind_of(constraint_name: str) -> str | None:
    """The (possibly cut) template kind in a Gatekeeper constraint name the Azure Policy add-on created.

    ``azurepolicy-k8sazurev2containerallowedimag-e2f1...`` → ``k8sazurev2containerallowedimag``. Names are
    ``azurepolicy-<kind lower-cased, at most 30 characters>-<20 hex>`` as the public denials show
    (``azurepolicy-k8sazurev1antiaffinityrules-ceffa082711831ebffd1`` in MicrosoftDocs/azure-aks-docs
    deployment-safeguards.md; ``...containerallowedimag-...`` in MicrosoftDocs/azure-docs#121332).
    """
    text = constraint_name.strip().lower()
    if not text.startswith("azurepolicy-"):
        return None
    body = text[len("azurepolicy-") :]
    kind, _, _suffix = body.rpartition("-")
    return kind or None


def definitions_for_constraint(constraint_name: str) -> tuple[KubernetesDefinition, ...]:
    """Catalog definitions whose constraint kind matches the (cut) kind in ``constraint_name``."""
    kind = constraint_kind_of(constraint_name)
    if not kind:
        return ()
    return tuple(
        d
        for d in KUBERNETES_DEFINITIONS.values()
        if any(k[:30] == kind[:30] or k.startswith(kind) for k in d.constraint_kinds)
    )
