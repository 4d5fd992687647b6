"""Shared pytest wiring: fixtures live in tests/fixtures/, one module per local service."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared"
"""The shared reference folder (official Azure examples) that CI places beside the clone."""

pytest_plugins = [
    "tests.fixtures.paths",
    "tests.fixtures.emulator",
    "tests.fixtures.azurite",
    "tests.fixtures.runner",
    "tests.fixtures.iac",
    "tests.fixtures.fuzz",
]
