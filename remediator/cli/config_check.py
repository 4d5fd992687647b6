"""``config check FILE`` validates a config file; ``config schema`` prints its JSON Schema.

``config check`` is what an operator runs before deploying a config (and what CI can run on the repo's
configs); ``config schema`` regenerates ``docs/config.schema.json``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from remediator.core.config import RemediatorConfig, load_config


def config_schema() -> dict[str, Any]:
    """The JSON Schema of the config file (camelCase field names, docstrings as descriptions)."""
    schema = RemediatorConfig.model_json_schema(by_alias=True, mode="validation")
    _one_line_descriptions(schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "aks-backup-remediator config"
    return schema


def _one_line_descriptions(node: object) -> None:
    """Docstrings wrap at the source's line length; schema descriptions read better as one line each."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                node[key] = " ".join(value.split())
            else:
                _one_line_descriptions(value)
    elif isinstance(node, list):
        for item in node:
            _one_line_descriptions(item)


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    include = config.selection.include
    regions = ", ".join(sorted(config.targets))
    print(
        f"ok: {args.file}: mode {config.remediation.mode}; "
        f"{'all in-scope clusters' if include is None else f'{len(include)} include rule(s)'}, "
        f"{len(config.selection.exclude)} exclude rule(s); targets for {regions}"
    )
    return 0


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(config_schema(), indent=2, sort_keys=False))
    return 0


def register(subparsers: Any) -> None:
    """Add ``config check`` and ``config schema``."""
    parser = subparsers.add_parser("config", help="validate a config file or print its JSON Schema")
    commands = parser.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = commands.add_parser(
        "check", help="validate a config file (YAML or JSON); exit 2 naming the field"
    )
    check.add_argument("file", metavar="FILE")
    check.set_defaults(handler=_check)
    schema = commands.add_parser("schema", help="print the config JSON Schema (docs/config.schema.json)")
    schema.set_defaults(handler=_schema)
