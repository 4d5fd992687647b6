"""``config check FILE [--live]`` validates a config file; ``config schema`` prints its JSON Schema.

``config check`` is what an operator runs before deploying a config (and what CI can run on the repo's
configs). Offline it reports every mistake at once, one line each naming the field (region names are checked
against Azure's, with "did you mean"), and exits 2. ``--live`` then asks Azure whether the config describes
something that exists (:mod:`remediator.cli.config_live`). ``config schema`` regenerates
``docs/config.schema.json``.
"""

from __future__ import annotations

import argparse
from typing import Any

from remediator.cli.common import PROG, command_parser, epilog
from remediator.cli.errors import ExitCode
from remediator.cli.output import emit
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


def config_summary(path: str, config: RemediatorConfig) -> dict[str, Any]:
    """What ``config check`` prints for a valid config."""
    include = config.selection.include
    regions = sorted(config.targets)
    summary = (
        f"mode {config.remediation.mode}; "
        f"{'all in-scope clusters' if include is None else f'{len(include)} include rule(s)'}, "
        f"{len(config.selection.exclude)} exclude rule(s); targets for {', '.join(regions)}"
    )
    return {
        "file": path,
        "valid": True,
        "summary": summary,
        "mode": config.remediation.mode,
        "managementGroups": [str(ref.name) for ref in config.scope.management_groups],
        "subscriptions": [str(ref.subscription_id) for ref in config.scope.subscriptions],
        "resourceGroups": [str(ref) for ref in config.scope.resource_groups],
        "scopeRegions": None if config.scope.regions is None else list(config.scope.regions),
        "storageRegions": regions,
        "includeRules": None if include is None else len(include),
        "excludeRules": len(config.selection.exclude),
    }


def _summary_table(result: Any) -> Any:
    if not isinstance(result, dict) or "summary" not in result:
        return result
    return [{"File": result["file"], "Valid": result["valid"], "Summary": result["summary"]}]


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.file)  # every offline mistake, all at once: main() prints one line each
    if args.live:
        from remediator.cli.config_live import run_live_check

        return run_live_check(args, config)
    emit(config_summary(args.file, config), args, table=_summary_table)
    return int(ExitCode.OK)


def _schema(args: argparse.Namespace) -> int:
    emit(config_schema(), args)
    return int(ExitCode.OK)


def register(subparsers: Any) -> None:
    """Add ``config check`` and ``config schema``."""
    parser = subparsers.add_parser(
        "config",
        help="validate a config file (offline or against Azure) or print its JSON Schema",
        description="Validate a remediator config file, or print its JSON Schema. ACTION --help for more.",
        epilog=epilog(
            (
                ("Validate a config", f"{PROG} config check my-config.yaml"),
                ("Validate it against Azure as well", f"{PROG} config check my-config.yaml --live -o table"),
                ("Print the JSON Schema", f"{PROG} config schema"),
            )
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = command_parser(
        commands,
        "check",
        help="validate a config file (YAML or JSON): every error at once, exit 2 naming each field",
        description=(
            "Validate a config file offline: every mistake is reported at once, one line each, naming the"
            " field; region names are checked against Azure's (with 'did you mean'); a storage region outside"
            " scope.regions, or a region in scope.regions without storage, is an error. Exit 2 when anything"
            " is wrong. With --live, also ask Azure (needs a signed-in identity: az login): each storage"
            " account exists with the right kind and region, the resource providers are registered, the"
            " identity holds its roles (as far as it can read them), the management groups resolve."
        ),
        examples=(
            ("Validate a config before deploying it", f"{PROG} config check examples/multi-region.yaml"),
            ("Only the exit code (for CI)", f"{PROG} config check my-config.yaml -o none"),
            (
                "Check it against Azure too, for the Function app's identity",
                f"{PROG} config check my-config.yaml --live --principal-id <app-identity-object-id>",
            ),
            (
                "Only the failed live checks, as a table",
                f"{PROG} config check my-config.yaml --live --query \"[?status!='ok']\" -o table",
            ),
        ),
    )
    check.add_argument("file", metavar="FILE", help="the config file (YAML or JSON)")
    check.add_argument(
        "--live",
        action="store_true",
        help="also check the config against Azure (reads only; uses the settings of the other commands)",
    )
    check.add_argument(
        "--principal-id",
        metavar="GUID",
        help="with --live: the identity whose roles to check (default: the signed-in identity's object id)",
    )
    check.set_defaults(handler=_check)
    schema = command_parser(
        commands,
        "schema",
        help="print the config JSON Schema (docs/config.schema.json)",
        description="Print the JSON Schema of the config file (what docs/config.schema.json holds).",
        examples=(
            ("Regenerate the published schema", f"{PROG} config schema > docs/config.schema.json"),
            (
                "The allowed remediation modes",
                f"{PROG} config schema --query '\"$defs\".RemediationConfig.properties.mode.enum' -o tsv",
            ),
        ),
    )
    schema.set_defaults(handler=_schema)
