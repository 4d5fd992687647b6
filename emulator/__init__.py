"""A local Azure Resource Manager over HTTPS, so the product's real SDK clients can be tested without Azure.

Tooling, not product: the product never imports this package, and this package never imports the product
(an import-linter independence contract in pyproject.toml). Start it in-process with
:class:`emulator.server.Emulator` or as ``python -m emulator serve``; see README.md.

``emulator.Emulator`` is resolved on first use, so importing a bottom-layer module (``emulator.model.ids``,
``emulator.state``) does not load the server and every handler with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emulator.server import Emulator

__all__ = ["Emulator"]


def __getattr__(name: str) -> Any:
    if name == "Emulator":
        from emulator.server import Emulator

        return Emulator
    raise AttributeError(f"module 'emulator' has no attribute {name!r}")
