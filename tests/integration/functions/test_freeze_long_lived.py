"""A wired worker moves its long-lived objects out of the cyclic collector's way, once (runtime.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

CONFIG = {
    "scope": {"subscriptions": ["11111111-2222-3333-4444-555555555555"]},
    "storage": {
        "eastus": "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg/providers/"
        "Microsoft.Storage/storageAccounts/stbackup"
    },
}


def test_the_first_handler_context_freezes_the_heap_once_and_later_ones_pin_nothing(azurite_env) -> None:
    env = {"REMEDIATOR_TENANT_ID": "t", "REMEDIATOR_CONFIG_JSON": json.dumps(CONFIG), **azurite_env}
    code = (
        "import gc, json, sys;"
        "from remediator.service.runtime import Runtime;"
        "env = json.loads(sys.argv[1]);"
        "print(gc.get_freeze_count());"
        "Runtime.from_env(env).handler_context();"
        "first = gc.get_freeze_count(); print(first);"
        "Runtime.from_env(env).handler_context();"
        "print(gc.get_freeze_count() <= first)"  # freed objects leave it; none join
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(env)], capture_output=True, text=True, check=True
    )
    before, frozen, unchanged = done.stdout.split()
    assert int(before) == 0 and int(frozen) > 10_000 and unchanged == "True"
