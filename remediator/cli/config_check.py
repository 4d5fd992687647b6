"""``config check FILE [--live]`` validates a config file; ``config schema`` prints its JSON Schema.

``config check`` is what an operator runs before deploying a config (and what CI can run on the repo's
configs); ``config schema`` regenerates ``docs/config.schema.json``. With ``--live`` it also reads Azure (as
the environment's settings say: ``REMEDIATOR_ARM_ENDPOINT``, ``REMEDIATOR_CREDENTIAL``, ...) for what only
Azure can tell: in ``policy-task`` mode, each assignment of ``remediation.policyAssignmentIds`` and its
definition, refusing (exit 2, naming the entry) an assignment whose effect cannot remediate (not
DeployIfNotExists or Modify: Azure would accept its tasks and end them with zero deployments). Exit 1 when
Azure cannot be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from remediator.core.config import RemediatorConfig, load_config
from remediator.core.errors import UserInputError


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
    if args.live:
        code = _check_live(args.file, config)
        if code:
            return code
    include = config.selection.include
    regions = ", ".join(sorted(config.targets))
    print(
        f"ok: {args.file}: mode {config.remediation.mode}; "
        f"{'all in-scope clusters' if include is None else f'{len(include)} include rule(s)'}, "
        f"{len(config.selection.exclude)} exclude rule(s); targets for {regions}"
    )
    return 0


def _check_live(path: str, config: RemediatorConfig) -> int:
    """What only Azure can tell about the config; raises :class:`UserInputError` naming the entry."""
    if config.remediation.mode != "policy-task":
        return 0
    from remediator.adapters.arm import ArmError
    from remediator.service.runtime import Runtime  # SDK imports only when the command runs

    runtime = Runtime.from_env(os.environ, config_path=path)
    try:
        judged = runtime.preflight.remediation_effects(config.remediation.policy_assignment_ids)
    except ArmError as exc:
        print(f"error: cannot read the policy assignments from Azure: {exc}", file=sys.stderr)
        return 1
    finally:
        runtime.close()
    for index, verdict in enumerate(judged):
        field = f"remediation.policyAssignmentIds[{index}]"
        if verdict.remediable is False:
            raise UserInputError(verdict.why, field=field, source=path)
        print(f"{'ok' if verdict.remediable else 'warning'}: {field}: {verdict.why}")
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
    check.add_argument(
        "--live",
        action="store_true",
        help="also read Azure (policy-task mode: refuse an assignment whose effect cannot remediate)",
    )
    check.set_defaults(handler=_check)
    schema = commands.add_parser("schema", help="print the config JSON Schema (docs/config.schema.json)")
    schema.set_defaults(handler=_schema)
