"""The Azurite queue-store patch applies exactly, is idempotent, refuses an unknown store, is installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import azurite_patch
from tools.azurite_patch import MARKER, STORE, AzuritePatchError, patch, require_patched


def _unpatched_text() -> str:
    """The installed store with every edit undone: Azurite 3.35.0's own compiled file."""
    text = STORE.read_text(encoding="utf-8").removeprefix(f"{MARKER}\n")
    for before, after, _count in azurite_patch._EDITS:
        text = text.replace(after, before)
    return text


def test_the_installed_store_is_patched() -> None:
    require_patched()


def test_patching_the_original_gives_the_installed_store_and_a_rerun_changes_nothing(tmp_path: Path) -> None:
    store = tmp_path / "LokiQueueMetadataStore.js"
    store.write_text(_unpatched_text(), encoding="utf-8")
    with pytest.raises(AzuritePatchError, match="not patched"):
        require_patched(store)
    assert patch(store) is True
    assert store.read_text(encoding="utf-8") == STORE.read_text(encoding="utf-8")
    assert "if (docs.length > 0) {\n            coll.remove(docs);" in store.read_text(encoding="utf-8")
    assert patch(store) is False
    require_patched(store)


def test_a_store_that_is_not_the_expected_release_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    store = tmp_path / "LokiQueueMetadataStore.js"
    original = _unpatched_text().replace("        coll.update(docs);\n", "        coll.updateMany(docs);\n")
    store.write_text(original, encoding="utf-8")
    with pytest.raises(AzuritePatchError, match="expected 1 occurrence"):
        patch(store)
    assert store.read_text(encoding="utf-8") == original
