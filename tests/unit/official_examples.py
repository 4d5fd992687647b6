"""Helpers over the shared official Azure examples (reached through the ``azure_examples`` fixture)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def official_cluster_bodies(azure_examples: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every managedCluster body in the official containerservice examples, labelled by file and response."""
    folder = azure_examples / "containerservice"
    get = json.loads((folder / "ManagedClustersGet.json").read_text())
    yield "ManagedClustersGet 200", get["responses"]["200"]["body"]
    listing = json.loads((folder / "ManagedClustersList.json").read_text())
    for index, body in enumerate(listing["responses"]["200"]["body"]["value"]):
        yield f"ManagedClustersList value[{index}]", body
    create = json.loads((folder / "ManagedClustersCreate_Update.json").read_text())
    for status, response in sorted(create["responses"].items()):
        yield f"ManagedClustersCreate_Update {status}", response["body"]
