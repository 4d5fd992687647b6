"""Every app setting the code reads is set by the template, and every setting the template sets is read.

"The code" is ``remediator.core.settings`` (``ENV_NAMES``) plus the ``%NAME%`` binding expressions in
function_app.py; settings the Azure deployment deliberately omits are ``LOCAL_ONLY_ENV_NAMES`` and settings
the host or the Azure SDK read are ``PLATFORM_ENV_NAMES`` (both with a reason per name, in settings.py).
The platform settings the deployment cannot run without (``PLATFORM_REQUIRED`` below) are required too.
The second half of the module shows the comparison catching a removal on either side, on real copies.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from remediator.core import settings
from tests.fixtures.iac import INFRA, ROOT, parse_bicep
from tests.unit.infra.model import SettingsDrift, app_setting_names, binding_setting_names, settings_drift

FUNCTION_BICEP = Path("app/function.bicep")

PLATFORM_REQUIRED: dict[str, str] = {
    "AzureWebJobsStorage__accountName": "shared keys are disabled: without it the host has no storage at all",
    "AzureWebJobsStorage__credential": "without 'managedidentity' the host looks for a connection string",
    "AzureWebJobsStorage__clientId": "the app has only a user-assigned identity; the host must be told which",
    "AZURE_CLIENT_ID": "DefaultAzureCredential finds no identity for ARM, queues and tables without it",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "no telemetry means the alerts (poison, gave up) never fire",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "local auth is disabled on the component: unauthenticated"
    " telemetry is rejected, so the alerts never fire",
}
"""The platform settings (``settings.PLATFORM_ENV_NAMES``) the Azure deployment cannot run without.

Every platform name must be classified here or in ``PLATFORM_OPTIONAL``, so a new one is a decision."""

PLATFORM_OPTIONAL: dict[str, str] = {}
"""Platform settings the template may set but need not (name -> why it is optional)."""


def drift_for(
    templates: dict[Path, Any],
    *,
    settings_module: ModuleType = settings,
    function_app_source: str | None = None,
) -> SettingsDrift:
    source = (
        function_app_source if function_app_source is not None else (ROOT / "function_app.py").read_text()
    )
    return settings_drift(
        template_names=app_setting_names(templates),
        env_names=settings_module.ENV_NAMES,
        binding_names=binding_setting_names(source),
        local_only=set(settings_module.LOCAL_ONLY_ENV_NAMES),
        platform=set(settings_module.PLATFORM_ENV_NAMES),
        platform_required=set(PLATFORM_REQUIRED),
    )


def required_names() -> set[str]:
    code = set(settings.ENV_NAMES) | binding_setting_names((ROOT / "function_app.py").read_text())
    return (code - set(settings.LOCAL_ONLY_ENV_NAMES)) | set(PLATFORM_REQUIRED)


def without_app_setting(bicep: str, name: str) -> str:
    """The template text with the ``{ name: '<name>' value: ... }`` entry removed."""
    pattern = re.compile(
        r"\n[ \t]*\{\s*\n[ \t]*name: '" + re.escape(name) + r"'\s*\n[ \t]*value: [^\n]*\n[ \t]*\}"
    )
    edited, count = pattern.subn("", bicep)
    assert count == 1, f"app setting {name} not found exactly once in {FUNCTION_BICEP}"
    return edited


def test_template_sets_exactly_what_the_code_and_platform_read(infra_templates: dict[Path, Any]) -> None:
    drift = drift_for(infra_templates)
    assert drift.clean, drift


def test_exception_lists_are_consistent() -> None:
    assert set(settings.LOCAL_ONLY_ENV_NAMES) <= set(settings.ENV_NAMES), "stale LOCAL_ONLY_ENV_NAMES entry"
    assert not set(settings.PLATFORM_ENV_NAMES) & set(settings.ENV_NAMES), (
        "a platform setting is read by Settings"
    )
    assert all(reason.strip() for reason in settings.LOCAL_ONLY_ENV_NAMES.values())
    assert all(reason.strip() for reason in settings.PLATFORM_ENV_NAMES.values())


def test_every_platform_setting_is_classified_required_or_optional() -> None:
    assert set(PLATFORM_REQUIRED) | set(PLATFORM_OPTIONAL) == set(settings.PLATFORM_ENV_NAMES)
    assert not set(PLATFORM_REQUIRED) & set(PLATFORM_OPTIONAL)
    assert all(reason.strip() for reason in (*PLATFORM_REQUIRED.values(), *PLATFORM_OPTIONAL.values()))


def test_removal_loop_covers_the_platform_settings_azure_needs() -> None:
    identity = {
        "AzureWebJobsStorage__credential",
        "AzureWebJobsStorage__clientId",
        "AzureWebJobsStorage__accountName",
        "AZURE_CLIENT_ID",
    }
    assert identity <= required_names()


def test_binding_expressions_are_found() -> None:
    # The scan is what makes function_app.py part of "the code"; it must see the documented bindings.
    found = binding_setting_names((ROOT / "function_app.py").read_text())
    assert {"SWEEP_SCHEDULE", "REMEDIATOR_WORK_QUEUE"} <= found


# ---- the comparison fails when a setting is removed from either side ------------------------------


def test_removing_any_required_setting_from_the_template_is_reported(
    infra_templates: dict[Path, Any], iac_python: Path, tmp_path: Path
) -> None:
    original = (INFRA / FUNCTION_BICEP).read_text()
    names = sorted(required_names())
    copies = []
    for name in names:
        copy = tmp_path / f"function-without-{name}.bicep"
        copy.write_text(without_app_setting(original, name))
        copies.append(copy)
    parsed = parse_bicep(copies, python=iac_python)  # one pycep run for every edited copy
    for name, copy in zip(names, copies, strict=True):
        others = {path: tpl for path, tpl in infra_templates.items() if path != FUNCTION_BICEP}
        drift = drift_for({**others, FUNCTION_BICEP: parsed[copy]})
        assert drift.missing_in_template == {name}, (name, drift)
        assert not drift.clean


def _settings_copy_without(alias: str, tmp_path: Path) -> ModuleType:
    """Import a copy of remediator/core/settings.py whose field with this alias is deleted."""
    source = (ROOT / "remediator" / "core" / "settings.py").read_text()
    lines = source.splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if f'alias="{alias}"' in line]
    assert len(hits) == 1, f"field with alias {alias} not found on one line"
    del lines[hits[0]]
    path = tmp_path / f"settings_without_{alias}.py"
    path.write_text("".join(lines))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # pydantic resolves annotations through sys.modules
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[path.stem]
    return module


@pytest.mark.parametrize(
    "alias",
    ["REMEDIATOR_MAX_WAIT_SECONDS", "REMEDIATOR_JOURNAL_TABLE", "AzureWebJobsStorage__queueServiceUri"],
)
def test_removing_a_setting_from_the_code_is_reported(
    infra_templates: dict[Path, Any], alias: str, tmp_path: Path
) -> None:
    trimmed = _settings_copy_without(alias, tmp_path)
    assert alias not in trimmed.ENV_NAMES and len(trimmed.ENV_NAMES) == len(settings.ENV_NAMES) - 1
    drift = drift_for(infra_templates, settings_module=trimmed)
    assert drift.unknown_in_template == {alias}, drift


def test_removing_a_binding_expression_is_reported(infra_templates: dict[Path, Any]) -> None:
    source = (ROOT / "function_app.py").read_text()
    assert "%SWEEP_SCHEDULE%" in source
    drift = drift_for(infra_templates, function_app_source=source.replace("%SWEEP_SCHEDULE%", "0 7 * * * *"))
    assert drift.unknown_in_template == {"SWEEP_SCHEDULE"}, drift


def test_setting_a_local_only_value_in_azure_is_reported(infra_templates: dict[Path, Any]) -> None:
    names = app_setting_names(infra_templates) | {"AzureWebJobsStorage"}
    drift = settings_drift(
        template_names=names,
        env_names=settings.ENV_NAMES,
        binding_names=binding_setting_names((ROOT / "function_app.py").read_text()),
        local_only=set(settings.LOCAL_ONLY_ENV_NAMES),
        platform=set(settings.PLATFORM_ENV_NAMES),
    )
    assert drift.local_only_in_template == {"AzureWebJobsStorage"}
