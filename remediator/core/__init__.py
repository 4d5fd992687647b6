"""Pure decision core: ids, config, tag rules, snapshots, decisions, events, planning.

Nothing here imports an Azure SDK or azure.functions, and nothing here talks to a network;
import-linter enforces it.
"""
