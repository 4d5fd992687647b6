"""Every policy definition the emulator knows: the four Backup built-ins, the vendored Kubernetes definitions
and initiatives, two resource-type built-ins, and custom definitions PUT at runtime.

The product's preflight reasons about Azure Policy for Kubernetes (Gatekeeper) and Azure-side Deny policies;
the emulator must hold the same definitions, byte-exact from Azure/azure-policy (``definitions/MANIFEST.json``
records the snapshot commit and each file's sha256), so assignments of them validate their parameters like
ARM does and the admission model (:mod:`emulator.policy.admission`) reads their real parameter names.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.policy.rules import BUILTIN_DIR, PolicyDefinition, resolve_parameter_values

logger = logging.getLogger(__name__)

DEFINITIONS_DIR = Path(__file__).with_name("definitions")
DEFINITION_FOLDERS = ("kubernetes", "general")
SET_FOLDERS = ("kubernetes-initiatives",)


@dataclass(frozen=True)
class SetMember:
    definition: str
    """Member definition name (GUID, lower case)."""
    reference_id: str
    parameters: Mapping[str, Any]
    """Member parameter → its ``{"value": ...}`` (a template like ``[parameters('effect')]`` or a literal)."""


@dataclass(frozen=True)
class PolicySetDefinition:
    """An initiative, loaded from JSON."""

    name: str
    id: str
    display_name: str
    version: str
    category: str
    parameters: Mapping[str, Any]
    members: tuple[SetMember, ...]
    raw: Mapping[str, Any]

    def resolve_parameters(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """Same rules as :meth:`PolicyDefinition.resolve_parameters` (ARM validates assignment parameters
        against the initiative's parameter list)."""
        return resolve_parameter_values(f"initiative {self.name}", self.parameters, given)

    def effect(self, _params: Mapping[str, Any]) -> str:
        return ""  # an initiative has no single effect; compliance is per member (not modelled for these)


def definition_from_json(raw: Mapping[str, Any]) -> PolicyDefinition:
    props = raw["properties"]
    return PolicyDefinition(
        name=str(raw["name"]),
        id=str(raw["id"]),
        display_name=str(props.get("displayName", "")),
        version=str(props.get("version", props.get("metadata", {}).get("version", ""))),
        category=str(props.get("metadata", {}).get("category", "")),
        parameters=props.get("parameters", {}),
        rule=props["policyRule"],
        raw=raw,
    )


def set_from_json(raw: Mapping[str, Any]) -> PolicySetDefinition:
    props = raw["properties"]
    return PolicySetDefinition(
        name=str(raw["name"]),
        id=str(raw["id"]),
        display_name=str(props.get("displayName", "")),
        version=str(props.get("version", "")),
        category=str(props.get("metadata", {}).get("category", "")),
        parameters=props.get("parameters", {}),
        members=tuple(
            SetMember(
                definition=str(m["policyDefinitionId"]).rsplit("/", 1)[-1].lower(),
                reference_id=str(m.get("policyDefinitionReferenceId", "")),
                parameters=m.get("parameters", {}),
            )
            for m in props.get("policyDefinitions", [])
        ),
        raw=raw,
    )


def mode_of(definition: PolicyDefinition) -> str:
    return str(definition.raw.get("properties", {}).get("mode", "Indexed"))


def load_definitions() -> tuple[dict[str, PolicyDefinition], dict[str, PolicySetDefinition]]:
    """Built-in definitions and initiatives by name (lower case), from the vendored JSON."""
    definitions: dict[str, PolicyDefinition] = {}
    sets: dict[str, PolicySetDefinition] = {}
    paths = sorted(BUILTIN_DIR.glob("*.json"))
    for folder in DEFINITION_FOLDERS:
        paths += sorted((DEFINITIONS_DIR / folder).glob("*.json"))
    for path in paths:
        d = definition_from_json(json.loads(path.read_text(encoding="utf-8")))
        definitions[d.name.lower()] = d
    for folder in SET_FOLDERS:
        for path in sorted((DEFINITIONS_DIR / folder).glob("*.json")):
            s = set_from_json(json.loads(path.read_text(encoding="utf-8")))
            sets[s.name.lower()] = s
    return definitions, sets
