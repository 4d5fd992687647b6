"""docs/architecture.md's module tables name every module of the product, and only modules that exist.

The architecture page was merged from many branches; a module added without a row (or a row left behind when
a module moved) makes the map lie. A "module" here is every ``.py`` file under ``remediator/`` except a
package's ``__init__.py`` that only re-exports (one that defines a function or class is a module in its own
right and is named with its package's trailing slash, e.g. ``cli/``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "remediator"
DOC = ROOT / "docs" / "architecture.md"
SECTION = "## Module map and key interfaces"


def product_modules() -> set[str]:
    """Paths relative to ``remediator/``: ``core/ids.py``; a package ``__init__`` with code as ``cli/``."""
    modules: set[str] = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if path.name != "__init__.py":
            modules.add(relative)
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(node, ast.FunctionDef | ast.ClassDef) for node in tree.body):
            modules.add(relative.removesuffix("__init__.py") or "./")
    return modules


def documented_modules(text: str) -> set[str]:
    """The modules named in the first cell of each row of the module tables.

    A cell may name several modules of one folder: ``service/triggers/events.py`, `queue.py``: a bare name
    takes the folder of the path before it.
    """
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    named: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        first_cell = line.split("|")[1]
        folder = ""
        for token in re.findall(r"`([^`]+)`", first_cell):
            if "/" in token.rstrip("/"):
                folder = token.rsplit("/", 1)[0] + "/" if not token.endswith("/") else ""
                named.add(token)
            elif token.endswith("/"):
                named.add(token)
            else:
                named.add(folder + token)
    return named


def test_every_module_has_a_row() -> None:
    missing = sorted(product_modules() - documented_modules(DOC.read_text(encoding="utf-8")))
    assert missing == [], f"docs/architecture.md ({SECTION!r}) lacks a row for {missing}"


def test_every_row_names_a_module_that_exists() -> None:
    stale = sorted(documented_modules(DOC.read_text(encoding="utf-8")) - product_modules())
    assert stale == [], f"docs/architecture.md names modules that do not exist: {stale}"


def test_the_check_bites() -> None:
    text = DOC.read_text(encoding="utf-8")
    broken = "\n".join(line for line in text.splitlines() if not line.startswith("| `core/ids.py`"))
    assert "core/ids.py" in product_modules() - documented_modules(broken)
    invented = text.replace("| `core/ids.py`", "| `core/ids.py`, `no_such_module.py`", 1)
    assert "core/no_such_module.py" in documented_modules(invented) - product_modules()
