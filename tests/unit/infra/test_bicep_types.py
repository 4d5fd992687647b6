"""The Bicep templates type-check against the Azure type library the Bicep compiler loads
(``Azure/bicep-types-az``, vendored subset in ``bicep_types/``), and the check bites: copies of the templates
with one defect each (unknown property, bad enum, read-only property, wrong API version, wrong resource scope,
module deployed at the wrong scope) fail it with exactly that defect."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.iac import INFRA, parse_bicep
from tests.unit.infra.typecheck import TYPES_FILE, TypeLibrary, check_templates

RESOURCE_REF = re.compile(r"^resource \w+ '([^@']+)@([^']+)'", re.MULTILINE)


def test_every_resource_type_checks_against_the_type_library(infra_templates: dict[Path, Any]) -> None:
    problems, checked = check_templates(infra_templates)
    assert not problems, "\n".join(str(p) for p in problems)
    declared = sum(len(RESOURCE_REF.findall(p.read_text())) for p in INFRA.rglob("*.bicep"))
    assert checked == declared and checked >= 50, (checked, declared)  # every declaration was looked at


def test_vendored_types_cover_every_declared_type_and_record_their_commit() -> None:
    library = TypeLibrary.load()
    source = (TYPES_FILE.parent / "SOURCE.md").read_text()
    assert re.fullmatch(r"[0-9a-f]{40}", library.commit)
    assert library.commit in source, "SOURCE.md must name the commit types.json was cut from"
    declared = {
        f"{m.group(1)}@{m.group(2)}".lower()
        for path in INFRA.rglob("*.bicep")
        for m in RESOURCE_REF.finditer(path.read_text())
    }
    assert declared <= set(library.resources), f"not vendored: {sorted(declared - set(library.resources))}"
    # data only: no code from the type library's repository
    assert {p.suffix for p in TYPES_FILE.parent.iterdir()} <= {".json", ".md"}


MUTATIONS: dict[str, tuple[str, str, str, str]] = {
    # name: (file, original text, defective text, expected message fragment)
    "unknown property": (
        "app/storage.bicep",
        "    isSftpEnabled: false\n",
        "    isSftpEnabled: false\n    bogusSetting: true\n",
        "unknown property 'bogusSetting'",
    ),
    "bad enum": (
        "app/storage.bicep",
        "publicAccess: 'None'",
        "publicAccess: 'Everyone'",
        "'Everyone' is not one of 'Container', 'Blob', 'None'",
    ),
    "bad discriminator": (
        "events/event-subscriptions.bicep",
        "endpointType: 'AzureFunction'",
        "endpointType: 'AzureFunctions'",
        "'AzureFunctions' is not one of",
    ),
    "read-only property": (
        "app/storage.bicep",
        "    isSftpEnabled: false\n",
        "    isSftpEnabled: false\n    provisioningState: 'Succeeded'\n",
        "provisioningState: read-only property",
    ),
    "wrong API version": (
        "app/storage.bicep",
        "'Microsoft.Storage/storageAccounts@2023-05-01' = {",
        "'Microsoft.Storage/storageAccounts@2023-05-02' = {",
        "API version 2023-05-02 does not exist for Microsoft.Storage/storageAccounts",
    ),
    "wrong resource scope": (
        "app/identity.bicep",
        "param name string",
        "targetScope = 'subscription'\nparam name string",
        "cannot be deployed at subscription scope (only ['resourceGroup'])",
    ),
    "misspelled property": (
        "app/function.bicep",
        "httpsOnly: true",
        "httpsonly: true",
        "property is spelled 'httpsOnly' in the type",
    ),
}


@pytest.fixture(scope="module")
def mutated(iac_python: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Mapping[str, Any]]:
    folder = tmp_path_factory.mktemp("mutated")
    copies: dict[str, Path] = {}
    for name, (file, original, defective, _) in MUTATIONS.items():
        text = (INFRA / file).read_text()
        assert text.count(original) >= 1, f"{name}: {original!r} not in {file}"
        copy = folder / f"{name.replace(' ', '-')}.bicep"
        copy.write_text(text.replace(original, defective, 1))
        copies[name] = copy
    parsed = parse_bicep(copies.values(), python=iac_python)  # one pycep run for every copy
    return {name: parsed[path] for name, path in copies.items()}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_the_type_check_fails_on_a_defective_copy(
    infra_templates: dict[Path, Any], mutated: dict[str, Mapping[str, Any]], mutation: str
) -> None:
    file, _, _, expected = MUTATIONS[mutation]
    templates = {**infra_templates, Path(file): mutated[mutation]}
    problems, _ = check_templates(templates)
    assert len(problems) == 1, [str(p) for p in problems]
    assert expected in str(problems[0]), str(problems[0])
    assert problems[0].file == Path(file)


def test_a_module_deployed_at_the_wrong_scope_fails_the_module_contract(
    infra_templates: dict[Path, Any],
) -> None:
    # The storage module (targetScope resourceGroup) deployed from main.bicep at subscription scope.
    from tests.unit.infra.test_module_contracts import (
        test_modules_are_deployed_at_their_target_scope as contract,
    )

    contract(infra_templates)  # clean as shipped
    main = json.loads(json.dumps(infra_templates[Path("main.bicep")]))
    main["modules"]["storage"]["config"]["scope"] = {
        "function": {"type": "subscription", "parameters": {"subscription_id": None}}
    }
    with pytest.raises(
        AssertionError, match="storage: deployed at subscription, app/storage.bicep has targetScope"
    ):
        contract({**infra_templates, Path("main.bicep"): main})
