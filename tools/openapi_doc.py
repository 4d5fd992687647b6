"""Write ``docs/openapi.json`` from :func:`remediator.core.openapi.openapi_document`.

The description of the HTTP API is generated, never hand-edited. ``python -m tools.openapi_doc`` rewrites the
file; ``--check`` exits 1 when it is stale (``tests/unit/test_openapi.py`` runs the same comparison and
validates the document with openapi-spec-validator).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from remediator.core.openapi import openapi_document

ROOT = Path(__file__).resolve().parents[1]
OPENAPI_PATH = ROOT / "docs" / "openapi.json"


def document_text() -> str:
    """The document exactly as committed: two-space indent, non-ASCII kept, trailing newline."""
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite docs/openapi.json, or with ``--check`` report whether it is current (exit 1 when stale)."""
    parser = argparse.ArgumentParser(prog="python -m tools.openapi_doc", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/openapi.json is stale")
    args = parser.parse_args(argv)
    text = document_text()
    if args.check:
        current = OPENAPI_PATH.read_text(encoding="utf-8") if OPENAPI_PATH.exists() else ""
        if current != text:
            print(f"{OPENAPI_PATH} is stale: run python -m tools.openapi_doc", file=sys.stderr)
            return 1
        return 0
    OPENAPI_PATH.write_text(text, encoding="utf-8")
    print(OPENAPI_PATH)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
