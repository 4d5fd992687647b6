"""A local Azure Resource Manager over HTTPS, so the product's real SDK clients can be tested without Azure.

Tooling, not product: nothing under ``remediator/`` imports this package except the emulator-mode credential.
Start it in-process with :class:`emulator.server.Emulator` or as ``python -m emulator serve``; see README.md.
"""

from emulator.server import Emulator

__all__ = ["Emulator"]
