"""A Resource Graph KQL subset for the emulator: parse with a grammar, compile once, evaluate over dict rows.

See emulator/README.md ("Resource Graph KQL subset") for what is supported and the semantics chosen.
"""

from emulator.kql.compiler import CompiledQuery, compile_query, rows_of
from emulator.kql.errors import KqlError, KqlSyntaxError, UnsupportedKqlError
from emulator.kql.tables import ARG_TABLE_TYPE_NAMES, TABLE_SCHEMAS

__all__ = [
    "ARG_TABLE_TYPE_NAMES",
    "TABLE_SCHEMAS",
    "CompiledQuery",
    "KqlError",
    "KqlSyntaxError",
    "UnsupportedKqlError",
    "compile_query",
    "rows_of",
]
