"""Parse Terraform files with checkov's HCL2 parser and print them as one JSON object: {path: parsed file}.

Runs under the IaC interpreter (``IAC_PYTHON``, the ``.venv-iac`` that holds checkov, whose ``bc-python-hcl2``
is the parser checkov itself uses), not under the test venv; the tests exchange JSON with it through a
subprocess, as with ``bicep_json.py``. A file that does not parse is reported as ``{"error": "..."}``.
"""

import json
import sys
from pathlib import Path

import hcl2


def main(paths: list[str]) -> int:
    out: dict[str, object] = {}
    for path in paths:
        try:
            with Path(path).open() as handle:
                out[path] = hcl2.load(handle)
        except Exception as exc:  # noqa: BLE001 - any parse failure is reported per file
            out[path] = {"error": f"{type(exc).__name__}: {exc}"}
    json.dump(out, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
