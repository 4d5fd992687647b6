"""placeholder: filled in next commit."""

from emulator.routing import PluginContext, Router


def register(router: Router, ctx: PluginContext) -> None:
    """No routes yet."""
