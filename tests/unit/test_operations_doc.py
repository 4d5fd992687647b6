"""docs/operations.md documents every setting the product reads, from the one module that reads them."""

from __future__ import annotations

from remediator.core.settings import ENV_NAMES, SWEEP_SCHEDULE_SETTING
from tools import settings_doc


def test_settings_table_is_current() -> None:
    current = settings_doc.DOC.read_text(encoding="utf-8")
    assert current == settings_doc.rewrite(current), "run: python -m tools.settings_doc"


def test_every_setting_is_documented() -> None:
    doc = settings_doc.DOC.read_text(encoding="utf-8")
    missing = [name for name in (*ENV_NAMES, SWEEP_SCHEDULE_SETTING) if f"`{name}`" not in doc]
    assert missing == []


def test_the_check_detects_a_missing_row() -> None:
    current = settings_doc.DOC.read_text(encoding="utf-8")
    broken = "\n".join(line for line in current.splitlines() if "`REMEDIATOR_MAX_ATTEMPTS`" not in line)
    assert settings_doc.rewrite(broken) != broken  # the --check mode would fail on it
