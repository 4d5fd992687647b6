"""Evaluate the four built-in Backup policy definitions from their own JSON.

The emulator's compliance must follow the definitions, not a hand-written copy of them: this module reads
`policyRule.if`, `then.effect` and `then.details.existenceCondition` and interprets the subset of Azure
Policy they use (allOf/anyOf/not; field/value with equals/notEquals/in/notIn/exists; the template functions
parameters, concat, empty, field). String comparison is case-insensitive and `location` is normalized, as
definition-structure-policy-rule documents. A construct outside the subset raises `UnsupportedPolicyError`
instead of guessing.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.model.ids import fold

logger = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).with_name("builtin")

FIELD_ALIASES = {
    "microsoft.kubernetesconfiguration/extensions/extensiontype": ("properties", "extensionType"),
    "microsoft.kubernetesconfiguration/extensions/provisioningstate": ("properties", "provisioningState"),
}
"""Policy aliases used by the definitions → path in the ARM body (aliases per azure-policy-aliases)."""


class UnsupportedPolicyError(ValueError):
    """The definition uses a policy construct the emulator does not interpret."""


@dataclass(frozen=True)
class PolicyDefinition:
    """One built-in definition as loaded from JSON."""

    name: str
    id: str
    display_name: str
    version: str
    category: str
    parameters: Mapping[str, Any]
    rule: Mapping[str, Any]
    raw: Mapping[str, Any]

    @property
    def details(self) -> Mapping[str, Any]:
        details: Mapping[str, Any] = self.rule.get("then", {}).get("details", {})
        return details

    def resolve_parameters(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """Assignment parameter values (ARM shape `{name: {value}}` or plain) merged over defaults."""
        return resolve_parameter_values(f"definition {self.name}", self.parameters, given)

    def effect(self, params: Mapping[str, Any]) -> str:
        return str(evaluate_template(self.rule["then"]["effect"], params, None))


def resolve_parameter_values(
    owner: str, spec: Mapping[str, Any], given: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Assignment parameter values over the defaults of ``spec``, validated as ARM does: every parameter has a
    value or a default, values are among ``allowedValues``, no unknown names (``owner`` names the definition
    or initiative in errors)."""
    values: dict[str, Any] = {}
    lowered = {k.lower(): v for k, v in (given or {}).items()}
    for name, pspec in spec.items():
        if name.lower() in lowered:
            raw = lowered[name.lower()]
            values[name] = raw["value"] if isinstance(raw, Mapping) and "value" in raw else raw
        elif "defaultValue" in pspec:
            values[name] = pspec["defaultValue"]
        else:
            raise ValueError(f"policy parameter '{name}' of {owner} has no value and no default")
        allowed = pspec.get("allowedValues")
        if allowed and values[name] not in allowed:
            raise ValueError(f"policy parameter '{name}' value {values[name]!r} is not one of {allowed}")
    unknown = set(lowered) - {n.lower() for n in spec}
    if unknown:
        raise ValueError(f"unknown parameter(s) {sorted(unknown)} for {owner}")
    return values


def load_builtin_definitions(directory: Path = BUILTIN_DIR) -> dict[str, PolicyDefinition]:
    """Definition name (GUID, lower-case) → definition, from the vendored JSON files."""
    out: dict[str, PolicyDefinition] = {}
    for path in sorted(directory.glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        props = raw["properties"]
        definition = PolicyDefinition(
            name=raw["name"],
            id=raw["id"],
            display_name=props["displayName"],
            version=props.get("version", props.get("metadata", {}).get("version", "")),
            category=props.get("metadata", {}).get("category", ""),
            parameters=props.get("parameters", {}),
            rule=props["policyRule"],
            raw=raw,
        )
        out[definition.name.lower()] = definition
    return out


# ------------------------------------------------------------------------------------------------------
# ARM template expressions: "[func(arg, ...)]" with string literals and nested calls.

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+)|(?P<name>[A-Za-z_][\w.]*)|(?P<sym>[(),]))")


def evaluate_template(value: Any, params: Mapping[str, Any], resource: Mapping[str, Any] | None) -> Any:
    """Evaluate `value` if it is a template expression ("[...]"), else return it unchanged."""
    if not (isinstance(value, str) and value.startswith("[") and value.endswith("]")):
        return value
    if value.startswith("[["):
        return value[1:]
    tokens = _tokenize(value[1:-1])
    result, pos = _parse_call(tokens, 0, params, resource)
    if pos != len(tokens):
        raise UnsupportedPolicyError(f"cannot evaluate template expression {value!r}")
    return result


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise UnsupportedPolicyError(f"cannot tokenize template expression near {text[pos:]!r}")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


def _parse_call(
    tokens: list[tuple[str, str]], pos: int, params: Mapping[str, Any], resource: Mapping[str, Any] | None
) -> tuple[Any, int]:
    kind, text = tokens[pos]
    if kind == "str":
        return text[1:-1].replace("''", "'"), pos + 1
    if kind == "num":
        return int(text), pos + 1
    if kind != "name" or pos + 1 >= len(tokens) or tokens[pos + 1] != ("sym", "("):
        raise UnsupportedPolicyError(f"unexpected token {text!r} in template expression")
    pos += 2
    args: list[Any] = []
    while tokens[pos] != ("sym", ")"):
        arg, pos = _parse_call(tokens, pos, params, resource)
        args.append(arg)
        if tokens[pos] == ("sym", ","):
            pos += 1
    return _call(text.lower(), args, params, resource), pos + 1


def _call(name: str, args: list[Any], params: Mapping[str, Any], resource: Mapping[str, Any] | None) -> Any:
    if name == "parameters":
        return params[args[0]]
    if name == "concat":
        if all(isinstance(a, list) for a in args):
            return [x for a in args for x in a]
        return "".join(str(a) for a in args)
    if name == "empty":
        value = args[0]
        return value is None or value == "" or value == [] or value == {}
    if name == "field":
        if resource is None:
            raise UnsupportedPolicyError("field() needs a resource")
        return resolve_field(resource, args[0])
    if name == "split":
        return str(args[0]).split(str(args[1]))
    if name == "skip":
        return args[0][int(args[1]) :]
    if name == "first":
        return args[0][0] if args[0] else None
    if name == "take":
        return args[0][: int(args[1])]
    raise UnsupportedPolicyError(f"template function {name}() is not supported by the emulator")


# ------------------------------------------------------------------------------------------------------
# conditions


def resolve_field(resource: Mapping[str, Any], field: str) -> Any:
    """Azure Policy `field` value of an ARM resource body (type, name, location, tags[x], aliases)."""
    lowered = field.lower()
    if lowered in ("type", "name", "location", "id", "kind"):
        return resource.get(lowered)
    tag = re.fullmatch(r"tags\[(?:'(.*)'|(.*))\]", field, re.IGNORECASE) or re.fullmatch(
        r"tags\.(.*)", field, re.IGNORECASE
    )
    if tag:
        tag_name = next(g for g in tag.groups() if g is not None)
        tags = resource.get("tags") or {}
        for key, value in tags.items():
            if fold(key) == fold(tag_name):  # tag names are case-insensitive in ARM and Policy
                return value
        return None
    path = FIELD_ALIASES.get(lowered)
    if path is None:
        raise UnsupportedPolicyError(f"policy field {field!r} is not modelled by the emulator")
    value: Any = resource
    for part in path:
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _normalize(value: Any, *, is_location: bool) -> Any:
    if isinstance(value, str):
        text = value.lower()
        return text.replace(" ", "") if is_location else text
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def evaluate_condition(
    condition: Mapping[str, Any], resource: Mapping[str, Any], params: Mapping[str, Any]
) -> bool:
    """True when `condition` (a policy `if` / existenceCondition) holds for `resource`."""
    if "allOf" in condition:
        return all(evaluate_condition(c, resource, params) for c in condition["allOf"])
    if "anyOf" in condition:
        return any(evaluate_condition(c, resource, params) for c in condition["anyOf"])
    if "not" in condition:
        return not evaluate_condition(condition["not"], resource, params)
    is_location = False
    if "field" in condition:
        field = evaluate_template(condition["field"], params, resource)
        is_location = str(field).lower() == "location"
        subject = resolve_field(resource, str(field))
    elif "value" in condition:
        subject = evaluate_template(condition["value"], params, resource)
    else:
        raise UnsupportedPolicyError(f"condition without field/value: {json.dumps(condition)[:120]}")
    ops = [k for k in condition if k not in ("field", "value")]
    if len(ops) != 1:
        raise UnsupportedPolicyError(
            f"condition must have exactly one operator: {json.dumps(condition)[:120]}"
        )
    op = ops[0]
    operand = evaluate_template(condition[op], params, resource)
    left = _normalize(subject, is_location=is_location)
    if op == "equals":
        return subject is not None and left == _normalize(operand, is_location=is_location)
    if op == "notEquals":
        return not (subject is not None and left == _normalize(operand, is_location=is_location))
    if op in ("in", "notIn"):
        if not isinstance(operand, list):
            raise UnsupportedPolicyError(f"'{op}' needs an array, got {operand!r}")
        found = subject is not None and left in {_normalize(v, is_location=is_location) for v in operand}
        return found if op == "in" else not found
    if op == "exists":
        wanted = str(operand).lower() == "true"
        return (subject is not None) == wanted
    raise UnsupportedPolicyError(f"policy operator '{op}' is not supported by the emulator")
