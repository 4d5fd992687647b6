"""Type-check Bicep resource declarations against the Azure type library, the way the Bicep compiler does.

The compiler loads ``Azure/bicep-types-az`` (types generated from the REST specs) and checks every resource
body against its ``type@apiVersion``. No Bicep CLI runs here (shared/reference/spike.md Q6), so this module
does the same checks on pycep's JSON form against the vendored subset in ``bicep_types/types.json`` (cut by
``python -m tools.vendor_bicep_types``, commit in ``bicep_types/SOURCE.md``):

- the resource type exists, and the API version exists for it;
- the resource may be deployed at the scope it is deployed at (the type's ``writableScopes``; an extension
  resource with ``scope:`` must allow the extension scope);
- every property set is declared (unless the object takes additional properties), at any depth, including
  inside property loops and discriminated objects (``endpointType`` picks the variant);
- no read-only property is set;
- literal values fit the declared type: closed enums (a union of string literals without a free string),
  integer ranges, booleans, strings, arrays and objects.

Expressions (parameters, variables, function calls, interpolations) are not evaluated: they are accepted where
a value is expected, as the compiler accepts them when their type is unknown or fits. Required properties are
not enforced (the compiler only warns about them in resource bodies).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TYPES_FILE = Path(__file__).resolve().parent / "bicep_types" / "types.json"

FLAG_READ_ONLY = 2
"""ObjectTypeProperty flags in bicep-types: Required 1, ReadOnly 2, WriteOnly 4, DeployTimeConstant 8,
Identifier 16."""

SCOPE_FLAGS = {"tenant": 1, "managementGroup": 2, "subscription": 4, "resourceGroup": 8, "extension": 16}
"""ScopeType flags of a ResourceType's ``writableScopes``."""

BICEP_KEYWORDS = frozenset({"scope", "parent", "dependsOn"})
"""Top-level keys of a resource declaration that are Bicep syntax, not part of the resource body."""


@dataclass(frozen=True)
class Problem:
    file: Path
    resource: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.resource}{self.path}: {self.message}"


class TypeLibrary:
    """The vendored type data: resource bodies by ``type@version`` and known versions by type."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.commit = str(data["commit"])
        self.versions = {name.lower(): list(v) for name, v in data["versions"].items()}
        self.resources = {name.lower(): body for name, body in data["resources"].items()}

    @classmethod
    def load(cls, path: Path = TYPES_FILE) -> TypeLibrary:
        return cls(json.loads(path.read_text()))


def _target_scope(template: Mapping[str, Any]) -> str:
    scope = (template.get("globals") or {}).get("scope") or {}
    return str(scope.get("value", "resourceGroup"))


def _strip(config: Any) -> Any:
    while (
        isinstance(config, Mapping)
        and ("loop_type" in config or "condition" in config)
        and "config" in config
    ):
        config = config["config"]
    return config


def _loop_names(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        loop = node.get("loop_type")
        if isinstance(loop, Mapping):
            detail = loop.get("detail") or {}
            for key in ("item_name", "index_name"):
                if isinstance(detail.get(key), str):
                    yield detail[key]
        for value in node.values():
            yield from _loop_names(value)
    elif isinstance(node, list):
        for value in node:
            yield from _loop_names(value)


def symbols(template: Mapping[str, Any]) -> frozenset[str]:
    """Names a bare string in pycep's output may refer to (pycep renders an identifier as a plain string)."""
    names: set[str] = set()
    for section in ("parameters", "variables", "resources", "modules", "outputs"):
        names |= set(template.get(section) or {})
    names |= set(_loop_names(template))
    return frozenset(names)


def _is_expression(value: Any, known: frozenset[str]) -> bool:
    if isinstance(value, Mapping):
        return "function" in value or "operator" in value
    if isinstance(value, str):
        return value in known or "${" in value
    return False


class _Checker:
    def __init__(self, file: Path, resource: str, types: list[dict[str, Any]], known: frozenset[str]) -> None:
        self.file = file
        self.resource = resource
        self.types = types
        self.known = known
        self.problems: list[Problem] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.file, self.resource, path, message))

    def deref(self, ref: Mapping[str, Any]) -> dict[str, Any]:
        return self.types[int(str(ref["$ref"])[2:])]

    def check(self, value: Any, type_: dict[str, Any], path: str) -> None:
        if _is_expression(value, self.known):
            return
        if isinstance(value, Mapping) and "loop_type" in value and "config" in value:
            # a property loop: an array whose items are the loop body
            if type_["$type"] == "ArrayType":
                self.check(_strip(value), self.deref(type_["itemType"]), f"{path}[*]")
            elif type_["$type"] != "AnyType":
                self.fail(path, f"a for-loop builds an array, the type is {type_['$type']}")
            return
        kind = type_["$type"]
        if kind == "AnyType":
            return
        if kind == "StringType":
            if not isinstance(value, str):
                self.fail(path, f"expects a string, got {value!r}")
            return
        if kind == "StringLiteralType":
            if value != type_["value"]:
                self.fail(path, f"expects {type_['value']!r}, got {value!r}")
            return
        if kind == "IntegerType":
            if not isinstance(value, int) or isinstance(value, bool):
                self.fail(path, f"expects an integer, got {value!r}")
            elif ("minValue" in type_ and value < type_["minValue"]) or (
                "maxValue" in type_ and value > type_["maxValue"]
            ):
                self.fail(path, f"{value} is outside [{type_.get('minValue')}, {type_.get('maxValue')}]")
            return
        if kind == "BooleanType":
            if not isinstance(value, bool):
                self.fail(path, f"expects a boolean, got {value!r}")
            return
        if kind == "UnionType":
            self.check_union(value, [self.deref(e) for e in type_["elements"]], path)
            return
        if kind == "ArrayType":
            if not isinstance(value, list):
                self.fail(path, f"expects an array, got {type(value).__name__}")
                return
            item_type = self.deref(type_["itemType"])
            for i, item in enumerate(value):
                self.check(item, item_type, f"{path}[{i}]")
            return
        if kind == "ObjectType":
            self.check_object(value, type_.get("properties") or {}, type_.get("additionalProperties"), path)
            return
        if kind == "DiscriminatedObjectType":
            self.check_discriminated(value, type_, path)
            return
        if kind in ("NullType", "ResourceFunctionType"):
            return
        self.fail(path, f"unhandled type kind {kind}")

    def check_union(self, value: Any, elements: list[dict[str, Any]], path: str) -> None:
        literals = [e["value"] for e in elements if e["$type"] == "StringLiteralType"]
        others = [e for e in elements if e["$type"] != "StringLiteralType"]
        if isinstance(value, str) and value in literals:
            return
        if any(e["$type"] in ("StringType", "AnyType") for e in others) and isinstance(value, str):
            return
        for element in others:
            trial = _Checker(self.file, self.resource, self.types, self.known)
            trial.check(value, element, path)
            if not trial.problems:
                return
        allowed = ", ".join(repr(v) for v in literals) or "/".join(e["$type"] for e in others)
        self.fail(path, f"{value!r} is not one of {allowed}")

    def check_object(
        self, value: Any, properties: Mapping[str, Any], additional: Any, path: str, *, top: bool = False
    ) -> None:
        if not isinstance(value, Mapping):
            self.fail(path, f"expects an object, got {value!r}")
            return
        by_lower = {name.lower(): (name, spec) for name, spec in properties.items()}
        for key, item in value.items():
            name = str(key).strip("'")
            if top and name in BICEP_KEYWORDS:
                continue
            where = f"{path}.{name}"
            found = by_lower.get(name.lower())
            if found is None:
                if additional is None:
                    self.fail(
                        where, f"unknown property {name!r} (not in the type; allowed: {sorted(properties)})"
                    )
                else:
                    self.check(item, self.deref(additional), where)
                continue
            declared, spec = found
            if declared != name:
                self.fail(where, f"property is spelled {declared!r} in the type")
            if int(spec.get("flags", 0)) & FLAG_READ_ONLY:
                self.fail(where, "read-only property: set by Azure, cannot be deployed")
                continue
            self.check(item, self.deref(spec["type"]), where)

    def check_discriminated(
        self, value: Any, type_: Mapping[str, Any], path: str, *, top: bool = False
    ) -> None:
        if not isinstance(value, Mapping):
            self.fail(path, f"expects an object, got {value!r}")
            return
        discriminator = type_["discriminator"]
        chosen = value.get(discriminator)
        base = dict(type_.get("baseProperties") or {})
        elements = type_.get("elements") or {}
        if _is_expression(chosen, self.known) or chosen is None:
            merged = dict(base)
            for ref in elements.values():
                merged.update(self.deref(ref).get("properties") or {})
            self.check_object(value, merged, None, path, top=top)
            return
        if chosen not in elements:
            self.fail(f"{path}.{discriminator}", f"{chosen!r} is not one of {sorted(elements)}")
            return
        variant = self.deref(elements[chosen])
        self.check_object(value, {**base, **(variant.get("properties") or {})}, None, path, top=top)


def check_templates(
    templates: Mapping[Path, Mapping[str, Any]], library: TypeLibrary | None = None
) -> tuple[list[Problem], int]:
    """Every problem in every resource of every template, and the number of resources checked."""
    library = library or TypeLibrary.load()
    problems: list[Problem] = []
    checked = 0
    for file, template in templates.items():
        assert "error" not in template, f"{file} does not parse: {template['error']}"
        known = symbols(template)
        file_scope = _target_scope(template)
        for symbol, resource in (template.get("resources") or {}).items():
            checked += 1
            name = f"{resource['type']}@{resource['api_version']}"
            body = library.resources.get(name.lower())
            if body is None:
                versions = library.versions.get(str(resource["type"]).lower())
                message = (
                    f"API version {resource['api_version']} does not exist for {resource['type']}"
                    f" (the type library has {', '.join(versions)})"
                    if versions
                    else f"unknown resource type {resource['type']} (not in the vendored type library;"
                    " run python -m tools.vendor_bicep_types)"
                )
                problems.append(Problem(file, symbol, "", message))
                continue
            types = body["types"]
            resource_type = types[0]
            config = _strip(resource["config"])
            scope = "extension" if isinstance(config, Mapping) and "scope" in config else file_scope
            if resource.get("existing"):
                continue
            writable = int(resource_type.get("writableScopes", resource_type.get("scopeType", 0)) or 0)
            if writable and not writable & SCOPE_FLAGS[scope]:
                allowed = [s for s, flag in SCOPE_FLAGS.items() if writable & flag]
                problems.append(
                    Problem(file, symbol, "", f"{name} cannot be deployed at {scope} scope (only {allowed})")
                )
            checker = _Checker(file, symbol, types, known)
            body_type = checker.deref(resource_type["body"])
            if body_type["$type"] == "DiscriminatedObjectType":
                checker.check_discriminated(config, body_type, "", top=True)
            else:
                checker.check_object(
                    config,
                    body_type.get("properties") or {},
                    body_type.get("additionalProperties"),
                    "",
                    top=True,
                )
            problems += checker.problems
    return problems, checked
