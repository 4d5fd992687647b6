"""tools/smoke.py against the real app: function_app.py under the local runner, the ARM emulator and Azurite.

The smoke test is what an operator runs after ``azd up``; here it meets the same handlers a deployed app runs
(function keys checked by the runner as by the host), and must pass without writing anything to ARM.
"""

from __future__ import annotations

import io

import pytest

from tests.fixtures.emulator import CLUSTER_ID, OTHER_SUB, TEST_SUB
from tests.fixtures.runner import FunctionsApp
from tools import smoke

pytestmark = pytest.mark.e2e


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    return smoke.main(argv, environ={}, out=out), out.getvalue()


def test_the_smoke_test_passes_against_the_app_and_writes_nothing(functions_app: FunctionsApp) -> None:
    app = functions_app
    code, out = run(
        ["--url", app.runner.url, f"--key={app.runner.function_key}", "--cluster-id", CLUSTER_ID, "--report"]
    )
    assert code == 0, out
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "PASS health",
        "PASS keys-enforced",
        "PASS explain-rejects-bad-input",
        "PASS explain",
        "PASS report",
        "smoke",
    ]
    assert "200 selected" in lines[3] and "a reconcile would:" in lines[3]
    assert app.writes() == []  # explain is a dry run; health and report read


def test_a_wrong_key_and_an_out_of_scope_cluster_fail(functions_app: FunctionsApp) -> None:
    app = functions_app
    code, out = run(["--url", app.runner.url, "--key", "not-a-key", "--wait", "0"])
    assert code == 1 and out.splitlines()[0].startswith("FAIL health: 401")
    other = CLUSTER_ID.replace(TEST_SUB, OTHER_SUB)
    code, out = run(["--url", app.runner.url, f"--key={app.runner.function_key}", "--cluster-id", other])
    assert code == 1
    assert "FAIL explain: POST /api/explain: 403" in out and "out-of-scope" in out
    assert app.writes() == []
