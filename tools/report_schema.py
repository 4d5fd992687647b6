"""Write ``docs/report.schema.json`` from :func:`remediator.core.report_document.json_schema`.

The schema is generated, never hand-edited: the dataclasses in ``remediator/core/report_document.py`` are the
contract. ``python -m tools.report_schema`` rewrites the file; ``--check`` exits 1 when stale (a unit test
runs the same comparison).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from remediator.core.report_document import json_schema

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "docs" / "report.schema.json"


def schema_text() -> str:
    """The schema exactly as committed: two-space indent, non-ASCII kept, trailing newline."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite the schema file, or with ``--check`` report whether it is current (exit 1 when stale)."""
    parser = argparse.ArgumentParser(prog="python -m tools.report_schema", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/report.schema.json is stale")
    args = parser.parse_args(argv)
    text = schema_text()
    if args.check:
        current = SCHEMA_PATH.read_text(encoding="utf-8") if SCHEMA_PATH.exists() else ""
        if current != text:
            print(f"{SCHEMA_PATH} is stale: run python -m tools.report_schema", file=sys.stderr)
            return 1
        return 0
    SCHEMA_PATH.write_text(text, encoding="utf-8")
    print(SCHEMA_PATH)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
