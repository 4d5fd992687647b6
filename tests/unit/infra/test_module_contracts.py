"""Cross-file checks a Bicep compiler would make and pycep does not: every module file exists, gets every
required parameter and only declared ones, is deployed at the scope its ``targetScope`` names, and every
``<module>.outputs.<name>`` the parent reads is an output of that module.

There is no Bicep CLI on the build machine (shared/reference/spike.md Q6), so this is the closest offline
stand-in for ``bicep build`` on the module graph. It does not type-check expressions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

SCOPE_FUNCTIONS = {
    "subscription": "subscription",
    "resource_group": "resourceGroup",
    "management_group": "managementGroup",
    "tenant": "tenant",
}
RESOURCE_SCOPES = {"Microsoft.Resources/resourceGroups": "resourceGroup"}


def _normalise(path: str) -> Path:
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return Path("/".join(parts))


def _target_scope(template: Mapping[str, Any]) -> str:
    scope = (template.get("globals") or {}).get("scope") or {}
    return str(scope.get("value", "resourceGroup"))


def _body(module: Mapping[str, Any]) -> Mapping[str, Any]:
    config: Any = module["config"]
    while "config" in config and ("loop_type" in config or "condition" in config):
        config = config["config"]
    return config


def modules(
    templates: Mapping[Path, Mapping[str, Any]],
) -> Iterator[tuple[Path, str, Path, Mapping[str, Any]]]:
    for file, template in templates.items():
        for symbol, module in (template.get("modules") or {}).items():
            target = _normalise((file.parent / module["detail"]["path"]).as_posix())
            yield file, symbol, target, module


def _ids(templates: Mapping[Path, Mapping[str, Any]]) -> list[str]:
    return [f"{file}:{symbol}" for file, symbol, _, _ in modules(templates)]


def test_every_module_file_exists_and_parses(infra_templates: dict[Path, Any]) -> None:
    found = list(modules(infra_templates))
    assert len(found) >= 10
    for file, symbol, target, _ in found:
        assert target in infra_templates, f"{file}:{symbol}: module file {target} not found"
        assert "error" not in infra_templates[target], infra_templates[target]


def test_module_parameters_match_declarations(infra_templates: dict[Path, Any]) -> None:
    for file, symbol, target, module in modules(infra_templates):
        declared = infra_templates[target].get("parameters") or {}
        passed = set(_body(module).get("params") or {})
        required = {name for name, spec in declared.items() if "default" not in spec}
        assert passed <= set(declared), f"{file}:{symbol} passes undeclared {sorted(passed - set(declared))}"
        assert required <= passed, f"{file}:{symbol} misses required {sorted(required - passed)}"


def test_modules_are_deployed_at_their_target_scope(infra_templates: dict[Path, Any]) -> None:
    for file, symbol, target, module in modules(infra_templates):
        parent = infra_templates[file]
        scope = _body(module).get("scope")
        if scope is None:
            effective = _target_scope(parent)
        elif isinstance(scope, str):  # a resource symbol, e.g. a resource group declared in the parent
            resource = (parent.get("resources") or {}).get(scope)
            assert resource, f"{file}:{symbol}: scope {scope!r} is not a resource of {file}"
            effective = RESOURCE_SCOPES[resource["type"]]
        else:
            effective = SCOPE_FUNCTIONS[scope["function"]["type"]]
        wanted = _target_scope(infra_templates[target])
        assert effective == wanted, (
            f"{file}:{symbol}: deployed at {effective}, {target} has targetScope {wanted}"
        )


def _output_refs(node: Any) -> Iterator[tuple[str, str]]:
    """(module symbol, output name) for every ``<symbol>[i]?.outputs.<name>`` in a pycep expression tree."""
    if isinstance(node, Mapping):
        operator = node.get("operator")
        if isinstance(operator, Mapping) and operator.get("type") == "property_accessor":
            left, right = operator["operands"]["operand_1"], operator["operands"]["operand_2"]
            inner = right.get("operator") if isinstance(right, Mapping) else None
            is_output = (
                isinstance(inner, Mapping)
                and inner.get("type") == "property_accessor"
                and inner["operands"]["operand_1"] == "outputs"
            )
            if is_output:
                assert isinstance(inner, Mapping)
                if isinstance(left, Mapping) and left["operator"]["type"] == "index_accessor":
                    left = left["operator"]["operands"]["operand_1"]
                yield str(left), str(inner["operands"]["operand_2"])
        for value in node.values():
            yield from _output_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _output_refs(value)


@pytest.mark.parametrize("root", ["main.bicep", "events.bicep", "events/subscription-topics.bicep"])
def test_module_outputs_read_by_the_parent_exist(infra_templates: dict[Path, Any], root: str) -> None:
    parent = infra_templates[Path(root)]
    targets = {symbol: target for file, symbol, target, _ in modules(infra_templates) if file == Path(root)}
    refs = set(_output_refs({k: v for k, v in parent.items() if k in ("modules", "outputs", "variables")}))
    for symbol, output in refs:
        assert symbol in targets, f"{root}: {symbol}.outputs.{output} reads an unknown module"
        outputs = infra_templates[targets[symbol]].get("outputs") or {}
        assert output in outputs, f"{root}: {symbol}.outputs.{output} is not an output of {targets[symbol]}"
    if root == "main.bicep":
        assert len(refs) >= 15, refs  # the walker must actually find the references
