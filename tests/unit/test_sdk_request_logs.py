"""The composition root keeps azure-core's per-request log lines out of an INFO-level host (as the Functions
worker runs function code), and leaves a level an operator set for that logger alone."""

from __future__ import annotations

import subprocess
import sys

ENV = (
    "{'REMEDIATOR_TENANT_ID': 't', 'REMEDIATOR_CONFIG_JSON': json.dumps("
    "{'scope': {'subscriptions': ['11111111-2222-3333-4444-555555555555']}, 'storage': {'eastus':"
    " '/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg/providers/"
    "Microsoft.Storage/storageAccounts/stbackup'}})}"
)


def _run(preset: str) -> list[str]:
    code = (
        "import json, logging;"
        "logging.basicConfig(level=logging.INFO);"
        f"{preset};"
        "from remediator.service.runtime import Runtime;"
        "sdk = logging.getLogger('azure.core.pipeline.policies.http_logging_policy');"
        "print(sdk.isEnabledFor(logging.INFO));"
        f"Runtime.from_env({ENV});"
        "print(sdk.isEnabledFor(logging.INFO), logging.getLogger('remediator').isEnabledFor(logging.INFO))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_an_info_level_host_gets_no_sdk_request_lines_once_the_runtime_is_built() -> None:
    assert _run("pass") == ["True", "False", "True"]


def test_a_level_set_for_the_sdk_request_logger_is_kept() -> None:
    preset = "logging.getLogger('azure.core.pipeline.policies.http_logging_policy').setLevel(logging.DEBUG)"
    assert _run(preset) == ["True", "True", "True"]
