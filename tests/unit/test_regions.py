"""Region names are checked against Azure's (a shipped list with its source and date, and "did you mean"),
scope.regions and storage must agree, every config error is shown at once in plain words."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from remediator.cli import EXIT_BAD_INPUT, main
from remediator.core.config import parse_config
from remediator.core.errors import UserInputError, UserInputErrors
from remediator.core.regions import (
    AZURE_REGIONS,
    REGIONS_AS_OF,
    is_known_region,
    suggest_region,
    unknown_region_message,
)

SUB = "3f2b8c1e-6d4a-4f7b-9c2e-8a1d5e7f0b24"
SA = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.Storage/storageAccounts/stbackup01"


def base() -> dict[str, Any]:
    return {"scope": {"subscriptions": [SUB]}, "storage": {"eastus": SA}}


def test_the_list_is_arm_location_names_with_a_date() -> None:
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", REGIONS_AS_OF)
    assert len(AZURE_REGIONS) > 60
    assert all(re.fullmatch(r"[a-z0-9]+", name) for name in AZURE_REGIONS)
    # a display name normalises to its key the way the config normalises "East US 2" -> "eastus2"
    assert all("".join(display.split()).lower() == name for name, display in AZURE_REGIONS.items())
    for name in ("eastus", "westeurope", "swedencentral", "eastus2euap", "usgovvirginia", "chinanorth3"):
        assert is_known_region(name)
    for logical in ("global", "europe", "unitedstates", "eastusstg", "germanycentral"):
        assert not is_known_region(logical)


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("westeruope", "westeurope"),
        ("eastsu", "eastus"),
        ("uksouht", "uksouth"),
        ("southeastaisa", "southeastasia"),
    ],
)
def test_did_you_mean(typo: str, meant: str) -> None:
    assert suggest_region(typo) == meant
    assert f"did you mean {meant!r}?" in unknown_region_message(typo)


def test_no_suggestion_for_something_else_entirely() -> None:
    assert suggest_region("mars") is None
    assert "did you mean" not in unknown_region_message("mars")


def test_a_misspelled_region_fails_config_check_with_did_you_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's case: westeruope used to pass config check (exit 0) and drop West Europe silently."""
    config = tmp_path / "c.yaml"
    config.write_text(
        f"scope:\n  subscriptions: [{SUB}]\n  regions: [East US, westeruope]\n"
        f"storage:\n  eastus: {SA}\n  westeruope: {SA}\n"
    )
    assert main(["config", "check", str(config)]) == EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err
    assert captured.err.splitlines() == [
        f"error: {config}: scope.regions[1]: {unknown_region_message('westeruope')}",
        f"error: {config}: storage.westeruope (key): {unknown_region_message('westeruope')}",
    ]
    assert "did you mean 'westeurope'?" in captured.err


def test_display_names_are_checked_too() -> None:
    data = base()
    data["storage"] = {"West Eruope": SA}
    with pytest.raises(UserInputError) as info:
        parse_config(data)
    assert info.value.field == "storage.westeruope (key)"
    assert "did you mean 'westeurope'?" in info.value.message


def test_extra_region_names_admit_a_region_newer_than_the_list() -> None:
    data = base()
    data["storage"] = {"eastus": SA, "Taiwan North": SA}
    with pytest.raises(UserInputError):
        parse_config(data)
    data["extraRegionNames"] = ["taiwannorth"]
    assert sorted(parse_config(data).storage) == ["eastus", "taiwannorth"]
    data["extraRegionNames"] = ["Taiwan North!"]
    with pytest.raises(UserInputError) as info:
        parse_config(data)
    assert info.value.field == "extraRegionNames[0]"


def test_a_storage_region_outside_scope_regions_is_an_error() -> None:
    data = base()
    data["scope"]["regions"] = ["eastus"]
    data["storage"] = {"eastus": SA, "westus2": SA}
    with pytest.raises(UserInputError) as info:
        parse_config(data)
    assert info.value.field == "storage.westus2"
    assert "westus2 is not in scope.regions (eastus)" in info.value.message


def test_a_scope_region_without_storage_is_an_error() -> None:
    data = base()
    data["scope"]["regions"] = ["eastus", "Central US"]
    with pytest.raises(UserInputError) as info:
        parse_config(data)
    assert info.value.field == "storage"
    assert info.value.message.startswith("no storage account for centralus, which scope.regions allows")


def test_agreeing_regions_and_no_region_list_are_fine() -> None:
    data = base()
    data["scope"]["regions"] = ["East US", "westeurope"]
    data["storage"] = {"eastus": SA, "West Europe": SA}
    assert parse_config(data).scope.regions == ("eastus", "westeurope")
    data = base()
    data["storage"] = {"eastus": SA, "japaneast": SA}
    assert parse_config(data).scope.regions is None


BAD_CONFIGS: list[tuple[dict[str, Any], list[str]]] = [
    (
        {"scope": "everything", "storage": {"eastus": SA}, "remediation": {"maxReinstalls": "two"}},
        ["scope", "remediation.maxReinstalls"],
    ),
    (
        {
            "scope": {"subscriptions": SUB, "regions": ["eastus"]},
            "storage": [SA],
            "selection": {"include": "backup"},
            "extension": {"name": "-x", "releaseTrain": "v1", "autoUpgradeMinorVersion": "maybe"},
        },
        [
            "scope.subscriptions",
            "storage",
            "selection.include",
            "extension.name",
            "extension.releaseTrain",
            "extension.autoUpgradeMinorVersion",
        ],
    ),
    (
        {
            "scope": {"subscriptions": [SUB], "regions": ["westeruope", "eastus"]},
            "storage": {"eastus": SA},
            "remediation": {"mode": "fix", "maxReinstalls": 99},
            "selection": {"include": [{"values": ["x"]}], "exclude": [{"tag": "a/b"}]},
            "extension": {"configurationSettings": {"a": 1}},
            "unknown": 1,
        },
        [
            "scope.regions[0]",
            "selection.include[0].tag",
            "selection.exclude[0].tag",
            "extension.configurationSettings.a",
            "remediation.mode",
            "remediation.maxReinstalls",
            "unknown",
        ],
    ),
]


@pytest.mark.parametrize(("data", "fields"), BAD_CONFIGS)
def test_every_error_at_once_in_plain_words(data: dict[str, Any], fields: list[str]) -> None:
    with pytest.raises(UserInputError) as info:
        parse_config(copy.deepcopy(data), source="c.yaml")
    errors = info.value.errors if isinstance(info.value, UserInputErrors) else (info.value,)
    assert sorted(e.field or "" for e in errors) == sorted(fields)
    for error in errors:
        line = str(error)
        assert "\n" not in line
        for internal in ("Value error", "input_value", "pydantic", "errors.pydantic.dev", "Input should",
                         "tuple",
                         "instance of", "Field required", "Dictionary", "Tuple"):  # fmt: skip
            assert internal not in line, line


def test_plain_words_for_common_mistakes() -> None:
    cases = {
        "scope": ({"scope": "x"}, "must be a mapping of keys to values"),
        "storage": ({"storage": None, "scope": {"subscriptions": [SUB]}}, "empty (null"),
        "remediation.maxReinstalls": ({"remediation": {"maxReinstalls": 11}}, "must be at most 10"),
        "extension.autoUpgradeMinorVersion": (
            {"extension": {"autoUpgradeMinorVersion": "maybe"}},
            "must be true or false",
        ),
        "scope.subscriptions": ({"scope": {"subscriptions": SUB}}, "must be a list"),
    }
    for field, (change, words) in cases.items():
        data = base()
        data.update(change)
        with pytest.raises(UserInputError) as info:
            parse_config(data)
        assert info.value.field == field and words in info.value.message, (field, info.value.message)
    data = base()
    del data["storage"]
    with pytest.raises(UserInputError) as info:
        parse_config(data)
    assert info.value.field == "regionTargets"
    assert info.value.message.startswith("required: map each region to its targets")


def test_app_settings_errors_are_plain_words_too() -> None:
    """The first thing a laptop user meets: missing settings, named, without pydantic's wording."""
    from remediator.core.settings import Settings

    with pytest.raises(UserInputError) as info:
        Settings.from_env({})
    assert str(info.value) == "app settings: REMEDIATOR_TENANT_ID: required: add it"
    with pytest.raises(UserInputError) as info:
        Settings.from_env({"REMEDIATOR_TENANT_ID": "t"})
    assert str(info.value) == (
        "app settings: REMEDIATOR_CONFIG_FILE: set exactly one of REMEDIATOR_CONFIG_FILE and"
        " REMEDIATOR_CONFIG_JSON"
    )
    with pytest.raises(UserInputErrors) as several:
        Settings.from_env(
            {
                "REMEDIATOR_TENANT_ID": "t",
                "REMEDIATOR_CONFIG_JSON": "{}",
                "REMEDIATOR_INLINE_BUDGET_SECONDS": "60",
                "REMEDIATOR_MAX_ATTEMPTS": "many",
            }
        )
    assert several.value.lines() == [
        "app settings: REMEDIATOR_INLINE_BUDGET_SECONDS: must be at most 25",
        "app settings: REMEDIATOR_MAX_ATTEMPTS: must be a whole number",
    ]
