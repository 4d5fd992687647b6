"""Layering rules import-linter cannot express: only function_app.py may import azure.functions."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_MODULES = sorted((ROOT / "remediator").rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def imports_azure_functions(path: Path) -> bool:
    return any(
        name == "azure.functions" or name.startswith("azure.functions.") for name in imported_modules(path)
    )


def test_the_product_package_has_modules_to_check() -> None:
    assert len(PRODUCT_MODULES) > 10


@pytest.mark.parametrize("path", PRODUCT_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_product_modules_do_not_import_azure_functions(path: Path) -> None:
    assert not imports_azure_functions(path), f"{path} imports azure.functions; only function_app.py may"


def test_the_check_catches_both_import_forms(tmp_path: Path) -> None:
    plain = tmp_path / "plain.py"
    plain.write_text("import azure.functions as func\n")
    from_form = tmp_path / "from_form.py"
    from_form.write_text("from azure import functions\n")
    clean = tmp_path / "clean.py"
    clean.write_text("from azure.core.exceptions import HttpResponseError\n")
    assert imports_azure_functions(plain)
    assert imports_azure_functions(from_form)
    assert not imports_azure_functions(clean)


def test_function_app_is_where_azure_functions_lives() -> None:
    assert imports_azure_functions(ROOT / "function_app.py")
