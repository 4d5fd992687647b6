"""Copy the subset of ``Azure/bicep-types-az`` type data that infra/*.bicep uses into the repository.

The Bicep compiler type-checks every resource body against the type library generated from the Azure REST
specs (``Azure/bicep-types-az``, folder ``generated/<rp>/<namespace>/<api-version>/types.json``). There is no
Bicep CLI on the build machine, so ``tests/unit/infra/test_bicep_types.py`` does the same check in Python
against a vendored copy of ONLY the data it needs: for each ``type@apiVersion`` that a template declares, the
resource type and every type reachable from its body (descriptions dropped), plus the list of API versions the
library knows for each such type (so a wrong API version is caught). No code of that repository is copied.

Run it after changing a resource type or API version in infra/ (``fetch`` brings the repository as a bare git
directory; pass its path):

    python -m tools.vendor_bicep_types /work/.mirror/Azure+bicep-types-az/repo

It writes ``tests/unit/infra/bicep_types/types.json`` and ``SOURCE.md`` (the commit it was cut from).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
OUT = ROOT / "tests" / "unit" / "infra" / "bicep_types"
RESOURCE_REF = re.compile(r"'((?:Microsoft|microsoft)\.[A-Za-z]+/[A-Za-z/]+)@([0-9a-z-]+)'")


def used_types(paths: Iterable[Path]) -> set[tuple[str, str]]:
    """Every (resource type, api version) named in a ``resource ... '<type>@<version>'`` declaration."""
    found: set[tuple[str, str]] = set()
    for path in paths:
        for match in RESOURCE_REF.finditer(path.read_text()):
            found.add((match.group(1), match.group(2)))
    return found


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={repo}", *args], capture_output=True, text=True, check=True
    ).stdout


def _closure(types: list[dict[str, Any]], root: int) -> list[dict[str, Any]]:
    """The types reachable from ``root``, re-indexed from 0 (root first), descriptions removed."""
    order: list[int] = []
    index: dict[int, int] = {}
    stack = [root]
    while stack:
        current = stack.pop(0)
        if current in index:
            continue
        index[current] = len(order)
        order.append(current)
        stack.extend(_refs(types[current]))

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"$ref"}:
                return {"$ref": f"#/{index[int(node['$ref'][2:])]}"}
            return {k: rewrite(v) for k, v in node.items() if not (k == "description" and isinstance(v, str))}
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    return [rewrite(types[i]) for i in order]


def _refs(node: Any) -> list[int]:
    found: list[int] = []
    if isinstance(node, dict):
        if set(node) == {"$ref"} and str(node["$ref"]).startswith("#/"):
            return [int(node["$ref"][2:])]
        for value in node.values():
            found.extend(_refs(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_refs(value))
    return found


def vendor(repo: Path, wanted: set[tuple[str, str]]) -> dict[str, Any]:
    namespaces = {t.split("/", 1)[0].lower() for t, _ in wanted}
    wanted_types = {t.lower() for t, _ in wanted}
    files = [
        line
        for line in _git(repo, "ls-tree", "-r", "--name-only", "HEAD", "generated").splitlines()
        if line.endswith("/types.json") and line.split("/")[2].lower() in namespaces
    ]
    versions: dict[str, set[str]] = {}
    bodies: dict[str, Any] = {}
    for file in files:
        types = json.loads(_git(repo, "show", f"HEAD:{file}"))
        for i, entry in enumerate(types):
            if entry.get("$type") != "ResourceType":
                continue
            name, _, version = str(entry["name"]).partition("@")
            if name.lower() not in wanted_types:
                continue
            versions.setdefault(name.lower(), set()).add(version)
            if (name, version) in wanted or any(
                name.lower() == t.lower() and version == v for t, v in wanted
            ):
                bodies[f"{name}@{version}"] = {"source": file, "types": _closure(types, i)}
    missing = (
        {f"{t}@{v}" for t, v in wanted}
        - {k for k in bodies}
        - {k for k in bodies if k.lower() in {f"{t}@{v}".lower() for t, v in wanted}}
    )
    if missing:
        print(f"not in the type library: {sorted(missing)}", file=sys.stderr)
    return {
        "versions": {name: sorted(v) for name, v in sorted(versions.items())},
        "resources": dict(sorted(bodies.items())),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("repo", type=Path, help="git directory of Azure/bicep-types-az (from fetch)")
    args = parser.parse_args(argv)
    wanted = used_types(sorted(INFRA.rglob("*.bicep")))
    data = vendor(args.repo, wanted)
    commit = _git(args.repo, "rev-parse", "HEAD").strip()
    date = _git(args.repo, "log", "-1", "--format=%cI").strip()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "types.json").write_text(json.dumps({"commit": commit, **data}, indent=1, sort_keys=True) + "\n")
    (OUT / "SOURCE.md").write_text(
        "# Vendored type data\n\n"
        f"Cut from `Azure/bicep-types-az` at commit `{commit}` ({date})\n"
        "by `python -m tools.vendor_bicep_types`.\n"
        "Data only (the generated `types.json` subsets of the resource types infra/ declares, descriptions\n"
        "removed, plus the API versions the library lists for those types); no code of that repository.\n"
        "License of the source data: MIT (Azure/bicep-types-az LICENSE).\n\n"
        + "\n".join(f"- `{name}` from `{body['source']}`" for name, body in data["resources"].items())
        + "\n"
    )
    print(f"vendored {len(data['resources'])} resource types from {commit}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
