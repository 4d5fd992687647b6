"""The emulator's bottom layer: ARM data with no behaviour — ids, the id key function, resource bodies.

Everything above (state, estate loading, lifecycles, the HTTP handlers, the plug-ins) builds on these; nothing
here imports another emulator module, so shared pieces live here instead of in a handler module that the
estate loader or the state would otherwise have to import (which is how the old import cycle formed).
"""
