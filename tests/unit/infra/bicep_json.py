"""Parse Bicep files with pycep and print them as one JSON object: {path: parsed template}.

Runs under the IaC interpreter (``IAC_PYTHON``, the ``.venv-iac`` that holds checkov and pycep-parser), not
under the test venv, so the tests exchange JSON with it through a subprocess. Standard library + pycep only.
A file that does not parse is reported as ``{"error": "..."}`` instead of stopping the run.
"""

import json
import sys
from pathlib import Path

from pycep import BicepParser


def main(paths: list[str]) -> int:
    parser = BicepParser()  # building the grammar is the slow part; reuse it for every file
    out: dict[str, object] = {}
    for path in paths:
        try:
            out[path] = parser.parse(file_path=Path(path))
        except Exception as exc:  # noqa: BLE001 - any parse failure is reported per file
            out[path] = {"error": f"{type(exc).__name__}: {exc}"}
    json.dump(out, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
